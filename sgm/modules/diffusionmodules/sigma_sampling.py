"""Noise levels drawn for training."""
import torch


class EDMSampling:
    """log(sigma) ~ N(p_mean, p_std^2) (Karras et al. 2022); SVD trains with p_mean 0.7, p_std 1.6."""

    def __init__(self, p_mean: float = -1.2, p_std: float = 1.2):
        self.p_mean = p_mean
        self.p_std = p_std

    def __call__(self, n_samples: int, rand=None) -> torch.Tensor:
        normal = torch.randn((n_samples,)) if rand is None else rand
        return torch.exp(self.p_mean + self.p_std * normal)


class ZeroSampler:
    """sigma = 1e-5 for every sample (SV4D's conditioning frames); draws (and discards) the
    (n_samples,) normal upstream draws, so the generator advances as upstream's does."""

    def __call__(self, n_samples: int, rand=None) -> torch.Tensor:
        drawn = torch.randn((n_samples,)) if rand is None else rand
        return torch.zeros_like(drawn) + 1.0e-5
