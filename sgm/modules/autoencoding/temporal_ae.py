"""Temporal VAE decoder of SVD: the image Decoder with temporal convs in its resnet blocks and output.

Decoding takes `timesteps` = frames per video; inputs are (B*T, C, H, W), frames contiguous.
"""
from functools import partial

import torch
from einops import rearrange
from torch import nn

from ..diffusionmodules.model import Decoder, ResnetBlock
from ..diffusionmodules.openaimodel import ResBlock


class VideoResBlock(ResnetBlock):
    """Per-frame ResnetBlock, then a temporal ResBlock (conv over T); output sigmoid(mix) * temporal + rest."""

    def __init__(self, out_channels, *args, dropout=0.0, video_kernel_size=3, alpha=0.0, merge_strategy="learned", **kwargs):
        super().__init__(out_channels=out_channels, dropout=dropout, *args, **kwargs)
        if video_kernel_size is None:
            video_kernel_size = [3, 1, 1]
        self.time_stack = ResBlock(
            channels=out_channels,
            emb_channels=0,
            dropout=dropout,
            dims=3,
            use_scale_shift_norm=False,
            use_conv=False,
            up=False,
            down=False,
            kernel_size=video_kernel_size,
            use_checkpoint=False,
            skip_t_emb=True,
        )
        self.merge_strategy = merge_strategy
        if merge_strategy == "fixed":
            self.register_buffer("mix_factor", torch.Tensor([alpha]))
        elif merge_strategy == "learned":
            self.register_parameter("mix_factor", nn.Parameter(torch.Tensor([alpha])))
        else:
            raise ValueError(f"unknown merge_strategy {merge_strategy!r}")

    def get_alpha(self):
        return self.mix_factor if self.merge_strategy == "fixed" else torch.sigmoid(self.mix_factor)

    def forward(self, x, temb, skip_video=False, timesteps=None):
        x = super().forward(x, temb)
        if skip_video:
            return x
        x_spatial = rearrange(x, "(b t) c h w -> b c t h w", t=timesteps)
        x_temporal = self.time_stack(x_spatial, temb)
        alpha = self.get_alpha()
        x = alpha * x_temporal + (1.0 - alpha) * x_spatial
        return rearrange(x, "b c t h w -> (b t) c h w")


class AE3DConv(nn.Conv2d):
    """Conv2d per frame followed by a Conv3d over (T, H, W) named `time_mix_conv`."""

    def __init__(self, in_channels, out_channels, video_kernel_size=3, *args, **kwargs):
        super().__init__(in_channels, out_channels, *args, **kwargs)
        if isinstance(video_kernel_size, int):
            padding = video_kernel_size // 2
        else:
            padding = [k // 2 for k in video_kernel_size]
        self.time_mix_conv = nn.Conv3d(out_channels, out_channels, kernel_size=video_kernel_size, padding=padding)

    def forward(self, input, timesteps=None, skip_video=False):
        x = super().forward(input)
        if skip_video:
            return x
        x = rearrange(x, "(b t) c h w -> b c t h w", t=timesteps)
        return rearrange(self.time_mix_conv(x), "b c t h w -> (b t) c h w")


class VideoDecoder(Decoder):
    """Decoder with temporal layers; time_mode 'conv-only' (SVD's) adds them to resnet blocks and conv_out."""

    def __init__(self, *args, video_kernel_size=3, alpha: float = 0.0, merge_strategy: str = "learned", time_mode: str = "conv-only", **kwargs):
        if time_mode != "conv-only":
            raise ValueError(f"VideoDecoder time_mode {time_mode!r} is not supported; SVD uses 'conv-only'")
        self.video_kernel_size = video_kernel_size
        self.alpha = alpha
        self.merge_strategy = merge_strategy
        self.time_mode = time_mode
        super().__init__(*args, **kwargs)

    def _make_conv(self):
        return partial(AE3DConv, video_kernel_size=self.video_kernel_size)

    def _make_resblock(self):
        return partial(
            VideoResBlock,
            video_kernel_size=self.video_kernel_size,
            alpha=self.alpha,
            merge_strategy=self.merge_strategy,
        )

