"""SV4D / SV4D 2.0 sampling: novel views of every frame of a video, a chunk of T frames x V views
at a time, as upstream's 4D scripts do it.

Rows of a chunk are t-major, (t v). Images are (N, 3, H, W) in [-1, 1]. A chunk's conditioning is
`cond_motion` (T frames of the input video), `cond_view` (V reference views: the novel views of
the chunk's first frame, or zeros for SV4D 2.0's first chunk) and the camera of every row.
Randomness comes from the call's torch.Generator, drawn in upstream's order (conditioner noise,
then the initial latent, then the sampler's own draws).
"""
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch

from ..modules.diffusionmodules.guiders import LinearPredictionGuider, SpatiotemporalPredictionGuider
from ..modules.diffusionmodules.sampling import EulerEDMSampler
from ..modules.motion import MotionKnobs

ZEROED_IN_UNCOND = ["cond_frames", "cond_frames_without_noise", "cond_view", "cond_motion"]
GUIDED_KEYS = ["cond_view", "cond_motion"]


@dataclass(frozen=True)
class FourDVersion:
    """What upstream's script samples a 4D version with."""

    frames: int  # T per chunk
    views: int  # V novel views per frame
    num_steps: int
    guider: str  # "spatiotemporal" or "linear"
    min_cfg: float
    max_cfg: float
    input_view_first: bool  # camera values relative to the input view (SV4D 2.0) or to SV3D's orbit (SV4D)


FOUR_D_VERSIONS: Dict[str, FourDVersion] = {
    "sv4d": FourDVersion(5, 8, 20, "spatiotemporal", 1.0, 2.0, False),
    "sv4d2": FourDVersion(12, 4, 50, "linear", 1.0, 2.0, True),
    "sv4d2_8views": FourDVersion(5, 8, 50, "spatiotemporal", 1.5, 2.5, True),
}
SIGMA_MIN, SIGMA_MAX, RHO = 0.002, 700.0, 7.0


def four_d_sampler(version: str, num_steps: int, frames: int, views: int, verbose: bool = False) -> EulerEDMSampler:
    """Upstream's 4D sampler: Euler EDM (sigma 0.002 .. 700, rho 7, no churn) with the version's
    guider over the T*V rows (cond_view and cond_motion guided as well)."""
    v = FOUR_D_VERSIONS[version]
    rows = frames * views
    if v.guider == "spatiotemporal":
        guider = SpatiotemporalPredictionGuider(v.max_cfg, rows, views, v.min_cfg, GUIDED_KEYS)
    else:
        guider = LinearPredictionGuider(v.max_cfg, rows, additional_cond_keys=GUIDED_KEYS)
    sampler = EulerEDMSampler(
        s_churn=0.0, s_tmin=0.0, s_tmax=999.0, s_noise=1.0, num_steps=num_steps, verbose=verbose,
        discretization_config={"target": "sgm.modules.diffusionmodules.discretizer.EDMDiscretization",
                               "params": {"sigma_min": SIGMA_MIN, "sigma_max": SIGMA_MAX, "rho": RHO}},
    )
    sampler.guider = guider
    return sampler


def orbit_cameras(elevations_deg: List[float], azimuths_deg: List[float], frames: int, views: List[int], relative_to_first: bool) -> Tuple[torch.Tensor, torch.Tensor]:
    """(polar_rad, azimuth_rad), each (T*V,) float64 rows (t v): the cameras of `views` (indices
    into the orbit) tiled over `frames`.

    SV4D (relative_to_first False): polars 90 - elevation, azimuths relative to the orbit's last
    view then to its first. SV4D 2.0: the orbit's first entry is the input view, both angles
    relative to it (polar + pi/2), modulo 2 pi.
    """
    polars = np.deg2rad(90.0 - np.asarray(elevations_deg, dtype=np.float64))
    azimuths = np.deg2rad(np.asarray(azimuths_deg, dtype=np.float64))
    if relative_to_first:
        pol = (np.tile(polars[views], frames) - polars[0] + np.pi / 2) % (2 * np.pi)
        azi = (np.tile(azimuths[views], frames) - azimuths[0]) % (2 * np.pi)
    else:
        azimuths = np.deg2rad((np.asarray(azimuths_deg, dtype=np.float64) - azimuths_deg[-1]) % 360)
        pol = np.tile(polars[views], frames)
        azi = (np.tile(azimuths[views], frames) - azimuths[0]) % (2 * np.pi)
    return torch.from_numpy(pol), torch.from_numpy(azi)


def conditioner_batch(cond_motion: torch.Tensor, cond_view: torch.Tensor, polar_rad: torch.Tensor, azimuth_rad: torch.Tensor) -> Dict:
    """The conditioner's batch for one chunk: cond_motion (T, 3, H, W), cond_view (V, 3, H, W),
    cameras (T*V,)."""
    views = cond_view.shape[0]
    return {
        "cond_frames_without_noise": cond_motion,
        "cond_frames": cond_motion[:, None].repeat(1, views, 1, 1, 1).flatten(0, 1),
        "polar_rad": polar_rad,
        "azimuth_rad": azimuth_rad,
        "cond_view": cond_view,
        "cond_motion": cond_motion,
        "num_video_frames": cond_motion.shape[0] * views,
    }


def condition(model, batch: Dict, generator: torch.Generator, zero_cond_view: bool = False) -> Tuple[Dict, Dict]:
    """(c, uc) of one chunk (the conditioner draws its 1e-5 image noise from `generator`); with
    `zero_cond_view` the reference views are zeroed in both (SV4D 2.0's first chunk)."""
    batch_uc = {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
    c, uc = model.conditioner.get_unconditional_conditioning(
        batch, batch_uc, force_uc_zero_embeddings=ZEROED_IN_UNCOND, generator=generator
    )
    if zero_cond_view:
        c["cond_view"], uc["cond_view"] = c["cond_view"] * 0, uc["cond_view"] * 0
    return c, uc


def guided_denoiser(model, rows: int) -> Callable:
    """denoiser(x, sigma, cond) of the sampler for a chunk of `rows` = T*V rows. Upstream's
    image_only_indicator reaches no result in this network (every blend reads it as 0); what it
    selects upstream, zeroed reference views, is `condition(zero_cond_view=True)`."""
    indicator = torch.zeros(2, rows)

    def denoiser(x, sigma, cond):
        return model.denoiser(model.model, x, sigma, cond, num_video_frames=rows,
                              image_only_indicator=indicator.to(x.device)).to(x.dtype)

    return denoiser


def sample_chunk(model, sampler, c: Dict, uc: Dict, noise: torch.Tensor, knobs: MotionKnobs = MotionKnobs(),
                 callback: Optional[Callable[[Dict], None]] = None, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Latents (T*V, C, h, w) of one chunk from `noise` (unit normal, same shape), with `knobs` on
    the UNet for this call only."""
    unet = model.model.diffusion_model
    with torch.no_grad(), unet.motion_knobs_applied(knobs):
        denoiser = guided_denoiser(model, noise.shape[0])
        return sampler(denoiser, noise, cond=c, uc=uc, callback=callback, generator=generator)


def decode(model, latents: torch.Tensor, decoding_t: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """(decoded in about [-1, 1], frames clamped to [0, 1]) of (N, C, h, w) latents."""
    with torch.no_grad():
        x = model.decode_first_stage(latents, decoding_t).float()
    return x, torch.clamp((x + 1.0) / 2.0, 0.0, 1.0)


def dense_step(model, sampler, noisy: torch.Tensor, c: Dict, uc: Dict, step: int, num_steps: int,
               knobs: MotionKnobs = MotionKnobs()) -> torch.Tensor:
    """One Euler step (`step` of `num_steps`) of SV4D's dense loop on (T*V, C, h, w) latents; step 0
    scales unit noise to the first sigma, as upstream."""
    unet = model.model.diffusion_model
    sigmas = sampler.discretization(num_steps, device=noisy.device)
    x = noisy * torch.sqrt(1.0 + sigmas[0] ** 2.0) if step == 0 else noisy
    s_in = x.new_ones([x.shape[0]])
    with torch.no_grad(), unet.motion_knobs_applied(knobs):
        denoiser = guided_denoiser(model, x.shape[0])
        return sampler.sampler_step(s_in * sigmas[step], s_in * sigmas[step + 1], denoiser, x, c, uc)
