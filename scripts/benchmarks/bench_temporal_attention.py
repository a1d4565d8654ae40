"""Benchmark of the temporal self-attention and of a tiny-UNet forward, with and without motion knobs.

Times (median of repeats, milliseconds; the cases of one T run round-robin so drift hits all alike):
  1. temporal self-attention alone (one CrossAttention with motion knobs, SVD's width 320 / 5 heads)
     at T in {14, 25, 48, 96}: full vs windowed (w=16, r=4 and r=8);
  2. a tiny VideoUNet forward (tests/fixtures/upstream_parity/tiny_svd.yaml): the knob-free code path
     (attn1 without knobs), the default knobs, s, k and E enabled, and windows, at the same T.
Prints a table and writes a PNG plot (and the table as CSV) to --out.

    python scripts/benchmarks/bench_temporal_attention.py [--device cpu|cuda] [--repeats 7] [--out outputs/benchmarks]
"""
import argparse
import csv
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf
from tqdm import tqdm

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from sgm.modules.attention import CrossAttention  # noqa: E402
from sgm.modules.motion import MotionKnobs  # noqa: E402
from sgm.util import instantiate_from_config  # noqa: E402

FRAMES = (14, 25, 48, 96)
WINDOWS = {"full": {}, "w16 r4": dict(attn_window_size=16, attn_window_stride=4), "w16 r8": dict(attn_window_size=16, attn_window_stride=8)}
UNET_CASES = {
    "knob-free": None,
    "default": {},
    "s=2": dict(temporal_attn_scale=2.0),
    "k=0.7": dict(temporal_attn_k_scale=0.7),
    "E=14": dict(position_embedding_frames=14),
    **{k: v for k, v in WINDOWS.items() if k != "full"},
}


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def interleaved_median_ms(fns, repeats, device, warmup=1):
    """Median time of each function, running them round-robin so machine drift hits all alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            sync(device)
            start = time.perf_counter()
            fn()
            sync(device)
            times[name].append((time.perf_counter() - start) * 1e3)
    return {name: statistics.median(ts) for name, ts in times.items()}


@torch.no_grad()
def bench_attention(t, args, dtype):
    """One temporal self-attention (width 320, 5 heads) over `positions` sequences of T frames, per window case."""
    attn = CrossAttention(320, heads=5, dim_head=64, motion_knobs=MotionKnobs()).to(args.device, dtype).eval()
    x = torch.randn(args.positions, t, 320, device=args.device, dtype=dtype)

    def run(knobs):
        def call():
            attn.motion_knobs = MotionKnobs(**knobs)
            attn(x)

        return call

    return interleaved_median_ms({case: run(knobs) for case, knobs in WINDOWS.items()}, args.repeats, args.device)


def tiny_unet(args, dtype):
    cfg = OmegaConf.load(REPO / "tests/fixtures/upstream_parity/tiny_svd.yaml").model.params.network_config
    return instantiate_from_config(cfg).to(args.device, dtype).eval()


@torch.no_grad()
def bench_unet(unet, t, args, dtype):
    """Tiny-UNet forward (batch 2 clips of T frames) per knob case."""
    temporal = [m for m in unet.modules() if isinstance(m, CrossAttention) and m.motion_knobs is not None]
    n = 2 * t
    g = torch.Generator().manual_seed(0)
    inputs = dict(
        x=torch.randn(n, 8, args.latent, args.latent, generator=g).to(args.device, dtype),
        timesteps=torch.full((n,), 0.5, device=args.device, dtype=dtype),
        context=torch.randn(n, 1, 32, generator=g).to(args.device, dtype),
        y=torch.randn(n, 48, generator=g).to(args.device, dtype),
        num_video_frames=t,
        image_only_indicator=torch.zeros(2, t, device=args.device, dtype=dtype),
    )

    def run(knobs):
        def call():
            unet.set_motion_knobs(**MotionKnobs(**(knobs or {})).as_dict())
            if knobs is None:  # bypass the knob code entirely: plain attention as in upstream
                for m in temporal:
                    m.motion_knobs = None
            unet(**inputs)

        return call

    try:
        return interleaved_median_ms({case: run(knobs) for case, knobs in UNET_CASES.items()}, args.repeats, args.device)
    finally:
        unet.set_motion_knobs(**MotionKnobs().as_dict())  # also restores the bypassed modules


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, part, title in ((axes[0], "attention", "temporal self-attention alone"), (axes[1], "unet", "tiny VideoUNet forward")):
        cases = list(dict.fromkeys(r["case"] for r in rows if r["part"] == part))
        for case in cases:
            pts = [(r["T"], r["ms"]) for r in rows if r["part"] == part and r["case"] == case]
            ax.plot(*zip(*pts), marker="o", label=case)
        ax.set_xlabel("frames T")
        ax.set_ylabel("median time (ms)")
        ax.set_title(title)
        ax.set_xticks(FRAMES)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default=None, help="float32 (CPU default) or float16 (CUDA default)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--positions", type=int, default=512, help="spatial positions in the attention-alone case (batch of sequences)")
    parser.add_argument("--latent", type=int, default=16, help="latent height and width of the tiny UNet input")
    parser.add_argument("--out", default="outputs/benchmarks")
    args = parser.parse_args()
    dtype = getattr(torch, args.dtype or ("float16" if args.device == "cuda" else "float32"))
    torch.manual_seed(0)
    os.makedirs(args.out, exist_ok=True)

    unet = tiny_unet(args, dtype)
    rows = []
    for part, t in tqdm([(p, t) for p in ("attention", "unet") for t in FRAMES], desc="benchmark", unit="T"):
        timings = bench_attention(t, args, dtype) if part == "attention" else bench_unet(unet, t, args, dtype)
        rows += [dict(part=part, T=t, case=case, ms=ms) for case, ms in timings.items()]

    print(f"\ndevice {args.device}, {dtype}, threads {torch.get_num_threads()}, median of {args.repeats}")
    for part in ("attention", "unet"):
        cases = list(dict.fromkeys(r["case"] for r in rows if r["part"] == part))
        base = "full" if part == "attention" else "knob-free"
        print(f"\n{part} (ms; % vs {base})")
        print("T".rjust(4) + "".join(c.rjust(18) for c in cases))
        for t in FRAMES:
            ref = next(r["ms"] for r in rows if r["part"] == part and r["T"] == t and r["case"] == base)
            cells = []
            for c in cases:
                ms = next(r["ms"] for r in rows if r["part"] == part and r["T"] == t and r["case"] == c)
                cells.append(f"{ms:9.2f} ({100 * (ms / ref - 1):+5.1f}%)")
            print(str(t).rjust(4) + "".join(cell.rjust(18) for cell in cells))
    with open(os.path.join(args.out, "bench_temporal_attention.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["part", "T", "case", "ms"])
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, os.path.join(args.out, "bench_temporal_attention.png"))
    print(f"\nwrote {args.out}/bench_temporal_attention.png and .csv")


if __name__ == "__main__":
    main()
