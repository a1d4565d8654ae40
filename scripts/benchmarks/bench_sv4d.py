#!/usr/bin/env python
"""Benchmark the SV4D / SV4D 2.0 UNet with and without the motion knobs.

    python scripts/benchmarks/bench_sv4d.py [--config tests/fixtures/upstream_parity/tiny_sv4d2.yaml]
        [--latent 16] [--device cpu|cuda] [--threads 1] [--repeats 7] [--out docs]

Each row times one SpatialUNetModelWithTime forward over the guided batch of one chunk (2 x T x V
rows of LATENT x LATENT latents, the network only, random weights from the config with a fixed
seed), median of --repeats in milliseconds, the rows of one run interleaved so drift hits all
alike. The knobs of a row are applied outside the timed call (`motion_knobs_applied`) and the
model is left as it was. Rows: default (upstream's path), s = 2 (temporal_attn_scale, on the
attention over frames), s_v = 2 (view_attn_scale, on the attention over views), s = 2 and k = 0.7,
and windows of 2 frames with stride 1 over the T frames (when T > 2). Prints the table (ratio to
the default row) and writes bench_sv4d_<config stem>_<device>.csv to --out.
"""
import argparse
import csv
import os
import statistics
import time
from typing import Dict, List

import torch
from omegaconf import OmegaConf

from sgm.modules.motion import MotionKnobs
from sgm.util import instantiate_from_config

ROWS: Dict[str, Dict] = {
    "default": {},
    "s=2": {"temporal_attn_scale": 2.0},
    "s_v=2": {"view_attn_scale": 2.0},
    "s=2,k=0.7": {"temporal_attn_scale": 2.0, "temporal_attn_k_scale": 0.7},
    "w=2,r=1": {"attn_window_size": 2, "attn_window_stride": 1},
}


def build(config: str, device: torch.device):
    """(unet, T, V, context_dim, adm_in_channels) from a 4D config (random weights, seed 0)."""
    cfg = OmegaConf.load(config)
    params = cfg.model.params.network_config.params
    emb = {e.input_key: e for e in cfg.model.params.conditioner_config.params.emb_models}
    frames, views = int(emb["cond_motion"].params.n_cond_frames), int(emb["cond_view"].params.n_cond_frames)
    torch.manual_seed(0)
    unet = instantiate_from_config(cfg.model.params.network_config).eval().to(device)
    return unet, frames, views, int(params.context_dim), int(params.adm_in_channels)


def inputs(frames: int, views: int, latent: int, context_dim: int, adm: int, device: torch.device) -> Dict:
    g = torch.Generator().manual_seed(1)
    rows = 2 * frames * views
    return {
        "x": torch.randn((rows, 8, latent, latent), generator=g).to(device),
        "timesteps": torch.full((rows,), 0.5).to(device),
        "context": torch.randn((2, frames, context_dim), generator=g).to(device),
        "y": torch.randn((rows, adm), generator=g).to(device),
        "cond_view": torch.randn((2 * views, 4, latent, latent), generator=g).to(device),
        "num_video_frames": frames * views,
    }


def timed(unet, batch: Dict, knobs: Dict, device: torch.device) -> float:
    with torch.no_grad(), unet.motion_knobs_applied(MotionKnobs(**knobs)):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        unet(**batch)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - start) * 1000.0


def main(argv=None) -> List[Dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="tests/fixtures/upstream_parity/tiny_sv4d2.yaml")
    parser.add_argument("--latent", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", default="docs")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    unet, frames, views, context_dim, adm = build(args.config, device)
    batch = inputs(frames, views, args.latent, context_dim, adm, device)
    rows = {name: knobs for name, knobs in ROWS.items() if "attn_window_size" not in knobs or frames > 2}
    for knobs in rows.values():  # warm-up
        timed(unet, batch, knobs, device)
    times = {name: [] for name in rows}
    for _ in range(args.repeats):
        for name, knobs in rows.items():
            times[name].append(timed(unet, batch, knobs, device))
    base = statistics.median(times["default"])
    table = [{"row": name, "median_ms": round(statistics.median(t), 2), "min_ms": round(min(t), 2),
              "ratio": round(statistics.median(t) / base, 3)} for name, t in times.items()]
    stem = os.path.splitext(os.path.basename(args.config))[0]
    print(f"{stem}: T {frames} x V {views}, {args.latent}x{args.latent} latents, {2 * frames * views} rows, "
          f"{args.device}, {args.threads} thread(s), median of {args.repeats}")
    for line in table:
        print(f"  {line['row']:<11} {line['median_ms']:>10.1f} ms  x{line['ratio']:.3f}")
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, f"bench_sv4d_{stem}_{device.type}.csv")
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    print(f"wrote {path}")
    return table


if __name__ == "__main__":
    main()
