"""Spatial transformer of the UNet and the one place that decides how attention is computed.

Shapes: tokens are (batch, sequence, channels); heads are split inside the attention call.
"""
import importlib.util
import logging
from functools import partial
from typing import Optional

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from .motion import MotionKnobs, windowed_attention

logger = logging.getLogger(__name__)

_XFORMERS_INSTALLED = importlib.util.find_spec("xformers") is not None
_xformers_ops = None


def _xformers():
    """The `xformers.ops` module, imported on first use (None if it fails to import)."""
    global _xformers_ops
    if _xformers_ops is None and _XFORMERS_INSTALLED:
        try:
            import xformers.ops as ops

            _xformers_ops = ops
        except Exception as err:  # a broken build must not break SDPA users
            logger.warning("xformers is installed but failed to import (%s); using SDPA", err)
            return None
    return _xformers_ops


def xformers_can_run(q: torch.Tensor) -> bool:
    """Whether xformers' memory-efficient kernel can run on tensors like `q` (CUDA, fp16/bf16)."""
    return (
        _XFORMERS_INSTALLED
        and q.is_cuda
        and q.dtype in (torch.float16, torch.bfloat16)
        and _xformers() is not None
    )


def multihead_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    heads: int,
    scale: Optional[float] = None,
    mask: Optional[torch.Tensor] = None,
    prefer_xformers: bool = False,
) -> torch.Tensor:
    """softmax(scale * q k^T) v per head.

    q: (B, Nq, heads*d); k, v: (B, Nk, heads*d) -> (B, Nq, heads*d).
    `scale=None` is 1/sqrt(d). xformers is used only when preferred and able to run on these
    tensors; otherwise torch's scaled_dot_product_attention.
    """
    if prefer_xformers and mask is None and xformers_can_run(q):
        q, k, v = (rearrange(t, "b n (h d) -> b n h d", h=heads).contiguous() for t in (q, k, v))
        out = _xformers().memory_efficient_attention(q, k, v, attn_bias=None, scale=scale)
        return rearrange(out, "b n h d -> b n (h d)")
    q, k, v = (rearrange(t, "b n (h d) -> b h n d", h=heads) for t in (q, k, v))
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
    return rearrange(out, "b h n d -> b n (h d)")


def temporal_self_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, knobs: MotionKnobs, prefer_xformers: bool = False
) -> torch.Tensor:
    """Self-attention over frames with the motion knobs applied. q, k, v: (B, T, heads*d) -> (B, T, heads*d).

    Keys times k, softmax scale sqrt(s / d) and, when w < T, windows of w frames (circular with
    attn_window_loop) fused per frame; at the defaults this is exactly multihead_attention(q, k, v, heads).
    `knobs` are those of this block's stage, with an "auto" window already resolved.
    """
    if knobs.adaptive_window:
        raise ValueError(
            "attn_window_size is auto but no motion score is set: call VideoUNet.set_motion_score(score) "
            "first (the sampling script does this at every step)"
        )
    if knobs.temporal_attn_k_scale != 1.0:
        k = k * knobs.temporal_attn_k_scale
    attend = partial(
        multihead_attention, heads=heads, scale=knobs.scale_for(q.shape[-1] // heads), prefer_xformers=prefer_xformers
    )
    size = knobs.attn_window_size
    if size is None or size >= q.shape[1]:
        return attend(q, k, v)
    return windowed_attention(
        q, k, v, size, knobs.window_stride, knobs.attn_window_fusion, attend, loop=knobs.attn_window_loop
    )


class GEGLU(nn.Module):
    """Linear to 2*dim_out, then value * GELU(gate)."""

    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out * 2)

    def forward(self, x):
        x, gate = self.proj(x).chunk(2, dim=-1)
        return x * F.gelu(gate)


class FeedForward(nn.Module):
    def __init__(self, dim, dim_out=None, mult=4, glu=False, dropout=0.0):
        super().__init__()
        inner_dim = int(dim * mult)
        dim_out = dim if dim_out is None else dim_out
        project_in = GEGLU(dim, inner_dim) if glu else nn.Sequential(nn.Linear(dim, inner_dim), nn.GELU())
        self.net = nn.Sequential(project_in, nn.Dropout(dropout), nn.Linear(inner_dim, dim_out))

    def forward(self, x):
        return self.net(x)


def Normalize(in_channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=32, num_channels=in_channels, eps=1e-6, affine=True)


class CrossAttention(nn.Module):
    """Multi-head attention of x (B, N, query_dim) over context (B, M, context_dim), SDPA backend.

    With `motion_knobs` set (only the temporal self-attention of VideoTransformerBlock), the
    sequence is the frames of a clip and the knobs apply (see temporal_self_attention).
    """

    prefer_xformers = False

    def __init__(self, query_dim, context_dim=None, heads=8, dim_head=64, dropout=0.0, backend=None, motion_knobs: Optional[MotionKnobs] = None):
        super().__init__()
        self.motion_knobs = motion_knobs
        inner_dim = dim_head * heads
        context_dim = query_dim if context_dim is None else context_dim
        self.heads = heads
        self.dim_head = dim_head
        self.to_q = nn.Linear(query_dim, inner_dim, bias=False)
        self.to_k = nn.Linear(context_dim, inner_dim, bias=False)
        self.to_v = nn.Linear(context_dim, inner_dim, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner_dim, query_dim), nn.Dropout(dropout))

    def forward(self, x, context=None, mask=None):
        context = x if context is None else context
        q, k, v = self.to_q(x), self.to_k(context), self.to_v(context)
        if self.motion_knobs is None:
            out = multihead_attention(q, k, v, self.heads, mask=mask, prefer_xformers=self.prefer_xformers)
        else:
            out = temporal_self_attention(q, k, v, self.heads, self.motion_knobs, prefer_xformers=self.prefer_xformers)
        return self.to_out(out)


class MemoryEfficientCrossAttention(CrossAttention):
    """Same weights as CrossAttention; uses xformers where it can run, SDPA elsewhere (e.g. CPU)."""

    prefer_xformers = True


class BasicTransformerBlock(nn.Module):
    """Self-attention, cross-attention and gated feed-forward, each pre-norm and residual."""

    ATTENTION_MODES = {
        "softmax": CrossAttention,
        "softmax-xformers": MemoryEfficientCrossAttention,
    }

    def __init__(
        self,
        dim,
        n_heads,
        d_head,
        dropout=0.0,
        context_dim=None,
        gated_ff=True,
        checkpoint=True,
        disable_self_attn=False,
        attn_mode="softmax",
        sdp_backend=None,
    ):
        super().__init__()
        attn_cls = attention_class(attn_mode)
        self.disable_self_attn = disable_self_attn
        self.attn1 = attn_cls(
            query_dim=dim,
            heads=n_heads,
            dim_head=d_head,
            dropout=dropout,
            context_dim=context_dim if disable_self_attn else None,
        )
        self.ff = FeedForward(dim, dropout=dropout, glu=gated_ff)
        self.attn2 = attn_cls(query_dim=dim, context_dim=context_dim, heads=n_heads, dim_head=d_head, dropout=dropout)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)
        self.checkpoint = checkpoint

    def forward(self, x, context=None):
        if self.checkpoint and self.training:
            return torch.utils.checkpoint.checkpoint(self._forward, x, context, use_reentrant=False)
        return self._forward(x, context)

    def _forward(self, x, context=None):
        x = self.attn1(self.norm1(x), context=context if self.disable_self_attn else None) + x
        x = self.attn2(self.norm2(x), context=context) + x
        return self.ff(self.norm3(x)) + x


def attention_class(attn_mode: str):
    """The attention module for a config's `attn_type` / `spatial_transformer_attn_type`."""
    try:
        return BasicTransformerBlock.ATTENTION_MODES[attn_mode]
    except KeyError:
        raise ValueError(
            f"unknown attention type {attn_mode!r}; expected one of {sorted(BasicTransformerBlock.ATTENTION_MODES)}"
        ) from None


class SpatialTransformer(nn.Module):
    """Transformer over the h*w tokens of each image: (B, C, H, W) -> (B, C, H, W), residual."""

    def __init__(
        self,
        in_channels,
        n_heads,
        d_head,
        depth=1,
        dropout=0.0,
        context_dim=None,
        disable_self_attn=False,
        use_linear=False,
        attn_type="softmax",
        use_checkpoint=True,
        sdp_backend=None,
    ):
        super().__init__()
        if context_dim is None or isinstance(context_dim, int):
            context_dim = [context_dim] * depth
        else:
            context_dim = list(context_dim)
            if len(context_dim) != depth:
                context_dim = [context_dim[0]] * depth
        self.in_channels = in_channels
        inner_dim = n_heads * d_head
        self.norm = Normalize(in_channels)
        self.use_linear = use_linear
        if use_linear:
            self.proj_in = nn.Linear(in_channels, inner_dim)
        else:
            self.proj_in = nn.Conv2d(in_channels, inner_dim, kernel_size=1)
        self.transformer_blocks = nn.ModuleList(
            [
                BasicTransformerBlock(
                    inner_dim,
                    n_heads,
                    d_head,
                    dropout=dropout,
                    context_dim=context_dim[d],
                    disable_self_attn=disable_self_attn,
                    attn_mode=attn_type,
                    checkpoint=use_checkpoint,
                )
                for d in range(depth)
            ]
        )
        if use_linear:
            self.proj_out = nn.Linear(inner_dim, in_channels)
        else:
            self.proj_out = nn.Conv2d(inner_dim, in_channels, kernel_size=1)

    def _tokens_in(self, x):
        """(B, C, H, W) -> normalised, projected tokens (B, H*W, inner)."""
        x = self.norm(x)
        if not self.use_linear:
            x = self.proj_in(x)
        x = rearrange(x, "b c h w -> b (h w) c").contiguous()
        return self.proj_in(x) if self.use_linear else x

    def _tokens_out(self, x, h, w):
        """Tokens (B, H*W, inner) -> projected (B, C, H, W)."""
        if self.use_linear:
            x = self.proj_out(x)
        x = rearrange(x, "b (h w) c -> b c h w", h=h, w=w).contiguous()
        return x if self.use_linear else self.proj_out(x)

    def forward(self, x, context=None):
        contexts = context if isinstance(context, list) else [context]
        _, _, h, w = x.shape
        x_in = x
        x = self._tokens_in(x)
        for i, block in enumerate(self.transformer_blocks):
            x = block(x, context=contexts[i if len(contexts) > 1 else 0])
        return self._tokens_out(x, h, w) + x_in
