"""Motion and fidelity metrics on generated clips.

Every function takes a clip ``video`` of shape (T, 3, H, W), float, values in [0, 1] (map model
output in [-1, 1] with ``(x + 1) / 2`` first), on any device, and returns python floats.
Computations run in float32 on the clip's device, except PSNR's MSE (float64) and the optical
flow (scikit-image, on the CPU, in float64).
"""
import math
from typing import Dict, Optional, Sequence

import numpy as np
import torch

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
FLOW_PARAMS = {"attachment": 25.0, "num_warp": 10}  # of skimage.registration.optical_flow_tvl1


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


def flow_fields(video: torch.Tensor) -> np.ndarray:
    """Dense optical flow (T-1, H, W, 2) in px/frame (dx right, dy down) from each frame to the next,
    at the pixels of the earlier frame: scikit-image's TV-L1 on the luma, with FLOW_PARAMS (10 warps
    and a data term of 25 fit the calibration clips best; sgm.eval.calibration)."""
    from skimage.registration import optical_flow_tvl1

    gray = _grayscale(_check_video(video)).clamp(0.0, 1.0).double().cpu().numpy()
    flows = [optical_flow_tvl1(gray[i], gray[i + 1], **FLOW_PARAMS) for i in range(len(gray) - 1)]  # (dy, dx) each
    if not flows:
        return np.zeros((0, *gray.shape[1:], 2), np.float32)
    return np.stack([np.stack([f[1], f[0]], axis=-1) for f in flows]).astype(np.float32)


def displacement(video: torch.Tensor) -> float:
    """Mean optical-flow magnitude in px/frame: |flow| (flow_fields) averaged over the pixels of
    every consecutive pair; 0.0 for fewer than 2 frames. It estimates what the synthetic clips
    report as their true motion (the mean per-pixel displacement); its calibration against that
    truth, with and without grain, is sgm.eval.calibration."""
    flows = flow_fields(video)
    if len(flows) == 0:
        return 0.0
    return float(np.hypot(flows[..., 0], flows[..., 1]).mean())


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
