"""Config-driven assembly and small helpers shared across the package."""
import importlib
from inspect import isfunction

import torch


def exists(x):
    return x is not None


def default(value, fallback):
    """`value` unless it is None, else `fallback` (called if it is a function)."""
    if value is not None:
        return value
    return fallback() if isfunction(fallback) else fallback


def get_obj_from_str(path: str, reload: bool = False):
    """Import `package.module.Name` and return `Name`."""
    module_name, attr = path.rsplit(".", 1)
    module = importlib.import_module(module_name)
    if reload:
        module = importlib.reload(module)
    return getattr(module, attr)


def instantiate_from_config(config):
    """Build `target(**params)` from a mapping with keys `target` and optional `params`."""
    if "target" not in config:
        if config in ("__is_first_stage__", "__is_unconditional__"):
            return None
        raise KeyError("Expected key `target` to instantiate.")
    params = config.get("params", None) or {}
    return get_obj_from_str(config["target"])(**params)


def append_dims(x: torch.Tensor, target_dims: int) -> torch.Tensor:
    """Append trailing singleton dims to `x` until it has `target_dims` dims."""
    missing = target_dims - x.ndim
    if missing < 0:
        raise ValueError(f"input has {x.ndim} dims but target_dims is {target_dims}, which is less")
    return x[(...,) + (None,) * missing]


def append_zero(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x, x.new_zeros([1])])
