"""The preconditioned denoiser D(x; sigma) = c_skip x + c_out F(c_in x, c_noise)."""
from typing import Dict

import torch
from torch import nn

from ...util import append_dims, instantiate_from_config


class Denoiser(nn.Module):
    def __init__(self, scaling_config: Dict):
        super().__init__()
        self.scaling = instantiate_from_config(scaling_config)

    def possibly_quantize_sigma(self, sigma: torch.Tensor) -> torch.Tensor:
        return sigma

    def possibly_quantize_c_noise(self, c_noise: torch.Tensor) -> torch.Tensor:
        return c_noise

    def forward(self, network: nn.Module, input: torch.Tensor, sigma: torch.Tensor, cond: Dict, **additional_model_inputs) -> torch.Tensor:
        """input (N, C, h, w) noised latents, sigma (N,) -> denoised estimate (N, C, h, w)."""
        sigma = self.possibly_quantize_sigma(sigma)
        sigma_shape = sigma.shape
        sigma = append_dims(sigma, input.ndim)
        c_skip, c_out, c_in, c_noise = self.scaling(sigma)
        c_noise = self.possibly_quantize_c_noise(c_noise.reshape(sigma_shape))
        return network(input * c_in, c_noise, cond, **additional_model_inputs) * c_out + input * c_skip


class DiscreteDenoiser(Denoiser):
    """A denoiser of a model trained on `num_idx` discrete noise levels (a discretization, e.g.
    LegacyDDPMDiscretization, smallest first with `flip`): sigma is moved to the nearest level and,
    with `quantize_c_noise`, the network sees that level's index as its noise input."""

    def __init__(self, scaling_config: Dict, num_idx: int, discretization_config: Dict, do_append_zero: bool = False,
                 quantize_c_noise: bool = True, flip: bool = True):
        super().__init__(scaling_config)
        self.register_buffer("sigmas", instantiate_from_config(discretization_config)(num_idx, do_append_zero=do_append_zero, flip=flip),
                             persistent=False)
        self.quantize_c_noise = quantize_c_noise

    def sigma_to_idx(self, sigma: torch.Tensor) -> torch.Tensor:
        return (sigma[:, None] - self.sigmas[None, :].to(sigma.device)).abs().argmin(dim=1).view(sigma.shape)

    def idx_to_sigma(self, idx: torch.Tensor) -> torch.Tensor:
        return self.sigmas.to(idx.device)[idx]

    def possibly_quantize_sigma(self, sigma: torch.Tensor) -> torch.Tensor:
        return self.idx_to_sigma(self.sigma_to_idx(sigma))

    def possibly_quantize_c_noise(self, c_noise: torch.Tensor) -> torch.Tensor:
        return self.sigma_to_idx(c_noise) if self.quantize_c_noise else c_noise
