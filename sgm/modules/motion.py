"""Motion knobs of sgm-motion: what they mean, how they are validated, and the math they drive.

Two groups, each one frozen dataclass and the single definition of its names:
- MotionKnobs (network knobs): read by the VideoUNet, on the temporal self-attention (attn1 of
  every VideoTransformerBlock) and the frame position embedding of every SpatialVideoTransformer;
- SamplingKnobs: read by the sampling loop (initial noise, the motion source of an auto window);
  they live in the YAML's sampler_config.params or come with a pipeline call.
KNOB_HELP holds the one-line description of every knob, used by the scripts' --help and checked
against the docs. docs/PATCHES.md has the equations. T is the number of frames of one clip;
tensors in this module are (batch, T, channels) unless stated otherwise.
"""
import functools
import math
import numbers
from dataclasses import asdict, dataclass, replace
from typing import Callable, Optional, Tuple, Union

import torch

FUSIONS = ("pyramid", "flat")
STAGES = ("input", "middle", "output")  # the UNet's input (down) blocks, middle block, output (up) blocks
MOTION_SOURCES = ("bucket", "latent")
AUTO = "auto"


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


def _check_bool(key: str, value) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{key} must be true or false, got {value!r}")
    return value


def _check_stages(key: str, value) -> Optional[Tuple[str, ...]]:
    """None (every stage), or a non-empty subset of STAGES given as a list or comma-separated text,
    returned as a tuple in UNet order."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else value
    try:
        items = [item.strip() if isinstance(item, str) else item for item in items]
    except TypeError:
        items = [value]
    bad = [item for item in items if item not in STAGES]
    if bad or not items:
        raise ValueError(f"{key} must be a non-empty list of {', '.join(STAGES)} (or null for all), got {value!r}")
    return tuple(stage for stage in STAGES if stage in items)


def _updated(self, **changes):
    """A validated copy with some knobs changed (unknown names raise ValueError)."""
    names = tuple(type(self).__dataclass_fields__)
    unknown = sorted(set(changes) - set(names))
    if unknown:
        raise ValueError(f"unknown {type(self).__name__} knob(s): {', '.join(unknown)}; known: {', '.join(names)}")
    return replace(self, **changes)


def _as_dict(self) -> dict:
    """The knobs as plain YAML/JSON values (tuples as lists)."""
    return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}


@dataclass(frozen=True)
class MotionKnobs:
    """The motion knobs, validated on construction; the defaults reproduce upstream exactly.

    temporal_attn_scale (s): temporal softmax scale sqrt(s / d_head) instead of 1 / sqrt(d_head).
    temporal_attn_k_scale (k): temporal keys multiplied by k (logits times k * sqrt(s) overall).
    temporal_attn_scale_stages: the UNet stages where s and k apply (None: all).
    position_embedding_frames (E): frame positions linspace(0, E - 1, T) instead of 0 .. T-1.
    attn_window_size (w, or "auto"), attn_window_stride (r, default max(1, w // 4)),
    attn_window_fusion: temporal self-attention inside windows of w frames, fused per frame.
    attn_window_stages: the UNet stages where windows apply (None: all).
    attn_window_min, attn_window_max: with w = "auto", w follows a motion score m in [0, 1]:
        round(w_max - m (w_max - w_min)); m is set by the sampling loop (SamplingKnobs).
    attn_window_loop: circular windows (wrapping from the last frame to the first).
    view_attn_scale (s_v): SV4D only: softmax scale sqrt(s_v / d_head) of the attention over views.
    Knobs that belong to a mechanism that is off (e.g. attn_window_min without "auto") are ignored.
    """

    temporal_attn_scale: float = 1.0
    temporal_attn_k_scale: float = 1.0
    temporal_attn_scale_stages: Optional[Tuple[str, ...]] = None
    position_embedding_frames: Optional[int] = None
    attn_window_size: Union[int, str, None] = None
    attn_window_stride: Optional[int] = None
    attn_window_fusion: str = "pyramid"
    attn_window_stages: Optional[Tuple[str, ...]] = None
    attn_window_min: Optional[int] = None
    attn_window_max: Optional[int] = None
    attn_window_loop: bool = False
    view_attn_scale: float = 1.0

    def __post_init__(self):
        set_ = lambda key, value: object.__setattr__(self, key, value)  # noqa: E731 (frozen dataclass)
        set_("temporal_attn_scale", _check_positive_number("temporal_attn_scale", self.temporal_attn_scale))
        set_("temporal_attn_k_scale", _check_positive_number("temporal_attn_k_scale", self.temporal_attn_k_scale))
        set_("view_attn_scale", _check_positive_number("view_attn_scale", self.view_attn_scale))
        set_("temporal_attn_scale_stages", _check_stages("temporal_attn_scale_stages", self.temporal_attn_scale_stages))
        set_("position_embedding_frames", _check_optional_int("position_embedding_frames", self.position_embedding_frames))
        if self.attn_window_size != AUTO:
            try:
                set_("attn_window_size", _check_optional_int("attn_window_size", self.attn_window_size))
            except ValueError:
                raise ValueError(f"attn_window_size must be an integer >= 1, auto or null, got {self.attn_window_size!r}") from None
        set_("attn_window_stride", _check_optional_int("attn_window_stride", self.attn_window_stride))
        set_("attn_window_stages", _check_stages("attn_window_stages", self.attn_window_stages))
        set_("attn_window_min", _check_optional_int("attn_window_min", self.attn_window_min))
        set_("attn_window_max", _check_optional_int("attn_window_max", self.attn_window_max))
        if self.attn_window_fusion not in FUSIONS:
            raise ValueError(f"attn_window_fusion must be one of {', '.join(FUSIONS)}, got {self.attn_window_fusion!r}")
        _check_bool("attn_window_loop", self.attn_window_loop)
        if self.attn_window_min is not None and self.attn_window_max is not None:
            if self.attn_window_min > self.attn_window_max:
                raise ValueError(
                    f"attn_window_min ({self.attn_window_min}) must be <= attn_window_max ({self.attn_window_max})"
                )
        if self.attn_window_size == AUTO:
            if self.attn_window_min is None or self.attn_window_max is None:
                raise ValueError("attn_window_size auto needs attn_window_min and attn_window_max")
        smallest = self.attn_window_min if self.attn_window_size == AUTO else self.attn_window_size
        if smallest is not None and self.attn_window_stride is not None and self.attn_window_stride > smallest:
            name = "attn_window_min" if self.attn_window_size == AUTO else "attn_window_size"
            raise ValueError(f"attn_window_stride must be <= {name} ({smallest}), got {self.attn_window_stride!r}")

    updated = _updated
    as_dict = _as_dict

    @property
    def adaptive_window(self) -> bool:
        """Whether attn_window_size is "auto" (the window follows a motion score)."""
        return self.attn_window_size == AUTO

    @property
    def window_stride(self) -> Optional[int]:
        """The stride in use: attn_window_stride, else max(1, w // 4); None without a (resolved) window."""
        if not isinstance(self.attn_window_size, int):
            return None
        return self.attn_window_stride or max(1, self.attn_window_size // 4)

    def scale_for(self, d_head: int) -> Optional[float]:
        """Softmax scale sqrt(s / d_head); None (the backend's 1/sqrt(d_head)) when s == 1."""
        if self.temporal_attn_scale == 1.0:
            return None
        return math.sqrt(self.temporal_attn_scale / d_head)

    def resolved(self, motion_score: Optional[float]) -> "MotionKnobs":
        """These knobs with an "auto" window replaced by its size at `motion_score` (unchanged otherwise
        or when the score is None)."""
        if not self.adaptive_window or motion_score is None:
            return self
        size = adaptive_window_size(motion_score, self.attn_window_min, self.attn_window_max)
        return replace(self, attn_window_size=size)

    def for_stage(self, stage: Optional[str]) -> "MotionKnobs":
        """The knobs in effect in UNet stage `stage` (input, middle, output; None: no restriction):
        s and k reset to 1 outside temporal_attn_scale_stages, windows off outside attn_window_stages."""
        changes = {}
        if stage is not None and self.temporal_attn_scale_stages is not None and stage not in self.temporal_attn_scale_stages:
            changes.update(temporal_attn_scale=1.0, temporal_attn_k_scale=1.0)
        if stage is not None and self.attn_window_stages is not None and stage not in self.attn_window_stages:
            changes.update(attn_window_size=None)
        return replace(self, **changes) if changes else self


@dataclass(frozen=True)
class SamplingKnobs:
    """The knobs of the sampling loop, validated on construction; the defaults reproduce upstream.

    noise_correlation (rho): initial noise sqrt(rho) * shared + sqrt(1 - rho) * own per frame.
    shuffle_windowed_noise: FreeNoise rescheduling of the initial noise with the network's w and r.
    attn_window_motion: motion score of an "auto" window, bucket (motion_bucket_id / 255, fixed)
        or latent (after every step, from the guided denoised estimate; latent_motion_score).
    """

    noise_correlation: float = 0.0
    shuffle_windowed_noise: bool = False
    attn_window_motion: str = "bucket"

    def __post_init__(self):
        rho = self.noise_correlation
        if isinstance(rho, bool) or not isinstance(rho, numbers.Real) or not 0 <= rho < 1:
            raise ValueError(f"noise_correlation must be a number in [0, 1), got {rho!r}")
        object.__setattr__(self, "noise_correlation", float(rho))
        _check_bool("shuffle_windowed_noise", self.shuffle_windowed_noise)
        if self.attn_window_motion not in MOTION_SOURCES:
            raise ValueError(f"attn_window_motion must be one of {', '.join(MOTION_SOURCES)}, got {self.attn_window_motion!r}")

    updated = _updated
    as_dict = _as_dict


KNOB_NAMES = tuple(MotionKnobs.__dataclass_fields__)  # network knobs: VideoUNet parameters
SAMPLING_KNOB_NAMES = tuple(SamplingKnobs.__dataclass_fields__)  # sampler_config.params / pipeline call
ALL_KNOB_NAMES = KNOB_NAMES + SAMPLING_KNOB_NAMES
_FIELDS = {**MotionKnobs.__dataclass_fields__, **SamplingKnobs.__dataclass_fields__}
BOOL_KNOBS = tuple(name for name, f in _FIELDS.items() if isinstance(f.default, bool))
STAGE_KNOBS = ("temporal_attn_scale_stages", "attn_window_stages")  # values: None or a tuple of STAGES

KNOB_HELP = {
    "temporal_attn_scale": "s: temporal softmax scale sqrt(s / d_head) instead of 1 / sqrt(d_head); > 1 more motion, < 1 less",
    "temporal_attn_k_scale": "k: temporal keys times k (logits times k sqrt(s) overall)",
    "temporal_attn_scale_stages": "UNet stages where s and k act: input, middle, output (default all)",
    "position_embedding_frames": "E: frame positions linspace(0, E - 1, T) instead of 0 .. T - 1",
    "attn_window_size": "w: temporal self-attention in windows of w frames, or auto (sized by motion)",
    "attn_window_stride": "r: step between window starts (default w // 4)",
    "attn_window_fusion": "pyramid or flat: per-frame weights of overlapping windows",
    "attn_window_stages": "UNet stages where windows act: input, middle, output (default all)",
    "attn_window_min": "smallest auto window (at the most motion)",
    "attn_window_max": "largest auto window (at no motion)",
    "attn_window_loop": "circular windows: the last frames attend to the first (seamless loops)",
    "view_attn_scale": "s_v (SV4D only): softmax scale sqrt(s_v / d_head) of the attention over views",
    "noise_correlation": "rho in [0, 1): initial noise sqrt(rho) shared + sqrt(1 - rho) own per frame",
    "shuffle_windowed_noise": "FreeNoise rescheduling of the initial noise with the run's w and r",
    "attn_window_motion": "motion score of an auto window: bucket (motion_bucket_id / 255) or latent (per step)",
}


def frame_positions(num_frames: int, embedding_frames: Optional[int], device=None) -> torch.Tensor:
    """Positions (T,) for the frame embedding: 0 .. T-1, or linspace(0, E-1, T) when E is set, E != T, T > 1."""
    if embedding_frames is None or embedding_frames == num_frames or num_frames == 1:
        return torch.arange(num_frames, device=device)
    return torch.linspace(0, embedding_frames - 1, num_frames, device=device)


def window_starts(num_frames: int, size: int, stride: int, loop: bool = False) -> list:
    """First frames of the windows. Linear: 0, r, 2r, ... while start + w <= T, plus T - w if frames
    remain. Circular (loop): 0, r, 2r, ... < T, each window wrapping past the last frame to frame 0."""
    if loop:
        return list(range(0, num_frames, stride))
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


@dataclass(frozen=True)
class WindowLayout:
    """How windowed_attention lays the windows of T frames out as strided views (one per group).

    The regular windows (starts 0, r, 2r, ...) fall into `groups` = ceil(w / r) groups: group g
    holds starts g r, g r + step, g r + 2 step, ... with step = groups * r >= w, so the windows of a
    group never overlap. Each clip is laid out over `period` frames (T, or padded to a multiple of
    step; with loop the first frames are repeated after frame T-1 up to `reach`), and a group's
    windows are one strided view of the flattened (clips * period, C) frames that also takes, and
    weighs by 0, the windows that would cross into the next clip. `weights[g]` (per_clip, w) are the
    fusion weights of each window of a clip, already divided by the total weight of their frame
    (a frame's weights sum to 1); `tail` (start, weights (w,)) is the window [T - w, T) when it is off
    the stride."""

    period: int
    reach: int
    step: int
    weights: Tuple[torch.Tensor, ...]
    tail: Optional[Tuple[int, torch.Tensor]]

    @property
    def per_clip(self) -> int:
        return self.period // self.step


@functools.lru_cache(maxsize=64)
def window_layout(num_frames: int, size: int, stride: int, fusion: str, loop: bool, device: torch.device,
                  dtype: torch.dtype) -> WindowLayout:
    """The WindowLayout of windows of `size` frames every `stride` over `num_frames` (memoised: a
    call per attention layer and step asks for the same few layouts)."""
    with torch.inference_mode(False):  # kept tensors must serve later calls outside inference mode too
        return _window_layout(num_frames, size, stride, fusion, loop, device, dtype)


def _window_layout(t: int, size: int, stride: int, fusion: str, loop: bool, device: torch.device, dtype: torch.dtype) -> WindowLayout:
    starts = window_starts(t, size, stride, loop)
    regular = len(starts) if loop else (t - size) // stride + 1
    groups = -(-size // stride)
    step = groups * stride
    reach = (regular - 1) * stride + size
    period = t if t % step == 0 and not loop else -(-max(reach, t) // step) * step
    fuse = window_weights(size, fusion).double()
    total = torch.zeros(period, dtype=torch.float64)
    for start in starts:
        total[start:start + size] += fuse
    if loop:  # frames past T are frames 0, 1, ...: they share their totals
        total[: reach - t] += total[t:reach]
        total[t:reach] = total[: reach - t]
    weights = []
    for g in range(groups):
        firsts = g * stride + torch.arange(period // step) * step
        real = (firsts <= (regular - 1) * stride)[:, None]
        frames = (firsts[:, None] + torch.arange(size)).clamp(max=period - 1)
        weights.append(torch.where(real, fuse / total[frames], 0.0).to(device, dtype))
    tail = None if loop or len(starts) == regular else (starts[-1], (fuse / total[starts[-1]:t]).to(device, dtype))
    return WindowLayout(period, reach, step, tuple(weights), tail)


def _group_view(x: torch.Tensor, first: int, count: int, size: int, step: int) -> torch.Tensor:
    """(count, size, C) view of x (clips, period, C), contiguous: windows of `size` frames at
    first, first + step, ... counted over the clips one after another."""
    c = x.shape[-1]
    return x.as_strided((count, size, c), (step * c, c, 1), x.storage_offset() + first * c)


def windowed_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    size: int,
    stride: int,
    fusion: str,
    attend: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    loop: bool = False,
) -> torch.Tensor:
    """Attention within frame windows, fused per frame by a weighted mean.

    q, k, v: (B, T, C) with T > size. Window i holds frames (start_i + j) mod T, j < size (see
    window_starts). The windows are attended group by group (WindowLayout): each group is one
    `attend` call on strided views of q, k and v (no gathered copies), its output is weighed and
    added in place into the fused result, the tail window is one more call.
    """
    b, t, c = q.shape
    layout = window_layout(t, size, stride, fusion, loop, q.device, q.dtype)
    if layout.period != t:
        def extend(x: torch.Tensor) -> torch.Tensor:
            out = x.new_zeros(b, layout.period, c)
            out[:, :t] = x
            if loop:
                out[:, t:layout.reach] = x[:, : layout.reach - t]
            return out
        q, k, v = extend(q), extend(k), extend(v)
    else:
        q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    fused = None
    for g, weights in enumerate(layout.weights):
        first = g * stride
        count = b * layout.per_clip - (1 if first else 0)  # the last window of the last clip would leave the tensor
        out = attend(*(_group_view(x, first, count, size, layout.step) for x in (q, k, v)))
        weights = weights.repeat(b, 1)[:count, :, None]
        if fused is None and layout.step == size:  # group 0 tiles every frame: it makes the result
            fused = (out * weights).reshape(b, layout.period, c)
        else:
            fused = q.new_zeros(b, layout.period, c) if fused is None else fused
            _group_view(fused, first, count, size, layout.step).addcmul_(out, weights)
    if layout.tail is not None:
        start, weights = layout.tail
        fused[:, start:t].addcmul_(attend(q[:, start:t], k[:, start:t], v[:, start:t]), weights[:, None])
    if loop:
        fused[:, : layout.reach - t] += fused[:, t:layout.reach]
    return fused if layout.period == t else fused[:, :t]


def adaptive_window_size(motion_score: float, size_min: int, size_max: int) -> int:
    """Window for a motion score m in [0, 1] (clipped): w_max - m (w_max - w_min), rounded half up."""
    if not math.isfinite(motion_score):
        raise ValueError(f"motion score must be a finite number, got {motion_score!r}")
    m = min(max(float(motion_score), 0.0), 1.0)
    return int(math.floor(size_max - m * (size_max - size_min) + 0.5))


def bucket_motion_score(motion_bucket_id: float) -> float:
    """Motion score from SVD's motion conditioning: motion_bucket_id / 255, clipped to [0, 1]."""
    return min(max(float(motion_bucket_id) / 255.0, 0.0), 1.0)


def latent_motion_score(x: torch.Tensor, num_frames: int) -> float:
    """Motion score in [0, 1) of latent videos x (B*T, C, H, W), frames of a video contiguous.

    m = D_t / (D_t + D_s): D_t the mean |x[t+1] - x[t]| over adjacent frames, D_s the mean
    |difference between horizontally or vertically adjacent latent pixels| (both averaged over
    videos, channels and positions). By brightness constancy D_t ~ v * D_s for content moving v
    latent pixels per frame, so m ~ v / (1 + v): 0 for a still video, 1/2 at one latent pixel per
    frame. 0 when T = 1 or the video is flat.
    """
    if num_frames < 2:
        return 0.0
    x = x.detach().float().reshape(-1, num_frames, *x.shape[1:])
    d_t = float((x[:, 1:] - x[:, :-1]).abs().mean())
    spatial = [(x[..., 1:, :] - x[..., :-1, :]), (x[..., :, 1:] - x[..., :, :-1])]
    spatial = [float(d.abs().mean()) for d in spatial if d.numel()]  # a 1-pixel side has no neighbours
    d_s = sum(spatial) / len(spatial) if spatial else 0.0
    return d_t / (d_t + d_s) if d_t + d_s > 0 else 0.0
