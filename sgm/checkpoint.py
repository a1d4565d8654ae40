"""Reading checkpoints (.safetensors, or .ckpt/.pt as plain tensors) and loading them into a model.

Nothing is ever unpickled beyond tensors: .ckpt files go through torch.load(weights_only=True), and
one that holds anything else is refused. Loading is strict: every weight of the model must be in
the checkpoint with its shape (OpenCLIP text-side keys, which the image-only models do not have,
are dropped); `allow_partial=True` loads what is there and reports what is not.
"""
import logging
import os
import pickle
import re
from dataclasses import dataclass, field
from typing import Dict, List

import torch
from torch import nn

logger = logging.getLogger(__name__)

# OpenCLIP text-side keys that released SVD checkpoints carry although only the image tower is used.
DROPPABLE_KEYS = re.compile(
    r"(^|\.)open_clip\.model\.(token_embedding\.weight|positional_embedding|ln_final\.(weight|bias)|text_projection|logit_scale)$"
)
PARTIAL_FLAG = "allow_partial_checkpoint"


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the model (message is one line)."""


@dataclass
class LoadReport:
    """What a load left out: model keys absent from the checkpoint, checkpoint keys the model lacks."""

    path: str
    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)


def _first(keys: List[str], n: int = 3) -> str:
    return ", ".join(keys[:n]) + (", ..." if len(keys) > n else "")


def _reason(err: BaseException) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def _read_pickle(path: str) -> Dict[str, torch.Tensor]:
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"GLOBAL ([\w.]+)", str(err))
        what = f" (it names {found.group(1)})" if found else ""
        raise CheckpointError(
            f"refused checkpoint {path}: a .ckpt may only hold tensors and this one holds other Python objects{what}, "
            "which could run code when loaded; use a .safetensors file or a tensors-only .ckpt"
        ) from None
    if isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise CheckpointError(f"checkpoint {path} holds no state dict of tensors")
    return sd


def read_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """Tensors of a .safetensors or .ckpt/.pt/.pth/.bin file (a Lightning `state_dict` entry is unwrapped)."""
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".safetensors", ".ckpt", ".pt", ".pth", ".bin"):
        raise CheckpointError(f"unsupported checkpoint format {ext!r} for {path}; use .safetensors or .ckpt")
    try:
        if ext == ".safetensors":
            from safetensors.torch import load_file

            return load_file(path, device="cpu")
        return _read_pickle(path)
    except CheckpointError:
        raise
    except Exception as err:  # torch and safetensors raise many types for damaged files
        raise CheckpointError(f"cannot read checkpoint {path} (truncated or not a {ext} file?): {_reason(err)}") from None


def match_keys(model: nn.Module, sd: Dict[str, torch.Tensor], path: str = "the checkpoint") -> LoadReport:
    """Compare `sd` with `model`'s state dict: a shape mismatch raises CheckpointError; returns the
    missing and unexpected keys (droppable OpenCLIP text keys are not unexpected)."""
    own = model.state_dict()
    report = LoadReport(path)
    for key, value in sd.items():
        if key not in own:
            if not DROPPABLE_KEYS.search(key):
                report.unexpected.append(key)
        elif own[key].shape != value.shape:
            raise CheckpointError(f"checkpoint {path} does not fit the model: {key} is {tuple(value.shape)} there "
                                  f"and {tuple(own[key].shape)} in the model (a checkpoint of another model or config?)")
    report.missing = [key for key in own if key not in sd]
    return report


def load_into(model: nn.Module, sd: Dict[str, torch.Tensor], path: str = "the checkpoint", allow_partial: bool = False) -> LoadReport:
    """Copy `sd` into `model` (cast to each parameter's dtype) and return the LoadReport.

    Raises CheckpointError (one line, naming the unexpected keys too) when weights are missing,
    unless `allow_partial`; then the missing weights keep their initial values. Logs one line for
    each kind of key left out."""
    report = match_keys(model, sd, path)
    total = len(model.state_dict())
    extra = f"; it also holds {len(report.unexpected)} keys the model lacks ({_first(report.unexpected)})" if report.unexpected else ""
    if report.missing and not allow_partial:
        none = len(report.missing) == total
        raise CheckpointError(
            f"checkpoint {path} " + ("holds none of the model's weights" if none else
                                     f"lacks {len(report.missing)} of the model's {total} weights ({_first(report.missing)})")
            + f"{extra}; use the checkpoint made for this config, or pass --{PARTIAL_FLAG} to sample with the missing "
            "weights left at their initial values")
    model.load_state_dict(sd, strict=False)  # unexpected and droppable keys are skipped, as report says
    if report.missing:
        logger.warning("%s: %d of %d weights missing, left at their initial values (%s)", path, len(report.missing), total,
                       _first(report.missing))
    if report.unexpected:
        logger.warning("%s: %d keys the model lacks were ignored (%s)", path, len(report.unexpected), _first(report.unexpected))
    return report


def load_checkpoint(model: nn.Module, path: str, allow_partial: bool = False) -> LoadReport:
    """read_state_dict + load_into (strict unless `allow_partial`)."""
    report = load_into(model, read_state_dict(path), path, allow_partial)
    logger.info("loaded %s (%d missing, %d unexpected keys)", path, len(report.missing), len(report.unexpected))
    return report
