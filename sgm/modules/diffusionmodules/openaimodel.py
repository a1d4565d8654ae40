"""UNet building blocks (ADM layout): residual blocks with timestep embedding, up/down sampling."""
from abc import abstractmethod
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from .util import avg_pool_nd, conv_nd, linear, normalization, zero_module


class TimestepBlock(nn.Module):
    """A module whose forward takes the timestep embedding as second argument."""

    @abstractmethod
    def forward(self, x, emb):
        ...


class TimestepEmbedSequential(nn.Sequential, TimestepBlock):
    """Sequential that hands each layer the extra inputs its kind needs."""

    def forward(self, x, emb, context=None, image_only_indicator=None, time_context=None, num_video_frames=None, cond_view=None):
        from ..attention import SpatialTransformer
        from ..spacetime_attention import PostHocSpatialTransformerWithTimeMixingAndMotion
        from ..video_attention import SpatialVideoTransformer
        from .video_model import VideoResBlock

        for layer in self:
            if isinstance(layer, VideoResBlock):
                x = layer(x, emb, num_video_frames, image_only_indicator)
            elif isinstance(layer, TimestepBlock):
                x = layer(x, emb)
            elif isinstance(layer, PostHocSpatialTransformerWithTimeMixingAndMotion):
                x = layer(x, context, cond_view, emb)
            elif isinstance(layer, SpatialVideoTransformer):
                x = layer(x, context, time_context, num_video_frames, image_only_indicator)
            elif isinstance(layer, SpatialTransformer):
                x = layer(x, context)
            else:
                x = layer(x)
        return x


class Upsample(nn.Module):
    """Nearest-neighbour x2 (spatial; also time when third_up) then an optional 3x3 conv."""

    def __init__(self, channels, use_conv, dims=2, out_channels=None, padding=1, third_up=False):
        super().__init__()
        self.channels = channels
        self.out_channels = out_channels or channels
        self.use_conv = use_conv
        self.dims = dims
        self.third_up = third_up
        if use_conv:
            self.conv = conv_nd(dims, self.channels, self.out_channels, 3, padding=padding)

    def forward(self, x):
        if self.dims == 3:
            t = x.shape[2] * 2 if self.third_up else x.shape[2]
            x = F.interpolate(x, (t, x.shape[3] * 2, x.shape[4] * 2), mode="nearest")
        else:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        return self.conv(x) if self.use_conv else x


class Downsample(nn.Module):
    """Stride-2 3x3 conv (or average pool without conv)."""

    def __init__(self, channels, use_conv, dims=2, out_channels=None, padding=1, third_down=False):
        super().__init__()
        self.channels = channels
        self.out_channels = out_channels or channels
        stride = 2 if dims != 3 else ((2, 2, 2) if third_down else (1, 2, 2))
        if use_conv:
            self.op = conv_nd(dims, self.channels, self.out_channels, 3, stride=stride, padding=padding)
        else:
            if self.channels != self.out_channels:
                raise ValueError("Downsample without conv cannot change the channel count")
            self.op = avg_pool_nd(dims, kernel_size=stride, stride=stride)

    def forward(self, x):
        return self.op(x)


class ResBlock(TimestepBlock):
    """GroupNorm-SiLU-conv twice with the timestep embedding added in between, plus a skip path.

    kernel_size may be a tuple (e.g. (3, 1, 1) for a temporal conv with dims=3).
    exchange_temb_dims: emb arrives as (B, T, C) for 5-D inputs and is moved to (B, C, T, 1, 1).
    skip_t_emb: no embedding at all (no emb_layers).
    """

    def __init__(
        self,
        channels,
        emb_channels,
        dropout,
        out_channels=None,
        use_conv=False,
        use_scale_shift_norm=False,
        dims=2,
        use_checkpoint=False,
        up=False,
        down=False,
        kernel_size=3,
        exchange_temb_dims=False,
        skip_t_emb=False,
    ):
        super().__init__()
        self.channels = channels
        self.out_channels = out_channels or channels
        self.use_scale_shift_norm = use_scale_shift_norm
        self.use_checkpoint = use_checkpoint
        if isinstance(kernel_size, Iterable):
            padding = [k // 2 for k in kernel_size]
        else:
            padding = kernel_size // 2
        self.in_layers = nn.Sequential(
            normalization(channels),
            nn.SiLU(),
            conv_nd(dims, channels, self.out_channels, kernel_size, padding=padding),
        )
        self.updown = up or down
        if up:
            self.h_upd = Upsample(channels, False, dims)
            self.x_upd = Upsample(channels, False, dims)
        elif down:
            self.h_upd = Downsample(channels, False, dims)
            self.x_upd = Downsample(channels, False, dims)
        else:
            self.h_upd = self.x_upd = nn.Identity()
        self.skip_t_emb = skip_t_emb
        self.exchange_temb_dims = exchange_temb_dims and not skip_t_emb
        if skip_t_emb:
            self.emb_layers = None
        else:
            emb_out = 2 * self.out_channels if use_scale_shift_norm else self.out_channels
            self.emb_layers = nn.Sequential(nn.SiLU(), linear(emb_channels, emb_out))
        self.out_layers = nn.Sequential(
            normalization(self.out_channels),
            nn.SiLU(),
            nn.Dropout(p=dropout),
            zero_module(conv_nd(dims, self.out_channels, self.out_channels, kernel_size, padding=padding)),
        )
        if self.out_channels == channels:
            self.skip_connection = nn.Identity()
        elif use_conv:
            self.skip_connection = conv_nd(dims, channels, self.out_channels, kernel_size, padding=padding)
        else:
            self.skip_connection = conv_nd(dims, channels, self.out_channels, 1)

    def forward(self, x, emb):
        if self.use_checkpoint and self.training:
            return torch.utils.checkpoint.checkpoint(self._forward, x, emb, use_reentrant=False)
        return self._forward(x, emb)

    def _forward(self, x, emb):
        if self.updown:
            in_rest, in_conv = self.in_layers[:-1], self.in_layers[-1]
            h = in_conv(self.h_upd(in_rest(x)))
            x = self.x_upd(x)
        else:
            h = self.in_layers(x)
        if self.skip_t_emb:
            return self.skip_connection(x) + self.out_layers(h)
        emb_out = self.emb_layers(emb).type(h.dtype)
        while emb_out.ndim < h.ndim:
            emb_out = emb_out[..., None]
        if self.use_scale_shift_norm:
            out_norm, out_rest = self.out_layers[0], self.out_layers[1:]
            scale, shift = torch.chunk(emb_out, 2, dim=1)
            h = out_rest(out_norm(h) * (1 + scale) + shift)
        else:
            if self.exchange_temb_dims:
                emb_out = rearrange(emb_out, "b t c ... -> b c t ...")
            h = self.out_layers(h + emb_out)
        return self.skip_connection(x) + h
