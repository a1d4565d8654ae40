"""A fixed linear first stage: p x p pixel blocks projected onto a few channels (for the toy model).

Encoder: (B, C, H, W) -> (B, k, H/p, W/p), latent = W (block - mean); decoder: block = W^T latent +
mean. With W the top-k principal directions of the blocks (fitted by scripts/toy/train_toy_model.py)
this is the best linear autoencoder of its size; it is not trained with the diffusion model.
"""
import torch
import torch.nn.functional as F
from torch import nn


class PatchProjectionEncoder(nn.Module):
    def __init__(self, patch_size: int = 4, in_channels: int = 3, latent_channels: int = 8):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_channels * patch_size**2, latent_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.pixel_unshuffle(x, self.patch_size))


class PatchProjectionDecoder(nn.Module):
    def __init__(self, patch_size: int = 4, out_channels: int = 3, latent_channels: int = 8):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(latent_channels, out_channels * patch_size**2, kernel_size=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(self.proj(z), self.patch_size)

    @torch.no_grad()
    def set_basis(self, encoder: PatchProjectionEncoder, basis: torch.Tensor, mean: torch.Tensor) -> None:
        """Set encoder and decoder from orthonormal directions `basis` (k, C*p*p) and the block `mean`."""
        encoder.proj.weight.copy_(basis[:, :, None, None])
        encoder.proj.bias.copy_(-basis @ mean)
        self.proj.weight.copy_(basis.T[:, :, None, None])
        self.proj.bias.copy_(mean)
