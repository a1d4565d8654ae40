#!/usr/bin/env python
"""Measure the motion knobs on the embedded toy model and write docs/RESULTS.md and its plot.

    python scripts/eval/toy_results.py [--seeds 4] [--device cpu] [--out docs]

Every setting is sampled from the same held-out synthetic images (seeds the model never saw) with
the same seeds, and scored with sgm.eval.metrics (videos in [0, 1]). One command regenerates the
whole page: the table, docs/results.png and a contact sheet docs/results_sheet.png.
"""
import argparse
import datetime
import os
import statistics
import time
from dataclasses import dataclass, field
from typing import Dict, List

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from sgm.data.synthetic_motion import render_clip
from sgm.eval.metrics import loop_closure, loop_seam_ratio, motion_metrics, spearman
from sgm.inference import VideoPipeline
from sgm.modules.motion import KNOB_NAMES, MotionKnobs

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout (default --out)
HELD_OUT_SEED = 900_000  # far from the training (seed 0 * 1_000_003 + i) and validation streams
TRAINED_FRAMES = 8
METRICS = ("displacement_px", "frame_diff", "smoothness", "psnr_frame0", "loop_closure", "loop_seam_ratio")
DIGITS = {"smoothness": 4}  # decimals in the table (default 3)
BUCKETS_3X = (0, 127, 255)  # motion buckets of the adaptive-window rows
RHOS = (0.0, 0.2, 0.5, 0.8)  # noise_correlation at 8 frames (the first three also at 24 frames)


@dataclass
class Setting:
    """One table row: `knobs` are any motion knobs or sampling settings by their YAML names, passed
    to the pipeline call (with shuffle_windowed_noise) for this row only."""

    group: str
    label: str
    num_frames: int = TRAINED_FRAMES
    motion_bucket_id: int = 127
    knobs: Dict = field(default_factory=dict)
    shuffle_windowed_noise: bool = False

    def call_kwargs(self, seed: int) -> Dict:
        """Keyword arguments of VideoPipeline.__call__ / settings() for one seed."""
        return dict(num_frames=self.num_frames, motion_bucket_id=self.motion_bucket_id, seed=seed, decoding_t=self.num_frames,
                    shuffle_windowed_noise=self.shuffle_windowed_noise, **self.knobs)

    @property
    def motion_knobs(self) -> MotionKnobs:
        """The network knobs of this row (its sampling settings left out)."""
        return MotionKnobs(**{k: v for k, v in self.knobs.items() if k in KNOB_NAMES})


def settings() -> List[Setting]:
    out = [Setting("motion_bucket_id", f"bucket {b}", motion_bucket_id=b) for b in (0, 64, 127, 191, 255)]
    out += [Setting("temporal_attn_scale", f"s = {s}", knobs={"temporal_attn_scale": s}) for s in (0.25, 0.5, 1.0, 2.0, 4.0)]
    out += [Setting("temporal_attn_k_scale", f"k = {k}", knobs={"temporal_attn_k_scale": k}) for k in (0.5, 1.0, 1.5)]
    for factor in (2, 3):
        t = factor * TRAINED_FRAMES
        out.append(Setting("longer videos", f"{t} frames, positions 0..{t - 1}", num_frames=t))
        out.append(Setting("longer videos", f"{t} frames, E = {TRAINED_FRAMES}", num_frames=t, knobs={"position_embedding_frames": TRAINED_FRAMES}))
    t = 3 * TRAINED_FRAMES
    window = {"attn_window_size": TRAINED_FRAMES, "attn_window_stride": TRAINED_FRAMES // 2}
    out.append(Setting("windows at 3x length", f"{t} frames, full attention", num_frames=t))
    out.append(Setting("windows at 3x length", f"{t} frames, w = 8, r = 4", num_frames=t, knobs=window))
    out.append(Setting("windows at 3x length", f"{t} frames, w = 8, r = 4, shuffled noise", num_frames=t, knobs=window, shuffle_windowed_noise=True))
    out += issue6_settings()
    return out


CASCADE, ADAPTIVE, RHO, LOOP = "stage cascade, 24 frames", "adaptive window, 24 frames", "noise_correlation", "loop, 24 frames"
AUTO_WINDOW = {"attn_window_size": "auto", "attn_window_min": 4, "attn_window_max": 3 * TRAINED_FRAMES, "attn_window_stride": 2}


def issue6_settings() -> List[Setting]:
    """Issue 6: stage cascade, motion-adaptive windows, correlated noise and circular windows."""
    t = 3 * TRAINED_FRAMES
    window = {"attn_window_size": TRAINED_FRAMES, "attn_window_stride": TRAINED_FRAMES // 2}
    out = [
        Setting(CASCADE, "full attention", num_frames=t),
        Setting(CASCADE, "w = 8, r = 4, all stages", num_frames=t, knobs=window),
        Setting(CASCADE, "w = 8, r = 4, output only (cascade)", num_frames=t, knobs={**window, "attn_window_stages": ["output"]}),
        Setting(CASCADE, "w = 8, r = 4, input + middle only", num_frames=t, knobs={**window, "attn_window_stages": ["input", "middle"]}),
        Setting(CASCADE, "s = 2, all stages", num_frames=t, knobs={"temporal_attn_scale": 2.0}),
        Setting(CASCADE, "s = 2, output only", num_frames=t, knobs={"temporal_attn_scale": 2.0, "temporal_attn_scale_stages": ["output"]}),
    ]
    for b in BUCKETS_3X:
        out += [
            Setting(ADAPTIVE, f"bucket {b}, full attention", num_frames=t, motion_bucket_id=b),
            Setting(ADAPTIVE, f"bucket {b}, fixed w = 8, r = 4", num_frames=t, motion_bucket_id=b, knobs=window),
            Setting(ADAPTIVE, f"bucket {b}, auto 4..24 (bucket), r = 2", num_frames=t, motion_bucket_id=b, knobs=AUTO_WINDOW),
            Setting(ADAPTIVE, f"bucket {b}, auto 4..24 (latent), r = 2", num_frames=t, motion_bucket_id=b,
                    knobs={**AUTO_WINDOW, "attn_window_motion": "latent"}),
            Setting(ADAPTIVE, f"bucket {b}, auto 4..24 (latent), r = 2, output only", num_frames=t, motion_bucket_id=b,
                    knobs={**AUTO_WINDOW, "attn_window_motion": "latent", "attn_window_stages": ["output"]}),
        ]
    for frames, rhos in ((TRAINED_FRAMES, RHOS), (t, RHOS[:3])):
        out += [Setting(RHO, f"{frames} frames, rho = {rho}", num_frames=frames, knobs={"noise_correlation": rho}) for rho in rhos]
    out += [
        Setting(LOOP, "full attention", num_frames=t),
        Setting(LOOP, "w = 24 (= T), loop", num_frames=t, knobs={"attn_window_size": t, "attn_window_loop": True}),
        Setting(LOOP, "w = 8, r = 4", num_frames=t, knobs=window),
        Setting(LOOP, "w = 8, r = 4, loop", num_frames=t, knobs={**window, "attn_window_loop": True}),
        Setting(LOOP, "w = 8, r = 4, output only", num_frames=t, knobs={**window, "attn_window_stages": ["output"]}),
        Setting(LOOP, "w = 8, r = 4, output only, loop", num_frames=t, knobs={**window, "attn_window_stages": ["output"], "attn_window_loop": True}),
    ]
    return out


def held_out_image(index: int) -> torch.Tensor:
    """First frame of a held-out synthetic clip, (1, 3, 64, 64) in [-1, 1]."""
    return render_clip(HELD_OUT_SEED + index, num_frames=1)["frames"][:1]


def load_toy_pipeline(device: str) -> VideoPipeline:
    """toy_svd as shipped (16 steps, guidance 1 -> 2), without a progress bar. Calls change nothing on it."""
    return VideoPipeline.from_version("toy_svd", device=device, progress=False)


def run_setting(pipe: VideoPipeline, setting: Setting, seeds: int):
    """Metrics (one dict per seed) and the clip of the first seed, (T, 3, H, W) in [0, 1].

    Seed i samples held-out image i with the call's generator seeded with i. Each dict has
    motion_metrics' keys plus loop_closure and loop_seam_ratio and, for an "auto" window,
    window_mean / window_min / window_max: the window sizes used over the sampling steps.
    """
    pipe.settings(**setting.call_kwargs(0))  # a bad row fails before any sampling
    rows, first = [], None
    for seed in range(seeds):
        image = held_out_image(seed)
        out = pipe(image, **setting.call_kwargs(seed))
        frames = out.frames
        row = motion_metrics(frames, cond_image=(image[0] + 1) / 2)
        row.update(loop_closure=loop_closure(frames), loop_seam_ratio=loop_seam_ratio(frames))
        if out.window_schedule:
            used = [step["window_size"] for step in out.window_schedule]
            row.update(window_mean=statistics.fmean(used), window_min=min(used), window_max=max(used))
        rows.append(row)
        first = frames if first is None else first
    return rows, first


def observations(results) -> List[str]:
    """One line per knob group: how displacement, frame difference and frame-0 PSNR move along it."""
    def mean(rows, metric):
        return statistics.fmean(r[metric] for r in rows)

    def trend(values):
        rho = spearman(list(range(len(values))), values)
        word = "rises" if rho >= 0.9 else "falls" if rho <= -0.9 else "mostly rises" if rho > 0.3 else "mostly falls" if rho < -0.3 else "shows no clear trend"
        return f"{word} (Spearman {rho:+.2f}; {values[0]:.3f} -> {values[-1]:.3f})"

    out = []
    for group in ("motion_bucket_id", "temporal_attn_scale", "temporal_attn_k_scale"):
        rows = [r for s, r in results if s.group == group]
        out.append(f"- Along {group}: displacement {trend([mean(r, 'displacement_px') for r in rows])}; "
                   f"frame difference {trend([mean(r, 'frame_diff') for r in rows])}; "
                   f"frame-0 PSNR {trend([mean(r, 'psnr_frame0') for r in rows])}.")
    by_label = {s.label: r for s, r in results}
    for t in (2 * TRAINED_FRAMES, 3 * TRAINED_FRAMES):
        plain, interp = by_label[f"{t} frames, positions 0..{t - 1}"], by_label[f"{t} frames, E = {TRAINED_FRAMES}"]
        out.append(f"- {t} frames: position_embedding_frames = {TRAINED_FRAMES} changes displacement "
                   f"{mean(plain, 'displacement_px'):.3f} -> {mean(interp, 'displacement_px'):.3f} and smoothness "
                   f"{mean(plain, 'smoothness'):.4f} -> {mean(interp, 'smoothness'):.4f}.")
    t = 3 * TRAINED_FRAMES
    full, win, shuf = (by_label[f"{t} frames, {x}"] for x in ("full attention", "w = 8, r = 4", "w = 8, r = 4, shuffled noise"))
    out.append(f"- {t} frames, windows (w = 8, r = 4) vs full attention: displacement {mean(full, 'displacement_px'):.3f} -> "
               f"{mean(win, 'displacement_px'):.3f} ({mean(shuf, 'displacement_px'):.3f} with shuffled noise), frame "
               f"difference {mean(full, 'frame_diff'):.3f} -> {mean(win, 'frame_diff'):.3f} ({mean(shuf, 'frame_diff'):.3f}).")
    out.append("- temporal_attn_k_scale = k gives exactly the numbers of temporal_attn_scale = k^2 "
               "(k = 0.5 and s = 0.25 rows), as the equations in docs/PATCHES.md say they must.")
    return out + issue6_observations(results)


def rows_of(results, group, label):
    return next(rows for s, rows in results if s.group == group and s.label == label)


def paired(base, other, metric, digits=3) -> str:
    """`base -> other` means of one metric with the per-seed (paired: same image, same noise)
    difference, how many seeds move the same way, and the difference in units of base's seed-to-seed std."""
    b, o = [r[metric] for r in base], [r[metric] for r in other]
    d = [y - x for x, y in zip(b, o)]
    head = f"{statistics.fmean(b):.{digits}f} -> {statistics.fmean(o):.{digits}f}"
    if not any(d):
        return head + " (identical)"
    same = max(sum(x > 0 for x in d), sum(x < 0 for x in d))
    spread = statistics.pstdev(b)
    size = f", {abs(statistics.fmean(d)) / spread:.2f} seed std" if spread > 0 else ""
    return head + f" (Δ {statistics.fmean(d):+.{digits}f}, {same}/{len(d)} seeds that way{size})"


def shift(base, other, metric):
    """Mean paired difference other - base and whether every seed moves the same way."""
    d = [o[metric] - b[metric] for b, o in zip(base, other)]
    return statistics.fmean(d), all(x < 0 for x in d) or all(x > 0 for x in d)


def identity_checks(results):
    """Pairs of rows that must be identical by construction: different knobs that must sample the same."""
    t = 3 * TRAINED_FRAMES
    pairs = [
        (("temporal_attn_k_scale", "k = 0.5"), ("temporal_attn_scale", "s = 0.25"), "k = 0.5 vs s = 0.25"),
        ((RHO, f"{TRAINED_FRAMES} frames, rho = 0.0"), ("motion_bucket_id", "bucket 127"), "rho = 0 vs the default (8 frames)"),
        ((RHO, f"{t} frames, rho = 0.0"), ("windows at 3x length", f"{t} frames, full attention"), "rho = 0 vs the default (24 frames)"),
        ((LOOP, "w = 24 (= T), loop"), (LOOP, "full attention"), "loop with w = T vs full attention"),
        ((ADAPTIVE, "bucket 0, auto 4..24 (bucket), r = 2"), (ADAPTIVE, "bucket 0, full attention"), "auto window at bucket 0 (w = 24 = T) vs full attention"),
    ]
    out = []
    for a, b, what in pairs:
        ra, rb = rows_of(results, *a), rows_of(results, *b)
        same = all(x[m] == y[m] for x, y in zip(ra, rb) for m in METRICS)
        out.append((what, same))
    return out


def stage_checks(results):
    """Stage-limited rows that must differ from the same knob in every stage (else the stage limit did nothing)."""
    pairs = [
        ((CASCADE, "w = 8, r = 4, output only (cascade)"), (CASCADE, "w = 8, r = 4, all stages"), "windows in output only"),
        ((CASCADE, "w = 8, r = 4, input + middle only"), (CASCADE, "w = 8, r = 4, all stages"), "windows in input + middle only"),
        ((CASCADE, "s = 2, output only"), (CASCADE, "s = 2, all stages"), "s = 2 in output only"),
        ((ADAPTIVE, "bucket 127, auto 4..24 (latent), r = 2, output only"), (ADAPTIVE, "bucket 127, auto 4..24 (latent), r = 2"), "auto window in output only"),
    ]
    return [(what, rows_of(results, *a) != rows_of(results, *b)) for a, b, what in pairs]


def issue6_observations(results) -> List[str]:
    """Lines for the issue-6 groups: a measured summary per group, then paired differences (same
    image, same noise per seed) against the matching baseline rows, in units of the baseline's
    seed-to-seed std."""
    t = 3 * TRAINED_FRAMES

    def r(group, label):
        return rows_of(results, group, label)

    def mean(rows, metric):
        return statistics.fmean(x[metric] for x in rows)

    def size(base, other, metric):  # |paired mean difference| / seed std of base
        spread = statistics.pstdev([x[metric] for x in base])
        return abs(shift(base, other, metric)[0]) / spread if spread > 0 else 0.0

    def details(base, other, metrics=(("displacement_px", 3), ("frame_diff", 4), ("psnr_frame0", 2))):
        names = {"displacement_px": "displacement", "frame_diff": "frame diff", "smoothness": "smoothness",
                 "psnr_frame0": "PSNR f0", "loop_closure": "seam", "loop_seam_ratio": "seam / step"}
        return ", ".join(f"{names[m]} {paired(base, other, m, d)}" for m, d in metrics)

    out = []
    # stage cascade
    full = r(CASCADE, "full attention")
    labels = ("w = 8, r = 4, all stages", "w = 8, r = 4, output only (cascade)", "w = 8, r = 4, input + middle only",
              "s = 2, all stages", "s = 2, output only")
    uniform, cascade = r(CASCADE, labels[0]), r(CASCADE, labels[1])
    (du, _), (dc, _) = (shift(full, x, "frame_diff") for x in (uniform, cascade))
    (pu, _), (pc, _) = (shift(full, x, "psnr_frame0") for x in (uniform, cascade))
    largest = max(size(full, r(CASCADE, x), "displacement_px") for x in labels)
    kept = [dc / du if du else 1.0, pc / pu if pu else 1.0]
    how = ("much less than" if all(0 <= k < 0.5 for k in kept) else "less than" if all(0 <= k < 0.9 for k in kept)
           else "not clearly less than")
    motion = (f"No stage setting moves displacement by more than {largest:.2f} seed std, so on this model the stage choice "
              "shows in fidelity (frame-0 PSNR, frame difference), not as a measurable change in motion."
              if largest < 0.5 else f"The largest displacement change is {largest:.2f} seed std.")
    out.append(
        f"- Stage cascade at {t} frames: windows (w = 8, r = 4) only in the output stage change the clip {how} "
        f"windows in every stage: against full attention, frame diff {dc:+.4f} vs {du:+.4f} and frame-0 PSNR {pc:+.2f} vs "
        f"{pu:+.2f} dB (the cascade keeps {dc / du if du else 0:.0%} and {pc / pu if pu else 0:.0%} of the uniform windows' "
        f"change). {motion} Paired per seed against full attention:")
    out += [f"  - {label}: {details(full, r(CASCADE, label))}" for label in labels]

    # adaptive window
    windows = {scheme: [mean(r(ADAPTIVE, f"bucket {b}, auto 4..24 ({scheme}), r = 2"), "window_mean") for b in BUCKETS_3X]
               for scheme in ("bucket", "latent")}
    schemes = ("full attention", "fixed w = 8, r = 4", "auto 4..24 (bucket), r = 2", "auto 4..24 (latent), r = 2",
               "auto 4..24 (latent), r = 2, output only")
    spreads = {s: mean(r(ADAPTIVE, f"bucket {BUCKETS_3X[-1]}, {s}"), "displacement_px")
               - mean(r(ADAPTIVE, f"bucket {BUCKETS_3X[0]}, {s}"), "displacement_px") for s in schemes}
    buckets = "/".join(str(b) for b in BUCKETS_3X)
    out.append(
        f"- Adaptive window at {t} frames (buckets {buckets}; windows used {'/'.join(f'{w:.1f}' for w in windows['bucket'])} "
        f"from the bucket score, {'/'.join(f'{w:.1f}' for w in windows['latent'])} from the latent score, whose first step "
        f"is sized from the bucket). From bucket {BUCKETS_3X[0]} to {BUCKETS_3X[-1]} the latent score moves the window by "
        f"{windows['latent'][-1] - windows['latent'][0]:+.1f} frames, the bucket score by "
        f"{windows['bucket'][-1] - windows['bucket'][0]:+.1f}. Displacement rise from bucket "
        f"{BUCKETS_3X[0]} to {BUCKETS_3X[-1]} per scheme: " + ", ".join(f"{s} {v:+.3f}" for s, v in spreads.items())
        + ". Paired per seed against fixed w = 8 at the same bucket:")
    for b in BUCKETS_3X:
        fixed = r(ADAPTIVE, f"bucket {b}, fixed w = 8, r = 4")
        out += [f"  - bucket {b}, {s}: {details(fixed, r(ADAPTIVE, f'bucket {b}, {s}'))}" for s in schemes[:1] + schemes[2:]]

    # noise correlation
    for frames, rhos in ((TRAINED_FRAMES, RHOS), (t, RHOS[:3])):
        base = r(RHO, f"{frames} frames, rho = 0.0")
        top = r(RHO, f"{frames} frames, rho = {rhos[-1]}")
        (dd, d_all), (df, f_all), (ds, s_all), (dp, _) = (shift(base, top, m) for m in ("displacement_px", "frame_diff", "smoothness", "psnr_frame0"))
        less_motion = dd < 0 and df < 0 and d_all and f_all
        smoother = ds < 0 and s_all
        verdict = ("the paper's trade-off shows up: less motion and smoother clips, in every seed" if less_motion and smoother
                   else "only half of the paper's trade-off shows up: " + ("less motion but not smoother" if less_motion else "smoother but not less motion") if less_motion or smoother
                   else "the paper's trade-off does not show up (no drop in motion or in second-difference energy shared by every seed)")
        floor = mean(r("motion_bucket_id", "bucket 0") if frames == TRAINED_FRAMES else r(ADAPTIVE, "bucket 0, full attention"), "displacement_px")
        grain = (f" Displacement at rho = {rhos[-1]} ({mean(top, 'displacement_px'):.3f}) is below the bucket-0 floor at "
                 f"{frames} frames ({floor:.3f}): the shared noise component also makes the residual grain repeat from frame "
                 "to frame, so part of the drop is grain turning static rather than shapes moving less; frame diff falls by "
                 f"{-df / mean(base, 'frame_diff'):.0%}, displacement by {-dd / mean(base, 'displacement_px'):.0%}."
                 if mean(top, "displacement_px") < floor else "")
        cost = f"at a cost of {dp:+.2f} dB frame-0 PSNR" if dp < 0 else f"with frame-0 PSNR {dp:+.2f} dB"
        out.append(f"- noise_correlation at {frames} frames: at rho = {rhos[-1]} {verdict}, {cost}." + grain
                   + " Paired per seed against rho = 0:")
        out += [f"  - rho = {rho}: " + details(base, r(RHO, f"{frames} frames, rho = {rho}"),
                                               (("displacement_px", 3), ("frame_diff", 4), ("smoothness", 4), ("psnr_frame0", 2)))
                for rho in rhos[1:]]

    # loop
    fa, win, win_loop = r(LOOP, "full attention"), r(LOOP, "w = 8, r = 4"), r(LOOP, "w = 8, r = 4, loop")
    out_plain, out_loop = r(LOOP, "w = 8, r = 4, output only"), r(LOOP, "w = 8, r = 4, output only, loop")
    seam = lambda rows: mean(rows, "loop_seam_ratio")  # noqa: E731
    closes = shift(win, win_loop, "loop_seam_ratio")
    seams = [seam(x) for x in (fa, win, win_loop, out_plain, out_loop)]
    out.append(
        f"- Loop at {t} frames (seam = mean |x[T-1] - x[0]|; seam / step = 1 means the wrap looks like any other frame "
        f"transition): the seams of these rows span {min(seams):.2f}-{max(seams):.2f} steps. attn_window_loop "
        + ("lowers" if closes[0] < 0 else "raises") + f" the seam of windowed clips (w = 8, r = 4: {seam(win):.2f} -> "
        f"{seam(win_loop):.2f} steps, {'every seed' if closes[1] else 'not every seed'}, {size(win, win_loop, 'loop_seam_ratio'):.2f} seed std); "
        f"full attention, whose last frame already attends to the first, has {seam(fa):.2f}"
        + (" (the loop does not beat it)" if seam(win_loop) >= seam(fa) else " (the loop beats it)")
        + f"; with windows only in the output stage the loop moves it {seam(out_plain):.2f} -> {seam(out_loop):.2f}."
        + (" No setting brings the seam down to one ordinary step." if min(seams) > 1.2 else "") + " Paired per seed:")
    metrics = (("loop_closure", 3), ("loop_seam_ratio", 2), ("displacement_px", 3), ("psnr_frame0", 2))
    out += [f"  - {a_label} -> {b_label}: {details(a, b, metrics)}" for a_label, a, b_label, b in (
        ("w = 8, r = 4", win, "loop", win_loop), ("w = 8, r = 4, output only", out_plain, "loop", out_loop),
        ("full attention", fa, "w = 8, r = 4, loop", win_loop))]

    checks = identity_checks(results)
    failed = [what for what, same in checks if not same]
    out.append(f"- Checks: {sum(same for _, same in checks)} of {len(checks)} rows that must match by construction are identical "
               "in every metric and seed (" + "; ".join(what for what, _ in checks) + ")"
               + (f". NOT identical: {'; '.join(failed)}." if failed else "."))
    stages = stage_checks(results)
    inert = [what for what, differs in stages if not differs]
    out.append(f"- Checks: {sum(differs for _, differs in stages)} of {len(stages)} stage-limited rows differ from the same knob "
               "in every stage (" + "; ".join(what for what, _ in stages) + ")"
               + (f". IDENTICAL, the stage limit had no effect: {'; '.join(inert)}." if inert else "."))
    return out


def fmt(values, digits=3) -> str:
    mean = statistics.fmean(values)
    spread = statistics.pstdev(values) if len(values) > 1 else 0.0
    return f"{mean:.{digits}f} ± {spread:.{digits}f}" if abs(mean) < 100 else f"{mean:.1f} ± {spread:.1f}"


def window_cell(setting: Setting, rows) -> str:
    """The temporal attention window actually used: "full", the fixed size, or for an auto window the
    mean ± std over seeds of the per-run mean size (range over all steps)."""
    knobs = setting.motion_knobs
    if knobs.adaptive_window:
        lo, hi = min(r["window_min"] for r in rows), max(r["window_max"] for r in rows)
        return f"{fmt([r['window_mean'] for r in rows], 1)} ({lo}..{hi})"
    if knobs.attn_window_size is None or knobs.attn_window_size >= setting.num_frames:
        return "full"
    return str(knobs.attn_window_size)


def write_plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("motion_bucket_id", lambda s: s.motion_bucket_id), ("temporal_attn_scale", lambda s: s.knobs["temporal_attn_scale"]),
              ("temporal_attn_k_scale", lambda s: s.knobs["temporal_attn_k_scale"])]
    fig, grid = plt.subplots(2, 4, figsize=(17, 8.2))
    axes = grid[0]
    for ax, (group, x_of) in zip(axes, panels):
        chosen = [(s, rows) for s, rows in results if s.group == group]
        xs = [x_of(s) for s, _ in chosen]
        for metric, color in (("displacement_px", "C0"), ("frame_diff", "C1")):
            means = [statistics.fmean(r[metric] for r in rows) for _, rows in chosen]
            spread = [statistics.pstdev([r[metric] for r in rows]) for _, rows in chosen]
            scale = 1.0 if metric == "displacement_px" else 10.0
            ax.errorbar(xs, [m * scale for m in means], yerr=[e * scale for e in spread], marker="o", color=color, capsize=3,
                        label="displacement (px/frame)" if scale == 1 else "10 x mean |frame diff|")
        if group != "motion_bucket_id":
            ax.set_xscale("log", base=2)
        ax.set_xlabel(group)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    others = [(s, rows) for s, rows in results if s.group in ("longer videos", "windows at 3x length")]
    labels = [s.label for s, _ in others]
    ax = axes[3]
    y = np.arange(len(others))
    ax.barh(y, [statistics.fmean(r["displacement_px"] for r in rows) for _, rows in others], color="C0", alpha=0.8, label="displacement")
    ax.barh(y + 0.4, [10 * statistics.fmean(r["smoothness"] for r in rows) ** 0.5 for _, rows in others], height=0.4, color="C2", alpha=0.8, label="10 x sqrt(second-difference energy)")
    ax.set_yticks(y + 0.2, labels, fontsize=7)
    ax.legend(fontsize=7)
    ax.set_title("longer videos", fontsize=9)
    write_issue6_panels(results, grid[1])
    fig.suptitle("toy_svd: motion metrics per knob (mean ± std over seeds, held-out images)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def write_issue6_panels(results, axes):
    """Second plot row: noise_correlation, adaptive window, stage cascade, loop seam."""
    def stats(rows, metric, scale=1.0):
        values = [scale * r[metric] for r in rows]
        return statistics.fmean(values), statistics.pstdev(values)

    ax = axes[0]
    for frames, style in ((TRAINED_FRAMES, "-"), (3 * TRAINED_FRAMES, "--")):
        chosen = [(s, rows) for s, rows in results if s.group == RHO and s.num_frames == frames]
        xs = [s.knobs["noise_correlation"] for s, _ in chosen]
        for metric, color, scale, name in (("displacement_px", "C0", 1.0, "displacement"), ("frame_diff", "C1", 10.0, "10 x frame diff"),
                                           ("smoothness", "C2", 100.0, "100 x smoothness")):
            m = [stats(rows, metric, scale) for _, rows in chosen]
            ax.errorbar(xs, [a for a, _ in m], yerr=[b for _, b in m], marker="o", ls=style, color=color, capsize=3,
                        label=f"{name}, {frames} frames")
    ax.set_xlabel("noise_correlation rho")
    ax.legend(fontsize=6)
    ax.grid(alpha=0.3)

    ax = axes[1]
    for i, scheme in enumerate(("full attention", "fixed w = 8, r = 4", "auto 4..24 (bucket), r = 2", "auto 4..24 (latent), r = 2",
                                "auto 4..24 (latent), r = 2, output only")):
        m = [stats(rows_of(results, ADAPTIVE, f"bucket {b}, {scheme}"), "displacement_px") for b in BUCKETS_3X]
        ax.errorbar([b + 3 * (i - 2) for b in BUCKETS_3X], [a for a, _ in m], yerr=[e for _, e in m], marker="o", capsize=3, label=scheme)
    ax.set_xlabel("motion_bucket_id (24 frames)")
    ax.set_ylabel("displacement (px/frame)")
    ax.legend(fontsize=6)
    ax.grid(alpha=0.3)

    for ax, group, metrics, title in (
        (axes[2], CASCADE, (("displacement_px", 1.0, "displacement"), ("frame_diff", 10.0, "10 x frame diff")), "stage cascade, 24 frames"),
        (axes[3], LOOP, (("loop_seam_ratio", 1.0, "seam / step"), ("loop_closure", 10.0, "10 x seam |x[T-1] - x[0]|")), "loop, 24 frames"),
    ):
        chosen = [(s, rows) for s, rows in results if s.group == group]
        y = np.arange(len(chosen))
        for j, (metric, scale, name) in enumerate(metrics):
            m = [stats(rows, metric, scale) for _, rows in chosen]
            ax.barh(y + 0.4 * j, [a for a, _ in m], xerr=[e for _, e in m], height=0.4, color=f"C{j}", alpha=0.8, label=name)
        ax.set_yticks(y + 0.2, [s.label for s, _ in chosen], fontsize=7)
        ax.legend(fontsize=7)
        ax.set_title(title, fontsize=9)


def write_sheet(results, path, columns=8, label_width=250):
    from PIL import ImageDraw
    import textwrap

    rows = []
    for setting, clip in results:
        idx = np.linspace(0, clip.shape[0] - 1, columns).round().astype(int)
        frames = (clip[idx].permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)
        label = Image.new("RGB", (label_width, frames.shape[1]), "white")
        text = "\n".join(textwrap.wrap(f"{setting.group}: {setting.label}", 50))
        ImageDraw.Draw(label).multiline_text((4, 4), text, fill="black")
        rows.append(np.concatenate([np.asarray(label)] + list(frames), axis=1))
    Image.fromarray(np.concatenate(rows, axis=0)).save(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=os.path.join(REPO, "docs"))
    args = parser.parse_args()
    start = time.time()
    pipe = load_toy_pipeline(args.device)
    results, clips, sampled = [], [], {}
    for setting in tqdm(settings(), desc="settings"):
        # a row repeating another group's sampling (same frames, bucket, knobs as written, noise) reuses it
        key = (setting.num_frames, setting.motion_bucket_id, repr(sorted(setting.knobs.items())), setting.shuffle_windowed_noise)
        if key not in sampled:
            sampled[key] = run_setting(pipe, setting, args.seeds)
        rows, clip = sampled[key]
        results.append((setting, rows))
        clips.append((setting, clip))
    os.makedirs(args.out, exist_ok=True)
    write_plot(results, os.path.join(args.out, "results.png"))
    write_sheet(clips, os.path.join(args.out, "results_sheet.png"))

    buckets = [(s.motion_bucket_id, statistics.fmean(r["displacement_px"] for r in rows)) for s, rows in results if s.group == "motion_bucket_id"]
    rho = spearman([b for b, _ in buckets], [m for _, m in buckets])
    lines = [
        "# Results: the motion knobs on the embedded toy model",
        "",
        f"Generated by `python scripts/eval/toy_results.py --seeds {args.seeds}` on {datetime.date.today()} "
        f"({args.device}, {torch.get_num_threads()} threads, {time.time() - start:.0f} s). Model: `toy_svd` "
        "(docs/TOY_MODEL.md), 16 Euler steps, linear guidance 1 -> 2, fps_id 6, cond_aug 0.02, motion_bucket_id 127 "
        f"unless stated. Each row: mean ± std over {args.seeds} seeds, each seed with its own held-out image "
        "(first frames of synthetic clips the model never saw). Metrics (sgm/eval/metrics.py, frames in [0, 1]): "
        "**displacement** = block-matching motion estimate in px/frame, **frame diff** = mean |x[t+1] - x[t]|, "
        "**smoothness** = second-difference energy (lower is smoother), **PSNR f0** = frame 0 vs the conditioning image (dB), "
        "**seam** = loop closure mean |x[T-1] - x[0]|, **seam / step** = seam over the mean frame difference (about 1: the "
        "wrap from the last frame to the first looks like an ordinary step), **window used** = temporal attention window in "
        "frames (full: every frame; auto: mean ± std over seeds of the mean size over the 16 steps, range over all steps; "
        "a window >= T is full attention).",
        "",
        f"Spearman rank correlation between motion_bucket_id and mean displacement over the five buckets: **{rho:.2f}**.",
        "",
        "| group | setting | displacement (px/frame) | frame diff | smoothness | PSNR f0 (dB) | seam | seam / step | window used |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for setting, rows in results:
        cells = [fmt([r[m] for r in rows], DIGITS.get(m, 3)) for m in METRICS] + [window_cell(setting, rows)]
        lines.append(f"| {setting.group} | {setting.label} | " + " | ".join(cells) + " |")
    lines += ["", "## What happens", ""] + observations(results) + [
        "",
        "Caveat: the toy model leaves a grain of residual noise in every frame (frame 0 sits near 22-23 dB against "
        "the conditioning image), and that grain is a floor under both motion metrics (about 3.3 px/frame of "
        "'displacement' and 0.03 of frame difference even at bucket 0, where the shapes barely move). The attention "
        "knobs move the metrics by a few percent above that floor, so read their rows as directions, not magnitudes; "
        "noise_correlation is the exception, since it acts on the grain itself.",
    ]
    lines += ["", "![metrics per knob](results.png)", "", "Contact sheet (seed 0; one row per table row, 8 evenly spaced frames from the first to the last):", "", "![contact sheet](results_sheet.png)", ""]
    with open(os.path.join(args.out, "RESULTS.md"), "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
