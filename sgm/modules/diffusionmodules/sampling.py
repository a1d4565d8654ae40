"""Samplers over a preconditioned denoiser (EDM formulation, Karras et al. 2022).

A sampler is called as sampler(denoiser, x, cond, uc) with x ~ N(0, I) of the latent shape and
denoiser(x, sigma, cond) -> D(x; sigma); it returns the sample at sigma = 0. An optional
`callback(info)` sees every step's guided denoised estimate, k-diffusion style:
info = {"i": step index, "sigma": sigma_hat of the step (tensor), "denoised": D (shape of x)}.
Noise drawn inside the loop (churn) comes from `generator` (torch's global RNG when None).

The sampler also holds the sampling-loop knobs (sgm.modules.motion.SamplingKnobs: initial-noise
correlation and rescheduling, the motion source of an auto window) as `sampling_knobs`; the
pipeline (sgm.inference) reads them there, and a call may override them.
"""
from typing import Callable, Dict, Optional

import torch
from tqdm.auto import tqdm

from ...util import append_dims, default, instantiate_from_config
from ..motion import SamplingKnobs
from .sampling_utils import to_d

DEFAULT_GUIDER = {"target": "sgm.modules.diffusionmodules.guiders.IdentityGuider"}


class BaseDiffusionSampler:
    def __init__(
        self,
        discretization_config: Dict,
        num_steps: Optional[int] = None,
        guider_config: Optional[Dict] = None,
        verbose: bool = False,
        device=None,
        noise_correlation: float = 0.0,
        shuffle_windowed_noise: bool = False,
        attn_window_motion: str = "bucket",
    ):
        self.sampling_knobs = SamplingKnobs(noise_correlation, shuffle_windowed_noise, attn_window_motion)
        self.num_steps = num_steps
        self.discretization = instantiate_from_config(discretization_config)
        self.guider = instantiate_from_config(default(guider_config, DEFAULT_GUIDER))
        self.verbose = verbose
        self.device = device

    def prepare_sampling_loop(self, x, cond, uc=None, num_steps=None):
        """Sigmas (n+1,), x scaled to the first noise level, and a per-sample ones vector."""
        sigmas = self.discretization(self.num_steps if num_steps is None else num_steps, device=self.device or x.device)
        uc = default(uc, cond)
        x = x * torch.sqrt(1.0 + sigmas[0] ** 2.0)
        s_in = x.new_ones([x.shape[0]])
        return x, s_in, sigmas, len(sigmas), cond, uc

    def denoise(self, x, denoiser, sigma, cond, uc):
        return self.guider(denoiser(*self.guider.prepare_inputs(x, sigma, cond, uc)), sigma)

    def get_sigma_gen(self, num_sigmas: int):
        steps = range(num_sigmas - 1)
        if self.verbose:
            steps = tqdm(steps, total=num_sigmas - 1, desc="Sampling", unit="step", leave=None)  # kept unless under another bar
        return steps


class SingleStepDiffusionSampler(BaseDiffusionSampler):
    def sampler_step(self, sigma, next_sigma, denoiser, x, cond, uc, *args, **kwargs):
        raise NotImplementedError

    def euler_step(self, x, d, dt):
        return x + dt * d


class EDMSampler(SingleStepDiffusionSampler):
    """Euler steps with optional stochastic churn (gamma) inside [s_tmin, s_tmax]."""

    def __init__(self, s_churn: float = 0.0, s_tmin: float = 0.0, s_tmax: float = float("inf"), s_noise: float = 1.0, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.s_churn = s_churn
        self.s_tmin = s_tmin
        self.s_tmax = s_tmax
        self.s_noise = s_noise

    def sampler_step(self, sigma, next_sigma, denoiser, x, cond, uc=None, gamma=0.0, on_denoised=None, generator=None):
        sigma_hat = sigma * (gamma + 1.0)
        if gamma > 0:
            eps = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype) * self.s_noise
            x = x + eps * append_dims(sigma_hat**2 - sigma**2, x.ndim) ** 0.5
        denoised = self.denoise(x, denoiser, sigma_hat, cond, uc)
        if on_denoised is not None:
            on_denoised(sigma_hat, denoised)
        d = to_d(x, sigma_hat, denoised)
        dt = append_dims(next_sigma - sigma_hat, x.ndim)
        return self.possible_correction_step(self.euler_step(x, d, dt), x, d, dt, next_sigma, denoiser, cond, uc)

    def possible_correction_step(self, euler_step, x, d, dt, next_sigma, denoiser, cond, uc):
        return euler_step

    def __call__(self, denoiser, x, cond, uc=None, num_steps=None, callback: Optional[Callable[[Dict], None]] = None, generator=None):
        x, s_in, sigmas, num_sigmas, cond, uc = self.prepare_sampling_loop(x, cond, uc, num_steps)
        for i in self.get_sigma_gen(num_sigmas):
            in_churn_range = self.s_tmin <= sigmas[i] <= self.s_tmax
            gamma = min(self.s_churn / (num_sigmas - 1), 2**0.5 - 1) if in_churn_range else 0.0
            on_denoised = None
            if callback is not None:
                on_denoised = lambda sigma_hat, denoised, i=i: callback({"i": i, "sigma": sigma_hat, "denoised": denoised})  # noqa: E731
            x = self.sampler_step(s_in * sigmas[i], s_in * sigmas[i + 1], denoiser, x, cond, uc, gamma, on_denoised, generator)
        return x


class EulerEDMSampler(EDMSampler):
    """First-order (Euler) EDM sampler."""

