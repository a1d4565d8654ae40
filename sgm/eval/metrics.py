"""Motion and fidelity metrics on generated clips.

Every function takes a clip ``video`` of shape (T, 3, H, W), float, values in [0, 1] (map model
output in [-1, 1] with ``(x + 1) / 2`` first), on any device, and returns python floats.
Computations run in float32 on the clip's device, except PSNR's MSE (float64).
"""
import math
from typing import Dict, Optional, Sequence

import torch
import torch.nn.functional as F

__all__ = [
    "mean_abs_frame_difference",
    "displacement",
    "psnr",
    "temporal_smoothness",
    "loop_closure",
    "loop_seam_ratio",
    "motion_metrics",
]

_LUMA = (0.299, 0.587, 0.114)


def _check_video(video: torch.Tensor) -> torch.Tensor:
    if not isinstance(video, torch.Tensor) or video.ndim != 4 or video.shape[1] != 3:
        shape = tuple(video.shape) if isinstance(video, torch.Tensor) else type(video).__name__
        raise ValueError(f"expected a clip of shape (T, 3, H, W), got {shape}")
    return video.float()


def mean_abs_frame_difference(video: torch.Tensor) -> float:
    """Mean of |x[t+1] - x[t]| over pixels, channels and consecutive pairs; 0.0 if T < 2."""
    video = _check_video(video)
    if video.shape[0] < 2:
        return 0.0
    return float((video[1:] - video[:-1]).abs().mean())


def _grayscale(video: torch.Tensor) -> torch.Tensor:
    weights = torch.tensor(_LUMA, dtype=video.dtype, device=video.device)
    return torch.einsum("tchw,c->thw", video, weights)


def displacement(video: torch.Tensor, block: int = 8, search: int = 6, min_std: float = 0.01) -> float:
    """Block-matching motion estimate in px/frame.

    For each consecutive pair (t, t+1), the grayscale frame t is cut into non-overlapping
    ``block`` x ``block`` blocks; each block is compared (sum of absolute differences) with frame
    t+1 at every integer shift in [-search, search]^2, all shifts at once via ``unfold``. The
    shift with the smallest SAD is the block's displacement; ties go to the zero shift, then to
    the smaller shift. Only blocks whose whole search window lies inside the frame are used
    (no padding, so no false matches at the borders), and blocks with almost no texture
    (grayscale std below ``min_std``) are ignored since any shift matches them.

    Returns the mean displacement magnitude sqrt(dx^2 + dy^2) over the kept blocks of all pairs,
    or 0.0 if no block is kept (T < 2, a frame too small for one block plus its search window,
    or a textureless clip). Integer-pixel: a translation by (dx, dy) px/frame of a textured image
    gives exactly sqrt(dx^2 + dy^2) for |dx|, |dy| <= search; sub-pixel motion is rounded per
    block, and shapes moving over flat areas only count through their textured blocks.
    """
    video = _check_video(video)
    t, _, h, w = video.shape
    if t < 2:
        return 0.0
    gray = _grayscale(video)
    prev, nxt = gray[:-1], gray[1:]  # (P, H, W)
    pairs = t - 1
    k = 2 * search + 1

    if block < 1 or search < 0:
        raise ValueError("need block >= 1 and search >= 0")
    # a grid of blocks whose search windows [y0 - search, y0 + block + search) fit in the frame,
    # centred in the frame
    ny, nx = (h - 2 * search) // block, (w - 2 * search) // block
    if ny < 1 or nx < 1:
        return 0.0
    y0 = search + ((h - 2 * search) % block) // 2
    x0 = search + ((w - 2 * search) % block) // 2
    y1, x1 = y0 + ny * block, x0 + nx * block

    offsets = torch.arange(-search, search + 1, device=video.device, dtype=torch.float32)
    dy = offsets[:, None].expand(k, k).reshape(-1)
    dx = offsets[None, :].expand(k, k).reshape(-1)
    mag = torch.sqrt(dx * dx + dy * dy)  # (k*k,), shift index = (dy + s) * k + (dx + s)

    ref = prev[:, y0:y1, x0:x1]  # (P, ny*block, nx*block): the blocks of frame t, side by side
    # the region of frame t+1 covering every block's search window
    region = nxt[:, y0 - search : y1 + search, x0 - search : x1 + search]

    # pairs in chunks of at most ~16M candidate pixels, to bound memory on large clips
    chunk = max(1, (1 << 24) // (k * k * ny * nx * block * block))
    block_mag = []
    for start in range(0, pairs, chunk):
        r = ref[start : start + chunk]
        n = r.shape[0]
        # every shift of the region, aligned with the blocks: (n, k*k, ny*block, nx*block)
        shifted = F.unfold(region[start : start + chunk, None], kernel_size=k).view(n, k * k, *r.shape[1:])
        diff = (shifted - r[:, None]).abs_()
        sad = diff.view(n, k * k, ny, block, nx, block).sum(dim=(3, 5)).flatten(2)  # (n, k*k, blocks)
        # ties (within a tiny relative tolerance of the best SAD) go to the smallest shift
        block_sum = r.abs().view(n, ny, block, nx, block).sum(dim=(2, 4)).flatten(1)  # (n, blocks)
        best = sad.min(dim=1, keepdim=True).values
        near_best = sad <= best + 1e-5 * (block_sum[:, None] + 1e-6)
        ranked = torch.where(near_best, mag[None, :, None], torch.full_like(sad, float("inf")))
        block_mag.append(mag[ranked.argmin(dim=1)])  # (n, blocks)
    block_mag = torch.cat(block_mag)

    blocks = ref.reshape(pairs, ny, block, nx, block).permute(0, 1, 3, 2, 4).reshape(pairs, ny * nx, -1)
    keep = blocks.std(dim=-1) >= min_std
    if not bool(keep.any()):
        return 0.0
    return float(block_mag[keep].mean())


def psnr(a: torch.Tensor, b: torch.Tensor, data_range: float = 1.0) -> float:
    """10 log10(data_range^2 / MSE) in dB between equal-shape images or clips; inf if identical."""
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    mse = float(((a.double() - b.double().to(a.device)) ** 2).mean())
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(data_range**2 / mse)


def temporal_smoothness(video: torch.Tensor) -> float:
    """Second-difference energy mean((x[t+1] - 2 x[t] + x[t-1])^2); lower is smoother.

    0 for a static clip or any per-pixel intensity change linear in time; 0.0 if T < 3.
    """
    video = _check_video(video)
    if video.shape[0] < 3:
        return 0.0
    second = video[2:] - 2.0 * video[1:-1] + video[:-2]
    return float((second * second).mean())


def loop_closure(video: torch.Tensor) -> float:
    """Loop seam: mean |x[T-1] - x[0]| over pixels and channels, the jump a looping player shows
    when it wraps from the last frame back to the first; 0.0 if T < 2."""
    video = _check_video(video)
    if video.shape[0] < 2:
        return 0.0
    return float((video[-1] - video[0]).abs().mean())


def loop_seam_ratio(video: torch.Tensor) -> float:
    """loop_closure / mean_abs_frame_difference: the seam measured in ordinary frame steps.

    About 1 when the wrap from the last frame to the first looks like any other step of the clip
    (a seamless loop); about T - 1 for content drifting at constant speed in one direction (before
    the difference saturates). 1.0 for a still clip (seam and steps both zero) or T < 2; inf when
    only the seam is non-zero.
    """
    video = _check_video(video)
    seam, step = loop_closure(video), mean_abs_frame_difference(video)
    if step == 0.0:
        return 1.0 if seam == 0.0 else math.inf
    return seam / step


def motion_metrics(video: torch.Tensor, cond_image: Optional[torch.Tensor] = None) -> Dict[str, float]:
    """All clip metrics: ``frame_diff``, ``displacement_px``, ``smoothness``, and ``psnr_frame0``
    (frame 0 against ``cond_image`` (3, H, W), both in [0, 1]) when ``cond_image`` is given."""
    video = _check_video(video)
    out = {
        "frame_diff": mean_abs_frame_difference(video),
        "displacement_px": displacement(video),
        "smoothness": temporal_smoothness(video),
    }
    if cond_image is not None:
        cond = cond_image.to(video.device).float()
        if cond.ndim == 4 and cond.shape[0] == 1:
            cond = cond[0]
        out["psnr_frame0"] = psnr(video[0], cond)
    return out


def _ranks(values: Sequence[float]) -> torch.Tensor:
    """Ranks from 0, tied values sharing their mean rank."""
    v = torch.as_tensor(values, dtype=torch.float64)
    return torch.stack([(v < x).sum() + ((v == x).sum() - 1) / 2 for x in v]).double()


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation of two series (ties share a rank, so a flat series does not read
    as rising); nan when either side is constant."""
    rx, ry = _ranks(x), _ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    rx, ry = rx - rx.mean(), ry - ry.mean()
    return float((rx * ry).sum() / (rx.norm() * ry.norm()))
