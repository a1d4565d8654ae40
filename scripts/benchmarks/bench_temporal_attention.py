#!/usr/bin/env python
"""Benchmark windowed temporal attention against full attention, alone and inside a tiny VideoUNet.

    python scripts/benchmarks/bench_temporal_attention.py [--device cpu|cuda] [--threads 1] [--repeats 7] [--out docs]

Each row times exactly the call its name says (median of --repeats, milliseconds; the CSV adds the
minimum and the time per frame). A row is a Case: `setup()` puts the module in the row's state
outside the timed region (and restores it afterwards), `run()` is the timed call. The cases of one
part and T run round-robin, so drift hits all alike. On a CPU shared with other work, --threads 1
is steadier (the default).
  1. attention: the attention computation of SVD's first temporal layers alone (no projections):
     q, k, v of 5 heads of 64 channels over --positions clips of T frames, T in {25, 48, 96, 192,
     384, 512}. --positions 256 is 1/36 of the 9216 spatial positions of a 72x128 latent frame (the
     whole frame would need 6 GiB per tensor at T = 512). Rows: knob-free (multihead_attention,
     upstream's path), full (temporal_self_attention with the default knobs), windows w=16 with
     r=4 and r=8 (temporal_self_attention, which calls windowed_attention);
  2. unet: a VideoUNet forward (two clips of T frames, as the guided sampler's batch, 8x8 latents
     by default) built from the network_config of the shipped toy_svd config, T in {48, 96, 192}:
     knob-free (attn1.motion_knobs None on every temporal attention), full (default knobs) and
     the two windows.
Prints the table (ratio to the full row) and writes bench_temporal_attention_<device>.csv and
.png (time per frame against T, log-log) to --out.
"""
import argparse
import csv
import os
import statistics
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Callable, ContextManager, Dict, Iterator, List, Sequence

import torch
from omegaconf import OmegaConf

from sgm.configs import find_config
from sgm.modules import attention
from sgm.modules.attention import CrossAttention
from sgm.modules.motion import MotionKnobs
from sgm.util import instantiate_from_config

ATTENTION_FRAMES = (25, 48, 96, 192, 384, 512)
UNET_FRAMES = (48, 96, 192)
WIDTH, HEADS = 320, 5  # SVD's first temporal attention: 5 heads of 64 channels
WINDOWS = {"w16 r4": dict(attn_window_size=16, attn_window_stride=4), "w16 r8": dict(attn_window_size=16, attn_window_stride=8)}
ATTENTION_CASES = {"knob-free": None, "full": {}, **WINDOWS}  # None: no knobs at all
UNET_CASES = {"knob-free": None, "full": {}, **WINDOWS}
BASELINE = "full"


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


def attention_cases(num_frames: int, positions: int = 256, device="cpu", dtype=torch.float32, seed: int = 0) -> List[Case]:
    """ATTENTION_CASES on q, k, v (positions, T, 320) of 5 heads of 64 channels: the knob-free row
    calls multihead_attention, the others temporal_self_attention with their knobs."""
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(positions, num_frames, WIDTH, generator=g).to(device, dtype) for _ in range(3))

    def run(knobs):
        with torch.no_grad():
            if knobs is None:
                return attention.multihead_attention(q, k, v, HEADS)
            return attention.temporal_self_attention(q, k, v, HEADS, knobs)

    return [Case(name, nullcontext, lambda knobs=(None if spec is None else MotionKnobs(**spec)): run(knobs))
            for name, spec in ATTENTION_CASES.items()]


def toy_network_config():
    """network_config of the shipped toy_svd config (target and params)."""
    return OmegaConf.load(find_config("sampling", "toy_svd.yaml")).model.params.network_config


def toy_unet(device="cpu", dtype=torch.float32, seed: int = 0):
    """A VideoUNet built from toy_network_config() (random weights, eval mode)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = instantiate_from_config(toy_network_config())
    return unet.to(device, dtype).eval()


def unet_inputs(params, num_frames: int, latent: int = 8, device="cpu", dtype=torch.float32, seed: int = 0) -> dict:
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


def unet_cases(unet, num_frames: int, latent: int = 8, device="cpu", dtype=torch.float32, params=None) -> List[Case]:
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
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    fig = Figure(figsize=(11, 4.2))
    for index, (part, name) in enumerate((("attention", "attention alone (5 heads of 64, per clip position)"),
                                          ("unet", "toy_svd VideoUNet forward (2 clips, 8x8 latents)"))):
        ax = fig.add_subplot(1, 2, index + 1)
        for i, case in enumerate(dict.fromkeys(r["case"] for r in rows if r["part"] == part)):
            mine = [r for r in rows if r["part"] == part and r["case"] == case]
            ax.plot([r["T"] for r in mine], [r["per_frame_ms"] for r in mine], marker="o", color=f"C{i}", label=case)
        ax.set_xscale("log")
        ax.set_yscale("log")
        frames = sorted({r["T"] for r in rows if r["part"] == part})
        ax.set_xticks(frames, [str(t) for t in frames])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_major_formatter(ScalarFormatter())
        ax.yaxis.set_minor_formatter(ScalarFormatter())
        ax.set_xlabel("frames T")
        ax.set_ylabel("median time per frame (ms)")
        ax.set_title(name, fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def table(rows) -> List[str]:
    """The rows as text: one block per part, median ms and the ratio to the full row per T."""
    lines = []
    for part in ("attention", "unet"):
        cases = list(dict.fromkeys(r["case"] for r in rows if r["part"] == part))
        lines += ["", f"{part} (median ms, x {BASELINE}; ms per frame)", "T".rjust(4) + "".join(c.rjust(24) for c in cases)]
        for t in sorted({r["T"] for r in rows if r["part"] == part}):
            cells = [next(r for r in rows if r["part"] == part and r["T"] == t and r["case"] == c) for c in cases]
            lines.append(str(t).rjust(4) + "".join(f"{r['median_ms']:9.2f} ({r['vs_full']:.2f}x; {r['per_frame_ms']:.3f})".rjust(24)
                                                   for r in cells))
    return lines


def measure(part: str, t: int, cases: Sequence[Case], repeats: int, device) -> List[dict]:
    times = interleaved_times_ms(cases, repeats, device)
    base = statistics.median(times[BASELINE])
    return [dict(part=part, T=t, case=name, median_ms=round(statistics.median(ts), 3), min_ms=round(min(ts), 3),
                 per_frame_ms=round(statistics.median(ts) / t, 4), vs_full=round(statistics.median(ts) / base, 3))
            for name, ts in times.items()]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default=None, help="float32 (CPU default) or float16 (CUDA default)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--frames", default=",".join(map(str, ATTENTION_FRAMES)), help="T values of the attention part")
    parser.add_argument("--unet_frames", default=",".join(map(str, UNET_FRAMES)), help="T values of the UNet part")
    parser.add_argument("--positions", type=int, default=256, help="clip positions in the attention part (256 = 1/36 of 72x128)")
    parser.add_argument("--latent", type=int, default=8, help="latent side of the UNet input")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--out", default="docs")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype or ("float16" if device.type == "cuda" else "float32"))
    rows = []
    for t in (int(t) for t in args.frames.split(",")):
        rows += measure("attention", t, attention_cases(t, args.positions, device, dtype), args.repeats, device)
        print(f"attention T={t} done", flush=True)
    unet = toy_unet(device, dtype)
    for t in (int(t) for t in args.unet_frames.split(",")):
        rows += measure("unet", t, unet_cases(unet, t, args.latent, device, dtype), args.repeats, device)
        print(f"unet T={t} done", flush=True)
    title = (f"{device.type}, {str(dtype).replace('torch.', '')}, {torch.get_num_threads()} threads, median of {args.repeats}; "
             f"attention over {args.positions} positions, UNet at {args.latent}x{args.latent} latents")
    print("\n" + title + "\n".join(table(rows)))
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, f"bench_temporal_attention_{device.type}")
    extra = dict(device=device.type, dtype=str(dtype).replace("torch.", ""), threads=torch.get_num_threads(), repeats=args.repeats,
                 positions=args.positions, latent=args.latent)
    with open(stem + ".csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[*rows[0], *extra])
        writer.writeheader()
        writer.writerows({**r, **extra} for r in rows)
    plot(rows, stem + ".png", title)
    print(f"\nwrote {stem}.csv and {stem}.png")


if __name__ == "__main__":
    main()
