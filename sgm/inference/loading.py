"""Model configs and checkpoints: find, read and check them cheaply, then build the model once."""
import logging
import os
from contextlib import nullcontext
from typing import Any, Optional, Tuple, Union

import torch
from omegaconf import DictConfig, OmegaConf

from ..checkpoint import CheckpointError, LoadReport, load_checkpoint
from ..configs import PACKAGE_PARENT, find_config, resolve_shipped_path
from ..util import instantiate_from_config
from .checks import InputError, one_line
from .versions import RELEASED_WEIGHTS

logger = logging.getLogger(__name__)


def resolve_config_path(version: Optional[str], config: Optional[Any] = None) -> str:
    """The YAML to use: `config` when given, else the shipped config of `version`."""
    if config is not None:
        config = os.fspath(config)
        if not os.path.isfile(config):
            raise InputError(f"config file not found: {config}")
        return os.path.abspath(config)
    found = find_config("sampling", f"{version}.yaml")
    if found is None:
        raise InputError(f"no config for version {version!r} (looked for scripts/sampling/configs/{version}.yaml); pass --config")
    return os.path.abspath(found)


def read_config(config: Union[str, os.PathLike, DictConfig, dict], ckpt_path: Optional[Any] = None) -> Tuple[DictConfig, Optional[str]]:
    """(config, path of the YAML or None) with the checkpoint path set (`ckpt_path` when given) and
    resolved; checks the sections sampling needs."""
    path = None
    if isinstance(config, (DictConfig, dict)):
        cfg = OmegaConf.create(OmegaConf.to_container(OmegaConf.create(config), resolve=True))
    else:
        path = resolve_config_path(None, config)
        try:
            cfg = OmegaConf.load(path)
        except Exception as err:  # yaml and omegaconf raise many types for bad YAML
            raise InputError(f"cannot read config {path}: {one_line(err)}") from None
    where = path or "the config"
    if not isinstance(cfg, DictConfig) or not isinstance(cfg.get("model"), DictConfig) or "target" not in cfg.model:
        raise InputError(f"config {where} has no model section with a target")
    if not isinstance(cfg.model.get("params"), DictConfig):
        raise InputError(f"config {where} has no model.params section")
    params = cfg.model.params
    for section in ("sampler_config", "network_config"):
        if not isinstance(params.get(section), DictConfig):
            raise InputError(f"config {where} has no model.params.{section}")
        if params[section].get("params") is None:
            params[section].params = {}
    if ckpt_path is not None:
        params.ckpt_path = os.fspath(ckpt_path)
    if params.get("ckpt_path") is not None:
        params.ckpt_path = resolve_shipped_path(str(params.ckpt_path))
    return cfg, path


def _not_found(path: str, version: Optional[str]) -> str:
    """The message for a missing checkpoint: where it was looked for and how to get one."""
    places = dict.fromkeys([os.path.abspath(path), os.path.abspath(os.path.join(PACKAGE_PARENT, path))])
    where = " or ".join(places)
    name = version or os.path.splitext(os.path.basename(path))[0]  # a released file keeps its version's name
    model = RELEASED_WEIGHTS.get(name)
    fetch = (f"download {os.path.basename(path)} from the Hugging Face model {model} (sgm-motion never downloads weights) "
             f"and put it there or pass --ckpt_path" if model else "pass --ckpt_path with a checkpoint made for this config")
    if name.startswith("sv4d"):
        return f"checkpoint not found: {path} (looked for {where}); {fetch}"
    return f"checkpoint not found: {path} (looked for {where}); {fetch}; --version toy_svd runs at once, its weights ship with the package"


def check_checkpoint(path: str, version: Optional[str] = None) -> None:
    """Cheap check that `path` exists and, for .safetensors, that its header is whole; a missing
    file's message says where it was looked for and, for a released `version`, where it comes from."""
    if not os.path.isfile(path):
        raise CheckpointError(_not_found(path, version))
    if path.lower().endswith(".safetensors"):
        from safetensors import safe_open

        try:
            with safe_open(path, framework="pt") as handle:
                handle.keys()
        except Exception as err:
            raise CheckpointError(f"cannot read checkpoint {path} (truncated or not a .safetensors file?): {one_line(err)}") from None


def build_model(cfg: DictConfig, device: torch.device, dtype: Optional[torch.dtype] = None, where: str = "the config",
                allow_partial: bool = False) -> Tuple[torch.nn.Module, Optional[LoadReport]]:
    """(model.* of `cfg` on `device` in eval mode with weights cast to `dtype` when given, the
    LoadReport of model.params.ckpt_path or None when the config names none). Loading is strict
    unless `allow_partial` (sgm.checkpoint)."""
    model_cfg = OmegaConf.create(OmegaConf.to_container(cfg.model, resolve=True))
    ckpt_path = model_cfg.params.pop("ckpt_path", None)
    if ckpt_path is None:
        logger.warning("%s names no checkpoint: the model keeps its random initial weights", where)
    else:
        check_checkpoint(ckpt_path)
    try:
        with torch.device(device) if device.type != "cpu" else nullcontext():
            model = instantiate_from_config(model_cfg)
    except (ImportError, AttributeError, KeyError, TypeError, ValueError) as err:
        logger.debug("building the model failed", exc_info=True)
        raise InputError(f"cannot build the model from {where}: {type(err).__name__}: {one_line(err)}") from None
    report = None if ckpt_path is None else load_checkpoint(model, ckpt_path, allow_partial)
    return model.to(device=device, dtype=dtype).eval(), report
