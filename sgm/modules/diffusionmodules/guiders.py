"""Classifier-free guidance: the batch is [uncond; cond]; per-frame scales for video."""
from typing import Dict, List, Optional, Tuple, Union

import torch
from einops import rearrange, repeat

from ...util import append_dims

CFG_KEYS = ["vector", "crossattn", "concat"]


def _stack_uncond_cond(x, s, c: Dict, uc: Dict, keys: List[str]) -> Tuple:
    c_out = {}
    for k in c:
        if k in keys:
            c_out[k] = torch.cat((uc[k], c[k]), 0)
        else:
            if c[k] != uc[k]:
                raise ValueError(f"conditioning {k!r} differs between cond and uncond but is not guided")
            c_out[k] = c[k]
    return torch.cat([x] * 2), torch.cat([s] * 2), c_out


class Guider:
    def __call__(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        raise NotImplementedError

    def prepare_inputs(self, x, s, c, uc):
        raise NotImplementedError


class VanillaCFG(Guider):
    """x_u + scale (x_c - x_u)."""

    def __init__(self, scale: float):
        self.scale = scale

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        x_u, x_c = x.chunk(2)
        return x_u + self.scale * (x_c - x_u)

    def prepare_inputs(self, x, s, c, uc):
        return _stack_uncond_cond(x, s, c, uc, CFG_KEYS)


class IdentityGuider(Guider):
    def __call__(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        return x

    def prepare_inputs(self, x, s, c, uc):
        return x, s, c


class LinearPredictionGuider(Guider):
    """Per-frame scale rising linearly from min_scale (frame 0) to max_scale (frame T-1)."""

    def __init__(self, max_scale: float, num_frames: int, min_scale: float = 1.0, additional_cond_keys: Optional[Union[List[str], str]] = None):
        self.min_scale = min_scale
        self.max_scale = max_scale
        self.num_frames = num_frames
        self.scale = torch.linspace(min_scale, max_scale, num_frames).unsqueeze(0)
        if additional_cond_keys is None:
            additional_cond_keys = []
        elif isinstance(additional_cond_keys, str):
            additional_cond_keys = [additional_cond_keys]
        self.additional_cond_keys = list(additional_cond_keys)

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        x_u, x_c = x.chunk(2)
        x_u = rearrange(x_u, "(b t) ... -> b t ...", t=self.num_frames)
        x_c = rearrange(x_c, "(b t) ... -> b t ...", t=self.num_frames)
        scale = repeat(self.scale, "1 t -> b t", b=x_u.shape[0])
        scale = append_dims(scale, x_u.ndim).to(x_u.device)
        return rearrange(x_u + scale * (x_c - x_u), "b t ... -> (b t) ...")

    def prepare_inputs(self, x, s, c, uc):
        return _stack_uncond_cond(x, s, c, uc, CFG_KEYS + self.additional_cond_keys)


class TrianglePredictionGuider(LinearPredictionGuider):
    """Per-frame scale following a triangle wave over the frames (SV3D): min at the ends of each period."""

    def __init__(self, max_scale: float, num_frames: int, min_scale: float = 1.0, period: Union[float, List[float]] = 1.0, period_fusing: str = "max", additional_cond_keys=None):
        super().__init__(max_scale, num_frames, min_scale, additional_cond_keys)
        values = torch.linspace(0, 1, num_frames)
        periods = [period] if isinstance(period, (int, float)) else list(period)
        waves = torch.stack([self.triangle_wave(values, p) for p in periods])
        if period_fusing == "mean":
            wave = waves.mean(0)
        elif period_fusing == "max":
            wave = waves.max(0).values
        else:
            raise ValueError(f"period_fusing must be 'mean' or 'max', got {period_fusing!r}")
        self.scale = (wave * (max_scale - min_scale) + min_scale).unsqueeze(0)

    @staticmethod
    def triangle_wave(values: torch.Tensor, period: float) -> torch.Tensor:
        return 2 * (values / period - torch.floor(values / period + 0.5)).abs()


class TrapezoidPredictionGuider(LinearPredictionGuider):
    """Per-frame scale rising linearly from min_scale to max_scale over the first
    int(num_frames * edge_perc) frames, flat at max_scale, and falling back symmetrically."""

    def __init__(self, max_scale: float, num_frames: int, min_scale: float = 1.0, edge_perc: float = 0.1, additional_cond_keys=None):
        super().__init__(max_scale, num_frames, min_scale, additional_cond_keys)
        edge = int(num_frames * edge_perc)
        if 2 * edge > num_frames:
            raise ValueError(f"edge_perc {edge_perc} leaves no room for both edges over {num_frames} frames")
        rise = torch.linspace(min_scale, max_scale, edge)
        flat = torch.full((num_frames - 2 * edge,), float(max_scale))
        self.scale = torch.cat([rise, flat, rise.flip(0)]).unsqueeze(0)


class SpatiotemporalPredictionGuider(LinearPredictionGuider):
    """SV4D: the num_frames = T*V rows (t-major) get scale min + (max - min) * (ramp_t + tri_v) / 2,
    with ramp_t = linspace(0, 1, T) over frames and tri_v the triangle wave of linspace(0, 1, V)
    over views (0 at the first and last view, 1 in the middle)."""

    def __init__(self, max_scale: float, num_frames: int, num_views: int = 1, min_scale: float = 1.0, additional_cond_keys=None):
        super().__init__(max_scale, num_frames, min_scale, additional_cond_keys)
        if num_views < 1 or num_frames % num_views:
            raise ValueError(f"num_frames ({num_frames}) must be a multiple of num_views ({num_views})")
        ramp = torch.linspace(0, 1, num_frames // num_views)
        tri = TrianglePredictionGuider.triangle_wave(torch.linspace(0, 1, num_views), 1.0)
        weight = (0.5 * ramp[:, None] + 0.5 * tri[None, :]).flatten()
        self.scale = (weight * (max_scale - min_scale) + min_scale).unsqueeze(0)
