"""The YAML configs that ship with sgm-motion, found both in a checkout and in an installed package.

Two groups exist:

- ``sampling``: one config per released model version (``svd``, ``svd_xt``, ``sv3d_p``, ...), kept in
  the repository at ``scripts/sampling/configs/`` and installed as the package ``sgm.configs.sampling``;
- ``inference``: the configs under ``configs/inference/``, installed as ``sgm.configs.inference``.
"""
import importlib.resources
import os
from typing import List, Optional

GROUP_DIRS = {
    "sampling": os.path.join("scripts", "sampling", "configs"),
    "inference": os.path.join("configs", "inference"),
}

# the folder that holds the sgm package: the repository root in a checkout, site-packages in an install
PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def candidate_paths(group: str, name: str) -> List[str]:
    """Where `name` (e.g. ``svd.yaml``) of `group` may live, most specific first.

    The installed package data is tried first, then the checkout this module was imported from.
    """
    if group not in GROUP_DIRS:
        raise ValueError(f"unknown config group {group!r}; known: {', '.join(sorted(GROUP_DIRS))}")
    paths = []
    try:
        resource = importlib.resources.files(f"{__name__}.{group}") / name
        paths.append(str(resource))
    except (ModuleNotFoundError, TypeError, ValueError):
        pass
    paths.append(os.path.join(PACKAGE_PARENT, GROUP_DIRS[group], name))
    return paths


def find_config(group: str, name: str) -> Optional[str]:
    """Path of the shipped config `name` of `group`, or None when it is not there."""
    for path in candidate_paths(group, name):
        if os.path.isfile(path):
            return path
    return None


def resolve_shipped_path(path: str) -> str:
    """`path` as given when it exists (relative to the working directory), else, for a relative path,
    the same path under the folder that holds the `sgm` package (files shipped with the package, such
    as sgm/checkpoints/toy_svd.safetensors, in a checkout or an install); unchanged when neither exists."""
    if os.path.exists(path) or os.path.isabs(path):
        return path
    shipped = os.path.join(PACKAGE_PARENT, path)
    return shipped if os.path.exists(shipped) else path
