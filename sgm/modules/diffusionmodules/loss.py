"""The denoising loss of diffusion training."""
from typing import Dict, List, Optional

import torch
from torch import nn

from ...util import append_dims, instantiate_from_config


class StandardDiffusionLoss(nn.Module):
    """E_sigma[ w(sigma) * |D(x + sigma n; sigma, c) - x|^2 ] over latents x (N, C, h, w).

    For video batches (N = B*T frames), conditioning the conditioner returns per clip (B rows:
    crossattn, concat) is repeated over the T = batch["num_video_frames"] frames, as at sampling.
    `batch2model_keys` names batch entries handed to the network (e.g. image_only_indicator,
    num_video_frames).
    """

    def __init__(
        self,
        sigma_sampler_config: Dict,
        loss_weighting_config: Dict,
        loss_type: str = "l2",
        offset_noise_level: float = 0.0,
        batch2model_keys: Optional[List[str]] = None,
    ):
        super().__init__()
        if loss_type not in ("l2", "l1"):
            raise ValueError(f"loss_type must be 'l2' or 'l1', got {loss_type!r}")
        self.sigma_sampler = instantiate_from_config(sigma_sampler_config)
        self.loss_weighting = instantiate_from_config(loss_weighting_config)
        self.loss_type = loss_type
        self.offset_noise_level = offset_noise_level
        self.batch2model_keys = set(batch2model_keys or [])

    def forward(self, network: nn.Module, denoiser: nn.Module, conditioner: nn.Module, input: torch.Tensor, batch: Dict) -> torch.Tensor:
        """Per-sample losses (N,)."""
        cond = conditioner(batch)
        frames = batch.get("num_video_frames")
        if frames:
            for key in ("crossattn", "concat"):
                if key in cond and cond[key].shape[0] * frames == input.shape[0]:
                    cond[key] = torch.repeat_interleave(cond[key], frames, dim=0)
        extra = {k: batch[k] for k in self.batch2model_keys if k in batch}
        sigmas = self.sigma_sampler(input.shape[0]).to(input)
        noise = torch.randn_like(input)
        if self.offset_noise_level > 0.0:
            noise = noise + self.offset_noise_level * append_dims(torch.randn(input.shape[0], device=input.device), input.ndim)
        noised = input + noise * append_dims(sigmas, input.ndim)
        output = denoiser(network, noised, sigmas, cond, **extra)
        weight = append_dims(self.loss_weighting(sigmas), input.ndim)
        err = (output - input) ** 2 if self.loss_type == "l2" else (output - input).abs()
        return torch.mean((weight * err).reshape(input.shape[0], -1), dim=1)
