"""Noise-level schedules: n sigmas, decreasing, with a final 0 appended by default."""
import torch

from ...util import append_zero


class Discretization:
    def __call__(self, n: int, do_append_zero: bool = True, device="cpu", flip: bool = False) -> torch.Tensor:
        sigmas = self.get_sigmas(n, device=device)
        if do_append_zero:
            sigmas = append_zero(sigmas)
        return torch.flip(sigmas, (0,)) if flip else sigmas

    def get_sigmas(self, n: int, device="cpu") -> torch.Tensor:
        raise NotImplementedError


class EDMDiscretization(Discretization):
    """Karras et al. (2022): sigma_i = (max^(1/rho) + i/(n-1) (min^(1/rho) - max^(1/rho)))^rho."""

    def __init__(self, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0):
        self.sigma_min = sigma_min
        self.sigma_max = sigma_max
        self.rho = rho

    def get_sigmas(self, n: int, device="cpu") -> torch.Tensor:
        ramp = torch.linspace(0, 1, n, device=device)
        min_inv_rho = self.sigma_min ** (1 / self.rho)
        max_inv_rho = self.sigma_max ** (1 / self.rho)
        return (max_inv_rho + ramp * (min_inv_rho - max_inv_rho)) ** self.rho


class LegacyDDPMDiscretization(Discretization):
    """The DDPM schedule (betas linear in sqrt from linear_start to linear_end over num_timesteps):
    sigma_t = sqrt((1 - alphabar_t) / alphabar_t) at n timesteps spread evenly over the schedule,
    largest first."""

    def __init__(self, linear_start: float = 0.00085, linear_end: float = 0.0120, num_timesteps: int = 1000):
        self.num_timesteps = num_timesteps
        betas = torch.linspace(linear_start**0.5, linear_end**0.5, num_timesteps, dtype=torch.float64) ** 2
        self.alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)

    def get_sigmas(self, n: int, device="cpu") -> torch.Tensor:
        if n < self.num_timesteps:
            steps = torch.linspace(self.num_timesteps - 1, 0, n + 1, dtype=torch.float64)[:-1].long().flip(0)
            alphas_cumprod = self.alphas_cumprod[steps]
        elif n == self.num_timesteps:
            alphas_cumprod = self.alphas_cumprod
        else:
            raise ValueError(f"at most {self.num_timesteps} steps, got {n}")
        sigmas = ((1.0 - alphas_cumprod) / alphas_cumprod).to(torch.float32).to(device) ** 0.5
        return torch.flip(sigmas, (0,))
