"""SV4D / SV4D 2.0 sampling: novel views of every frame of a video, a chunk of T frames x V views
at a time, as upstream's 4D scripts do it.

Rows of a chunk are t-major, (t v). Images are (N, 3, H, W) in [-1, 1]. A chunk's conditioning is
`cond_motion` (T frames of the input video), `cond_view` (V reference views: the novel views of
the chunk's first frame, or zeros for SV4D 2.0's first chunk) and the camera of every row.
Randomness comes from the call's torch.Generator, drawn in upstream's order (conditioner noise,
then the initial latent, then the sampler's own draws).
"""
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch

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
    guiders = "sgm.modules.diffusionmodules.guiders."
    params = {"max_scale": v.max_cfg, "num_frames": frames * views, "additional_cond_keys": GUIDED_KEYS}
    if v.guider == "spatiotemporal":
        guider = {"target": guiders + "SpatiotemporalPredictionGuider", "params": {**params, "num_views": views, "min_scale": v.min_cfg}}
    else:
        guider = {"target": guiders + "LinearPredictionGuider", "params": params}
    return EulerEDMSampler(
        s_churn=0.0, s_tmin=0.0, s_tmax=999.0, s_noise=1.0, num_steps=num_steps, verbose=verbose, guider_config=guider,
        discretization_config={"target": "sgm.modules.diffusionmodules.discretizer.EDMDiscretization",
                               "params": {"sigma_min": SIGMA_MIN, "sigma_max": SIGMA_MAX, "rho": RHO}},
    )


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


def latent_shape(model, image: torch.Tensor) -> Tuple[int, int, int]:
    """(C, h, w) of one frame's latent for (1, 3, H, W) images: the conditioning encoder's output."""
    encoder = next(e for e in model.conditioner.embedders if e.input_key == "cond_frames")
    with torch.no_grad():
        z = encoder.encoder.encode(torch.zeros_like(image))
    return tuple(z.shape[1:])


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


@dataclass
class FourDRun:
    """One 4D video's sampling inputs: T frames x V views per chunk; video (N, 3, H, W) and
    reference_views (V, 3, H, W) (SV4D only: views of frame 0) in [-1, 1]; cameras (T*V,) rows
    (t v) as orbit_cameras gives them; every draw from `generator`."""

    model: Any
    version: str
    frames: int
    views: int
    video: torch.Tensor
    polar_rad: torch.Tensor
    azimuth_rad: torch.Tensor
    num_steps: int
    decoding_t: int
    generator: torch.Generator
    knobs: MotionKnobs = MotionKnobs()
    reference_views: Optional[torch.Tensor] = None
    verbose: bool = False

    def chunk(self, cond_motion, cond_view, zero_cond_view=False) -> Tuple[Dict, Dict]:
        batch = conditioner_batch(cond_motion, cond_view, self.polar_rad, self.azimuth_rad)
        return condition(self.model, batch, self.generator, zero_cond_view)

    def decoded(self, latents: torch.Tensor) -> torch.Tensor:
        """(T*V, C, h, w) latents -> (T, V, 3, H, W) in [-1, 1] on the CPU."""
        x, _ = decode(self.model, latents, self.decoding_t)
        return x.float().cpu().clamp(-1.0, 1.0).reshape(-1, self.views, *x.shape[1:])


def padded_length(n: int, frames: int) -> int:
    """Frames covered by chunks of `frames` that share their first frame with the previous chunk's last."""
    step = frames - 1
    return n if step == 0 or n <= frames else frames + -(-(n - frames) // step) * step


def _pad(video: torch.Tensor, length: int) -> torch.Tensor:
    extra = length - video.shape[0]
    return torch.cat([video, video[-1:].repeat(extra, 1, 1, 1)]) if extra > 0 else video


def sample_sv4d_video(run: FourDRun, latent_shape: Tuple[int, int, int]) -> torch.Tensor:
    """Upstream's SV4D script loop -> novel views (N, V, 3, H, W) in [-1, 1].

    Anchors: frames T-1, 2(T-1), ... sampled T at a time with the reference views of frame 0.
    Dense: every run of T frames between anchors [t0, t0 + T - 1] from fresh noise, one Euler step
    at a time, odd steps conditioned forward (frames in order, views of t0), even steps backward
    (frames reversed, views of t0 + T - 1), each step writing its rows back (`dense_step`).
    """
    from tqdm import tqdm

    t, v, n = run.frames, run.views, run.video.shape[0]
    length = padded_length(n, t)
    video = _pad(run.video, length)
    views: List[Optional[torch.Tensor]] = [run.reference_views.cpu()] + [None] * (length - 1)
    device = run.polar_rad.device
    sampler = four_d_sampler(run.version, run.num_steps, t, v, verbose=False)
    anchors = list(range(t - 1, length, t - 1)) if t > 1 else []
    groups = [anchors[i:i + t] for i in range(0, len(anchors), t)]
    for group in tqdm(groups, desc="anchor frames", unit="chunk", disable=not run.verbose):
        frames = group + [group[-1]] * (t - len(group))
        c, uc = run.chunk(video[frames].to(device), views[0].to(device))
        noise = torch.randn((t * v, *latent_shape), generator=run.generator, device=device)
        out = run.decoded(sample_chunk(run.model, sampler, c, uc, noise, run.knobs, generator=run.generator))
        for i, frame in enumerate(group):
            views[frame] = out[i]
    for t0 in tqdm(list(range(0, length - 1, t - 1)), desc="dense frames", unit="chunk", disable=not run.verbose):
        order = list(range(t0, t0 + t))
        matrix = dense_chunk(run, sampler, video[order], views[order[0]], views[order[-1]], latent_shape)
        decoded = run.decoded(matrix[1:, 1:].flatten(0, 1))
        for i, frame in enumerate(order[1:]):
            views[frame] = decoded[i]
    return torch.stack(views[:n])


def dense_chunk(run: FourDRun, sampler, video: torch.Tensor, views_first: torch.Tensor, views_last: torch.Tensor,
                latent_shape: Tuple[int, int, int], on_step: Optional[Callable[[int, torch.Tensor], None]] = None) -> torch.Tensor:
    """SV4D's dense sampling of T frames `video` (T, 3, H, W) between two frames whose novel views
    are known (V, 3, H, W each) -> latents (T, 1 + V, C, h, w) (column 0, the input view, stays noise).

    Draws the latent matrix, then conditions forward (frames in order, views of the first frame)
    and backward (frames reversed, views of the last); step k is one Euler step with the backward
    conditioning for even k, the forward one for odd k, writing its rows back; `on_step(k, matrix)`
    sees the matrix after each step."""
    t, v, device = run.frames, run.views, run.polar_rad.device
    matrix = torch.randn((t, v + 1, *latent_shape), generator=run.generator, device=device)
    forward = (list(range(t)), *run.chunk(video.to(device), views_first.to(device)))
    backward = (list(range(t))[::-1], *run.chunk(video.flip(0).to(device), views_last.to(device)))
    for step in range(run.num_steps):
        rows, c, uc = forward if step % 2 else backward
        noisy = matrix[rows][:, 1:].flatten(0, 1)
        out = dense_step(run.model, sampler, noisy, c, uc, step, run.num_steps, run.knobs)
        matrix[rows, 1:] = out.view(t, v, *latent_shape)
        if on_step is not None:
            on_step(step, matrix)
    return matrix


def sample_sv4d2_video(run: FourDRun, latent_shape: Tuple[int, int, int]) -> torch.Tensor:
    """Upstream's SV4D 2.0 script loop -> novel views (N, V, 3, H, W) in [-1, 1]: chunks of T
    frames, each starting at the previous chunk's last frame and conditioned on the views sampled
    for it (the first chunk on zeroed reference views); a shared frame keeps the earlier views."""
    from tqdm import tqdm

    t, v, n = run.frames, run.views, run.video.shape[0]
    length = padded_length(n, t)
    video = _pad(run.video, length)
    device = run.polar_rad.device
    sampler = four_d_sampler(run.version, run.num_steps, t, v, verbose=run.verbose)
    views: List[Optional[torch.Tensor]] = [None] * length
    starts = list(range(0, max(1, length - 1), max(1, t - 1)))
    for index, start in enumerate(tqdm(starts, desc="chunks", unit="chunk", disable=not run.verbose)):
        cond_motion = video[start:start + t].to(device)
        if index == 0:
            c, uc = run.chunk(cond_motion, torch.zeros((v, *cond_motion.shape[1:]), device=device), zero_cond_view=True)
        else:
            c, uc = run.chunk(cond_motion, views[start].to(device))
        noise = torch.randn((t * v, *latent_shape), generator=run.generator, device=device)
        out = run.decoded(sample_chunk(run.model, sampler, c, uc, noise, run.knobs, generator=run.generator))
        for i in range(t):
            if views[start + i] is None:
                views[start + i] = out[i]
    return torch.stack(views[:n])
