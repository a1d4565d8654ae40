"""Preconditioning coefficients (c_skip, c_out, c_in, c_noise) as functions of sigma."""
import torch


class VScalingWithEDMcNoise:
    """v-prediction with unit data std: c_skip = 1/(s^2+1), c_out = -s/sqrt(s^2+1), c_in = 1/sqrt(s^2+1), c_noise = log(s)/4."""

    def __call__(self, sigma: torch.Tensor):
        c_skip = 1.0 / (sigma**2 + 1.0)
        c_out = -sigma / (sigma**2 + 1.0) ** 0.5
        c_in = 1.0 / (sigma**2 + 1.0) ** 0.5
        c_noise = 0.25 * sigma.log()
        return c_skip, c_out, c_in, c_noise


class EDMScaling:
    """EDM (Karras et al. 2022) with data std sigma_data: c_skip = sd^2/(s^2+sd^2),
    c_out = s sd/sqrt(s^2+sd^2), c_in = 1/sqrt(s^2+sd^2), c_noise = log(s)/4."""

    def __init__(self, sigma_data: float = 0.5):
        self.sigma_data = sigma_data

    def __call__(self, sigma: torch.Tensor):
        total = sigma**2 + self.sigma_data**2
        c_skip = self.sigma_data**2 / total
        c_out = sigma * self.sigma_data / total**0.5
        c_in = 1.0 / total**0.5
        c_noise = 0.25 * sigma.log()
        return c_skip, c_out, c_in, c_noise


class EpsScaling:
    """epsilon-prediction: c_skip = 1, c_out = -s, c_in = 1/sqrt(s^2+1), c_noise = s."""

    def __call__(self, sigma: torch.Tensor):
        c_skip = torch.ones_like(sigma, device=sigma.device)
        c_out = -sigma
        c_in = 1.0 / (sigma**2 + 1.0) ** 0.5
        c_noise = sigma.clone()
        return c_skip, c_out, c_in, c_noise


class VScaling:
    """v-prediction: as VScalingWithEDMcNoise but c_noise = s."""

    def __call__(self, sigma: torch.Tensor):
        c_skip = 1.0 / (sigma**2 + 1.0)
        c_out = -sigma / (sigma**2 + 1.0) ** 0.5
        c_in = 1.0 / (sigma**2 + 1.0) ** 0.5
        c_noise = sigma.clone()
        return c_skip, c_out, c_in, c_noise
