"""Motion knobs of sgm-motion: what they mean, how they are validated, and the math they drive.

The knobs act on the temporal self-attention (attn1 of every VideoTransformerBlock) and on the
frame position embedding of every SpatialVideoTransformer; docs/PATCHES.md has the equations.
T is the number of frames of one clip; tensors in this module are (batch, T, channels).
"""
import math
import numbers
from dataclasses import asdict, dataclass, replace
from typing import Callable, Optional

import torch

FUSIONS = ("pyramid", "flat")


def _check_positive_number(key: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{key} must be a finite number > 0, got {value!r}")
    return float(value)


def _check_optional_int(key: str, value, minimum: int = 1) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{key} must be an integer >= {minimum} or null, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class MotionKnobs:
    """The six knobs, validated on construction; the defaults reproduce upstream exactly.

    temporal_attn_scale (s): temporal softmax scale sqrt(s / d_head) instead of 1 / sqrt(d_head).
    temporal_attn_k_scale (k): temporal keys multiplied by k (logits times k * sqrt(s) overall).
    position_embedding_frames (E): frame positions linspace(0, E - 1, T) instead of 0 .. T-1.
    attn_window_size (w), attn_window_stride (r, default max(1, w // 4)), attn_window_fusion:
        temporal self-attention inside windows of w frames, outputs fused per frame.
    """

    temporal_attn_scale: float = 1.0
    temporal_attn_k_scale: float = 1.0
    position_embedding_frames: Optional[int] = None
    attn_window_size: Optional[int] = None
    attn_window_stride: Optional[int] = None
    attn_window_fusion: str = "pyramid"

    def __post_init__(self):
        set_ = lambda key, value: object.__setattr__(self, key, value)  # noqa: E731 (frozen dataclass)
        set_("temporal_attn_scale", _check_positive_number("temporal_attn_scale", self.temporal_attn_scale))
        set_("temporal_attn_k_scale", _check_positive_number("temporal_attn_k_scale", self.temporal_attn_k_scale))
        set_("position_embedding_frames", _check_optional_int("position_embedding_frames", self.position_embedding_frames))
        set_("attn_window_size", _check_optional_int("attn_window_size", self.attn_window_size))
        set_("attn_window_stride", _check_optional_int("attn_window_stride", self.attn_window_stride))
        if self.attn_window_size is not None and self.attn_window_stride is not None:
            if self.attn_window_stride > self.attn_window_size:
                raise ValueError(
                    f"attn_window_stride must be <= attn_window_size ({self.attn_window_size}), "
                    f"got {self.attn_window_stride!r}"
                )
        if self.attn_window_fusion not in FUSIONS:
            raise ValueError(f"attn_window_fusion must be one of {', '.join(FUSIONS)}, got {self.attn_window_fusion!r}")

    def updated(self, **changes) -> "MotionKnobs":
        """A validated copy with some knobs changed (unknown names raise ValueError)."""
        unknown = sorted(set(changes) - set(KNOB_NAMES))
        if unknown:
            raise ValueError(f"unknown motion knob(s): {', '.join(unknown)}; known: {', '.join(KNOB_NAMES)}")
        return replace(self, **changes)

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def window_stride(self) -> Optional[int]:
        """The stride in use: attn_window_stride, else max(1, w // 4); None without windows."""
        if self.attn_window_size is None:
            return None
        return self.attn_window_stride or max(1, self.attn_window_size // 4)

    def scale_for(self, d_head: int) -> Optional[float]:
        """Softmax scale sqrt(s / d_head); None (the backend's 1/sqrt(d_head)) when s == 1."""
        if self.temporal_attn_scale == 1.0:
            return None
        return math.sqrt(self.temporal_attn_scale / d_head)


KNOB_NAMES = tuple(MotionKnobs.__dataclass_fields__)


def frame_positions(num_frames: int, embedding_frames: Optional[int], device=None) -> torch.Tensor:
    """Positions (T,) for the frame embedding: 0 .. T-1, or linspace(0, E-1, T) when E is set, E != T, T > 1."""
    if embedding_frames is None or embedding_frames == num_frames or num_frames == 1:
        return torch.arange(num_frames, device=device)
    return torch.linspace(0, embedding_frames - 1, num_frames, device=device)


def window_starts(num_frames: int, size: int, stride: int) -> list:
    """First frames of the windows: 0, r, 2r, ... while start + w <= T, plus T - w if frames remain."""
    starts = list(range(0, num_frames - size + 1, stride))
    if starts[-1] + size < num_frames:
        starts.append(num_frames - size)
    return starts


def window_weights(size: int, fusion: str) -> torch.Tensor:
    """Fusion weight (w,) of each position j in a window: min(j + 1, w - j) for pyramid, 1 for flat."""
    if fusion == "flat":
        return torch.ones(size)
    j = torch.arange(size)
    return torch.minimum(j + 1, size - j).float()


def windowed_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    size: int,
    stride: int,
    fusion: str,
    attend: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """Attention within frame windows, fused per frame by a weighted mean.

    q, k, v: (B, T, C) with T > size. All windows are gathered into one batch (B * n_windows,
    size, C), attended with one `attend` call, weighted and scatter-added back to (B, T, C).
    """
    b, t, _ = q.shape
    starts = torch.tensor(window_starts(t, size, stride), device=q.device)
    index = (starts[:, None] + torch.arange(size, device=q.device)[None]).reshape(-1)  # (n * w,)
    n = starts.numel()
    out = attend(*(x.index_select(1, index).reshape(b * n, size, x.shape[-1]) for x in (q, k, v)))
    out = out.reshape(b, n * size, -1)
    weights = window_weights(size, fusion).to(q.device).repeat(n)  # (n * w,)
    total = torch.zeros(t, device=q.device).index_add_(0, index, weights)
    weights = (weights / total[index]).to(out.dtype)  # normalised: a frame's weights sum to 1
    fused = torch.zeros(b, t, out.shape[-1], device=q.device, dtype=out.dtype)
    return fused.scatter_add_(1, index[None, :, None].expand_as(out), out * weights[None, :, None])
