"""Initial-noise schedules for videos (noise is (T, C, h, w), one row per frame)."""
import math
from typing import Optional, Tuple

import torch

from ..motion import SamplingKnobs


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
        perm = torch.randperm(stride, generator=generator, device="cpu" if generator is None else generator.device)[:count]
        out[start : start + count] = source[perm.to(out.device)]
    return out


def initial_noise(
    noise: torch.Tensor, knobs: SamplingKnobs, window: Optional[Tuple[int, int]], generator: Optional[torch.Generator] = None
) -> torch.Tensor:
    """The sampling loop's starting noise from i.i.d. `noise` (T, C, h, w): correlated by
    knobs.noise_correlation, then, with knobs.shuffle_windowed_noise, rescheduled with the
    network's window `window` = (w, r) (ValueError when there is none). At the defaults `noise` itself."""
    noise = correlate_noise(noise, knobs.noise_correlation, generator)
    if not knobs.shuffle_windowed_noise:
        return noise
    if window is None:
        raise ValueError("shuffle_windowed_noise needs attn_window_size")
    return shuffle_windowed_noise(noise, *window, generator=generator)
