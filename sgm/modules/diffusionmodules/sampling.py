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
import math
from typing import Callable, Dict, Optional

import torch
from tqdm.auto import tqdm

from ...util import append_dims, default, instantiate_from_config
from ..motion import SamplingKnobs
from .sampling_utils import ancestral_step, linear_multistep_coeff, to_d

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

    def denoise_step(self, i: int, x, denoiser, sigma: float, cond, uc, callback=None):
        """The guided estimate at step i (sigma a number), shown to `callback` as {"i", "sigma", "denoised"}."""
        sigma = x.new_ones([x.shape[0]]) * sigma
        denoised = self.denoise(x, denoiser, sigma, cond, uc)
        if callback is not None:
            callback({"i": i, "sigma": sigma, "denoised": denoised})
        return denoised

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


class HeunEDMSampler(EDMSampler):
    """Second-order (Heun) EDM sampler: each Euler step is corrected with the derivative at its end,
    except the last one (to sigma = 0)."""

    def possible_correction_step(self, euler_step, x, d, dt, next_sigma, denoiser, cond, uc):
        if torch.sum(next_sigma) < 1e-14:
            return euler_step
        denoised = self.denoise(euler_step, denoiser, next_sigma, cond, uc)
        d_next = to_d(euler_step, next_sigma, denoised)
        return x + (d + d_next) / 2.0 * dt


class AncestralSampler(SingleStepDiffusionSampler):
    """A step to sigma_down, then fresh noise of std s_noise * sigma_up (ancestral_step with `eta`).
    The noise is drawn at every step, the last included (where it is not added), after the step's
    denoiser calls, from `generator`."""

    def __init__(self, eta: float = 1.0, s_noise: float = 1.0, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.eta = eta
        self.s_noise = s_noise

    def ancestral_step(self, x, sigma, denoiser, cond, uc, denoised, sigma_down):
        raise NotImplementedError

    def __call__(self, denoiser, x, cond, uc=None, num_steps=None, callback: Optional[Callable[[Dict], None]] = None, generator=None):
        x, _, sigmas, num_sigmas, cond, uc = self.prepare_sampling_loop(x, cond, uc, num_steps)
        for i in self.get_sigma_gen(num_sigmas):
            sigma, next_sigma = float(sigmas[i]), float(sigmas[i + 1])
            denoised = self.denoise_step(i, x, denoiser, sigma, cond, uc, callback)
            sigma_down, sigma_up = ancestral_step(sigma, next_sigma, self.eta)
            x = self.ancestral_step(x, sigma, denoiser, cond, uc, denoised, sigma_down)
            noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            if next_sigma > 0:
                x = x + noise * self.s_noise * sigma_up
        return x


class EulerAncestralSampler(AncestralSampler):
    """Euler step to sigma_down, then noise."""

    def ancestral_step(self, x, sigma, denoiser, cond, uc, denoised, sigma_down):
        return x + (x - denoised) / sigma * (sigma_down - sigma)


class DPMPP2SAncestralSampler(AncestralSampler):
    """DPM-Solver++(2S) step to sigma_down (a midpoint denoiser call at sigma sqrt(sigma sigma_down)
    in log-sigma), an Euler step when sigma_down is 0; then noise."""

    def ancestral_step(self, x, sigma, denoiser, cond, uc, denoised, sigma_down):
        if sigma_down == 0.0:
            return denoised
        t, t_next = -math.log(sigma), -math.log(sigma_down)
        h = t_next - t
        sigma_mid = math.exp(-(t + 0.5 * h))
        x_mid = (sigma_mid / sigma) * x - math.expm1(-0.5 * h) * denoised
        denoised_mid = self.denoise(x_mid, denoiser, x.new_ones([x.shape[0]]) * sigma_mid, cond, uc)
        return (sigma_down / sigma) * x - math.expm1(-h) * denoised_mid


class DPMPP2MSampler(BaseDiffusionSampler):
    """DPM-Solver++(2M): second order from the previous step's denoised estimate, first order on the
    first step and on the last (to sigma = 0)."""

    def __call__(self, denoiser, x, cond, uc=None, num_steps=None, callback: Optional[Callable[[Dict], None]] = None, generator=None):
        x, _, sigmas, num_sigmas, cond, uc = self.prepare_sampling_loop(x, cond, uc, num_steps)
        previous = None  # (denoised, h) of the step before
        for i in self.get_sigma_gen(num_sigmas):
            sigma, next_sigma = float(sigmas[i]), float(sigmas[i + 1])
            denoised = self.denoise_step(i, x, denoiser, sigma, cond, uc, callback)
            if next_sigma == 0.0:
                x = denoised
                continue
            h = math.log(sigma) - math.log(next_sigma)
            target = denoised
            if previous is not None:
                r = previous[1] / h
                target = (1.0 + 1.0 / (2.0 * r)) * denoised - (1.0 / (2.0 * r)) * previous[0]
            x = (next_sigma / sigma) * x - math.expm1(-h) * target
            previous = (denoised, h)
        return x


class LinearMultistepSampler(BaseDiffusionSampler):
    """Linear multistep on dx/dsigma: the last `order` derivatives weighted by the integrals of their
    Lagrange basis polynomials over the step (linear_multistep_coeff)."""

    def __init__(self, order: int = 4, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.order = order

    def __call__(self, denoiser, x, cond, uc=None, num_steps=None, callback: Optional[Callable[[Dict], None]] = None, generator=None):
        x, _, sigmas, num_sigmas, cond, uc = self.prepare_sampling_loop(x, cond, uc, num_steps)
        derivatives = []  # newest last
        for i in self.get_sigma_gen(num_sigmas):
            sigma = float(sigmas[i])
            denoised = self.denoise_step(i, x, denoiser, sigma, cond, uc, callback)
            derivatives = (derivatives + [(x - denoised) / sigma])[-self.order:]
            order = min(i + 1, self.order)
            coeffs = [linear_multistep_coeff(order, sigmas, i, j) for j in range(order)]
            x = x + sum(coeff * d for coeff, d in zip(coeffs, reversed(derivatives)))
        return x
