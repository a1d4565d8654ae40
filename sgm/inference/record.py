"""The JSON record of a sampled video: everything that determines its output."""
import importlib.metadata
import platform
from typing import Any, Dict

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from .. import __version__

RNG_ORDER = (
    "one torch.Generator on the device, seeded with seed, per video; draws in order: the conditioning-image "
    "noise (1, 3, H, W), the latent noise (T, C, h, w), the shared frame of noise_correlation (when > 0), the "
    "permutations of shuffle_windowed_noise (when on), then the sampler's own draws (churn); the global RNG is not used"
)


def package_versions() -> Dict[str, str]:
    versions = {"sgm-motion": __version__, "torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version()}
    for dist in ("pillow", "omegaconf", "safetensors", "imageio", "imageio-ffmpeg"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


def config_with_settings(cfg: DictConfig, settings) -> Dict[str, Any]:
    """`cfg` as a plain dict with the call's settings written in (network knobs, sampling knobs,
    num_steps, the guider's num_frames), so that the config alone rebuilds the same sampler."""
    out = OmegaConf.to_container(cfg, resolve=True)
    params = out["model"]["params"]
    params["network_config"]["params"].update(settings.motion_knobs.as_dict())
    sampler = params["sampler_config"]["params"]
    sampler.update(settings.sampling_knobs.as_dict(), num_steps=settings.num_steps)
    guider = sampler.get("guider_config") or {}
    if "num_frames" in (guider.get("params") or {}):
        guider["params"]["num_frames"] = settings.num_frames
    return out


def build_record(pipe, settings, image_facts: Dict[str, Any], window_schedule) -> Dict[str, Any]:
    """The record of one call of `pipe` (a VideoPipeline): JSON-serialisable."""
    return {
        "version": pipe.version,
        "config_path": pipe.config_path,
        "ckpt_path": pipe.ckpt_path,
        # weights of the model the checkpoint lacked (loaded with allow_partial_checkpoint) and its keys the model lacks
        "checkpoint_missing_keys": None if pipe.checkpoint is None else pipe.checkpoint.missing,
        "checkpoint_unexpected_keys": None if pipe.checkpoint is None else pipe.checkpoint.unexpected,
        "device": str(pipe.device),
        "dtype": pipe.dtype_name,
        **settings.as_dict(),
        **{f"image_{key}": value for key, value in image_facts.items()},
        "attn_window_schedule": window_schedule,
        "rng": RNG_ORDER,
        "versions": package_versions(),
        "config": config_with_settings(pipe.config, settings),
    }
