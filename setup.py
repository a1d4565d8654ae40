"""Packaging for sgm-motion (import name `sgm`).

The YAML configs are installed inside the package so that they can be found without a checkout:
scripts/sampling/configs/*.yaml -> sgm.configs.sampling, configs/inference/*.yaml -> sgm.configs.inference
(see sgm/configs/__init__.py for the lookup).
"""
import os
import re

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))

CONFIG_PACKAGES = {
    "sgm.configs.sampling": os.path.join("scripts", "sampling", "configs"),
    "sgm.configs.inference": os.path.join("configs", "inference"),
}


def read_version() -> str:
    with open(os.path.join(HERE, "sgm", "__init__.py"), encoding="utf-8") as handle:
        match = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", handle.read(), re.MULTILINE)
    if match is None:
        raise RuntimeError("sgm/__init__.py defines no __version__")
    return match.group(1)


def read_requirements() -> list:
    with open(os.path.join(HERE, "requirements.txt"), encoding="utf-8") as handle:
        lines = (line.split("#", 1)[0].strip() for line in handle)
        return [line for line in lines if line and not line.startswith("-")]


def read_readme() -> str:
    path = os.path.join(HERE, "README.md")
    if not os.path.isfile(path):
        return ""
    with open(path, encoding="utf-8") as handle:
        return handle.read()


# A config folder that holds no file yet is not in a git checkout at all; leave its package out.
config_packages = {pkg: path for pkg, path in CONFIG_PACKAGES.items() if os.path.isdir(os.path.join(HERE, path))}

setup(
    name="sgm-motion",
    version=read_version(),
    description="Stability AI's sgm (Stable Video Diffusion) layout, reimplemented, with temporal motion controls",
    long_description=read_readme(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["sgm", "sgm.*"]) + sorted(config_packages),
    package_dir=config_packages,
    package_data={"sgm": ["checkpoints/*.safetensors"], **{pkg: ["*.yaml"] for pkg in config_packages}},
    include_package_data=False,
    python_requires=">=3.10",
    install_requires=read_requirements(),
    extras_require={"xformers": ["xformers"]},
)
