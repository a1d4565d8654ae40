"""The VideoUNet of Stable Video Diffusion: a 2-D UNet with temporal layers after every block.

x: (B*T, C, H, W) with the T frames of each video contiguous; timesteps: (B*T,);
context: (B*T, N, context_dim); y: (B*T, adm_in_channels); image_only_indicator: (B, T).
"""
import math
from contextlib import contextmanager
from typing import Iterator, List, Optional, Union

import torch
from einops import rearrange
from torch import nn

from ..motion import MotionKnobs
from ..spacetime_attention import PostHocSpatialTransformerWithTimeMixingAndMotion
from ..video_attention import SpatialVideoTransformer
from .openaimodel import Downsample, ResBlock, TimestepEmbedSequential, Upsample
from .util import AlphaBlender, conv_nd, linear, normalization, timestep_embedding, zero_module


class VideoResBlock(ResBlock):
    """ResBlock per frame, then a temporal ResBlock (conv over T) blended in by AlphaBlender."""

    def __init__(
        self,
        channels,
        emb_channels,
        dropout,
        video_kernel_size=3,
        merge_strategy="fixed",
        merge_factor=0.5,
        out_channels=None,
        use_conv=False,
        use_scale_shift_norm=False,
        dims=2,
        use_checkpoint=False,
        up=False,
        down=False,
    ):
        super().__init__(
            channels,
            emb_channels,
            dropout,
            out_channels=out_channels,
            use_conv=use_conv,
            use_scale_shift_norm=use_scale_shift_norm,
            dims=dims,
            use_checkpoint=use_checkpoint,
            up=up,
            down=down,
        )
        out = out_channels or channels
        self.time_stack = ResBlock(
            out,
            emb_channels,
            dropout=dropout,
            dims=3,
            out_channels=out,
            use_scale_shift_norm=False,
            use_conv=False,
            up=False,
            down=False,
            kernel_size=video_kernel_size,
            use_checkpoint=use_checkpoint,
            exchange_temb_dims=True,
        )
        self.time_mixer = AlphaBlender(
            alpha=merge_factor, merge_strategy=merge_strategy, rearrange_pattern="b t -> b 1 t 1 1"
        )

    def forward(self, x, emb, num_video_frames, image_only_indicator=None):
        x = super().forward(x, emb)
        x_spatial = rearrange(x, "(b t) c h w -> b c t h w", t=num_video_frames)
        x_temporal = self.time_stack(x_spatial, rearrange(emb, "(b t) ... -> b t ...", t=num_video_frames))
        x = self.time_mixer(x_spatial=x_spatial, x_temporal=x_temporal, image_only_indicator=image_only_indicator)
        return rearrange(x, "b c t h w -> (b t) c h w")


class VideoUNet(nn.Module):
    """UNet denoiser over latent video frames (constructor arguments follow upstream's YAML schema).

    The arguments from temporal_attn_scale on are sgm-motion's knobs (see
    sgm.modules.motion.MotionKnobs and docs/PATCHES.md); at their defaults the network is
    upstream's. `set_motion_knobs` changes them on a built model, `set_motion_score` sizes an
    "auto" window, and `motion_knobs_applied` does both for the length of a `with` block only.
    """

    def __init__(
        self,
        in_channels: int,
        model_channels: int,
        out_channels: int,
        num_res_blocks: int,
        attention_resolutions: List[int],
        dropout: float = 0.0,
        channel_mult: List[int] = (1, 2, 4, 8),
        conv_resample: bool = True,
        dims: int = 2,
        num_classes: Optional[Union[int, str]] = None,
        use_checkpoint: bool = False,
        num_heads: int = -1,
        num_head_channels: int = -1,
        num_heads_upsample: int = -1,
        use_scale_shift_norm: bool = False,
        resblock_updown: bool = False,
        transformer_depth: Union[List[int], int] = 1,
        transformer_depth_middle: Optional[int] = None,
        context_dim: Optional[int] = None,
        time_downup: bool = False,
        time_context_dim: Optional[int] = None,
        extra_ff_mix_layer: bool = False,
        use_spatial_context: bool = False,
        merge_strategy: str = "fixed",
        merge_factor: float = 0.5,
        spatial_transformer_attn_type: str = "softmax",
        video_kernel_size: Union[int, List[int]] = 3,
        use_linear_in_transformer: bool = False,
        adm_in_channels: Optional[int] = None,
        disable_temporal_crossattention: bool = False,
        max_ddpm_temb_period: int = 10000,
        temporal_attn_scale: float = 1.0,
        temporal_attn_k_scale: float = 1.0,
        position_embedding_frames: Optional[int] = None,
        attn_window_size: Union[int, str, None] = None,
        attn_window_stride: Optional[int] = None,
        attn_window_fusion: str = "pyramid",
        temporal_attn_scale_stages: Optional[List[str]] = None,
        attn_window_stages: Optional[List[str]] = None,
        attn_window_min: Optional[int] = None,
        attn_window_max: Optional[int] = None,
        attn_window_loop: bool = False,
        view_attn_scale: float = 1.0,
    ):
        super().__init__()
        self.motion_knobs = self._supported(MotionKnobs(
            temporal_attn_scale=temporal_attn_scale,
            temporal_attn_k_scale=temporal_attn_k_scale,
            temporal_attn_scale_stages=temporal_attn_scale_stages,
            position_embedding_frames=position_embedding_frames,
            attn_window_size=attn_window_size,
            attn_window_stride=attn_window_stride,
            attn_window_fusion=attn_window_fusion,
            attn_window_stages=attn_window_stages,
            attn_window_min=attn_window_min,
            attn_window_max=attn_window_max,
            attn_window_loop=attn_window_loop,
            view_attn_scale=view_attn_scale,
        ))
        self.motion_score: Optional[float] = None
        if context_dim is None:
            raise ValueError("VideoUNet needs context_dim")
        if num_heads == -1 and num_head_channels == -1:
            raise ValueError("set num_heads or num_head_channels")
        channel_mult = list(channel_mult)
        if isinstance(transformer_depth, int):
            transformer_depth = len(channel_mult) * [transformer_depth]
        transformer_depth = list(transformer_depth)
        transformer_depth_middle = transformer_depth[-1] if transformer_depth_middle is None else transformer_depth_middle

        self.in_channels = in_channels
        self.model_channels = model_channels
        self.out_channels = out_channels
        self.num_classes = num_classes
        self.dtype = torch.float32
        time_embed_dim = model_channels * 4
        self.time_embed = nn.Sequential(
            linear(model_channels, time_embed_dim), nn.SiLU(), linear(time_embed_dim, time_embed_dim)
        )
        if num_classes is not None:
            if isinstance(num_classes, int):
                self.label_emb = nn.Embedding(num_classes, time_embed_dim)
            elif num_classes == "continuous":
                self.label_emb = nn.Linear(1, time_embed_dim)
            elif num_classes == "sequential":
                if adm_in_channels is None:
                    raise ValueError("num_classes 'sequential' needs adm_in_channels")
                self.label_emb = nn.Sequential(
                    nn.Sequential(
                        linear(adm_in_channels, time_embed_dim), nn.SiLU(), linear(time_embed_dim, time_embed_dim)
                    )
                )
            else:
                raise ValueError(f"unsupported num_classes {num_classes!r}")

        self.layer_settings = dict(
            context_dim=context_dim,
            time_context_dim=time_context_dim,
            dropout=dropout,
            extra_ff_mix_layer=extra_ff_mix_layer,
            use_spatial_context=use_spatial_context,
            merge_strategy=merge_strategy,
            merge_factor=merge_factor,
            use_checkpoint=use_checkpoint,
            use_linear_in_transformer=use_linear_in_transformer,
            spatial_transformer_attn_type=spatial_transformer_attn_type,
            disable_temporal_crossattention=disable_temporal_crossattention,
            max_ddpm_temb_period=max_ddpm_temb_period,
            video_kernel_size=video_kernel_size,
            time_embed_dim=time_embed_dim,
            dims=dims,
            use_scale_shift_norm=use_scale_shift_norm,
        )

        def heads_for(ch):
            if num_head_channels == -1:
                return num_heads, ch // num_heads
            return ch // num_head_channels, num_head_channels

        def attention_layer(ch, depth, stage):
            return self.attention_layer(ch, *heads_for(ch), depth, stage)

        resblock = self.resblock

        self.input_blocks = nn.ModuleList(
            [TimestepEmbedSequential(conv_nd(dims, in_channels, model_channels, 3, padding=1))]
        )
        input_block_chans = [model_channels]
        ch = model_channels
        ds = 1
        for level, mult in enumerate(channel_mult):
            for _ in range(num_res_blocks):
                layers = [resblock(ch, mult * model_channels)]
                ch = mult * model_channels
                if ds in attention_resolutions:
                    layers.append(attention_layer(ch, transformer_depth[level], "input"))
                self.input_blocks.append(TimestepEmbedSequential(*layers))
                input_block_chans.append(ch)
            if level != len(channel_mult) - 1:
                ds *= 2
                down = (
                    resblock(ch, ch, down=True)
                    if resblock_updown
                    else Downsample(ch, conv_resample, dims=dims, out_channels=ch, third_down=time_downup)
                )
                self.input_blocks.append(TimestepEmbedSequential(down))
                input_block_chans.append(ch)

        self.middle_block = TimestepEmbedSequential(
            resblock(ch, ch), attention_layer(ch, transformer_depth_middle, "middle"), resblock(ch, ch)
        )

        self.output_blocks = nn.ModuleList([])
        for level, mult in list(enumerate(channel_mult))[::-1]:
            for i in range(num_res_blocks + 1):
                skip_ch = input_block_chans.pop()
                layers = [resblock(ch + skip_ch, model_channels * mult)]
                ch = model_channels * mult
                if ds in attention_resolutions:
                    layers.append(attention_layer(ch, transformer_depth[level], "output"))
                if level and i == num_res_blocks:
                    ds //= 2
                    layers.append(
                        resblock(ch, ch, up=True)
                        if resblock_updown
                        else Upsample(ch, conv_resample, dims=dims, out_channels=ch, third_up=time_downup)
                    )
                self.output_blocks.append(TimestepEmbedSequential(*layers))

        self.out = nn.Sequential(
            normalization(ch), nn.SiLU(), zero_module(conv_nd(dims, model_channels, out_channels, 3, padding=1))
        )

    def transformer_settings(self, depth: int, stage: str) -> dict:
        """Keyword arguments of a UNet transformer of `depth` blocks in `stage` (input, middle, output)."""
        st = self.layer_settings
        return dict(
            depth=depth,
            context_dim=st["context_dim"],
            time_context_dim=st["time_context_dim"],
            dropout=st["dropout"],
            ff_in=st["extra_ff_mix_layer"],
            use_spatial_context=st["use_spatial_context"],
            merge_strategy=st["merge_strategy"],
            merge_factor=st["merge_factor"],
            checkpoint=st["use_checkpoint"],
            use_linear=st["use_linear_in_transformer"],
            attn_mode=st["spatial_transformer_attn_type"],
            disable_temporal_crossattention=st["disable_temporal_crossattention"],
            max_time_embed_period=st["max_ddpm_temb_period"],
            motion_knobs=self.motion_knobs,
            stage=stage,
        )

    def resblock_settings(self, out_ch: Optional[int], down: bool, up: bool) -> dict:
        """Keyword arguments of a UNet residual block (all but the channels in and the time kernel)."""
        st = self.layer_settings
        return dict(
            emb_channels=st["time_embed_dim"],
            dropout=st["dropout"],
            merge_factor=st["merge_factor"],
            merge_strategy=st["merge_strategy"],
            out_channels=out_ch,
            dims=st["dims"],
            use_checkpoint=st["use_checkpoint"],
            use_scale_shift_norm=st["use_scale_shift_norm"],
            down=down,
            up=up,
        )

    def attention_layer(self, ch: int, n_heads: int, d_head: int, depth: int, stage: str) -> nn.Module:
        """The transformer after a resblock at an attention resolution."""
        return SpatialVideoTransformer(ch, n_heads, d_head, **self.transformer_settings(depth, stage))

    def resblock(self, ch: int, out_ch: Optional[int], down: bool = False, up: bool = False) -> nn.Module:
        """A residual block of the UNet (ch -> out_ch channels, optionally down- or upsampling)."""
        kernel = self.layer_settings["video_kernel_size"]
        return VideoResBlock(channels=ch, video_kernel_size=kernel, **self.resblock_settings(out_ch, down, up))

    def set_motion_knobs(self, **knobs) -> MotionKnobs:
        """Change motion knobs on the built model, e.g. `unet.set_motion_knobs(temporal_attn_scale=2.0)`.

        Keyword names are the YAML keys; knobs not named keep their value; values are validated
        (ValueError) before anything changes. No weights are touched, so setting the defaults
        back restores upstream's outputs bit for bit. Returns the knobs now in effect.
        """
        self.motion_knobs = self._supported(self.motion_knobs.updated(**knobs))
        self._push_motion_knobs()
        return self.motion_knobs

    def set_motion_score(self, score: Optional[float]) -> Optional[int]:
        """Set the motion score m in [0, 1] that sizes an "auto" window (clipped; None unsets it).

        Returns the window size now in use, or None when attn_window_size is not auto (or the score
        is None). The pipeline (sgm.inference) calls this before the first step and, with the
        sampler's attn_window_motion latent, after every step.
        """
        if score is not None and not math.isfinite(score):
            raise ValueError(f"motion score must be a finite number, got {score!r}")
        self.motion_score = None if score is None else float(score)
        knobs = self._push_motion_knobs()
        return knobs.attn_window_size if self.motion_knobs.adaptive_window and score is not None else None

    @contextmanager
    def motion_knobs_applied(self, knobs: MotionKnobs) -> Iterator[MotionKnobs]:
        """Use `knobs` (no motion score set) inside the `with` block; the knobs and motion score
        the model had are back afterwards, also when the block raised."""
        saved = (self.motion_knobs, self.motion_score)
        self.motion_knobs, self.motion_score = self._supported(knobs), None
        try:
            yield self._push_motion_knobs()
        finally:
            self.motion_knobs, self.motion_score = saved
            self._push_motion_knobs()

    has_view_attention = False

    def _supported(self, knobs: MotionKnobs) -> MotionKnobs:
        """`knobs`, or ValueError if one of them acts on a part this network lacks."""
        if knobs.view_attn_scale != 1.0 and not self.has_view_attention:
            raise ValueError(
                f"view_attn_scale acts on SV4D's attention over views; {type(self).__name__} has none"
            )
        return knobs

    def _push_motion_knobs(self) -> MotionKnobs:
        """Hand the knobs, an "auto" window sized by motion_score, to every transformer; returns them."""
        knobs = self.motion_knobs.resolved(self.motion_score)
        for module in self.modules():
            if isinstance(module, (SpatialVideoTransformer, PostHocSpatialTransformerWithTimeMixingAndMotion)):
                module.set_motion_knobs(knobs)
        return knobs

    def forward(
        self,
        x: torch.Tensor,
        timesteps: torch.Tensor,
        context: Optional[torch.Tensor] = None,
        y: Optional[torch.Tensor] = None,
        time_context: Optional[torch.Tensor] = None,
        num_video_frames: Optional[int] = None,
        image_only_indicator: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        emb = self.embedding(timesteps, y)
        extra = dict(
            context=context,
            image_only_indicator=image_only_indicator,
            time_context=time_context,
            num_video_frames=num_video_frames,
        )
        return self.run_blocks(x, emb, extra)

    def embedding(self, timesteps: torch.Tensor, y: Optional[torch.Tensor]) -> torch.Tensor:
        """(N, 4 * model_channels): the time embedding, plus the label embedding of y when class-conditional."""
        if (y is not None) != (self.num_classes is not None):
            raise ValueError("y must be given exactly when the model is class-conditional (num_classes set)")
        emb = self.time_embed(timestep_embedding(timesteps, self.model_channels))
        return emb + self.label_emb(y) if self.num_classes is not None else emb

    def run_blocks(self, x: torch.Tensor, emb: torch.Tensor, extra: dict) -> torch.Tensor:
        """Input blocks, middle block, output blocks (with skips) and the output head."""
        skips = []
        h = x
        for module in self.input_blocks:
            h = module(h, emb, **extra)
            skips.append(h)
        h = self.middle_block(h, emb, **extra)
        for module in self.output_blocks:
            h = module(torch.cat([h, skips.pop()], dim=1), emb, **extra)
        return self.out(h.type(x.dtype))


class PostHocResBlockWithTime(VideoResBlock):
    """SV4D's VideoResBlock: the temporal ResBlock (convolving over the T*V rows of a clip) is named
    time_mix_blocks, and the blend always uses the learned alpha (image_only_indicator is read as 0)."""

    def __init__(self, channels, emb_channels, dropout, time_kernel_size=3, merge_strategy="fixed", merge_factor=0.5, **kwargs):
        super().__init__(
            channels,
            emb_channels,
            dropout,
            video_kernel_size=time_kernel_size,
            merge_strategy=merge_strategy,
            merge_factor=merge_factor,
            **kwargs,
        )
        self.time_mix_blocks = self.time_stack
        del self.time_stack

    def forward(self, x, emb, num_video_frames, image_only_indicator=None):
        x = ResBlock.forward(self, x, emb)
        x_spatial = rearrange(x, "(b t) c h w -> b c t h w", t=num_video_frames)
        x_temporal = self.time_mix_blocks(x_spatial, rearrange(emb, "(b t) ... -> b t ...", t=num_video_frames))
        no_images = torch.zeros(x_spatial.shape[0], num_video_frames, device=x.device)
        x = self.time_mixer(x_spatial=x_spatial, x_temporal=x_temporal, image_only_indicator=no_images)
        return rearrange(x, "b c t h w -> (b t) c h w")


class SpatialUNetModelWithTime(VideoUNet):
    """The UNet of SV4D and SV4D 2.0 (constructor follows upstream's YAML schema).

    x: (B*T*V, C, H, W) with rows (b t v); context (B, T, D); y (B*T*V, adm_in_channels);
    cond_view (B*V, 4, H, W) latents of the reference views; cond_motion is accepted and unused,
    as upstream. Only the released configs' form is built (spatial transformers with motion
    attention, temporal resblocks, non-legacy mixers); other values raise ValueError. The motion
    knobs act on the attention over frames, view_attn_scale on the attention over views.
    """

    has_view_attention = True

    def __init__(
        self,
        in_channels: int,
        model_channels: int,
        out_channels: int,
        num_res_blocks: int,
        attention_resolutions: List[int],
        dropout: float = 0.0,
        channel_mult: List[int] = (1, 2, 4, 8),
        conv_resample: bool = True,
        dims: int = 2,
        num_classes: Optional[Union[int, str]] = None,
        use_checkpoint: bool = False,
        num_heads: int = -1,
        num_head_channels: int = -1,
        num_heads_upsample: int = -1,
        use_scale_shift_norm: bool = False,
        resblock_updown: bool = False,
        use_new_attention_order: bool = False,
        use_spatial_transformer: bool = False,
        transformer_depth: Union[List[int], int] = 1,
        transformer_depth_middle: Optional[int] = None,
        context_dim: Optional[int] = None,
        time_downup: bool = False,
        time_context_dim: Optional[int] = None,
        view_context_dim: Optional[int] = None,
        motion_context_dim: Optional[int] = 4,
        extra_ff_mix_layer: bool = False,
        use_spatial_context: bool = False,
        time_block_merge_strategy: str = "fixed",
        time_block_merge_factor: float = 0.5,
        view_block_merge_factor: float = 0.5,
        motion_block_merge_factor: float = 0.5,
        spatial_transformer_attn_type: str = "softmax",
        time_kernel_size: Union[int, List[int]] = 3,
        use_linear_in_transformer: bool = False,
        legacy: bool = True,
        adm_in_channels: Optional[int] = None,
        use_temporal_resblock: bool = True,
        disable_temporal_crossattention: bool = False,
        time_mix_legacy: bool = True,
        max_ddpm_temb_period: int = 10000,
        replicate_time_mix_bug: bool = False,
        use_motion_attention: bool = False,
        use_camera_emb: bool = False,
        use_3d_attention: bool = False,
        separate_motion_merge_factor: bool = False,
        **motion_knobs,
    ):
        unsupported = {
            "use_spatial_transformer": (use_spatial_transformer, True),
            "use_motion_attention": (use_motion_attention, True),
            "use_temporal_resblock": (use_temporal_resblock, True),
            "time_mix_legacy": (time_mix_legacy, False),
        }
        for key, (value, needed) in unsupported.items():
            if bool(value) != needed:
                raise ValueError(f"SpatialUNetModelWithTime is built only with {key}: {needed} (the released SV4D form)")
        if use_camera_emb and adm_in_channels != 4 * model_channels:
            raise ValueError("use_camera_emb needs adm_in_channels == 4 * model_channels")
        self.sv4d_settings = dict(
            motion_context_dim=motion_context_dim,
            merge_factor_motion=motion_block_merge_factor,
            use_camera_emb=use_camera_emb,
            use_3d_attention=use_3d_attention,
            separate_motion_merge_factor=separate_motion_merge_factor,
            adm_in_channels=adm_in_channels,
        )
        super().__init__(
            in_channels,
            model_channels,
            out_channels,
            num_res_blocks,
            attention_resolutions,
            dropout=dropout,
            channel_mult=channel_mult,
            conv_resample=conv_resample,
            dims=dims,
            num_classes=num_classes,
            use_checkpoint=use_checkpoint,
            num_heads=num_heads,
            num_head_channels=num_head_channels,
            use_scale_shift_norm=use_scale_shift_norm,
            resblock_updown=resblock_updown,
            transformer_depth=transformer_depth,
            transformer_depth_middle=transformer_depth_middle,
            context_dim=context_dim,
            time_downup=time_downup,
            time_context_dim=time_context_dim,
            extra_ff_mix_layer=extra_ff_mix_layer,
            use_spatial_context=use_spatial_context,
            merge_strategy=time_block_merge_strategy,
            merge_factor=time_block_merge_factor,
            spatial_transformer_attn_type=spatial_transformer_attn_type,
            video_kernel_size=time_kernel_size,
            use_linear_in_transformer=use_linear_in_transformer,
            adm_in_channels=adm_in_channels,
            disable_temporal_crossattention=disable_temporal_crossattention,
            max_ddpm_temb_period=max_ddpm_temb_period,
            **motion_knobs,
        )

    def attention_layer(self, ch: int, n_heads: int, d_head: int, depth: int, stage: str) -> nn.Module:
        settings = {**self.transformer_settings(depth, stage), **self.sv4d_settings}
        return PostHocSpatialTransformerWithTimeMixingAndMotion(ch, n_heads, d_head, **settings)

    def resblock(self, ch: int, out_ch: Optional[int], down: bool = False, up: bool = False) -> nn.Module:
        kernel = self.layer_settings["video_kernel_size"]
        return PostHocResBlockWithTime(channels=ch, time_kernel_size=kernel, **self.resblock_settings(out_ch, down, up))

    def forward(
        self,
        x: torch.Tensor,
        timesteps: torch.Tensor,
        context: Optional[torch.Tensor] = None,
        y: Optional[torch.Tensor] = None,
        time_context: Optional[torch.Tensor] = None,
        num_video_frames: Optional[int] = None,
        image_only_indicator: Optional[torch.Tensor] = None,
        cond_view: Optional[torch.Tensor] = None,
        cond_motion: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        if context is None or cond_view is None:
            raise ValueError("SpatialUNetModelWithTime needs context (B, T, D) and cond_view (B*V, C, H, W)")
        emb = self.embedding(timesteps, y)
        extra = dict(context=context, num_video_frames=num_video_frames, cond_view=cond_view)
        return self.run_blocks(x, emb, extra)
