"""OpenCLIP-layout Vision Transformer (image tower only), written here so no `open_clip` is needed.

Parameter names follow OpenCLIP (`visual.conv1`, `visual.transformer.resblocks.N.attn.in_proj_weight`,
...) so the released SVD checkpoints load as they are.
"""
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class VisionArch:
    embed_dim: int
    image_size: int
    patch_size: int
    width: int
    layers: int
    head_width: int
    mlp_ratio: float = 4.0


# Vision-tower dimensions per OpenCLIP arch name.
ARCHS = {
    "ViT-H-14": VisionArch(embed_dim=1024, image_size=224, patch_size=14, width=1280, layers=32, head_width=80),
    "ViT-tiny-test": VisionArch(embed_dim=32, image_size=224, patch_size=32, width=64, layers=2, head_width=32),
}


def vision_arch(name: str) -> VisionArch:
    try:
        return ARCHS[name]
    except KeyError:
        raise ValueError(f"unknown OpenCLIP arch {name!r}; known: {', '.join(sorted(ARCHS))}") from None


class SelfAttention(nn.Module):
    """Multi-head self-attention with a packed in-projection (nn.MultiheadAttention's parameter names)."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * width))
        self.out_proj = nn.Linear(width, width)
        nn.init.xavier_uniform_(self.in_proj_weight)

    def forward(self, x):
        b, n, c = x.shape
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)
        q, k, v = qkv.view(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.out_proj(out.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Sequential):
    def __init__(self, width: int, hidden: int):
        super().__init__()
        self.c_fc = nn.Linear(width, hidden)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(hidden, width)


class ResidualAttentionBlock(nn.Module):
    def __init__(self, width: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = SelfAttention(width, heads)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = Mlp(width, int(width * mlp_ratio))

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.resblocks = nn.ModuleList([ResidualAttentionBlock(width, heads, mlp_ratio) for _ in range(layers)])

    def forward(self, x):
        for block in self.resblocks:
            x = block(x)
        return x


class VisionTransformer(nn.Module):
    """Images (B, 3, S, S), already normalised -> embeddings (B, embed_dim) from the class token."""

    def __init__(self, arch: VisionArch):
        super().__init__()
        width = arch.width
        grid = arch.image_size // arch.patch_size
        scale = width**-0.5
        self.conv1 = nn.Conv2d(3, width, kernel_size=arch.patch_size, stride=arch.patch_size, bias=False)
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn(grid * grid + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = Transformer(width, arch.layers, width // arch.head_width, arch.mlp_ratio)
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, arch.embed_dim))

    def forward(self, x):
        x = self.conv1(x).flatten(2).transpose(1, 2)
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        x = self.transformer(self.ln_pre(x))
        return self.ln_post(x[:, 0]) @ self.proj


class CLIPImageTower(nn.Module):
    """Holds `visual` so the state-dict keys read `model.visual.*` as in OpenCLIP's CLIP."""

    def __init__(self, arch: str):
        super().__init__()
        self.visual = VisionTransformer(vision_arch(arch))
