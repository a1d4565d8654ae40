"""Calibration of a motion metric against clips whose true motion is known.

The clips come from sgm.data.synthetic_motion.render_clip with held-out seeds (from 7,000,000 up,
far from the training and validation streams), which reports each clip's true mean per-pixel
displacement in px/frame. `moving_clips` picks clips whose true motion spans 0-4 px/frame evenly;
`static_clips` are exactly still. Grain is Gaussian noise of standard deviation `grain` (pixel
values in [0, 1]) added to every pixel of every frame independently, then clipped to [0, 1].
"""
from typing import Callable, Dict, List, Sequence

import numpy as np
import torch

from ..data.synthetic_motion import render_clip

HELD_OUT_SEED = 7_000_000
Metric = Callable[[torch.Tensor], float]


def moving_clips(count: int = 60, low: float = 0.05, high: float = 3.95, pool_factor: int = 8) -> List[Dict]:
    """`count` clips (dicts of render_clip, frames in [0, 1]) whose true motions lie closest to
    `count` evenly spaced targets in [low, high], drawn from a pool of pool_factor * count clips
    with speeds 1-9 px/frame, mostly panning."""
    pool = [render_clip(HELD_OUT_SEED + i, max_speed=float(1 + i % 9), pan_prob=0.9) for i in range(pool_factor * count)]
    motions = np.array([clip["motion"] for clip in pool])
    chosen: List[int] = []
    for target in np.linspace(low, high, count):
        chosen.append(next(int(i) for i in np.argsort(np.abs(motions - target)) if int(i) not in chosen))
    return [{**pool[i], "frames": (pool[i]["frames"] + 1.0) / 2.0} for i in sorted(chosen, key=lambda i: motions[i])]


def static_clips(count: int = 10) -> List[Dict]:
    """`count` clips with no motion at all (true motion 0), frames in [0, 1]."""
    clips = [render_clip(HELD_OUT_SEED + 100_000 + i, max_speed=0.0, pan_prob=0.0) for i in range(count)]
    return [{**clip, "frames": (clip["frames"] + 1.0) / 2.0} for clip in clips]


def with_grain(frames: torch.Tensor, grain: float, generator: torch.Generator) -> torch.Tensor:
    """`frames` (T, 3, H, W) in [0, 1] plus independent Gaussian noise of std `grain`, clipped."""
    if grain == 0.0:
        return frames
    return (frames + grain * torch.randn(frames.shape, generator=generator)).clamp(0.0, 1.0)


def calibrate(metric: Metric, moving: Sequence[Dict], still: Sequence[Dict], grain: float = 0.0, seed: int = 0,
              bins: Sequence[float] = (0.0, 1.0, 2.0, 3.0, 4.0)) -> Dict[str, object]:
    """The metric against the truth: on `moving` clips the mean absolute error, bias and largest
    error (px/frame) in all and per true-motion bin, on `still` clips the mean and largest reading."""
    generator = torch.Generator().manual_seed(seed)
    truth = np.array([clip["motion"] for clip in moving])
    read = np.array([metric(with_grain(clip["frames"], grain, generator)) for clip in moving])
    floor = np.array([metric(with_grain(clip["frames"], grain, generator)) for clip in still])
    error = read - truth
    per_bin = []
    for low, high in zip(bins[:-1], bins[1:]):
        inside = (truth >= low) & (truth < high)
        per_bin.append({"true_px": [low, high], "clips": int(inside.sum()),
                        "mae": float(np.abs(error[inside]).mean()) if inside.any() else float("nan"),
                        "bias": float(error[inside].mean()) if inside.any() else float("nan")})
    return {"grain": grain, "clips": len(moving), "static_clips": len(still), "mae": float(np.abs(error).mean()),
            "bias": float(error.mean()), "max_error": float(np.abs(error).max()), "static_mean": float(floor.mean()),
            "static_max": float(floor.max()), "bins": per_bin}
