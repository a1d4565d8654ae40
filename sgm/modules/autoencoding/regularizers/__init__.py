"""Latent regularizers of the autoencoders."""
import torch
from torch import nn

from ...distributions.distributions import DiagonalGaussianDistribution


class DiagonalGaussianRegularizer(nn.Module):
    """Encoder moments (B, 2C, h, w) -> latent (B, C, h, w): a sample, or the mean when sample=False."""

    def __init__(self, sample: bool = True):
        super().__init__()
        self.sample = sample

    def get_trainable_parameters(self):
        yield from ()

    def forward(self, z: torch.Tensor):
        posterior = DiagonalGaussianDistribution(z)
        z = posterior.sample() if self.sample else posterior.mode()
        kl_loss = posterior.kl()
        return z, {"kl_loss": torch.sum(kl_loss) / kl_loss.shape[0]}


class IdentityRegularizer(nn.Module):
    """No regularization: the encoder output is the latent (for fixed, invertible first stages)."""

    def get_trainable_parameters(self):
        yield from ()

    def forward(self, z: torch.Tensor):
        return z, {}
