"""Every shipped config builds a model whose state_dict has the released checkpoint's keys and shapes.

Models are built on the meta device: no memory is allocated and nothing is initialised, so a
full-size SVD builds in about a second. The reference layouts are {key: shape} gzip'd JSON dumps of
the released checkpoints (tests/fixtures/checkpoint_layout). The only keys a model may lack are
the OpenCLIP text-side ones, which the released checkpoints carry but the image embedder never uses.
"""
import gzip
import json
import re
from pathlib import Path
from typing import Dict, List

import pytest
import torch
from omegaconf import OmegaConf

from sgm.util import instantiate_from_config

ROOT = Path(__file__).resolve().parent.parent
LAYOUTS = ROOT / "tests" / "fixtures" / "checkpoint_layout"
SAMPLING_CONFIGS = ROOT / "scripts" / "sampling" / "configs"
INFERENCE_CONFIGS = ROOT / "configs" / "inference"

# OpenCLIP text tower leftovers: present in the checkpoints, optional in the model.
OPTIONAL_KEYS = re.compile(
    r"(^|\.)open_clip\.model\."
    r"(token_embedding\.weight|positional_embedding|ln_final\.(weight|bias)|text_projection|logit_scale)$"
)

# (config file, name of the layout it must match)
CASES = [
    (SAMPLING_CONFIGS / "svd.yaml", "svd"),
    (SAMPLING_CONFIGS / "svd_xt.yaml", "svd_xt"),
    (SAMPLING_CONFIGS / "svd_xt_1_1.yaml", "svd_xt"),
    (SAMPLING_CONFIGS / "svd_image_decoder.yaml", "svd_image_decoder"),
    (SAMPLING_CONFIGS / "svd_xt_image_decoder.yaml", "svd_image_decoder"),
    (SAMPLING_CONFIGS / "sv3d_u.yaml", "sv3d_u"),
    (SAMPLING_CONFIGS / "sv3d_p.yaml", "sv3d_p"),
    (SAMPLING_CONFIGS / "sv4d.yaml", "sv4d"),
    (SAMPLING_CONFIGS / "sv4d2.yaml", "sv4d2"),
    (SAMPLING_CONFIGS / "sv4d2_8views.yaml", "sv4d2_8views"),
    (INFERENCE_CONFIGS / "svd.yaml", "svd"),
    (INFERENCE_CONFIGS / "svd_image_decoder.yaml", "svd_image_decoder"),
    (INFERENCE_CONFIGS / "sv3d_u.yaml", "sv3d_u"),
    (INFERENCE_CONFIGS / "sv3d_p.yaml", "sv3d_p"),
]

SHOW = 8  # how many offending keys a failure message lists per category


def _case_id(case) -> str:
    path, layout = case
    kind = "sampling" if path.parent == SAMPLING_CONFIGS else "inference"
    return f"{kind}/{path.stem}->{layout}"


def load_layout(name: str) -> Dict[str, List[int]]:
    with gzip.open(LAYOUTS / f"{name}.json.gz", "rt") as f:
        return {key: list(shape) for key, shape in json.load(f).items()}


def build_on_meta(config_path: Path) -> torch.nn.Module:
    config = OmegaConf.load(config_path)
    # weights are never loaded here: only the module structure is checked
    config.model.params.pop("ckpt_path", None)
    with torch.device("meta"):
        return instantiate_from_config(config.model)


def _listing(title: str, items: List[str]) -> str:
    shown = "\n    ".join(items[:SHOW])
    more = f"\n    ... and {len(items) - SHOW} more" if len(items) > SHOW else ""
    return f"  {len(items)} {title}:\n    {shown}{more}"


def layout_problems(model_layout: Dict[str, List[int]], expected: Dict[str, List[int]]) -> str:
    """A readable report of how the two layouts differ ('' if they agree up to optional keys)."""
    missing = sorted(k for k in expected if k not in model_layout and not OPTIONAL_KEYS.search(k))
    extra = sorted(k for k in model_layout if k not in expected)
    mismatched = sorted(
        f"{k}: model {model_layout[k]}, checkpoint {expected[k]}"
        for k in expected
        if k in model_layout and model_layout[k] != expected[k]
    )
    parts = []
    if missing:
        parts.append(_listing("keys of the checkpoint missing from the model", missing))
    if extra:
        parts.append(_listing("keys of the model not in the checkpoint", extra))
    if mismatched:
        parts.append(_listing("shape mismatches", mismatched))
    return "\n".join(parts)


@pytest.mark.parametrize("config_path, layout", CASES, ids=[_case_id(c) for c in CASES])
def test_state_dict_matches_released_layout(config_path: Path, layout: str):
    assert config_path.is_file(), f"config {config_path} does not exist"
    model = build_on_meta(config_path)
    model_layout = {key: list(t.shape) for key, t in model.state_dict().items()}
    problems = layout_problems(model_layout, load_layout(layout))
    assert not problems, f"{config_path.relative_to(ROOT)} vs layout {layout!r}:\n{problems}"


def test_sampling_configs_name_their_checkpoint():
    # sampling configs point at checkpoints/<config name>.safetensors, inference ones at nothing
    for path in sorted({p for p, _ in CASES}):
        ckpt = OmegaConf.load(path).model.params.get("ckpt_path")
        if path.parent == SAMPLING_CONFIGS:
            assert ckpt == f"checkpoints/{path.stem}.safetensors", f"{path}: ckpt_path is {ckpt!r}"
        else:
            assert ckpt is None, f"{path}: inference configs must not set ckpt_path (got {ckpt!r})"


def test_layout_report_is_informative():
    # the failure message names what is missing, what is extra and what has the wrong shape
    expected = {"a.weight": [2, 3], "b.bias": [4], "x.open_clip.model.logit_scale": []}
    report = layout_problems({"a.weight": [3, 2], "c.weight": [1]}, expected)
    assert "b.bias" in report and "c.weight" in report and "a.weight: model [3, 2], checkpoint [2, 3]" in report
    assert "logit_scale" not in report
    assert layout_problems({"a.weight": [2, 3], "b.bias": [4]}, expected) == ""
