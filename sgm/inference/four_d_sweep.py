"""A sweep of the motion knobs (and seed) over one input video with an SV4D / SV4D 2.0 model.

The axes are read as for SVD sweeps (sgm.inference.sweep.split_settings: comma-separated text,
bracketed lists, a --grid file; cells named by cell_name), but only the motion knobs
(sgm.modules.motion.KNOB_NAMES) and seed are sweepable with a 4D model. Every cell is validated
whole (FourDPipeline.settings) before a model is loaded. It runs in one process: the SV3D stage
(SV4D only) makes the reference views once per seed, then the 4D model is loaded once and every
cell is one FourDPipeline.sample call, exactly what simple_video_sample_4d(2).py makes with the
cell's flags (its JSON holds that command).

OUTPUT_FOLDER (new or empty) receives per cell <cell name>.mp4 (the input frame and the V views
side by side, as the 4D scripts' NNNNNN.mp4), <cell name>.npz (uint8 views (N, V, H, W, 3) under
"frames") and <cell name>.json (written last: the pipeline's record, the cell's values and the
reproducing command); then sweep.json (axes, cells) and contact_sheet.png (one row per cell).
"""
import datetime
import json
import logging
import os
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import torch
from PIL import Image

from ..modules.motion import KNOB_NAMES
from .checks import InputError, resolve_device
from .cli import command_line
from .four_d import (VIDEO_FPS, FourDOutput, FourDPipeline, grid_frames, load_video, plan_reference, views_uint8)
from .job import Cell
from .loading import read_config, resolve_config_path
from .outputs import check_output_folder, write_json, write_mp4, write_npz, write_png
from .sweep import SWEEPABLE, make_cells, read_grid_file, split_settings
from .sv4d import FOUR_D_VERSIONS
from .views import contact_sheet

logger = logging.getLogger(__name__)

FOUR_D_SWEEPABLE = KNOB_NAMES + ("seed",)
SCRIPTS = {"sv4d": "scripts/sampling/simple_video_sample_4d.py", "sv4d2": "scripts/sampling/simple_video_sample_4d2.py",
           "sv4d2_8views": "scripts/sampling/simple_video_sample_4d2.py"}


def is_four_d(version: Any, config: Any) -> bool:
    """Whether a sweep's --version / --config name a 4D model (a 4D version name, or a config whose
    network is SpatialUNetModelWithTime). A config that cannot be read is left to the SVD checks."""
    if config is None:
        return str(version) in FOUR_D_VERSIONS
    try:
        cfg, _ = read_config(config)
    except InputError:
        return str(version) in FOUR_D_VERSIONS
    return str(cfg.model.params.network_config.get("target", "")).endswith(".SpatialUNetModelWithTime")


@dataclass
class FourDSweep:
    """A checked 4D sweep; run() samples every cell and writes the outputs."""

    folder: str
    pipeline: FourDPipeline  # planned, with its planned reference stage for SV4D
    video: torch.Tensor  # (N, 3, S, S) in [-1, 1]
    facts: Dict[str, Any]
    cells: List[Cell]
    axes: Dict[str, List[Any]]
    fixed: Dict[str, Any]
    flags: Dict[str, Any]  # the 4D script's flags as resolved (for the cells' commands)
    command: str

    def cell_command(self, cell: Cell) -> str:
        """The simple_video_sample_4d(2).py command that makes the same video as `cell`."""
        call = cell.settings
        knobs = {k: "none" if v is None else list(v) if isinstance(v, tuple) else v for k, v in cell.given.items() if k in KNOB_NAMES}
        params = {**self.flags, "num_steps": call.num_steps, "seed": call.seed, "decoding_t": call.decoding_t,
                  "elevations_deg": call.elevations_deg, "azimuths_deg": call.azimuths_deg,
                  "output_folder": os.path.join(self.folder, "reproduce"), **knobs}
        return command_line(SCRIPTS[self.pipeline.version], params)

    def run(self, say: Callable[[str], None] = lambda line: None) -> Dict[str, Any]:
        references: Dict[str, Any] = {}
        if self.pipeline.needs_reference:
            stage = self.pipeline.reference
            if stage.model is None:
                logger.info("loading the reference-view model (%s) on %s", stage.config_path, stage.device)
                stage = stage.load()
            for cell in self.cells:
                key = _reference_key(cell)
                if key not in references:
                    say(f"reference views for seed {cell.settings.seed}")
                    references[key] = self.pipeline.reference_views(self.video, cell.settings, stage)
            del stage
        loaded = self.pipeline.load()
        os.makedirs(self.folder, exist_ok=True)
        sheet_videos, labels = [], []
        for cell in self.cells:
            say(f"cell {cell.index + 1}/{len(self.cells)}: {cell.name}")
            reference = (None, None)
            if self.pipeline.needs_reference:
                reference = references[_reference_key(cell)]
            output = loaded.sample(self.video, cell.settings, *reference, self.facts)
            grid = self.save_cell(cell, output)
            sheet_videos.append(grid)
            labels.append(cell.label)
        summary = {"script": "scripts/sampling/sweep.py", "command": self.command, "version": self.pipeline.version,
                   "config": self.pipeline.config_path, "ckpt_path": self.pipeline.ckpt_path, "input": self.facts,
                   "axes": {k: [_plain(v) for v in values] for k, values in self.axes.items()},
                   "fixed": {k: _plain(v) for k, v in self.fixed.items()},
                   "cells": [{"index": c.index, "name": c.name, "values": {k: _plain(v) for k, v in c.values.items()},
                              "files": [c.name + s for s in (".mp4", ".npz", ".json")]} for c in self.cells],
                   "created": _now()}
        write_json(summary, os.path.join(self.folder, "sweep.json"))
        sheet = contact_sheet(sheet_videos, labels)
        write_png(Image.fromarray(sheet.image), os.path.join(self.folder, "contact_sheet.png"))
        return summary

    def save_cell(self, cell: Cell, output: FourDOutput) -> np.ndarray:
        base = os.path.join(self.folder, cell.name)
        per_view = views_uint8(output)
        grid = grid_frames(output, per_view)
        write_npz(per_view, base + ".npz")
        write_mp4(grid, base + ".mp4", VIDEO_FPS)
        record = {**output.record, "video_fps": VIDEO_FPS,
                  "cell": {"index": cell.index, "name": cell.name, "values": {k: _plain(v) for k, v in cell.values.items()}},
                  "given": {k: _plain(v) for k, v in cell.given.items()},
                  "files": {"grid": cell.name + ".mp4", "views": cell.name + ".npz"},
                  "command": self.cell_command(cell), "sweep_command": self.command, "created": _now()}
        write_json(record, base + ".json")
        return grid


def _reference_key(cell: Cell) -> str:
    """Cells whose SV3D-stage settings are equal share its reference views."""
    return json.dumps(cell.settings.reference.as_dict(), sort_keys=True, default=str)


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def plan_four_d_sweep(input_path: Any, settings: Dict[str, Any], grid: Optional[str] = None, version: Any = None,
                      config: Any = None, ckpt_path: Any = None, device: Any = None, num_steps: Any = None,
                      decoding_t: Any = 4, img_size: Any = 576, n_frames: Any = 21, elevations_deg: Any = None,
                      azimuths_deg: Any = None, sv3d_version: Any = "sv3d_u", sv3d_config: Any = None,
                      sv3d_ckpt_path: Any = None, output_folder: Any = None, command: str = "") -> FourDSweep:
    """Check a 4D sweep without loading a model: the axes (motion knobs and seed only), the config
    and checkpoints, every cell, the input video and the output folder (new or empty)."""
    entries = {} if grid is None else read_grid_file(str(grid))
    axes, fixed = split_settings(settings, entries)
    other = [name for name in SWEEPABLE if (name in axes or name in fixed) and name not in FOUR_D_SWEEPABLE]
    if other:
        raise InputError(f"{', '.join(other)} cannot be swept with a 4D model; sweepable: the motion knobs "
                         f"({', '.join(KNOB_NAMES)}) and seed")
    version = None if version is None or str(version) not in FOUR_D_VERSIONS else str(version)
    if config is None:
        config = resolve_config_path(version)
    device = resolve_device(device)
    pipeline = FourDPipeline.plan(config, ckpt_path, device)
    if version is not None and version != pipeline.version:
        raise InputError(f"--version {version} does not match {pipeline.config_path or 'the config'}, an {pipeline.version} model")
    flags: Dict[str, Any] = {"input_path": input_path, "config": pipeline.config_path, "ckpt_path": pipeline.ckpt_path}
    if pipeline.needs_reference:
        ref_flags = {"sv3d_version": sv3d_version, "sv3d_config": sv3d_config, "sv3d_ckpt_path": sv3d_ckpt_path}
        pipeline = pipeline.with_reference(plan_reference(ref_flags, device))
        flags.update({**ref_flags, "sv3d_config": None if sv3d_config is None else pipeline.reference.config_path,
                      "sv3d_ckpt_path": None if sv3d_ckpt_path is None else os.path.abspath(str(sv3d_ckpt_path))})
    elif any(v is not None for v in (sv3d_config, sv3d_ckpt_path)) or str(sv3d_version) != "sv3d_u":
        raise InputError(f"--sv3d_version, --sv3d_config and --sv3d_ckpt_path choose SV4D's reference stage; {pipeline.version} has none")
    cells = make_cells(axes, fixed, pipeline, num_steps=num_steps, decoding_t=decoding_t, elevations_deg=elevations_deg,
                       azimuths_deg=azimuths_deg)
    video, facts = load_video(input_path, n_frames, img_size)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
    folder = str(output_folder or os.path.join("outputs", "sweep", pipeline.version, stamp))
    check_output_folder(folder)
    if os.path.isdir(folder) and os.listdir(folder):
        raise InputError(f"output_folder {folder} is not empty; a 4D sweep writes into a new or empty folder")
    flags.update({"input_path": facts["path"], "img_size": facts["size"][0], "n_frames": int(video.shape[0]), "device": str(device)})
    return FourDSweep(folder, pipeline, video, facts, cells, axes, fixed, flags, command)
