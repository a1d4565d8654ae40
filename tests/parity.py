"""Helpers to run the tiny upstream-parity model exactly as the goldens were computed."""
from pathlib import Path

import torch
from einops import rearrange, repeat
from omegaconf import OmegaConf
from safetensors.torch import load_file

from sgm.checkpoint import load_checkpoint
from sgm.util import instantiate_from_config

FIXTURES = Path(__file__).parent / "fixtures" / "upstream_parity"
CONFIG = FIXTURES / "tiny_svd.yaml"
WEIGHTS = FIXTURES / "weights.safetensors"
FRAMES = 5


def goldens():
    return load_file(str(FIXTURES / "goldens.safetensors"))


def tiny_config(**network_overrides):
    cfg = OmegaConf.load(CONFIG)
    for key, value in network_overrides.items():
        cfg.model.params.network_config.params[key] = value
    return cfg


def tiny_model(**network_overrides):
    model = instantiate_from_config(tiny_config(**network_overrides).model).eval()
    missing, unexpected = load_checkpoint(model, str(WEIGHTS))
    assert not missing and not unexpected
    return model


def conditioning_batch(g, frames=FRAMES):
    image = g["sample.image"]
    batch = {
        "cond_frames_without_noise": image,
        "fps_id": torch.tensor([6]).repeat(frames),
        "motion_bucket_id": torch.tensor([127]).repeat(frames),
        "cond_aug": torch.tensor([0.02]).repeat(frames),
        "cond_frames": image + 0.02 * g["sample.cond_noise"],
        "num_video_frames": frames,
    }
    return batch, {k: v.clone() for k, v in batch.items() if isinstance(v, torch.Tensor)}


def per_frame(cond, frames=FRAMES):
    """Repeat crossattn / concat over the frames, as the sampling script does."""
    out = dict(cond)
    for k in ("crossattn", "concat"):
        out[k] = rearrange(repeat(cond[k], "b ... -> b t ...", t=frames), "b t ... -> (b t) ...")
    return out


def model_inputs(frames=FRAMES):
    return {"image_only_indicator": torch.zeros(2, frames), "num_video_frames": frames}
