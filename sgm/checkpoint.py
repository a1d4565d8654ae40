"""Reading checkpoints (.safetensors, or .ckpt/.pt as plain tensors) and loading them into a model.

Nothing is ever unpickled beyond tensors: .ckpt files go through torch.load(weights_only=True).
"""
import logging
import os
import re
from typing import Dict, List, Tuple

import torch
from torch import nn

logger = logging.getLogger(__name__)

# OpenCLIP text-side keys that released SVD checkpoints carry although only the image tower is used.
DROPPABLE_KEYS = re.compile(
    r"(^|\.)open_clip\.model\.(token_embedding\.weight|positional_embedding|ln_final\.(weight|bias)|text_projection|logit_scale)$"
)


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the model (message is one line)."""


def read_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """Tensors of a .safetensors or .ckpt/.pt/.pth file (a Lightning `state_dict` entry is unwrapped)."""
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    ext = os.path.splitext(path)[1].lower()
    try:
        if ext == ".safetensors":
            from safetensors.torch import load_file

            return load_file(path, device="cpu")
        if ext in (".ckpt", ".pt", ".pth", ".bin"):
            sd = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
                sd = sd["state_dict"]
            if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
                raise CheckpointError(f"checkpoint {path} holds no state dict of tensors")
            return sd
    except CheckpointError:
        raise
    except Exception as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"cannot read checkpoint {path} (truncated or not a {ext} file?): {reason}") from None
    raise CheckpointError(f"unsupported checkpoint format {ext!r} for {path}; use .safetensors or .ckpt")


def load_into(model: nn.Module, sd: Dict[str, torch.Tensor]) -> Tuple[List[str], List[str]]:
    """Copy `sd` into `model` (cast to each parameter's dtype); return (missing, unexpected) keys.

    Droppable OpenCLIP text keys are removed silently; a shape mismatch raises CheckpointError.
    """
    own = model.state_dict()
    sd = {k: v for k, v in sd.items() if not (k not in own and DROPPABLE_KEYS.search(k))}
    for key, value in sd.items():
        if key in own and own[key].shape != value.shape:
            raise CheckpointError(
                f"shape mismatch for {key}: checkpoint {tuple(value.shape)}, model {tuple(own[key].shape)}"
            )
    result = model.load_state_dict(sd, strict=False)
    missing, unexpected = list(result.missing_keys), list(result.unexpected_keys)
    if missing:
        logger.warning("%d missing keys (first: %s)", len(missing), ", ".join(missing[:3]))
    if unexpected:
        logger.warning("%d unexpected keys (first: %s)", len(unexpected), ", ".join(unexpected[:3]))
    return missing, unexpected


def load_checkpoint(model: nn.Module, path: str) -> Tuple[List[str], List[str]]:
    """read_state_dict + load_into; logs one summary line for the load."""
    missing, unexpected = load_into(model, read_state_dict(path))
    logger.info("loaded %s (%d missing, %d unexpected keys)", path, len(missing), len(unexpected))
    return missing, unexpected
