"""A sweep: one image sampled over a grid of settings with one loaded model.

Axes are sweepable settings (SWEEPABLE: every knob of sgm.modules.motion and five call
parameters) with several values: comma-separated text ("0.5,1,2"; a trailing comma makes a
one-value axis), a bracketed list ("[0.5, 2]") or a YAML list (grid files). A setting given one
value is fixed for every cell. Stage sets are written middle+output, or all (also none) for every
stage. The cells are the cartesian product of the axes in SWEEPABLE order, the last varying
fastest. Every cell is validated as a whole (ModelDefaults.settings) before a model is built, and
a cell is exactly one VideoPipeline call: the call simple_video_sample.py makes with the cell's
flags (its record holds that command).

plan_sweep checks everything cheap and returns a SweepPlan; run_sweep samples the cells that are
not finished and writes (all files atomic, each cell's JSON last, so that a cell whose JSON exists
is whole):
  cell_NNN_<axis>-<value>....npz / .mp4 / .json (/ .gif)   frames, video, record of each cell
  conditioning.png  the image as used        sweep.json   the plan (then the views' layouts)
  grid.mp4, contact_sheet.png, metrics.csv, plot_<axis>_<metric>.png   (sgm.inference.views)
"""
import datetime
import hashlib
import itertools
import json
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import yaml
from PIL import Image

from ..modules.motion import ALL_KNOB_NAMES, AUTO, KNOB_NAMES, SAMPLING_KNOB_NAMES, STAGE_KNOBS, MotionKnobs, SamplingKnobs
from .checks import InputError, as_float, as_int, as_seed, one_line
from .cli import SAMPLE_SCRIPT, SWEEP_SCRIPT, command_line, parse_value
from .images import ConditioningImage, conditioning_image, frames_to_uint8, list_input_images, sampled_size
from .outputs import check_output_folder, read_npz, write_gif, write_json, write_mp4, write_npz, write_png
from .pipeline import VideoOutput, VideoPipeline
from .record import build_record, package_versions
from .settings import CALL_PARAMS, CallSettings
from .versions import check_version
from .views import METRICS, build_grid, contact_sheet, fmt, frame_metrics, slug, write_csv, write_plots

SAMPLE_AXES = ("motion_bucket_id", "fps_id", "cond_aug", "num_frames", "seed")
SWEEPABLE = ALL_KNOB_NAMES + SAMPLE_AXES
CONDITIONING_PNG = "conditioning.png"
SWEEP_JSON = "sweep.json"
# record fields that must match for --resume to reuse a finished cell
IDENTITY_KEYS = ("version", "config_path", "ckpt_path", "device", "dtype", "image_sha256", *CALL_PARAMS,
                 "motion_knobs", "sampling_knobs", "sv3d_angles")
_SAMPLE_CHECKS = {
    "num_frames": lambda v: as_int("num_frames", v, minimum=1),
    "fps_id": lambda v: as_int("fps_id", v, minimum=0),
    "motion_bucket_id": lambda v: as_int("motion_bucket_id", v, minimum=0),
    "cond_aug": lambda v: as_float("cond_aug", v, minimum=0.0),
    "seed": as_seed,
}


# --------------------------------------------------------------------------------------------------
# Values and axes


def parse_item(name: str, item: Any) -> Any:
    """One value of setting `name` as given (text or a YAML value), not yet validated: for a stage
    knob all/none/null -> None and middle+output or a list -> a tuple of stages; else
    cli.parse_value (none -> None, true/false, numbers, words)."""
    if name in STAGE_KNOBS:
        if isinstance(item, (list, tuple)):
            return tuple(s.strip() if isinstance(s, str) else s for s in item)
        if isinstance(item, str):
            text = item.strip()
            return None if text.lower() in ("all", "none", "null", "~") else tuple(p.strip() for p in text.split("+"))
        return item
    if isinstance(item, (list, tuple, dict)):
        raise InputError(f"{name}: each value must be a number, a word or none, got {item!r}")
    return parse_value(item)


def is_axis(raw: Any) -> bool:
    """Whether a setting's raw value lists values (a list, or text with a comma or in brackets)."""
    return isinstance(raw, (list, tuple)) or (isinstance(raw, str) and ("," in raw or raw.strip().startswith("[")))


def split_values(name: str, raw: Any) -> List[Any]:
    """The values of axis `name` (parsed by parse_item) from a list, bracketed text or comma-separated text."""
    if isinstance(raw, str) and raw.strip().startswith("["):
        try:
            raw = yaml.safe_load(raw)
        except yaml.YAMLError as err:
            raise InputError(f"{name}: cannot read the list {raw!r}: {one_line(err)}") from None
        if not isinstance(raw, list):
            raise InputError(f"{name}: cannot read the list {raw!r}")
    if isinstance(raw, str):
        items = [piece.strip() for piece in raw.split(",")]
        if len(items) > 1 and items[-1] == "":
            items.pop()
        if "" in items:
            raise InputError(f"{name}: empty value in {raw!r}")
    else:
        items = list(raw) if isinstance(raw, (list, tuple)) else [raw]
    if not items:
        raise InputError(f"{name}: empty list of values")
    return [parse_item(name, item) for item in items]


def _one_knob(cls, name: str, value: Any) -> Any:
    try:
        return getattr(cls(**{name: value}), name)
    except (TypeError, ValueError) as err:
        raise InputError(one_line(err)) from None


def check_value(name: str, value: Any) -> Any:
    """`value` (parsed) checked alone and normalised for setting `name`; InputError when invalid.
    An auto window passes here: its attn_window_min and attn_window_max are checked per cell."""
    if name in KNOB_NAMES:
        return AUTO if name == "attn_window_size" and value == AUTO else _one_knob(MotionKnobs, name, value)
    if name in SAMPLING_KNOB_NAMES:
        return _one_knob(SamplingKnobs, name, value)
    if name not in _SAMPLE_CHECKS:
        raise InputError(f"{name} cannot be swept; sweepable: {', '.join(SWEEPABLE)}")
    return _SAMPLE_CHECKS[name](value)


def check_axis(name: str, raw: Any) -> List[Any]:
    """The checked values of axis `name`, in the order given; a value given twice is refused."""
    values: List[Any] = []
    for value in (check_value(name, v) for v in split_values(name, raw)):
        if any(value == seen and type(value) is type(seen) for seen in values):
            raise InputError(f"{name} lists the value {fmt(value, name)} twice")
        values.append(value)
    return values


def read_grid_file(path: str) -> Dict[str, Any]:
    """The raw `axis: [values]` entries of a YAML grid file, each name sweepable."""
    if not os.path.isfile(path):
        raise InputError(f"grid file not found: {path}")
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise InputError(f"cannot read grid file {path}: {one_line(err)}") from None
    if not isinstance(data, dict) or not data:
        raise InputError(f"grid file {path} must be a non-empty mapping of axis: [values]")
    for name in data:
        if name not in SWEEPABLE:
            raise InputError(f"{name!r} in grid file {path} cannot be swept; sweepable: {', '.join(SWEEPABLE)}")
    return data


def split_settings(raw: Dict[str, Any], grid: Dict[str, Any]) -> tuple:
    """(axes, fixed) from raw settings {name: value as given} and grid-file entries: axes
    {name: [values]} in SWEEPABLE order, fixed {name: value}, all checked one value at a time."""
    unknown = sorted(set(raw) - set(SWEEPABLE))
    if unknown:
        raise InputError(f"{', '.join(unknown)} cannot be swept; sweepable: {', '.join(SWEEPABLE)}")
    both = sorted(set(raw) & set(grid))
    if both:
        raise InputError(f"{both[0]} is given both as a flag and in the grid file")
    lists = {**{k: v for k, v in raw.items() if is_axis(v)}, **grid}
    axes = {name: check_axis(name, lists[name]) for name in SWEEPABLE if name in lists}
    fixed = {name: check_value(name, parse_item(name, value)) for name, value in raw.items() if name not in lists}
    if not axes:
        raise InputError("nothing to sweep: give a setting several values (e.g. --temporal_attn_scale 0.5,1,2) or a --grid file")
    return axes, fixed


# --------------------------------------------------------------------------------------------------
# Cells


@dataclass
class Cell:
    """One combination of the axes: `values` {axis: value}, `given` the settings passed to
    ModelDefaults.settings (the fixed ones and `values`), `settings` the validated result."""

    index: int
    name: str
    values: Dict[str, Any]
    given: Dict[str, Any]
    settings: CallSettings

    @property
    def label(self) -> List[str]:
        return [f"{axis}={fmt(value, axis)}" for axis, value in self.values.items()]

    def path(self, folder: str, suffix: str) -> str:
        return os.path.join(folder, self.name + suffix)


def describe(values: Dict[str, Any]) -> str:
    return ", ".join(f"{axis}={fmt(value, axis)}" for axis, value in values.items())


def cell_name(index: int, width: int, values: Dict[str, Any]) -> str:
    """cell_<index, zero-padded to `width`>_<axis>-<value>...; names past 180 characters are cut
    to 160 plus a hash of the whole (file names stay under the usual 255-byte limit)."""
    name = f"cell_{index:0{width}d}" + "".join(f"_{axis}-{slug(value, axis)}" for axis, value in values.items())
    return name if len(name) <= 180 else name[:160] + "_" + hashlib.sha1(name.encode()).hexdigest()[:10]


def make_cells(axes: Dict[str, List[Any]], fixed: Dict[str, Any], defaults, **call: Any) -> List[Cell]:
    """Every combination of `axes` (itertools.product order) with the `fixed` settings, each
    validated by `defaults` (a ModelDefaults) together with `call` (num_steps, decoding_t)."""
    combos = list(itertools.product(*axes.values()))
    width = max(3, len(str(len(combos) - 1)))
    cells = []
    for index, combo in enumerate(combos):
        values = dict(zip(axes, combo))
        given = {**fixed, **values}
        try:
            settings = defaults.settings(**call, **given)
        except InputError as err:
            raise InputError(f"cell {index} ({describe(values)}): {err}") from None
        cells.append(Cell(index, cell_name(index, width, values), values, given, settings))
    return cells


# --------------------------------------------------------------------------------------------------
# The plan


def _json(value: Any) -> Any:
    """`value` as JSON gives it back (tuples become lists)."""
    return json.loads(json.dumps(value))


@dataclass
class SweepPlan:
    """A checked sweep. `pipe` is the sweep's VideoPipeline before its model is built (model None):
    what its records will say of version, config and checkpoint paths, device and dtype; load()
    builds the real one. `flags` holds the paths and options as given, for the commands;
    `options` the boolean flags given; `finished` {cell index: record} the cells that --resume reuses."""

    folder: str
    image: ConditioningImage
    pipe: VideoPipeline
    axes: Dict[str, List[Any]]
    fixed: Dict[str, Any]
    grid_axes: List[str]
    cells: List[Cell]
    flags: Dict[str, Any]
    gif: bool
    options: Dict[str, bool]  # resize_to_native, allow_partial_checkpoint: kept in the commands
    finished: Dict[int, Dict[str, Any]] = field(default_factory=dict)

    def identity(self, cell: Cell) -> Dict[str, Any]:
        """What a record of `cell` must hold to be reused (IDENTITY_KEYS of the record it would get)."""
        record = build_record(self.pipe, cell.settings, self.image.facts, None)
        return _json({key: record[key] for key in IDENTITY_KEYS})

    def command(self) -> str:
        """The sweep.py command line of this sweep (axes from the grid file left to --grid)."""
        fixed = {k: fmt(v, k) for k, v in self.fixed.items()}
        axes = {k: ",".join(fmt(v, k) for v in values) + ("," if len(values) == 1 else "")
                for k, values in self.axes.items() if k not in self.grid_axes}
        toggles = {k: True for k, on in self.options.items() if on}
        return command_line(SWEEP_SCRIPT, {**self.flags, "output_folder": self.folder, "gif": self.gif or None, **toggles,
                                           **fixed, **axes})

    def cell_command(self, cell: Cell) -> str:
        """The simple_video_sample.py command that makes the same video as `cell` (a null knob: none)."""
        flags = {k: self.flags[k] for k in ("input_path", "version", "config", "ckpt_path", "device", "dtype")}
        call = {k: getattr(cell.settings, k) for k in CALL_PARAMS}
        knobs = {k: "none" if v is None else v for k, v in cell.given.items() if k in ALL_KNOB_NAMES}
        toggles = {k: True for k, on in self.options.items() if on}
        return command_line(SAMPLE_SCRIPT, {**flags, "output_folder": os.path.join(self.folder, "reproduce"),
                                            **call, **knobs, "gif": self.gif or None, **toggles})

    def load(self) -> VideoPipeline:
        """The pipeline with its model built (VideoPipeline.load)."""
        return self.pipe.load(self.options["allow_partial_checkpoint"])


def read_finished(folder: str, cell: Cell) -> Optional[Dict[str, Any]]:
    """The record of `cell` in `folder` when the cell is whole (JSON readable, .npz and .mp4 there), else None."""
    if not all(os.path.isfile(cell.path(folder, suffix)) for suffix in (".json", ".npz", ".mp4")):
        return None
    try:
        with open(cell.path(folder, ".json"), encoding="utf-8") as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _check_folder(plan: SweepPlan, resume: bool) -> None:
    """Refuse a non-empty folder without `resume`; with it, collect the finished cells, refusing
    any made with other settings."""
    if not os.path.isdir(plan.folder) or not os.listdir(plan.folder):
        return
    if not resume:
        raise InputError(f"output_folder {plan.folder} is not empty; pass --resume to reuse its finished cells, "
                         "or choose another output_folder")
    for cell in plan.cells:
        record = read_finished(plan.folder, cell)
        if record is None:
            continue
        expected = plan.identity(cell)
        differ = [key for key in IDENTITY_KEYS if record.get(key) != expected[key]]
        if differ:
            raise InputError(f"cannot resume: {cell.name} in {plan.folder} was made with other settings "
                             f"({', '.join(differ)}); choose another output_folder")
        plan.finished[cell.index] = record


def plan_sweep(input_path: Any, settings: Dict[str, Any], grid: Optional[str] = None, version: str = "svd",
               num_steps: Optional[int] = None, decoding_t: int = 14, config: Optional[str] = None,
               ckpt_path: Optional[str] = None, device: Any = None, dtype: Any = None,
               output_folder: Optional[str] = None, resume: bool = False, gif: bool = False,
               resize_to_native: bool = False, allow_partial_checkpoint: bool = False, check_memory: bool = True) -> SweepPlan:
    """Check a sweep without building a model: the axes and fixed values in `settings` ({name:
    value as given} of sweepable settings) and the grid file, the config and checkpoint, the image,
    every cell, the output folder (writable; with `resume`, the cells already finished there) and
    that the largest cell fits in memory (with `check_memory`)."""
    version = check_version(version)
    entries = {} if grid is None else read_grid_file(str(grid))
    axes, fixed = split_settings(settings, entries)
    pipe = VideoPipeline.plan(version, config, ckpt_path, device, dtype, check_memory=check_memory)
    cells = make_cells(axes, fixed, pipe.defaults, num_steps=num_steps, decoding_t=decoding_t)
    if os.path.isdir(str(input_path)):
        raise InputError(f"a sweep takes one image, got the folder {input_path}")
    image_path, native = list_input_images(input_path)[0], pipe.native_size if resize_to_native else None
    size = sampled_size(image_path, native)
    if resume and output_folder is None:
        raise InputError("--resume needs the --output_folder of the sweep to continue")
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
    folder = str(output_folder or os.path.join("outputs", "sweep", version, stamp))
    flags = {"input_path": str(input_path), "version": version, "config": config, "ckpt_path": ckpt_path,
             "device": str(pipe.device), "dtype": dtype, "num_steps": num_steps, "decoding_t": decoding_t,
             "grid": grid}
    check_output_folder(folder)
    pipe.memory(*size, max(cells, key=lambda c: c.settings.num_frames).settings)  # before decoding the image
    image = conditioning_image(image_path, native)
    plan = SweepPlan(folder, image, pipe, axes, fixed, list(entries), cells,
                     {k: None if v is None else str(v) for k, v in flags.items()}, gif,
                     {"resize_to_native": resize_to_native, "allow_partial_checkpoint": allow_partial_checkpoint})
    _check_folder(plan, resume)
    return plan


# --------------------------------------------------------------------------------------------------
# Running it


def save_cell(plan: SweepPlan, cell: Cell, output: VideoOutput, extra: Dict[str, Any]) -> Dict[str, Any]:
    """Write `cell`'s frames (.npz), video, GIF (with plan.gif) and, last, its record; returns the record.
    The record: the pipeline's, the file names, the cell, its metrics (views.METRICS on the saved
    frames) and the command that reproduces it, with `extra` (sweep_command, created)."""
    video = frames_to_uint8(output.frames)
    fps = cell.settings.fps_id + 1
    write_npz(video, cell.path(plan.folder, ".npz"), overwrite=True)
    write_mp4(video, cell.path(plan.folder, ".mp4"), fps, overwrite=True)
    if plan.gif:
        write_gif(video, cell.path(plan.folder, ".gif"), fps, overwrite=True)
    record = {
        "video": cell.name + ".mp4", "frames": cell.name + ".npz", "gif": cell.name + ".gif" if plan.gif else None,
        "image": CONDITIONING_PNG, "video_fps": fps, "video_fps_rule": "fps_id + 1", "input_path": plan.flags["input_path"],
        "cell": {"index": cell.index, "name": cell.name, "values": cell.values},
        **output.record,
        "metrics": frame_metrics(video, np.asarray(plan.image.pil)),
        "metrics_on": "the saved frames and conditioning.png, pixels / 255",
        "command": plan.cell_command(cell),
        **extra,
    }
    record = _json(record)
    write_json(record, cell.path(plan.folder, ".json"), overwrite=True)
    return record


def _summary(plan: SweepPlan, created: str) -> Dict[str, Any]:
    return _json({
        "command": plan.command(), "axes": plan.axes, "fixed": plan.fixed,
        "cells": [{"index": c.index, "name": c.name, "values": c.values} for c in plan.cells],
        "version": plan.pipe.version, "config_path": plan.pipe.config_path, "ckpt_path": plan.pipe.ckpt_path,
        "device": str(plan.pipe.device), "dtype": plan.pipe.dtype_name, "image": CONDITIONING_PNG,
        **{f"image_{k}": v for k, v in plan.image.facts.items()}, "created": created, "versions": package_versions(),
    })


def _complete_gif(plan: SweepPlan, cell: Cell, record: Dict[str, Any], video: np.ndarray) -> Dict[str, Any]:
    """A resumed cell's record, with its GIF written now when plan.gif asks for one it lacks."""
    if not plan.gif or os.path.isfile(cell.path(plan.folder, ".gif")):
        return record
    write_gif(video, cell.path(plan.folder, ".gif"), cell.settings.fps_id + 1, overwrite=True)
    record = {**record, "gif": cell.name + ".gif"}
    write_json(record, cell.path(plan.folder, ".json"), overwrite=True)
    return record


def write_views(plan: SweepPlan, videos: List[np.ndarray], records: List[Dict[str, Any]], summary: Dict[str, Any]) -> List[str]:
    """grid.mp4, contact_sheet.png, metrics.csv and the plots of the cells' saved frames `videos`
    and `records`; sweep.json (`summary`) gains the layouts: "grid" {"size": [W, H], "boxes": a box
    per cell} and "contact_sheet" {"thumbnails": per cell, [t, box] per frame shown}. Returns the plots."""
    grid = build_grid(videos, [cell.label for cell in plan.cells])
    write_mp4(grid.frames(), os.path.join(plan.folder, "grid.mp4"), plan.cells[0].settings.fps_id + 1, overwrite=True)
    sheet = contact_sheet(videos, [[f"#{cell.index}", *cell.label] for cell in plan.cells])
    write_png(Image.fromarray(sheet.image), os.path.join(plan.folder, "contact_sheet.png"), overwrite=True)
    rows = [{"index": c.index, "cell": c.name, **c.values, **r["metrics"], "video": r["video"]} for c, r in zip(plan.cells, records)]
    write_csv(os.path.join(plan.folder, "metrics.csv"), ["index", "cell", *plan.axes, *METRICS, "video"], rows)
    plots = write_plots(plan.folder, plan.axes, [(c.values, r["metrics"]) for c, r in zip(plan.cells, records)])
    summary.update(grid={"size": [grid.background.shape[1], grid.background.shape[0]], "boxes": grid.boxes},
                   contact_sheet={"thumbnails": sheet.thumbnails})
    write_json(_json(summary), os.path.join(plan.folder, SWEEP_JSON), overwrite=True)
    return plots


@dataclass
class SweepResult:
    records: List[Dict[str, Any]]  # every cell's record, in cell order
    sampled: List[str]  # names of the cells sampled by this run
    plots: List[str]


def run_sweep(plan: SweepPlan, say: Callable[[str], None] = lambda line: None) -> SweepResult:
    """Sample the cells of `plan` not yet finished (building the model only if there is one),
    then write the views; the output folder is made once the model is loaded. `say` receives one
    line per event (loading, resume, each cell written)."""
    records = dict(plan.finished)
    todo = [cell for cell in plan.cells if cell.index not in records]
    pipe = None
    if todo:
        say(f"Loading model {plan.pipe.version} ({plan.pipe.ckpt_path or 'no checkpoint'}) on {plan.pipe.device} ...")
        pipe = plan.load()
    os.makedirs(plan.folder, exist_ok=True)
    created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    summary = _summary(plan, created)
    write_png(plan.image.pil, os.path.join(plan.folder, CONDITIONING_PNG), overwrite=True)
    write_json(summary, os.path.join(plan.folder, SWEEP_JSON), overwrite=True)
    if records:
        say(f"resume: {len(records)} of {len(plan.cells)} cells already done in {plan.folder}")
    extra = {"sweep_command": summary["command"], "created": created}
    for cell in todo:
        records[cell.index] = save_cell(plan, cell, pipe.sample(plan.image, cell.settings), extra)
        say(f"wrote {cell.path(plan.folder, '.mp4')}")
    videos = [read_npz(cell.path(plan.folder, ".npz")) for cell in plan.cells]
    ordered = [_complete_gif(plan, cell, records[cell.index], video) for cell, video in zip(plan.cells, videos)]
    plots = write_views(plan, videos, ordered, summary)
    return SweepResult(ordered, [cell.name for cell in todo], plots)
