"""A sweep: images sampled over a grid of settings, as a job (sgm.inference.job) of one item per
(image, cell).

Axes are sweepable settings (SWEEPABLE: every knob of sgm.modules.motion and five call
parameters) with several values: comma-separated text ("0.5,1,2"; a trailing comma makes a
one-value axis), a bracketed list ("[0.5, 2]") or a YAML list (grid files). A setting given one
value is fixed for every cell. Stage sets are written middle+output, or all (also none) for every
stage. The cells are the cartesian product of the axes in SWEEPABLE order, the last varying
fastest. Every cell is validated as a whole (ModelDefaults.settings) before a model is built, and
an item is exactly one VideoPipeline call: the call simple_video_sample.py makes with the cell's
flags on that image (its record holds that command). plan_sweep checks everything cheap and
returns the Job; sgm.inference.engine.run_job samples it and builds its shared outputs.
"""
import datetime
import hashlib
import itertools
import os
from typing import Any, Dict, List, Optional

import yaml

from ..modules.motion import ALL_KNOB_NAMES, AUTO, KNOB_NAMES, SAMPLING_KNOB_NAMES, STAGE_KNOBS, MotionKnobs, SamplingKnobs
from .checks import InputError, as_float, as_int, as_seed, one_line
from .cli import SWEEP_SCRIPT, parse_value
from .images import list_input_images
from .job import Cell, Job, plan_job
from .pipeline import VideoPipeline
from .versions import check_version
from .views import fmt, slug

SAMPLE_AXES = ("motion_bucket_id", "fps_id", "cond_aug", "num_frames", "seed")
SWEEPABLE = ALL_KNOB_NAMES + SAMPLE_AXES
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


def plan_sweep(input_path: Any, settings: Dict[str, Any], grid: Optional[str] = None, version: str = "svd",
               num_steps: Optional[int] = None, decoding_t: int = 14, config: Optional[str] = None,
               ckpt_path: Optional[str] = None, device: Any = None, dtype: Any = None,
               output_folder: Optional[str] = None, resume: bool = False, gif: bool = False, save_frames: bool = False,
               resize_to_native: bool = False, allow_partial_checkpoint: bool = False, check_memory: bool = True) -> Job:
    """Check a sweep without building a model: the axes and fixed values in `settings` ({name:
    value as given} of sweepable settings) and the grid file, the config and checkpoint, the
    images (`input_path` an image or a folder of them), every cell, the output folder and memory
    (job.plan_job). Returns the Job of every (image, cell)."""
    version = check_version(version)
    entries = {} if grid is None else read_grid_file(str(grid))
    axes, fixed = split_settings(settings, entries)
    pipe = VideoPipeline.plan(version, config, ckpt_path, device, dtype, check_memory=check_memory)
    cells = make_cells(axes, fixed, pipe.defaults, num_steps=num_steps, decoding_t=decoding_t)
    image_paths = list_input_images(input_path)
    if resume and output_folder is None:
        raise InputError("--resume needs the --output_folder of the sweep to continue")
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
    folder = str(output_folder or os.path.join("outputs", "sweep", version, stamp))
    flags = {"input_path": input_path, "version": version, "config": config, "ckpt_path": ckpt_path, "device": str(pipe.device),
             "dtype": dtype, "num_steps": num_steps, "decoding_t": decoding_t, "grid": grid}
    return plan_job(pipe, image_paths, cells, axes, fixed, folder, SWEEP_SCRIPT, flags, list(entries), resume,
                    {"gif": gif, "save_frames": save_frames},
                    {"resize_to_native": resize_to_native, "allow_partial_checkpoint": allow_partial_checkpoint})
