"""Spatial, view and motion attention of SV4D / SV4D 2.0 (SpatialUNetModelWithTime).

Shapes: x enters as (B*T*V, C, H, W), rows ordered (b t v): B halves of the guided batch, T frames,
V views. context is (B, T, D) (one image embedding per frame), cond_view (B*V, 4, h0, w0) (latents
of the reference views), emb (B*T*V, 4*model_channels) (the UNet's time and label embedding).

Each transformer block runs, in order: spatial attention over the H*W tokens of one image; "view"
attention over the V views of one (frame, pixel) (upstream's time_mix_blocks); "motion" attention
over the T frames of one (view, pixel) (upstream's motion_blocks). The motion knobs act on the
motion attention and the frame embedding, view_attn_scale on the view attention (docs/PATCHES.md).
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .attention import SpatialTransformer
from .diffusionmodules.util import AlphaBlender, linear, timestep_embedding
from .motion import MotionKnobs, frame_positions
from .video_attention import VideoTransformerBlock


class BasicTransformerTimeMixBlock(VideoTransformerBlock):
    """Transformer over a sequence axis folded into the rows: (N*S, L, C) -> (N*S, L, C) with
    `timesteps` = S the sequence length (upstream's name for SV4D's view and motion blocks)."""


def view_knobs(knobs: MotionKnobs) -> MotionKnobs:
    """The knobs of the attention over views: s = s_v (view_attn_scale), nothing else."""
    return MotionKnobs(temporal_attn_scale=knobs.view_attn_scale)


def _mlp(dim_in: int, dim_hidden: int, dim_out: int) -> nn.Sequential:
    return nn.Sequential(linear(dim_in, dim_hidden), nn.SiLU(), linear(dim_hidden, dim_out))


class PostHocSpatialTransformerWithTimeMixingAndMotion(SpatialTransformer):
    """SpatialTransformer whose every block is followed by view attention and motion attention,
    each blended into the stream with a learned AlphaBlender (constructor follows upstream).

    use_camera_emb: the view embedding is an MLP (adm_in_channels -> C) of frame 0's UNet
    embedding of each view, instead of an MLP of the sinusoid of the view index.
    use_3d_attention: upstream's SV4D 2.0 view attention, which folds the (view, pixel) rows
    into sequences of V consecutive rows (see `_view_attention`).
    separate_motion_merge_factor: the motion branch has its own blend factor (time_mixer_motion).
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
        merge_factor_motion=0.5,
        time_context_dim=None,
        motion_context_dim=4,
        ff_in=False,
        checkpoint=False,
        attn_mode="softmax",
        disable_self_attn=False,
        disable_temporal_crossattention=False,
        max_time_embed_period=10000,
        use_camera_emb=False,
        use_3d_attention=False,
        separate_motion_merge_factor=False,
        adm_in_channels=None,
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
        if use_camera_emb and adm_in_channels is None:
            raise ValueError("use_camera_emb needs adm_in_channels")
        inner_dim = n_heads * d_head
        view_context_dim = context_dim if use_spatial_context else time_context_dim

        def mix_block(block_context_dim, knobs):
            return BasicTransformerTimeMixBlock(
                inner_dim,
                n_heads,
                d_head,
                dropout=dropout,
                context_dim=block_context_dim,
                timesteps=timesteps,
                checkpoint=checkpoint,
                ff_in=ff_in,
                inner_dim=inner_dim,
                attn_mode=attn_mode,
                disable_self_attn=disable_self_attn,
                disable_temporal_crossattention=disable_temporal_crossattention,
                motion_knobs=knobs,
            )

        self.time_mix_blocks = nn.ModuleList([mix_block(view_context_dim, view_knobs(motion_knobs)) for _ in range(depth)])
        self.motion_blocks = nn.ModuleList(
            [mix_block(motion_context_dim, motion_knobs.for_stage(stage)) for _ in range(depth)]
        )
        self.in_channels = in_channels
        self.max_time_embed_period = max_time_embed_period
        self.use_camera_emb = use_camera_emb
        self.use_3d_attention = use_3d_attention
        embed_dim = in_channels * 4
        self.time_mix_time_embed = _mlp(adm_in_channels if use_camera_emb else in_channels, embed_dim, in_channels)
        self.time_mix_motion_embed = _mlp(in_channels, embed_dim, in_channels)
        self.time_mixer = AlphaBlender(alpha=merge_factor, merge_strategy=merge_strategy)
        if separate_motion_merge_factor:
            self.time_mixer_motion = AlphaBlender(alpha=merge_factor_motion, merge_strategy=merge_strategy)
        self.motion_knobs = motion_knobs
        self.stage = stage

    def set_motion_knobs(self, knobs: MotionKnobs) -> None:
        """Use `knobs`: the frame knobs (stage-limited as in this transformer's stage) on every motion
        attention and the frame embedding, view_attn_scale on every view attention."""
        self.motion_knobs = knobs
        for block in self.motion_blocks:
            if block.attn1.motion_knobs is not None:
                block.attn1.motion_knobs = knobs.for_stage(self.stage)
        for block in self.time_mix_blocks:
            if block.attn1.motion_knobs is not None:
                block.attn1.motion_knobs = view_knobs(knobs)

    def _embedding(self, mlp: nn.Module, positions: torch.Tensor, batch: int) -> torch.Tensor:
        """MLP of the sinusoid of `positions` (L,), for each of `batch` rows -> (batch*L, 1, C)."""
        sinusoid = timestep_embedding(positions.repeat(batch), self.in_channels, max_period=self.max_time_embed_period)
        return mlp(sinusoid)[:, None]

    def _view_embedding(self, emb: torch.Tensor, b: int, t: int, v: int) -> torch.Tensor:
        """(B*V, 1, C): the view embedding added before the view attention."""
        if self.use_camera_emb:
            first_frame = emb.view(b, t, v, -1)[:, 0].reshape(b * v, -1)
            return self.time_mix_time_embed(first_frame)[:, None]
        return self._embedding(self.time_mix_time_embed, torch.arange(v, device=emb.device), b)

    def _view_attention(self, block, x, context, b, t, v, hw):
        """Attention over views of x (B*V, T*HW, C) -> same shape; context rows (b t hw).

        Plain: one sequence per (b, frame, pixel) holding its V views.
        3-D (upstream's use_3d_attention, reproduced as it runs, measured against its goldens):
        the rows are laid out (b v hw) x T, every V consecutive rows form one sequence for each
        frame (V raster-neighbouring pixels of one view, crossing into the next view where HW is
        not a multiple of V), and the context rows are used in their (b t hw) order unchanged.
        """
        if not self.use_3d_attention:
            return block(x, context=context, timesteps=v)
        c = x.shape[-1]
        rows = x.view(b * v, t, hw, c).transpose(1, 2).reshape(b * v * hw, t, c)
        out = block(rows, context=context, timesteps=v)
        return out.view(b * v, hw, t, c).transpose(1, 2).reshape(b * v, t * hw, c)

    def forward(self, x, context, cond_view, emb=None):
        """x (B*T*V, C, H, W), context (B, T, D), cond_view (B*V, c, h0, w0), emb (B*T*V, E) -> like x."""
        _, _, h, w = x.shape
        b, t, _ = context.shape
        v = cond_view.shape[0] // b
        hw = h * w
        x_in = x
        spatial_context = context[:, :, None].expand(b, t, v, -1).reshape(b * t * v, 1, -1)
        view_context = context[:, :, None].expand(b, t, hw, -1).reshape(b * t * hw, 1, -1)
        cond_view = F.interpolate(cond_view, size=(h, w), mode="bilinear")
        motion_context = cond_view.permute(0, 2, 3, 1).reshape(b * v * hw, 1, -1)

        x = self._tokens_in(x)
        c = x.shape[-1]
        positions = frame_positions(t, self.motion_knobs.position_embedding_frames, x.device)
        frame_emb = self._embedding(self.time_mix_motion_embed, positions, b)
        view_emb = self._view_embedding(emb, b, t, v)
        motion_mixer = getattr(self, "time_mixer_motion", self.time_mixer)
        no_images_v = torch.zeros(b, v, device=x.device)
        no_images_t = torch.zeros(b, t, device=x.device)
        for block, view_block, motion_block in zip(self.transformer_blocks, self.time_mix_blocks, self.motion_blocks):
            x = block(x, context=spatial_context)
            x = x.view(b, t, v, hw, c).transpose(1, 2).reshape(b * v, t * hw, c)
            mixed = self._view_attention(view_block, x + view_emb, view_context, b, t, v, hw)
            x = self.time_mixer(x_spatial=x, x_temporal=mixed, image_only_indicator=no_images_v)
            x = x.view(b, v, t, hw, c).transpose(1, 2).reshape(b * t, v * hw, c)
            mixed = motion_block(x + frame_emb, context=motion_context, timesteps=t)
            x = motion_mixer(x_spatial=x, x_temporal=mixed, image_only_indicator=no_images_t)
            x = x.reshape(b * t * v, hw, c)
        return self._tokens_out(x, h, w) + x_in
