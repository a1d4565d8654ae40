"""VideoPipeline: load a model once, then sample one video per call.

    pipe = VideoPipeline.from_version("toy_svd", device="cpu")
    out = pipe("image.png", num_frames=8, seed=5, temporal_attn_scale=2.0)
    out.frames  # (T, 3, H, W) float in [0, 1]

A call's settings (sgm.inference.settings) apply to that call only: the loaded model, its UNet
knobs and motion score, its sampler and guider are left exactly as they were, also when the call
raises. Every random draw of a call comes from one torch.Generator seeded with `seed`
(sgm.inference.record.RNG_ORDER gives the order); the global RNG is not touched.
"""
import copy
import logging
import os
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import torch
from omegaconf import DictConfig, OmegaConf

from ..checkpoint import LoadReport
from ..modules.diffusionmodules.noise import initial_noise
from ..modules.motion import bucket_motion_score, latent_motion_score
from ..util import instantiate_from_config
from .checks import InputError, resolve_device, resolve_dtype
from .images import ConditioningImage, conditioning_image
from .loading import build_model, check_checkpoint, read_config, resolve_config_path
from .memory import MemoryEstimate, check_fits, estimate_memory, weight_count
from .record import build_record
from .settings import CallSettings, ModelDefaults
from .versions import NATIVE_SIZE, check_version, is_sv3d

logger = logging.getLogger(__name__)


@dataclass
class VideoOutput:
    """One sampled video: `frames` (T, 3, H, W) float in [0, 1] and `latents` (T, C, h, w), both on
    the CPU; `window_schedule` the per-step window of an auto window (else None); `record` the
    JSON-serialisable record of everything that determines the output."""

    frames: torch.Tensor
    latents: torch.Tensor
    window_schedule: Optional[List[Dict[str, Any]]]
    record: Dict[str, Any]


class VideoPipeline:
    """A loaded model and what its calls fall back on. Build it with from_version or from_config,
    or check everything first with plan() and build with load().

    A planned pipeline (model None) has passed every check that needs no model (config, knobs,
    checkpoint file); its settings(), memory() and the record fields it implies (version, config
    and checkpoint paths, device, dtype) work, and calls do not. `checkpoint` is the LoadReport of
    the load (None before it, or when the config names no checkpoint); with `check_memory` a call
    refuses, before sampling, a size that would not fit in the device's free memory."""

    def __init__(self, model, config: DictConfig, version: Optional[str] = None, config_path: Optional[str] = None,
                 device: Union[str, torch.device, None] = None, dtype: Optional[torch.dtype] = None,
                 defaults: Optional[ModelDefaults] = None, checkpoint: Optional[LoadReport] = None,
                 check_memory: bool = True):
        self.model = model
        self.config = config
        self.version = version
        self.config_path = config_path
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype)
        self.defaults = defaults or ModelDefaults.of_config(config, version, config_path or "the config")
        self.checkpoint = checkpoint
        self.check_memory = check_memory
        ckpt = config.model.params.get("ckpt_path")
        self.ckpt_path = None if ckpt is None else os.path.abspath(str(ckpt))

    @classmethod
    def plan(cls, version: Optional[str] = None, config=None, ckpt_path=None, device=None, dtype=None,
             progress: bool = True, check_memory: bool = True) -> "VideoPipeline":
        """Every check from_config makes before building (version, config, knobs, device, dtype, the
        checkpoint file and header), without building: a planned pipeline (model None). `config`
        (a YAML path, DictConfig or dict) defaults to the shipped config of `version`."""
        version = None if version is None else check_version(version)
        if config is None and version is None:
            raise InputError("give a version or a config")
        if config is None or isinstance(config, (str, os.PathLike)):
            config = resolve_config_path(version, config)
        cfg, path = read_config(config, ckpt_path)
        cfg.model.params.sampler_config.params.verbose = bool(progress)
        defaults = ModelDefaults.of_config(cfg, version, path or "the config")
        if cfg.model.params.get("ckpt_path") is not None:
            check_checkpoint(str(cfg.model.params.ckpt_path), version)
        return cls(None, cfg, version, path, resolve_device(device), resolve_dtype(dtype), defaults, check_memory=check_memory)

    def load(self, allow_partial_checkpoint: bool = False) -> "VideoPipeline":
        """This pipeline with its model built and the checkpoint loaded, strictly unless
        `allow_partial_checkpoint` (missing weights then keep their initial values and every
        record lists them)."""
        model, report = build_model(self.config, self.device, self.dtype, self.config_path or "the config",
                                    allow_partial=allow_partial_checkpoint)
        return VideoPipeline(model, self.config, self.version, self.config_path, self.device, self.dtype, self.defaults,
                             report, self.check_memory)

    def planned_on(self, device: Union[str, torch.device], progress: bool = True) -> "VideoPipeline":
        """This planned pipeline for another `device` (a process's own), with or without the
        progress bar over the steps; load() builds it there."""
        cfg = copy.deepcopy(self.config)
        cfg.model.params.sampler_config.params.verbose = bool(progress)
        return VideoPipeline(None, cfg, self.version, self.config_path, resolve_device(device), self.dtype, self.defaults,
                             check_memory=self.check_memory)

    @classmethod
    def from_version(cls, version: str, device=None, dtype=None, ckpt_path=None, progress: bool = True,
                     allow_partial_checkpoint: bool = False, check_memory: bool = True) -> "VideoPipeline":
        """The shipped config of `version` (svd, svd_xt, ..., toy_svd) and its checkpoint (or `ckpt_path`)."""
        return cls.plan(version, None, ckpt_path, device, dtype, progress, check_memory).load(allow_partial_checkpoint)

    @classmethod
    def from_config(cls, config, ckpt_path=None, device=None, dtype=None, version: Optional[str] = None,
                    progress: bool = True, allow_partial_checkpoint: bool = False, check_memory: bool = True) -> "VideoPipeline":
        """A model config (YAML path, DictConfig or dict in the sgm schema); `version` (optional)
        picks the version table's frame and step defaults; `progress` shows a bar over the steps."""
        return cls.plan(version, config, ckpt_path, device, dtype, progress, check_memory).load(allow_partial_checkpoint)

    @property
    def native_size(self) -> Optional[Tuple[int, int]]:
        """(width, height) the version was trained at; None for a config without a version."""
        return NATIVE_SIZE.get(self.version)

    def memory(self, width: int, height: int, settings: CallSettings) -> MemoryEstimate:
        """What a call at `width` x `height` pixels with `settings` needs on the device (with the
        weights while they are not loaded). With check_memory, InputError when that exceeds the
        free memory (sgm.inference.memory)."""
        ckpt = self.config.model.params.get("ckpt_path")
        weights = weight_count(None if ckpt is None else str(ckpt))
        args = (self.config, width, height, settings.num_frames, settings.decoding_t, self.dtype, self.device)
        if not self.check_memory:
            return estimate_memory(*args, weights=weights)
        return check_fits(*args, weights=weights, weights_loaded=self.model is not None, native_size=self.native_size)

    @property
    def dtype_name(self) -> str:
        if self.dtype is not None:
            return str(self.dtype).replace("torch.", "")
        return "float32 with CUDA autocast (float16)" if self.device.type == "cuda" else "float32"

    def settings(self, **kwargs) -> CallSettings:
        """Validated settings of a call with these keyword arguments (see __call__)."""
        return self.defaults.settings(**kwargs)

    def __call__(self, image, num_frames=None, num_steps=None, fps_id=6, motion_bucket_id=127, cond_aug=None,
                 seed=23, decoding_t=14, callback: Optional[Callable[[Dict], None]] = None, **settings) -> VideoOutput:
        """Sample one video from `image` (a path, a PIL image or a (3, H, W) / (1, 3, H, W) tensor in
        [-1, 1]). `settings`: any motion knob or sampling setting by its YAML name, and for sv3d_p
        elevations_deg / azimuths_deg; each validated, in effect for this call only. `callback(info)`
        sees every step: {"i", "sigma", "denoised"}."""
        call = self.settings(num_frames=num_frames, num_steps=num_steps, fps_id=fps_id, motion_bucket_id=motion_bucket_id,
                             cond_aug=cond_aug, seed=seed, decoding_t=decoding_t, **settings)
        return self.sample(image, call, callback)

    def sample(self, image, settings: CallSettings, callback: Optional[Callable[[Dict], None]] = None) -> VideoOutput:
        """Sample one video with settings already validated by `settings()`."""
        if self.model is None:
            raise RuntimeError("this pipeline is planned, not loaded: call load() first")
        image = image if isinstance(image, ConditioningImage) else conditioning_image(image)
        self.memory(*image.facts["size"], settings)
        generator = torch.Generator(self.device).manual_seed(settings.seed)
        with self._precision():
            result = sample_video(self.model, image.tensor.to(self.device), settings, generator,
                                  sampler=self._sampler_for(settings.num_frames), callback=callback,
                                  keep_input_view=is_sv3d(self.version))
        record = build_record(self, settings, image.facts, result["window_schedule"])
        return VideoOutput(result["frames"].float().cpu(), result["latents"].float().cpu(), result["window_schedule"], record)

    def _precision(self):
        """Upstream's CUDA autocast by default; autocast to an explicit dtype (weights are in it)."""
        if self.dtype is not None and self.dtype != torch.float32:
            return torch.autocast(self.device.type, dtype=self.dtype)
        return torch.autocast("cuda") if self.device.type == "cuda" and self.dtype is None else nullcontext()

    def _sampler_for(self, num_frames: int):
        """The model's sampler, or for another frame count a new one from the config (the guider's
        per-frame scales depend on it); the model's is never changed."""
        sampler = self.model.sampler
        if getattr(sampler.guider, "num_frames", num_frames) == num_frames:
            return sampler
        cfg = copy.deepcopy(self.config.model.params.sampler_config)
        cfg.params.guider_config.params.num_frames = num_frames
        return instantiate_from_config(OmegaConf.to_container(cfg, resolve=True))


def conditioner_inputs(model, image: torch.Tensor, cond_noise: torch.Tensor, settings: CallSettings) -> Dict[str, Any]:
    """The conditioner's batch for one image (1, 3, H, W): per-frame scalars repeated T times."""
    t, device = settings.num_frames, image.device
    values = {
        "cond_frames_without_noise": image,
        "cond_frames": image + settings.cond_aug * cond_noise,
        "fps_id": torch.tensor([settings.fps_id], device=device).repeat(t),
        "motion_bucket_id": torch.tensor([settings.motion_bucket_id], device=device).repeat(t),
        "cond_aug": torch.tensor([settings.cond_aug], dtype=torch.float32, device=device).repeat(t),
    }
    if settings.sv3d_angles is not None:
        values["polars_rad"] = torch.tensor(settings.sv3d_angles["polars_rad"], device=device)
        values["azimuths_rad"] = torch.tensor(settings.sv3d_angles["azimuths_rad"], device=device)
    batch = {"num_video_frames": t}
    for embedder in model.conditioner.embedders:
        keys = [embedder.input_key] if getattr(embedder, "input_key", None) is not None else list(getattr(embedder, "input_keys", []))
        for key in keys:
            if key not in values:
                raise ValueError(f"the model's conditioner needs input {key!r}, which the pipeline does not provide")
            batch[key] = values[key]
    return batch


def latent_shape(model, c: Dict[str, torch.Tensor], image: torch.Tensor) -> tuple:
    """(channels, h, w) of one frame's latent: that of the conditioning latent (c["concat"]) when
    the model has one, else the UNet's output channels at the first-stage encoder's resolution."""
    if "concat" in c:
        return tuple(c["concat"].shape[1:])
    h, w = model.first_stage_model.encoder(torch.zeros_like(image)).shape[-2:]
    return (model.model.diffusion_model.out_channels, h, w)


class AutoWindow:
    """Sizes an "auto" window during one sampling loop, as a step callback: before step 0 from the
    motion bucket, and with attn_window_motion latent after every step from its guided denoised
    estimate. `schedule` lists per step {"step", "sigma", "motion_score", "source", "window_size"}."""

    def __init__(self, unet, settings: CallSettings):
        self.unet, self.num_frames = unet, settings.num_frames
        self.latent = settings.sampling_knobs.attn_window_motion == "latent"
        self.schedule: List[Dict[str, Any]] = []
        self._set(bucket_motion_score(settings.motion_bucket_id), "bucket")

    def _set(self, score: float, source: str) -> None:
        self.score, self.source, self.window = score, source, self.unet.set_motion_score(score)

    def __call__(self, info: Dict[str, Any]) -> None:
        self.schedule.append({"step": info["i"], "sigma": float(info["sigma"].flatten()[0]), "motion_score": self.score,
                              "source": self.source, "window_size": self.window})
        if self.latent:
            self._set(latent_motion_score(info["denoised"], self.num_frames), "latent")


def sample_video(model, image: torch.Tensor, settings: CallSettings, generator: torch.Generator, sampler=None,
                 callback=None, cond_noise: Optional[torch.Tensor] = None, noise: Optional[torch.Tensor] = None,
                 keep_input_view: bool = False) -> Dict[str, Any]:
    """One video from `image` (1, 3, H, W) in [-1, 1] on the model's device: the sampling loop.

    Draws from `generator` in RNG_ORDER (`cond_noise` / `noise` may be passed instead of the first
    two draws). The settings' knobs are on the UNet for this call only. With `keep_input_view`
    (SV3D, as upstream) the last decoded frame is the input image. Returns {"latents" (T, C, h, w),
    "decoded" (T, 3, H, W) in about [-1, 1], "frames" decoded mapped to [0, 1] and clamped,
    "window_schedule" (auto window) or None}.
    """
    sampler = model.sampler if sampler is None else sampler
    unet, t, device = model.model.diffusion_model, settings.num_frames, image.device
    with torch.no_grad(), unet.motion_knobs_applied(settings.motion_knobs):
        if cond_noise is None:
            cond_noise = torch.randn(image.shape, generator=generator, device=device)
        batch = conditioner_inputs(model, image, cond_noise.to(device), settings)
        batch_uc = {k: v.clone() for k, v in batch.items() if isinstance(v, torch.Tensor)}
        c, uc = model.conditioner.get_unconditional_conditioning(
            batch, batch_uc=batch_uc, force_uc_zero_embeddings=["cond_frames", "cond_frames_without_noise"])
        for key in ("crossattn", "concat"):
            if key in c:
                c[key], uc[key] = (torch.repeat_interleave(x, t, dim=0) for x in (c[key], uc[key]))
        if noise is None:
            noise = torch.randn((t, *latent_shape(model, c, image)), generator=generator, device=device)
        noise = initial_noise(noise.to(device), settings.sampling_knobs, settings.first_window, generator)
        extra = {"image_only_indicator": torch.zeros(2, t, device=device), "num_video_frames": t}

        def denoiser(x, sigma, cond):
            return model.denoiser(model.model, x, sigma, cond, **extra).to(x.dtype)

        window = AutoWindow(unet, settings) if settings.motion_knobs.adaptive_window else None
        steps = [f for f in (window, callback) if f is not None]
        latents = sampler(denoiser, noise, cond=c, uc=uc, num_steps=settings.num_steps, generator=generator,
                          callback=(lambda info: [f(info) for f in steps]) if steps else None)
        decoded = model.decode_first_stage(latents, settings.decoding_t).float()
    if keep_input_view:
        decoded[-1:] = image
    frames = torch.clamp((decoded + 1.0) / 2.0, min=0.0, max=1.0)
    return {"latents": latents, "decoded": decoded, "frames": frames, "window_schedule": None if window is None else window.schedule}
