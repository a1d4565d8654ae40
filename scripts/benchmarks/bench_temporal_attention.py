#!/usr/bin/env python
"""Benchmark the temporal self-attention and a tiny VideoUNet forward, with and without motion knobs.

    python scripts/benchmarks/bench_temporal_attention.py [--device cpu|cuda] [--threads N] [--repeats 7] [--out docs]

Each row times exactly the call its name says (median of --repeats, milliseconds; the CSV adds the
minimum). A row is a Case: `setup()` puts the module in the row's state outside the timed region
(and restores it afterwards), `run()` is the timed call. The cases of one part and T run
round-robin, so drift hits all alike. On a CPU shared with other work, --threads 1 is steadier.
  1. attention: one CrossAttention with SVD's temporal width (320 = 5 heads of 64) over --positions
     sequences of T frames, T in {14, 25, 48, 96}: knob-free (no motion knobs: plain attention, as
     upstream), full (default MotionKnobs: the knob code path), windows w=16 with r=4 and r=8;
  2. unet: a VideoUNet forward (two clips of T frames, as the guided sampler's batch) built from the
     network_config of the shipped toy_svd config: knob-free (attn1.motion_knobs None on every
     temporal attention), default knobs, s=2, k=0.7, E=14 and the two windows.
A window of w >= T is full attention (the w16 rows at T = 14). Prints the table and writes
bench_temporal_attention_<device>.csv and .png to --out.
"""
import argparse
import csv
import os
import statistics
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, ContextManager, Dict, Iterator, List, Optional, Sequence

import torch
from omegaconf import OmegaConf

from sgm.configs import find_config
from sgm.modules.attention import CrossAttention
from sgm.modules.motion import MotionKnobs
from sgm.util import instantiate_from_config

FRAMES = (14, 25, 48, 96)
WIDTH, HEADS, DIM_HEAD = 320, 5, 64  # SVD's first temporal attention
WINDOWS = {"w16 r4": dict(attn_window_size=16, attn_window_stride=4), "w16 r8": dict(attn_window_size=16, attn_window_stride=8)}
ATTENTION_CASES = {"knob-free": None, "full": {}, **WINDOWS}  # None: no knobs at all
UNET_CASES = {
    "knob-free": None,
    "default": {},
    "s=2": dict(temporal_attn_scale=2.0),
    "k=0.7": dict(temporal_attn_k_scale=0.7),
    "E=14": dict(position_embedding_frames=14),
    **WINDOWS,
}
BASELINE = {"attention": "knob-free", "unet": "knob-free"}


@dataclass
class Case:
    """One benchmark row: `setup()` is a context manager for the row's state (not timed), `run()` the timed call."""

    name: str
    setup: Callable[[], ContextManager]
    run: Callable[[], object]


def sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def time_case(case: Case, device) -> float:
    """Milliseconds of one case.run(), inside case.setup()."""
    with case.setup():
        sync(device)
        start = time.perf_counter()
        case.run()
        sync(device)
        return (time.perf_counter() - start) * 1e3


def interleaved_times_ms(cases: Sequence[Case], repeats: int, device, warmup: int = 1) -> Dict[str, List[float]]:
    """`repeats` times of each case (after `warmup` untimed rounds), running the cases round-robin
    so machine drift hits all alike."""
    for _ in range(warmup):
        for case in cases:
            time_case(case, device)
    times = {case.name: [] for case in cases}
    for _ in range(repeats):
        for case in cases:
            times[case.name].append(time_case(case, device))
    return times


def interleaved_median_ms(cases: Sequence[Case], repeats: int, device, warmup: int = 1) -> Dict[str, float]:
    """Median time of each case over round-robin repeats (interleaved_times_ms)."""
    return {name: statistics.median(ts) for name, ts in interleaved_times_ms(cases, repeats, device, warmup).items()}


@contextmanager
def module_knobs(module: CrossAttention, knobs: Optional[MotionKnobs]) -> Iterator[None]:
    """`module` with `knobs` (None: plain attention) inside the block, its own knobs back afterwards."""
    saved = module.motion_knobs
    module.motion_knobs = knobs
    try:
        yield
    finally:
        module.motion_knobs = saved


def temporal_attentions(unet) -> List[CrossAttention]:
    """The temporal self-attentions of a VideoUNet: the CrossAttention modules that carry motion knobs."""
    return [m for m in unet.modules() if isinstance(m, CrossAttention) and m.motion_knobs is not None]


@contextmanager
def knob_free(unet) -> Iterator[None]:
    """Every temporal self-attention of `unet` without motion knobs (upstream's plain attention)
    inside the block; each module's own knobs are put back afterwards, also on error."""
    saved = [(m, m.motion_knobs) for m in temporal_attentions(unet)]
    for module, _ in saved:
        module.motion_knobs = None
    try:
        yield
    finally:
        for module, knobs in saved:
            module.motion_knobs = knobs


def attention_cases(num_frames: int, positions: int = 512, device="cpu", dtype=torch.float32, seed: int = 0) -> List[Case]:
    """ATTENTION_CASES on one CrossAttention (width 320, 5 heads of 64) over `positions` clips of T frames."""
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        attn = CrossAttention(WIDTH, heads=HEADS, dim_head=DIM_HEAD, motion_knobs=MotionKnobs())
    attn = attn.to(device, dtype).eval()
    x = torch.randn(positions, num_frames, WIDTH, generator=g).to(device, dtype)

    def run():
        with torch.no_grad():
            return attn(x)

    return [Case(name, lambda knobs=knobs: module_knobs(attn, None if knobs is None else MotionKnobs(**knobs)), run)
            for name, knobs in ATTENTION_CASES.items()]


def toy_network_config():
    """network_config of the shipped toy_svd config (target and params)."""
    return OmegaConf.load(find_config("sampling", "toy_svd.yaml")).model.params.network_config


def toy_unet(device="cpu", dtype=torch.float32, seed: int = 0):
    """A VideoUNet built from toy_network_config() (random weights, eval mode)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = instantiate_from_config(toy_network_config())
    return unet.to(device, dtype).eval()


def unet_inputs(params, num_frames: int, latent: int = 16, device="cpu", dtype=torch.float32, seed: int = 0) -> dict:
    """Forward arguments of a VideoUNet with network `params` for two clips of T frames (the guided
    sampler's batch) at latent side `latent`."""
    g = torch.Generator().manual_seed(seed)
    n = 2 * num_frames
    inputs = dict(
        x=torch.randn(n, params.in_channels, latent, latent, generator=g).to(device, dtype),
        timesteps=torch.full((n,), 0.5, device=device, dtype=dtype),
        context=torch.randn(n, 1, params.context_dim, generator=g).to(device, dtype),
        num_video_frames=num_frames,
        image_only_indicator=torch.zeros(2, num_frames, device=device, dtype=dtype),
    )
    if params.get("num_classes") is not None:
        inputs["y"] = torch.randn(n, params.adm_in_channels, generator=g).to(device, dtype)
    return inputs


def unet_cases(unet, num_frames: int, latent: int = 16, device="cpu", dtype=torch.float32, params=None) -> List[Case]:
    """UNET_CASES on `unet` (built from network `params`, default the toy's): knob-free through
    knob_free(), the others through motion_knobs_applied()."""
    inputs = unet_inputs(toy_network_config().params if params is None else params, num_frames, latent, device, dtype)

    def run():
        with torch.no_grad():
            return unet(**inputs)

    def setup(knobs):
        return knob_free(unet) if knobs is None else unet.motion_knobs_applied(MotionKnobs(**knobs))

    return [Case(name, lambda knobs=knobs: setup(knobs), run) for name, knobs in UNET_CASES.items()]


def plot(rows, path, title) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, part, name in ((axes[0], "attention", "temporal self-attention alone (width 320, 5 heads)"),
                           (axes[1], "unet", "toy_svd VideoUNet forward (2 clips of T frames)")):
        for i, case in enumerate(dict.fromkeys(r["case"] for r in rows if r["part"] == part)):
            mine = [r for r in rows if r["part"] == part and r["case"] == case]
            ax.plot([r["T"] for r in mine], [r["median_ms"] for r in mine], marker="o", color=f"C{i}", label=case)
            ax.plot([r["T"] for r in mine], [r["min_ms"] for r in mine], ls="--", lw=0.8, color=f"C{i}")
        ax.set_xlabel("frames T")
        ax.set_ylabel("time (ms): median solid, minimum dashed")
        ax.set_title(name, fontsize=10)
        ax.set_xticks(sorted({r["T"] for r in rows}))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def table(rows) -> List[str]:
    """The rows as text: one block per part, ms and % against the part's knob-free row per T."""
    lines = []
    for part, base in BASELINE.items():
        cases = list(dict.fromkeys(r["case"] for r in rows if r["part"] == part))
        lines += ["", f"{part} (median ms; % vs {base})", "T".rjust(4) + "".join(c.rjust(19) for c in cases)]
        for t in sorted({r["T"] for r in rows if r["part"] == part}):
            cells = [next(r for r in rows if r["part"] == part and r["T"] == t and r["case"] == c) for c in cases]
            lines.append(str(t).rjust(4) + "".join(f"{r['median_ms']:9.2f} ({r['vs_baseline_pct']:+6.1f}%)".rjust(19) for r in cells))
    return lines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default=None, help="float32 (CPU default) or float16 (CUDA default)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--frames", default=",".join(map(str, FRAMES)), help="comma-separated T values")
    parser.add_argument("--positions", type=int, default=512, help="sequences (spatial positions) in the attention-alone part")
    parser.add_argument("--latent", type=int, default=16, help="latent side of the UNet input (toy_svd: 16)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--out", default="docs")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype or ("float16" if device.type == "cuda" else "float32"))
    frames = [int(t) for t in args.frames.split(",")]
    unet = toy_unet(device, dtype)
    rows = []
    for part in ("attention", "unet"):
        for t in frames:
            cases = attention_cases(t, args.positions, device, dtype) if part == "attention" else unet_cases(unet, t, args.latent, device, dtype)
            times = interleaved_times_ms(cases, args.repeats, device)
            base = statistics.median(times[BASELINE[part]])
            rows += [dict(part=part, T=t, case=name, median_ms=round(statistics.median(ts), 3), min_ms=round(min(ts), 3),
                          vs_baseline_pct=round(100 * (statistics.median(ts) / base - 1), 1)) for name, ts in times.items()]
            print(f"{part} T={t} done", flush=True)
    title = f"{device.type}, {str(dtype).replace('torch.', '')}, {torch.get_num_threads()} threads, median of {args.repeats}"
    print("\n" + title + "\n".join(table(rows)))
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, f"bench_temporal_attention_{device.type}")
    with open(stem + ".csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["part", "T", "case", "median_ms", "min_ms", "vs_baseline_pct", "device", "dtype", "threads", "repeats"])
        writer.writeheader()
        extra = dict(device=device.type, dtype=str(dtype).replace("torch.", ""), threads=torch.get_num_threads(), repeats=args.repeats)
        writer.writerows({**r, **extra} for r in rows)
    plot(rows, stem + ".png", title)
    print(f"\nwrote {stem}.csv and {stem}.png")


if __name__ == "__main__":
    main()
