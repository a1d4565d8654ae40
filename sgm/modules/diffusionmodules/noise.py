"""Initial-noise schedules for videos (noise is (T, C, h, w), one row per frame)."""
import math
from typing import Optional

import torch


def correlate_noise(noise: torch.Tensor, rho: float, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Temporally correlated noise: frame t becomes sqrt(rho) * shared + sqrt(1 - rho) * noise[t].

    `shared` (1, C, h, w) is drawn standard normal after `noise` was (from `generator`, else torch's
    global RNG), so unit variance is kept and two frames correlate by rho. rho = 0 returns `noise`
    itself and draws nothing. 0 <= rho < 1.
    """
    if not 0 <= rho < 1:
        raise ValueError(f"noise correlation must be in [0, 1), got {rho!r}")
    if rho == 0:
        return noise
    shared = torch.randn((1, *noise.shape[1:]), generator=generator, dtype=noise.dtype, device=noise.device if generator is None else generator.device)
    return math.sqrt(rho) * shared.to(noise.device) + math.sqrt(1 - rho) * noise


def shuffle_windowed_noise(noise: torch.Tensor, window_size: int, stride: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """FreeNoise rescheduling: later frames reuse shuffled noise of earlier frames.

    Frames [0, w) keep their noise; for i = w, w + r, ...: frames [i, i + r) take a random
    permutation (from `generator`, else torch's global RNG) of frames [i - w, i - w + r) as they
    stand after the earlier steps; the last group is cut at T. Returns a new tensor.
    """
    if window_size < 1 or stride < 1 or stride > window_size:
        raise ValueError(f"need 1 <= stride <= window_size, got window_size={window_size}, stride={stride}")
    out = noise.clone()
    num_frames = out.shape[0]
    for start in range(window_size, num_frames, stride):
        count = min(stride, num_frames - start)
        source = out[start - window_size : start - window_size + stride]
        perm = torch.randperm(stride, generator=generator, device="cpu")[:count]
        out[start : start + count] = source[perm.to(out.device)]
    return out
