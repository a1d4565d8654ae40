"""Per-sigma weights of the denoising loss."""
import torch


class EDMWeighting:
    """lambda(sigma) = (sigma^2 + sigma_data^2) / (sigma * sigma_data)^2: unit effective weight under EDM scaling."""

    def __init__(self, sigma_data: float = 0.5):
        self.sigma_data = sigma_data

    def __call__(self, sigma: torch.Tensor) -> torch.Tensor:
        return (sigma**2 + self.sigma_data**2) / (sigma * self.sigma_data) ** 2


class VWeighting(EDMWeighting):
    """EDM weighting with sigma_data = 1, the match of v-prediction scaling (VScalingWithEDMcNoise)."""

    def __init__(self):
        super().__init__(sigma_data=1.0)


class UnitWeighting:
    """lambda(sigma) = 1."""

    def __call__(self, sigma: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(sigma, device=sigma.device)


class EpsWeighting:
    """lambda(sigma) = 1 / sigma^2: unit effective weight under epsilon scaling."""

    def __call__(self, sigma: torch.Tensor) -> torch.Tensor:
        return sigma**-2.0
