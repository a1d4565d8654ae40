"""Spatio-temporal transformer of the VideoUNet: spatial blocks interleaved with temporal blocks.

Shapes: x enters SpatialVideoTransformer as (B*T, C, H, W), frames of one video contiguous.
"""
from typing import Optional

import torch
from einops import rearrange, repeat
from torch import nn

from .attention import FeedForward, SpatialTransformer, attention_class
from .diffusionmodules.util import AlphaBlender, linear, timestep_embedding
from .motion import MotionKnobs, frame_positions


class VideoTransformerBlock(nn.Module):
    """Transformer over the T frames at each spatial position: (B*T, S, C) -> (B*T, S, C).

    attn1 is the temporal self-attention (the motion knobs act there), attn2 attends to `context`
    (one token per video).
    """

    def __init__(
        self,
        dim,
        n_heads,
        d_head,
        dropout=0.0,
        context_dim=None,
        gated_ff=True,
        checkpoint=True,
        timesteps=None,
        ff_in=False,
        inner_dim=None,
        attn_mode="softmax",
        disable_self_attn=False,
        disable_temporal_crossattention=False,
        switch_temporal_ca_to_sa=False,
        motion_knobs: MotionKnobs = MotionKnobs(),
    ):
        super().__init__()
        attn_cls = attention_class(attn_mode)
        self.ff_in = ff_in or inner_dim is not None
        if inner_dim is None:
            inner_dim = dim
        if n_heads * d_head != inner_dim:
            raise ValueError(f"n_heads * d_head ({n_heads} * {d_head}) must equal inner_dim ({inner_dim})")
        self.is_res = inner_dim == dim
        if self.ff_in:
            self.norm_in = nn.LayerNorm(dim)
            self.ff_in = FeedForward(dim, dim_out=inner_dim, dropout=dropout, glu=gated_ff)
        self.timesteps = timesteps
        self.disable_self_attn = disable_self_attn
        self.attn1 = attn_cls(
            query_dim=inner_dim,
            heads=n_heads,
            dim_head=d_head,
            context_dim=context_dim if disable_self_attn else None,
            dropout=dropout,
            motion_knobs=None if disable_self_attn else motion_knobs,
        )
        self.ff = FeedForward(inner_dim, dim_out=dim, dropout=dropout, glu=gated_ff)
        self.switch_temporal_ca_to_sa = switch_temporal_ca_to_sa
        if disable_temporal_crossattention:
            if switch_temporal_ca_to_sa:
                raise ValueError("switch_temporal_ca_to_sa needs temporal cross-attention enabled")
            self.attn2 = None
        else:
            self.norm2 = nn.LayerNorm(inner_dim)
            self.attn2 = attn_cls(
                query_dim=inner_dim,
                context_dim=None if switch_temporal_ca_to_sa else context_dim,
                heads=n_heads,
                dim_head=d_head,
                dropout=dropout,
            )
        self.norm1 = nn.LayerNorm(inner_dim)
        self.norm3 = nn.LayerNorm(inner_dim)
        self.checkpoint = checkpoint

    def forward(self, x, context=None, timesteps=None):
        if self.checkpoint and self.training:
            return torch.utils.checkpoint.checkpoint(self._forward, x, context, timesteps, use_reentrant=False)
        return self._forward(x, context, timesteps)

    def _forward(self, x, context=None, timesteps=None):
        timesteps = self.timesteps or timesteps
        if not timesteps:
            raise ValueError("VideoTransformerBlock needs the number of frames (timesteps)")
        bt, s, c = x.shape
        x = rearrange(x, "(b t) s c -> (b s) t c", t=timesteps)
        if self.ff_in:
            x_skip = x
            x = self.ff_in(self.norm_in(x))
            if self.is_res:
                x = x + x_skip
        x = self.attn1(self.norm1(x), context=context if self.disable_self_attn else None) + x
        if self.attn2 is not None:
            ctx = None if self.switch_temporal_ca_to_sa else context
            x = self.attn2(self.norm2(x), context=ctx) + x
        x_skip = x
        x = self.ff(self.norm3(x))
        if self.is_res:
            x = x + x_skip
        return rearrange(x, "(b s) t c -> (b t) s c", s=s, b=bt // timesteps)


class SpatialVideoTransformer(SpatialTransformer):
    """SpatialTransformer whose every block is followed by a temporal block, blended by AlphaBlender.

    Frame positions (0..T-1, or interpolated by position_embedding_frames) are embedded (sinusoid
    of `in_channels` dims, then an MLP) and added to the temporal branch's input. `stage` (input,
    middle or output; None outside a UNet) selects which stage-limited knobs apply here.
    """

    def __init__(
        self,
        in_channels,
        n_heads,
        d_head,
        depth=1,
        dropout=0.0,
        use_linear=False,
        context_dim=None,
        use_spatial_context=False,
        timesteps=None,
        merge_strategy="fixed",
        merge_factor=0.5,
        time_context_dim=None,
        ff_in=False,
        checkpoint=False,
        time_depth=1,
        attn_mode="softmax",
        disable_self_attn=False,
        disable_temporal_crossattention=False,
        max_time_embed_period=10000,
        motion_knobs: MotionKnobs = MotionKnobs(),
        stage: Optional[str] = None,
    ):
        super().__init__(
            in_channels,
            n_heads,
            d_head,
            depth=depth,
            dropout=dropout,
            attn_type=attn_mode,
            use_checkpoint=checkpoint,
            context_dim=context_dim,
            use_linear=use_linear,
            disable_self_attn=disable_self_attn,
        )
        self.time_depth = time_depth
        self.depth = depth
        self.max_time_embed_period = max_time_embed_period
        inner_dim = n_heads * d_head
        if use_spatial_context:
            time_context_dim = context_dim
        self.time_stack = nn.ModuleList(
            [
                VideoTransformerBlock(
                    inner_dim,
                    n_heads,
                    d_head,
                    dropout=dropout,
                    context_dim=time_context_dim,
                    timesteps=timesteps,
                    checkpoint=checkpoint,
                    ff_in=ff_in,
                    inner_dim=inner_dim,
                    attn_mode=attn_mode,
                    disable_self_attn=disable_self_attn,
                    disable_temporal_crossattention=disable_temporal_crossattention,
                    motion_knobs=motion_knobs.for_stage(stage),
                )
                for _ in range(depth)
            ]
        )
        self.use_spatial_context = use_spatial_context
        self.in_channels = in_channels
        time_embed_dim = in_channels * 4
        self.time_pos_embed = nn.Sequential(
            linear(in_channels, time_embed_dim), nn.SiLU(), linear(time_embed_dim, in_channels)
        )
        self.time_mixer = AlphaBlender(alpha=merge_factor, merge_strategy=merge_strategy)
        self.motion_knobs = motion_knobs
        self.stage = stage

    def set_motion_knobs(self, knobs: MotionKnobs) -> None:
        """Use `knobs` for the frame positions and, as in effect in this transformer's stage, for
        every temporal self-attention of this transformer."""
        self.motion_knobs = knobs
        for block in self.time_stack:
            if block.attn1.motion_knobs is not None:
                block.attn1.motion_knobs = knobs.for_stage(self.stage)

    def forward(self, x, context=None, time_context=None, timesteps=None, image_only_indicator=None):
        _, _, h, w = x.shape
        x_in = x
        spatial_context = context
        if self.use_spatial_context:
            if context.ndim != 3:
                raise ValueError(f"use_spatial_context needs a (B*T, N, C) context, got {tuple(context.shape)}")
            time_context = repeat(context[::timesteps], "b ... -> (b n) ...", n=h * w)
        elif time_context is not None:
            time_context = repeat(time_context, "b ... -> (b n) ...", n=h * w)
            if time_context.ndim == 2:
                time_context = time_context[:, None]
        x = self._tokens_in(x)
        positions = frame_positions(timesteps, self.motion_knobs.position_embedding_frames, x.device)
        positions = positions.repeat(x.shape[0] // timesteps)
        t_emb = timestep_embedding(positions, self.in_channels, max_period=self.max_time_embed_period)
        emb = self.time_pos_embed(t_emb)[:, None, :]
        for block, mix_block in zip(self.transformer_blocks, self.time_stack):
            x = block(x, context=spatial_context)
            x_mix = mix_block(x + emb, context=time_context, timesteps=timesteps)
            x = self.time_mixer(x_spatial=x, x_temporal=x_mix, image_only_indicator=image_only_indicator)
        return self._tokens_out(x, h, w) + x_in
