#!/usr/bin/env python
"""Turn an image (or every .png/.jpg/.jpeg image in a folder) into a short video with Stable Video
Diffusion (svd, svd_xt, svd_xt_1_1, svd_image_decoder, svd_xt_image_decoder), an orbit with SV3D
(sv3d_u, sv3d_p), or a 64x64 clip with toy_svd, the small model trained here that ships with the
package (docs/TOY_MODEL.md).

For each input image, OUTPUT_FOLDER receives NNNNNN.mp4 (H.264, fps_id + 1 frames per second),
NNNNNN.png (the conditioning image as used) and NNNNNN.json (every parameter of the run). Existing
files are never overwritten: NNNNNN is the next free number.

Checkpoints are read from the config's model.params.ckpt_path (checkpoints/<version>.safetensors for
the shipped version configs) or from --ckpt_path; nothing is downloaded. SV3D versions take the image
as given: background removal and re-framing of the object are out of scope, so pass an image that is
already square, object-centred and on a plain background.

Bad input is reported as one line `error: ...` on stderr with exit status 2.
"""
import datetime
import importlib.metadata
import inspect
import json
import logging
import math
import os
import platform
import re
import shlex
import sys
import tempfile
from contextlib import nullcontext
from typing import Any, Dict, List, Optional, Sequence, Tuple

import fire
import numpy as np
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf
from PIL import Image

_HERE = os.path.dirname(os.path.abspath(__file__))
_REPO_ROOT = os.path.dirname(os.path.dirname(_HERE))
try:
    import sgm
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, _REPO_ROOT)
    import sgm
from sgm.checkpoint import CheckpointError, load_checkpoint
from sgm.configs import find_config, resolve_shipped_path
from sgm.modules.diffusionmodules.noise import correlate_noise, shuffle_windowed_noise
from sgm.modules.motion import KNOB_NAMES, MotionKnobs, bucket_motion_score, latent_motion_score
from sgm.util import instantiate_from_config

logger = logging.getLogger("simple_video_sample")

SCRIPT_PATH = os.path.relpath(os.path.abspath(__file__), _REPO_ROOT) if __file__ else "simple_video_sample.py"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
SIDE_MULTIPLE = 64  # both image sides must be multiples of this (VAE factor 8 times the UNet's downsampling)
SV3D_COND_AUG = 1e-5

# version -> (default num_frames, default num_steps)
VERSION_DEFAULTS: Dict[str, Tuple[int, int]] = {
    "svd": (14, 25),
    "svd_xt": (25, 30),
    "svd_xt_1_1": (25, 30),
    "svd_image_decoder": (14, 25),
    "svd_xt_image_decoder": (25, 30),
    "sv3d_u": (21, 50),
    "sv3d_p": (21, 50),
    "toy_svd": (8, 16),  # the small model trained here on synthetic clips; ships with the package
}

_NUMBERED_OUTPUT = re.compile(r"^(\d{6,})\.")


class InputError(Exception):
    """Bad user input; reported as a single `error: ...` line, exit status 2."""


# --------------------------------------------------------------------------------------------------
# Parameter checks (cheap: everything here runs before the model is built)


def _as_int(name: str, value: Any, minimum: Optional[int] = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (isinstance(value, float) and not value.is_integer()):
        raise InputError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise InputError(f"{name} must be at least {minimum}, got {value}")
    return value


def _as_float(name: str, value: Any, minimum: Optional[float] = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"{name} must be a finite number, got {value!r}")
    value = float(value)
    if minimum is not None and value < minimum:
        raise InputError(f"{name} must be at least {minimum}, got {value}")
    return value


def _as_number_list(name: str, value: Any) -> List[float]:
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise InputError(f"{name} must be a number or a list of numbers, got {value!r}")
    return [_as_float(f"{name}[{i}]", v) for i, v in enumerate(value)]


def check_version(version: Any) -> str:
    version = str(version)
    if version not in VERSION_DEFAULTS:
        raise InputError(f"unknown version {version!r}; choose one of: {', '.join(VERSION_DEFAULTS)}")
    return version


def is_sv3d(version: str) -> bool:
    return version.startswith("sv3d")


def sv3d_angles(num_frames: int, elevations_deg: Any = 10.0, azimuths_deg: Any = None) -> Dict[str, List[float]]:
    """Camera of every frame for sv3d_p: elevations/azimuths in degrees and the model's polars/azimuths in radians.

    A single elevation applies to every frame. Azimuths default to an even orbit ending at 0 degrees;
    they are taken relative to the last frame's azimuth (the input view). The frame order is kept as given.
    """
    if isinstance(elevations_deg, (int, float)) and not isinstance(elevations_deg, bool):
        elevations = [_as_float("elevations_deg", elevations_deg)] * num_frames
    else:
        elevations = _as_number_list("elevations_deg", elevations_deg)
    if len(elevations) != num_frames:
        raise InputError(f"elevations_deg has {len(elevations)} values but num_frames is {num_frames}")
    if azimuths_deg is None:
        azimuths = [float(a) for a in np.linspace(0, 360, num_frames + 1)[1:] % 360]
    else:
        azimuths = _as_number_list("azimuths_deg", azimuths_deg)
    if len(azimuths) != num_frames:
        raise InputError(f"azimuths_deg has {len(azimuths)} values but num_frames is {num_frames}")
    polars_rad = [float(np.deg2rad(90 - e)) for e in elevations]
    # Upstream's script calls .sort() on a slice of this Python list, which sorts a copy and leaves
    # the list as it was; the frames therefore keep the given order there, and here (sorting would
    # also pull azimuths away from their elevations).
    azimuths_rad = [float(np.deg2rad((a - azimuths[-1]) % 360)) for a in azimuths]
    return {"elevations_deg": elevations, "azimuths_deg": azimuths, "polars_rad": polars_rad, "azimuths_rad": azimuths_rad}


def list_input_images(input_path: Any) -> List[str]:
    """The image files named by `input_path`: the file itself, or the folder's .png/.jpg/.jpeg files, sorted."""
    if input_path is None or isinstance(input_path, bool) or str(input_path) == "":
        raise InputError("input_path is required")
    input_path = str(input_path)
    if os.path.isdir(input_path):
        names = sorted(
            n for n in os.listdir(input_path)
            if n.lower().endswith(IMAGE_SUFFIXES) and os.path.isfile(os.path.join(input_path, n))
        )
        if not names:
            raise InputError(f"no {'/'.join(IMAGE_SUFFIXES)} images in folder {input_path}")
        return [os.path.join(input_path, n) for n in names]
    if os.path.isfile(input_path):
        return [input_path]
    if os.path.exists(input_path):
        raise InputError(f"input path is neither a file nor a folder: {input_path}")
    raise InputError(f"input path not found: {input_path}")


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode -> 8-bit RGB (alpha is dropped; 16-bit and float grayscale are scaled to 8 bits)."""
    if image.mode == "RGB":
        return image
    if image.mode.startswith("I;16") or image.mode == "I":
        arr = np.asarray(image, dtype=np.float64) / 257.0
        image = Image.fromarray(np.clip(np.round(arr), 0, 255).astype(np.uint8), mode="L")
    elif image.mode == "F":
        arr = np.asarray(image, dtype=np.float64)
        if arr.size and np.nanmax(arr) <= 1.0:
            arr = arr * 255.0
        image = Image.fromarray(np.clip(np.nan_to_num(np.round(arr)), 0, 255).astype(np.uint8), mode="L")
    elif image.mode in ("La", "PA"):
        image = image.convert("RGBA")
    return image.convert("RGB")


def load_image(path: str) -> Tuple[Image.Image, Dict[str, Any]]:
    """Open `path` as RGB with both sides cut down to multiples of 64; returns (image, facts about it)."""
    try:
        with Image.open(path) as opened:
            opened.load()
            mode = opened.mode
            original_size = opened.size
            image = _to_rgb(opened)
            image.load()
    except Exception as err:  # PIL raises many types for undecodable files; all mean "not an image"
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(f"cannot read image {path}: {reason}") from None
    w, h = image.size
    new_w, new_h = w - w % SIDE_MULTIPLE, h - h % SIDE_MULTIPLE
    if new_w == 0 or new_h == 0:
        raise InputError(f"image {path} is {w}x{h}; both sides must be at least {SIDE_MULTIPLE} pixels")
    if (new_w, new_h) != (w, h):
        image = image.resize((new_w, new_h), Image.Resampling.BICUBIC)
    info = {"path": path, "mode": mode, "original_size": list(original_size), "size": [new_w, new_h], "resized": (new_w, new_h) != (w, h)}
    return image, info


def image_to_tensor(image: Image.Image) -> torch.Tensor:
    """RGB PIL image -> float32 tensor (1, 3, H, W) in [-1, 1]."""
    arr = np.asarray(image, dtype=np.uint8)
    x = torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div(255.0)
    return (x * 2.0 - 1.0).unsqueeze(0)


def check_output_folder(folder: Any) -> str:
    folder = str(folder)
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise InputError(f"output_folder exists and is not a folder: {folder}")
    return folder


def resolve_device(device: Any) -> str:
    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    device = str(device)
    try:
        parsed = torch.device(device)
    except RuntimeError as err:
        raise InputError(f"invalid device {device!r}: {str(err).splitlines()[0]}") from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {device!r} requested but CUDA is not available (try --device cpu)")
    if parsed.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise InputError(f"device {device!r} requested but MPS is not available (try --device cpu)")
    return device


def check_checkpoint(path: str) -> None:
    """Cheap check that `path` exists and, for .safetensors, that its header is whole and covers the file."""
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.lower().endswith(".safetensors"):
        from safetensors import safe_open

        try:
            with safe_open(path, framework="pt") as handle:
                handle.keys()
        except Exception as err:
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise CheckpointError(f"cannot read checkpoint {path} (truncated or not a .safetensors file?): {reason}") from None


# --------------------------------------------------------------------------------------------------
# Model config and model


def resolve_config_path(version: str, config: Optional[str] = None) -> str:
    """The YAML to use: `config` when given, else the shipped config of `version`."""
    if config is not None:
        config = str(config)
        if not os.path.isfile(config):
            raise InputError(f"config file not found: {config}")
        return os.path.abspath(config)
    found = find_config("sampling", f"{version}.yaml")
    if found is None:
        raise InputError(f"no config for version {version!r} (looked for scripts/sampling/configs/{version}.yaml); pass --config")
    return os.path.abspath(found)


def build_model_config(
    version: str,
    num_frames: int,
    num_steps: int,
    config: Optional[str] = None,
    ckpt_path: Optional[str] = None,
    network_overrides: Optional[Dict[str, Any]] = None,
) -> Tuple[DictConfig, str]:
    """Load the model config for `version` (or the YAML `config`) and apply the run's settings.

    Sets the sampler's num_steps (and verbose, so it shows a progress bar), the guider's num_frames,
    the checkpoint path when `ckpt_path` is given, and every key of `network_overrides` onto
    model.params.network_config.params. Returns (config, absolute path of the YAML read).
    """
    path = resolve_config_path(version, config)
    try:
        cfg = OmegaConf.load(path)
    except Exception as err:  # yaml and omegaconf raise many types for bad YAML
        reason = " ".join(str(err).split()) or type(err).__name__
        raise InputError(f"cannot read config {path}: {reason}") from None
    if not isinstance(cfg, DictConfig) or not isinstance(cfg.get("model"), DictConfig) or "target" not in cfg.model:
        raise InputError(f"config {path} has no model section with a target")
    if not isinstance(cfg.model.get("params"), DictConfig):
        raise InputError(f"config {path} has no model.params section")
    params = cfg.model.params
    if not isinstance(params.get("sampler_config"), DictConfig):
        raise InputError(f"config {path} has no model.params.sampler_config")
    if ckpt_path is not None:
        params.ckpt_path = str(ckpt_path)
    if params.get("ckpt_path") is not None:
        params.ckpt_path = resolve_shipped_path(str(params.ckpt_path))
    sampler = params.sampler_config
    if sampler.get("params") is None:
        sampler.params = {}
    sampler.params.num_steps = num_steps
    sampler.params.verbose = True
    guider = sampler.params.get("guider_config")
    if isinstance(guider, DictConfig):
        if guider.get("params") is None:
            guider.params = {}
        if "num_frames" in guider.params or str(guider.get("target", "")).endswith("PredictionGuider"):
            guider.params.num_frames = num_frames
    if network_overrides:
        network = params.get("network_config")
        if not isinstance(network, DictConfig):
            raise InputError(f"config {path} has no model.params.network_config to apply overrides to")
        if network.get("params") is None:
            network.params = {}
        for key, value in network_overrides.items():
            network.params[key] = value
    return cfg, path


def noise_windows_of(knobs: MotionKnobs, motion_bucket_id: int) -> Tuple[int, int]:
    """(w, r) for shuffle_windowed_noise: the run's window, for an auto window the one of step 0
    (sized by the motion bucket, the only motion score known before sampling)."""
    knobs = knobs.resolved(bucket_motion_score(motion_bucket_id))
    if knobs.attn_window_size is None:
        raise InputError("shuffle_windowed_noise needs attn_window_size (flag or config)")
    return knobs.attn_window_size, knobs.window_stride


def config_knob_values(cfg: DictConfig) -> Dict[str, Any]:
    """The raw motion-knob values set in the config's network params (lists as plain lists)."""
    network = cfg.model.params.get("network_config")
    params = network.get("params") if isinstance(network, DictConfig) else None
    if params is None:
        return {}
    return {k: OmegaConf.to_container(params[k]) if isinstance(params[k], ListConfig) else params[k] for k in KNOB_NAMES if k in params}


def motion_knobs_of(cfg: DictConfig, config_path: str) -> MotionKnobs:
    """The motion knobs the model will be built with (config values, flags applied), validated."""
    try:
        return MotionKnobs(**config_knob_values(cfg))
    except ValueError as err:
        raise InputError(f"{err} (config {config_path} or its flag)") from None


def load_model(cfg: DictConfig, device: str, config_path: str = "config") -> torch.nn.Module:
    """Build model.* of `cfg` on `device` in eval mode, loading model.params.ckpt_path when set."""
    model_cfg = OmegaConf.create(OmegaConf.to_container(cfg.model, resolve=True))
    ckpt_path = model_cfg.params.pop("ckpt_path", None)
    if ckpt_path is None:
        logger.warning("config %s names no checkpoint: the model keeps its random initial weights", config_path)
    else:
        check_checkpoint(ckpt_path)
    on_accelerator = torch.device(device).type != "cpu"
    try:
        with torch.device(device) if on_accelerator else nullcontext():
            model = instantiate_from_config(model_cfg)
    except (ImportError, AttributeError, KeyError, TypeError, ValueError) as err:
        logger.debug("building the model failed", exc_info=True)
        reason = " ".join(str(err).split()) or type(err).__name__
        raise InputError(f"cannot build the model from config {config_path}: {type(err).__name__}: {reason}") from None
    if ckpt_path is not None:
        missing, _ = load_checkpoint(model, ckpt_path)
        if missing and len(missing) == len(model.state_dict()):
            raise CheckpointError(f"checkpoint {ckpt_path} holds none of the weights of the model in {config_path}")
    return model.to(device).eval()


# --------------------------------------------------------------------------------------------------
# Sampling


def conditioner_input_keys(conditioner) -> List[str]:
    """The distinct input keys the conditioner's embedders read, in embedder order."""
    keys: List[str] = []
    for embedder in conditioner.embedders:
        names = [embedder.input_key] if getattr(embedder, "input_key", None) is not None else list(getattr(embedder, "input_keys", []))
        for name in names:
            if name not in keys:
                keys.append(name)
    return keys


def latent_shape(model, c: Dict[str, torch.Tensor], height: int, width: int, device) -> Tuple[int, int, int]:
    """(channels, h, w) of one frame's latent: that of the conditioning-frame latent (cond["concat"])
    when the model has one, else the first stage's encoding of a blank frame."""
    if "concat" in c:
        return tuple(c["concat"].shape[1:])
    return tuple(model.encode_first_stage(torch.zeros(1, 3, height, width, device=device)).shape[1:])


def get_batch(keys: Sequence[str], value_dict: Dict[str, Any], num_frames: int, device) -> Tuple[Dict, Dict]:
    """Conditioner inputs for one image: per-frame scalars repeated num_frames times, the image as is."""
    batch: Dict[str, Any] = {}
    for key in keys:
        if key in ("fps_id", "motion_bucket_id"):
            batch[key] = torch.tensor([value_dict[key]]).to(device).repeat(num_frames)
        elif key == "cond_aug":
            batch[key] = torch.tensor([value_dict[key]], dtype=torch.float32).to(device).repeat(num_frames)
        elif key in ("cond_frames", "cond_frames_without_noise"):
            batch[key] = value_dict[key]
        elif key in ("polars_rad", "azimuths_rad"):
            batch[key] = torch.tensor(value_dict[key]).to(device)
        elif key in value_dict:
            batch[key] = value_dict[key]
        else:
            raise InputError(f"the model's conditioner needs input {key!r}, which this script does not provide")
    batch["num_video_frames"] = num_frames
    batch_uc = {k: torch.clone(v) for k, v in batch.items() if isinstance(v, torch.Tensor)}
    return batch, batch_uc


def sample_video(
    model,
    image: torch.Tensor,
    *,
    num_frames: int,
    fps_id: int = 6,
    motion_bucket_id: int = 127,
    cond_aug: float = 0.02,
    decoding_t: int = 14,
    sv3d: bool = False,
    polars_rad: Optional[List[float]] = None,
    azimuths_rad: Optional[List[float]] = None,
    cond_noise: Optional[torch.Tensor] = None,
    randn: Optional[torch.Tensor] = None,
    noise_windows: Optional[Tuple[int, int]] = None,
) -> Dict[str, torch.Tensor]:
    """One video from one image (1, 3, H, W) in [-1, 1] on the model's device.

    Draws from torch's global generator: first the conditioning-frame noise, then the initial latent
    noise (either can be passed in instead, as `cond_noise` / `randn`), then, when the UNet's
    noise_correlation rho > 0, the shared noise frame that correlates it (correlate_noise). With
    `noise_windows` = (w, r) the latent noise is then rescheduled FreeNoise-style
    (shuffle_windowed_noise, drawing its permutations from the global generator).

    With attn_window_size auto the window is sized before step 0 from motion_bucket_id / 255 and,
    with attn_window_motion latent, after every step from that step's guided denoised estimate
    (latent_motion_score); the UNet's previous score is restored at the end.

    Returns {"z": latents (T, 4, H/8, W/8), "x": decoded frames (T, 3, H, W) in about [-1, 1] (for
    sv3d the last one is the input image), "frames": x mapped to [0, 1] and clamped,
    "window_schedule": per step {"step", "sigma", "motion_score", "source", "window_size"} for an
    auto window, else None}.
    """
    device = image.device
    h, w = image.shape[-2:]
    if cond_noise is None:
        cond_noise = torch.randn_like(image)
    value_dict: Dict[str, Any] = {
        "cond_frames_without_noise": image,
        "motion_bucket_id": motion_bucket_id,
        "fps_id": fps_id,
        "cond_aug": cond_aug,
        "cond_frames": image + cond_aug * cond_noise.to(device),
    }
    if polars_rad is not None:
        value_dict["polars_rad"] = polars_rad
    if azimuths_rad is not None:
        value_dict["azimuths_rad"] = azimuths_rad

    autocast = torch.autocast("cuda") if device.type == "cuda" else nullcontext()
    with torch.no_grad(), autocast:
        batch, batch_uc = get_batch(conditioner_input_keys(model.conditioner), value_dict, num_frames, device)
        c, uc = model.conditioner.get_unconditional_conditioning(
            batch, batch_uc=batch_uc, force_uc_zero_embeddings=["cond_frames", "cond_frames_without_noise"]
        )
        for key in ("crossattn", "concat"):
            if key in c:
                c[key] = torch.repeat_interleave(c[key], num_frames, dim=0)
                uc[key] = torch.repeat_interleave(uc[key], num_frames, dim=0)
        unet = model.model.diffusion_model
        knobs = getattr(unet, "motion_knobs", MotionKnobs())
        if randn is None:
            randn = torch.randn((num_frames, *latent_shape(model, c, h, w, device)), device=device)
        randn = correlate_noise(randn, knobs.noise_correlation)
        if noise_windows is not None:
            randn = shuffle_windowed_noise(randn, *noise_windows)
        extra = {
            "image_only_indicator": torch.zeros(2, num_frames, device=device),
            "num_video_frames": batch["num_video_frames"],
        }

        def denoiser(x, sigma, cond):
            return model.denoiser(model.model, x, sigma, cond, **extra)

        schedule = None
        callback = None
        if knobs.adaptive_window:
            schedule, previous_score = [], unet.motion_score
            score = bucket_motion_score(motion_bucket_id)
            state = {"score": score, "source": "bucket", "window": unet.set_motion_score(score)}

            def callback(info):  # after step i: log the window it used, then size the next one
                schedule.append({"step": info["i"], "sigma": float(info["sigma"].flatten()[0]),
                                 "motion_score": state["score"], "source": state["source"], "window_size": state["window"]})
                if knobs.attn_window_motion == "latent":
                    score = latent_motion_score(info["denoised"], num_frames)
                    state.update(score=score, source="latent", window=unet.set_motion_score(score))

        try:
            samples_z = model.sampler(denoiser, randn.to(device), cond=c, uc=uc, callback=callback)
        finally:
            if schedule is not None:
                unet.set_motion_score(previous_score)
        model.en_and_decode_n_samples_a_time = decoding_t
        samples_x = model.decode_first_stage(samples_z)
        if sv3d:
            samples_x[-1:] = value_dict["cond_frames_without_noise"]
        frames = torch.clamp((samples_x + 1.0) / 2.0, min=0.0, max=1.0)
    return {"z": samples_z, "x": samples_x, "frames": frames, "window_schedule": schedule}


def frames_to_uint8(frames: torch.Tensor) -> np.ndarray:
    """(T, 3, H, W) in [0, 1] -> (T, H, W, 3) uint8 (scaled by 255 and truncated)."""
    return (frames.permute(0, 2, 3, 1).float() * 255).cpu().numpy().astype(np.uint8)


# --------------------------------------------------------------------------------------------------
# Outputs


def _publish(tmp_path: str, final_path: str) -> None:
    """Move a finished temp file to `final_path` without ever replacing an existing file."""
    try:
        os.link(tmp_path, final_path)  # fails if final_path exists
    except FileExistsError:
        raise OSError(f"refusing to overwrite {final_path}") from None
    except OSError:  # hard links unsupported here: fall back to a checked rename
        if os.path.lexists(final_path):
            raise OSError(f"refusing to overwrite {final_path}") from None
        os.replace(tmp_path, final_path)
        return
    os.unlink(tmp_path)


def _temp_path(folder: str, suffix: str) -> str:
    """A fresh hidden file in `folder` (never matching NNNNNN.*), with the usual umask-based mode."""
    fd, path = tempfile.mkstemp(prefix=".partial-", suffix=suffix, dir=folder)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)
    return path


def reserve_output(folder: str, make_record) -> Tuple[int, str]:
    """Claim the next free number N (no file NNNNNN.* exists) by creating NNNNNN.json exclusively.

    `make_record(stem)` gives the JSON content. Returns (N, path of the JSON written).
    """
    taken = [int(m.group(1)) for m in map(_NUMBERED_OUTPUT.match, os.listdir(folder)) if m]
    number = max(taken, default=-1) + 1
    while True:
        stem = f"{number:06d}"
        if any(name.startswith(stem + ".") for name in os.listdir(folder)):
            number += 1
            continue
        json_path = os.path.join(folder, stem + ".json")
        try:
            handle = open(json_path, "x", encoding="utf-8")
        except FileExistsError:
            number += 1
            continue
        try:
            with handle:
                json.dump(make_record(stem), handle, indent=2)
                handle.write("\n")
        except BaseException:
            os.unlink(json_path)
            raise
        return number, json_path


def write_png(image: Image.Image, final_path: str) -> None:
    tmp = _temp_path(os.path.dirname(final_path), ".png")
    try:
        image.save(tmp, format="PNG")
        _publish(tmp, final_path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_video(frames: np.ndarray, final_path: str, fps: int) -> None:
    """H.264 mp4 of uint8 frames (T, H, W, 3), written to a temp file and then moved into place."""
    import imageio

    tmp = _temp_path(os.path.dirname(final_path), ".mp4")
    try:
        writer = imageio.get_writer(tmp, format="FFMPEG", mode="I", fps=fps, codec="libx264")
        try:
            for frame in frames:
                writer.append_data(frame)
        finally:
            writer.close()
        _publish(tmp, final_path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_gif(frames: np.ndarray, final_path: str, fps: int) -> None:
    """Endlessly looping GIF of uint8 frames (T, H, W, 3) at `fps` (GIF delays are whole centiseconds),
    written to a temp file and moved into place."""
    images = [Image.fromarray(frame) for frame in frames]
    tmp = _temp_path(os.path.dirname(final_path), ".gif")
    try:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], loop=0,
                       duration=round(1000 / fps), disposal=1)
        _publish(tmp, final_path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def package_versions() -> Dict[str, str]:
    versions = {"sgm-motion": sgm.__version__, "torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version()}
    for dist in ("pillow", "omegaconf", "safetensors", "imageio", "imageio-ffmpeg"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


def _reproduce_command(params: Dict[str, Any]) -> str:
    args = ["python", SCRIPT_PATH]
    for key, value in params.items():
        if value is None or key == "verbose":
            continue
        args += [f"--{key}", json.dumps(value) if isinstance(value, (list, tuple)) else str(value)]
    return shlex.join(args)


# --------------------------------------------------------------------------------------------------
# Entry points


def run(
    input_path: str = "assets/test_image.png",
    num_frames: Optional[int] = None,
    num_steps: Optional[int] = None,
    version: str = "svd",
    fps_id: int = 6,
    motion_bucket_id: int = 127,
    cond_aug: Optional[float] = None,
    seed: int = 23,
    decoding_t: int = 14,
    device: Optional[str] = None,
    output_folder: Optional[str] = None,
    elevations_deg: Any = 10.0,
    azimuths_deg: Optional[List[float]] = None,
    image_frame_ratio: Optional[float] = None,
    verbose: bool = False,
    config: Optional[str] = None,
    ckpt_path: Optional[str] = None,
    network_overrides: Optional[Dict[str, Any]] = None,
    shuffle_windowed_noise: bool = False,
    gif: bool = False,
) -> List[Dict[str, Any]]:
    """Everything `sample` does; returns the JSON record of each video written.

    `network_overrides` maps motion-knob names (sgm.modules.motion.KNOB_NAMES) to values that replace
    the config's; they are validated with the config's other knob values before the model is built.
    """
    if verbose:  # debug output of this script and of sgm; other libraries stay at INFO
        logging.getLogger().setLevel(logging.INFO)
        for name in (logger.name, "sgm"):
            logging.getLogger(name).setLevel(logging.DEBUG)
    # -- cheap checks first
    version = check_version(version)
    default_frames, default_steps = VERSION_DEFAULTS[version]
    num_frames = _as_int("num_frames", default_frames if num_frames is None else num_frames, minimum=1)
    num_steps = _as_int("num_steps", default_steps if num_steps is None else num_steps, minimum=1)
    fps_id = _as_int("fps_id", fps_id, minimum=0)
    motion_bucket_id = _as_int("motion_bucket_id", motion_bucket_id, minimum=0)
    if cond_aug is None:
        cond_aug = SV3D_COND_AUG if is_sv3d(version) else 0.02
    cond_aug = _as_float("cond_aug", cond_aug, minimum=0.0)
    seed = _as_int("seed", seed)
    if not -(2**63) <= seed < 2**64:
        raise InputError(f"seed must fit in 64 bits, got {seed}")
    decoding_t = _as_int("decoding_t", decoding_t, minimum=1)
    if image_frame_ratio is not None:
        raise InputError("image_frame_ratio belongs to SV3D background removal and re-framing, which sgm-motion leaves out; frame the object in the image yourself")
    angles = sv3d_angles(num_frames, elevations_deg, azimuths_deg) if version == "sv3d_p" else None
    if motion_bucket_id > 255:
        logger.warning("motion_bucket_id %d is above 255, outside what the models were trained on", motion_bucket_id)
    if not is_sv3d(version) and not 5 <= fps_id <= 30:
        logger.warning("fps_id %d is outside the 5..30 the SVD models were trained on", fps_id)
    network_overrides = dict(network_overrides or {})

    images = list_input_images(input_path)
    for path in images:  # decode every image now so that a bad one fails before any work
        load_image(path)
    if output_folder is None:
        output_folder = os.path.join("outputs", "simple_video_sample", version)
    output_folder = check_output_folder(output_folder)
    unknown = sorted(set(network_overrides) - set(KNOB_NAMES))
    if unknown:
        raise InputError(f"unknown motion knob(s): {', '.join(unknown)}")
    for name, flag in (("shuffle_windowed_noise", shuffle_windowed_noise), ("gif", gif)):
        if not isinstance(flag, bool):
            raise InputError(f"{name} must be True or False, got {flag!r}")
    cfg, config_path = build_model_config(version, num_frames, num_steps, config=config, ckpt_path=ckpt_path, network_overrides=network_overrides)
    knobs = motion_knobs_of(cfg, config_path)
    noise_windows = noise_windows_of(knobs, motion_bucket_id) if shuffle_windowed_noise else None
    resolved_ckpt = cfg.model.params.get("ckpt_path")
    if resolved_ckpt is not None:
        check_checkpoint(str(resolved_ckpt))
    device = resolve_device(device)
    try:
        os.makedirs(output_folder, exist_ok=True)
    except OSError as err:
        raise InputError(f"cannot create output_folder {output_folder}: {err.strerror or err}") from None

    # -- the model
    logger.debug("building the model from %s on %s", config_path, device)
    model = load_model(cfg, device, config_path)
    torch.manual_seed(seed)

    cli_params = {
        "input_path": str(input_path), "version": version, "num_frames": num_frames, "num_steps": num_steps,
        "fps_id": fps_id, "motion_bucket_id": motion_bucket_id, "cond_aug": cond_aug, "seed": seed,
        "decoding_t": decoding_t, "device": device, "output_folder": output_folder,
        "config": None if config is None else str(config), "ckpt_path": None if ckpt_path is None else str(ckpt_path),
        **{k: "none" if v is None else v for k, v in network_overrides.items()},
        "shuffle_windowed_noise": shuffle_windowed_noise or None, "gif": gif or None,
    }
    if angles is not None:
        cli_params["elevations_deg"] = angles["elevations_deg"]
        cli_params["azimuths_deg"] = angles["azimuths_deg"]
    resolved_config = OmegaConf.to_container(cfg, resolve=True)
    records = []
    for index, path in enumerate(images):
        image, info = load_image(path)
        if info["resized"]:
            print(f"notice: resized {path} from {info['original_size'][0]}x{info['original_size'][1]} to "
                  f"{info['size'][0]}x{info['size'][1]} (sides must be multiples of {SIDE_MULTIPLE})")
        tensor = image_to_tensor(image).to(device)
        result = sample_video(
            model, tensor, num_frames=num_frames, fps_id=fps_id, motion_bucket_id=motion_bucket_id,
            cond_aug=cond_aug, decoding_t=decoding_t, sv3d=is_sv3d(version),
            polars_rad=None if angles is None else angles["polars_rad"],
            azimuths_rad=None if angles is None else angles["azimuths_rad"],
            noise_windows=noise_windows,
        )
        video = frames_to_uint8(result["frames"])
        fps = fps_id + 1

        def make_record(stem: str) -> Dict[str, Any]:
            return {
                "video": stem + ".mp4",
                "image": stem + ".png",
                "version": version,
                "config_path": config_path,
                "ckpt_path": None if resolved_ckpt is None else os.path.abspath(str(resolved_ckpt)),
                "seed": seed,
                "num_frames": num_frames,
                "num_steps": num_steps,
                "fps_id": fps_id,
                "motion_bucket_id": motion_bucket_id,
                "cond_aug": cond_aug,
                "decoding_t": decoding_t,
                "device": device,
                "video_fps": fps,
                "video_fps_rule": "fps_id + 1",
                "input_path": str(input_path),
                "image_path": os.path.abspath(path),
                "image_index": index,
                "rng": "torch.manual_seed(seed) once per run, after the model is built; images are sampled in "
                       "order (image_index), each drawing the conditioning noise and then the latent noise",
                "image_mode": info["mode"],
                "image_original_size": info["original_size"],
                "image_size": info["size"],
                "sv3d_angles": angles,
                "network_overrides": network_overrides,
                "motion_knobs": knobs.as_dict(),
                "shuffle_windowed_noise": shuffle_windowed_noise,
                "attn_window_schedule": result["window_schedule"],
                "gif": stem + ".gif" if gif else None,
                "command": _reproduce_command(cli_params),
                "versions": package_versions(),
                "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "config": resolved_config,
            }

        number, json_path = reserve_output(output_folder, make_record)
        stem = os.path.join(output_folder, f"{number:06d}")
        written = [json_path]
        try:
            write_png(image, stem + ".png")
            written.append(stem + ".png")
            write_video(video, stem + ".mp4", fps)
            written.append(stem + ".mp4")
            if gif:
                write_gif(video, stem + ".gif", fps)
        except BaseException:
            for leftover in written:  # only files this run created: give the number back
                os.unlink(leftover)
            raise
        print(f"wrote {stem}.mp4" + (f" and {stem}.gif" if gif else ""))
        with open(json_path, encoding="utf-8") as handle:
            records.append(json.load(handle))
    return records


def sample(
    input_path: str = "assets/test_image.png",
    num_frames: Optional[int] = None,
    num_steps: Optional[int] = None,
    version: str = "svd",
    fps_id: int = 6,
    motion_bucket_id: int = 127,
    cond_aug: Optional[float] = None,
    seed: int = 23,
    decoding_t: int = 14,
    device: Optional[str] = None,
    output_folder: Optional[str] = None,
    elevations_deg: Any = 10.0,
    azimuths_deg: Optional[List[float]] = None,
    image_frame_ratio: Optional[float] = None,
    verbose: bool = False,
    config: Optional[str] = None,
    ckpt_path: Optional[str] = None,
    temporal_attn_scale: Optional[float] = None,
    temporal_attn_k_scale: Optional[float] = None,
    position_embedding_frames: Optional[int] = None,
    attn_window_size: Optional[int] = None,
    attn_window_stride: Optional[int] = None,
    attn_window_fusion: Optional[str] = None,
    temporal_attn_scale_stages: Any = None,
    attn_window_stages: Any = None,
    attn_window_min: Optional[int] = None,
    attn_window_max: Optional[int] = None,
    attn_window_motion: Optional[str] = None,
    attn_window_loop: Optional[bool] = None,
    noise_correlation: Optional[float] = None,
    shuffle_windowed_noise: bool = False,
    gif: bool = False,
) -> None:
    """Sample a video from an image (or every image of a folder).

    Args:
        input_path: an image file, or a folder whose .png/.jpg/.jpeg files are all used.
        num_frames: frames to generate (default per version: svd 14, svd_xt 25, sv3d 21, toy_svd 8).
        num_steps: sampler steps (default per version: svd 25, svd_xt 30, sv3d 50, toy_svd 16).
        version: svd, svd_xt, svd_xt_1_1, svd_image_decoder, svd_xt_image_decoder, sv3d_u, sv3d_p or toy_svd.
        fps_id: frame-rate conditioning (SVD); the mp4 plays at fps_id + 1 frames per second.
        motion_bucket_id: amount-of-motion conditioning (SVD), 0..255.
        cond_aug: noise added to the conditioning image (default 0.02; 1e-5 for sv3d versions).
        seed: seed of torch's generator, set once after the model is built.
        decoding_t: frames decoded at once by the VAE (lower it to save memory).
        device: torch device (default cuda when available, else cpu).
        output_folder: where to write (default outputs/simple_video_sample/<version>/).
        elevations_deg: sv3d_p camera elevation, one number or one per frame.
        azimuths_deg: sv3d_p camera azimuths, one per frame (default: an even orbit).
        image_frame_ratio: not supported (belongs to SV3D background removal, which is out of scope).
        verbose: log at DEBUG level.
        config: a model config YAML to use instead of the version's shipped config.
        ckpt_path: a checkpoint to use instead of the config's model.params.ckpt_path.
        temporal_attn_scale: s, temporal softmax scale sqrt(s / d_head) (> 1 more motion); overrides the config.
        temporal_attn_k_scale: k, temporal keys times k; overrides the config.
        position_embedding_frames: E, frame positions linspace(0, E-1, T); overrides the config.
        attn_window_size: w, temporal self-attention in windows of w frames, or auto (sized by motion); overrides the config.
        attn_window_stride: r, window stride (default w // 4); overrides the config.
        attn_window_fusion: pyramid or flat; overrides the config.
        temporal_attn_scale_stages: UNet stages where s and k act, e.g. output or [middle,output] (default all).
        attn_window_stages: UNet stages where windows act, e.g. output (default all: input, middle, output).
        attn_window_min: smallest auto window (at the most motion).
        attn_window_max: largest auto window (at no motion).
        attn_window_motion: motion score of an auto window: bucket (motion_bucket_id / 255) or latent (per step).
        attn_window_loop: circular windows, so the last frames attend to the first (seamless loops).
        noise_correlation: rho in [0, 1), initial noise sqrt(rho) * shared + sqrt(1 - rho) * own per frame.
        shuffle_windowed_noise: FreeNoise rescheduling of the initial noise with the run's w and r.
        gif: also write an endlessly looping GIF of each video.
        (docs/PATCHES.md defines every knob; unset knobs keep the config's values; `none` sets a knob
        to null; true/false are accepted in any case.)
    """
    params = dict(locals())
    overrides = {name: params.pop(name) for name in KNOB_NAMES}
    for flag in ("verbose", "shuffle_windowed_noise", "gif"):
        params[flag] = flag_value(params[flag])
    run(**params, network_overrides={k: flag_value(v) for k, v in overrides.items() if v is not None})


def flag_value(value: Any) -> Any:
    """A command-line value as meant: none/null/~ -> None, true/false (any case) -> bool, else as Fire parsed it."""
    if isinstance(value, str):
        word = value.strip().lower()
        if word in ("none", "null", "~"):
            return None
        if word in ("true", "false"):
            return word == "true"
    return value


_SAMPLE_PARAMS = list(inspect.signature(sample).parameters)
_BOOL_PARAMS = {"verbose", "shuffle_windowed_noise", "attn_window_loop", "gif"}


def _check_flags(argv: Sequence[str], known: Sequence[str], booleans: Sequence[str]) -> None:
    """Refuse unknown --flags with one line (Fire would print a usage screen)."""
    for token in argv:
        if token == "--":
            break
        if not token.startswith("--") or token == "--help":
            continue
        name = token[2:].split("=", 1)[0].replace("-", "_")
        if name in known or (name.startswith("no") and name[2:].lstrip("_") in booleans):
            continue
        raise InputError(f"unknown option {token.split('=', 1)[0]}; options: " + ", ".join("--" + p for p in known))


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text or type(err).__name__


def run_cli(command, argv: Sequence[str], name: str, known: Sequence[str], booleans: Sequence[str], log: logging.Logger) -> int:
    """Run a Fire command with the scripts' error contract: bad input is one `error:` line and exit 2,
    other failures one line and exit 1 (traceback with --verbose), an interrupt exit 130."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        _check_flags(argv, known, booleans)
        fire.Fire(command, command=list(argv), name=name)
    except (InputError, CheckpointError) as err:
        print(f"error: {_one_line(err)}", file=sys.stderr)
        return 2
    except (OSError, ValueError, RuntimeError) as err:
        log.debug("failed", exc_info=True)
        hint = "" if log.isEnabledFor(logging.DEBUG) else " (--verbose shows the traceback)"
        print(f"error: {type(err).__name__}: {_one_line(err)}{hint}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    return run_cli(sample, argv, "simple_video_sample.py", _SAMPLE_PARAMS, _BOOL_PARAMS, logger)


if __name__ == "__main__":
    sys.exit(main())
