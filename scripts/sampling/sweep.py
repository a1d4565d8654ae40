#!/usr/bin/env python
"""Sweep motion knobs (and a few sampling parameters) over a grid: one image, one loaded model.

    python scripts/sampling/sweep.py --input_path my_image.png --version svd \\
        --temporal_attn_scale 0.5,1,2 --attn_window_size none,8
    python scripts/sampling/sweep.py --input_path my_image.png --grid sweep.yaml --output_folder outputs/sweep/s

Axes are flags with comma-separated values (`none`/`null` for a null knob; a trailing comma, as in
`--seed 7,`, makes a one-value axis; a bracketed list such as "[0.5,2]" works too) or the entries of
a YAML mapping `axis: [values]` given as `--grid`. Sweepable: the motion knobs (docs/PATCHES.md),
shuffle_windowed_noise, motion_bucket_id, fps_id, cond_aug, num_frames and seed. A flag with a
single value (no comma) is not an axis but a fixed setting of every cell, as in
simple_video_sample.py. The cells are the cartesian product of the axes, taken in the fixed order of
SWEEPABLE (the last axis varies fastest) with each axis' values in the order given.

Values of the list-valued knobs temporal_attn_scale_stages and attn_window_stages are stage sets:
stages joined by `+` (`output`, `middle+output`), or `all` (also `none`/`null`) for every stage.
The comma still separates the values of an axis, so

    --attn_window_stages output,middle+output,all        three cells
    --attn_window_stages middle+output                   a fixed setting (windows in two stages)
    --attn_window_stages "[[output],[middle,output],null]"   the same three cells, as lists
    attn_window_stages: [[output], [middle, output], all]    in a --grid YAML file

(note `--attn_window_stages middle,output` is an axis of two one-stage cells). Names, labels and
metrics.csv show a stage set as `middle+output` and a null one as `all`. attn_window_size takes
`auto` among its values (`--attn_window_size 8,auto --attn_window_min 2 --attn_window_max 8`);
attn_window_loop and shuffle_windowed_noise take `--flag` alone (true), `--noflag` (false) or
`--flag false,true` (an axis). Knob combinations are checked per cell, with the fixed settings and
the config's knobs: a fixed `--attn_window_size auto` may take its minimum from an axis.
With --gif each cell also gets an endlessly looping GIF (cell_NNN_....gif).

The model is built once, with the config's knobs and the fixed flags (or, when those are no valid
combination on their own, with the first cell's knobs). For each cell the knobs are
set on the loaded UNet (VideoUNet.set_motion_knobs) and reset afterwards, and torch is seeded with
the cell's seed right before sampling, exactly as simple_video_sample.py does for one image: a cell
is frame for frame the video that simple_video_sample.py makes with the same flags (its JSON holds
that command), and cells with the same seed and frame count start from the same noise.

OUTPUT_FOLDER (default outputs/sweep/<version>/<UTC timestamp>) receives:
  cell_NNN_<axis>-<value>....mp4 / .json / .npz   each cell's video, record (the sampling script's
                                                  fields, attn_window_schedule included, plus the
                                                  cell's values and metrics) and frames (.gif with --gif)
  conditioning.png   the image as used            sweep.json   the axes, cells and base settings
  grid.mp4           every cell tiled and labelled, frame-synchronised (shorter cells hold their last frame)
  contact_sheet.png  one row per cell, up to 8 evenly spaced frames
  metrics.csv        one row per cell: its values and frame_diff, displacement_px, smoothness,
                     psnr_frame0 (sgm.eval.metrics, on the frames as saved, against the conditioning image)
  plot_<axis>_<metric>.png   for each numeric axis (at least two numbers), one line per combination
                     of the other axes
Every file is written to a temp file and moved into place, and a cell's JSON is written last, so an
interrupted sweep leaves every finished cell whole. --resume (with --output_folder) skips the
finished cells and rebuilds the grid, sheet, CSV and plots from the saved frames.

Bad input (unknown axis, empty list, invalid value or knob combination) is refused before the model
is loaded, as one line `error: ...` on stderr with exit status 2.
"""
import copy
import csv
import datetime
import hashlib
import inspect
import io
import itertools
import json
import logging
import math
import numbers
import os
import re
import shlex
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402
from omegaconf import DictConfig, ListConfig, OmegaConf  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

import simple_video_sample as svs  # noqa: E402  (also makes `sgm` importable from a checkout)
from sgm.checkpoint import CheckpointError  # noqa: E402
from sgm.eval.metrics import motion_metrics  # noqa: E402
from sgm.modules.motion import AUTO, KNOB_NAMES, MotionKnobs  # noqa: E402
from sgm.util import instantiate_from_config  # noqa: E402

logger = logging.getLogger("sweep")

InputError = svs.InputError
SCRIPT_PATH = os.path.relpath(os.path.abspath(__file__), svs._REPO_ROOT)
STAGE_KNOBS = ("temporal_attn_scale_stages", "attn_window_stages")  # list-valued knobs: None or a tuple of stages
SAMPLE_PARAMS = ("motion_bucket_id", "fps_id", "cond_aug", "num_frames", "seed")
SWEEPABLE: Tuple[str, ...] = (*KNOB_NAMES, "shuffle_windowed_noise", *SAMPLE_PARAMS)
BASE_DEFAULTS = {"fps_id": 6, "motion_bucket_id": 127, "seed": 23}
METRICS = ("frame_diff", "displacement_px", "smoothness", "psnr_frame0")
SHEET_COLUMNS = 8
SHEET_THUMB_WIDTH = 256  # contact-sheet frames wider than this are scaled down
GRID_MAX_SIZE = (3840, 2160)  # (width, height) the grid video is scaled down to fit
CONDITIONING_PNG = "conditioning.png"
AGGREGATES = ("sweep.json", "grid.mp4", "contact_sheet.png", "metrics.csv")
# what must match for --resume to reuse a finished cell
IDENTITY_KEYS = (
    "version", "config_path", "ckpt_path", "image_path", "image_sha256", "num_steps", "decoding_t", "device",
    "seed", "num_frames", "fps_id", "motion_bucket_id", "cond_aug", "motion_knobs", "shuffle_windowed_noise",
    "sv3d_angles",
)
BACKGROUND = 24
TEXT_COLOUR = (235, 235, 235)


# --------------------------------------------------------------------------------------------------
# Values and axes


def fmt(value: Any, axis: Optional[str] = None) -> str:
    """A value as shown in names, labels, the CSV and commands: none, True/False, 2 (for 2.0), 0.5,
    pyramid, auto; for the stage knobs (`axis` in STAGE_KNOBS, or any tuple) middle+output, and all for none."""
    if value is None:
        return "all" if axis in STAGE_KNOBS else "none"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if isinstance(value, (tuple, list)):
        return "+".join(fmt(v) for v in value)
    return str(value)


def _slug(value: Any, axis: Optional[str] = None) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]", "_", fmt(value, axis))


def parse_scalar(value: Any) -> Any:
    """One value from the command line or YAML: none/null -> None, true/false -> bool (svs.flag_value),
    numeric text -> number."""
    value = svs.flag_value(value)
    if isinstance(value, str):
        text = value.strip()
        for kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                pass
        return text
    return value


def parse_stages(value: Any) -> Any:
    """One value of a stage knob: all/none/null -> None, text `middle+output` or a list -> a tuple of
    names (validated later, by MotionKnobs); anything else is returned as it is, to be refused there."""
    if isinstance(value, (list, tuple, ListConfig)):
        return tuple(item.strip() if isinstance(item, str) else item for item in value)
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in ("all", "none", "null", "~"):
            return None
        return tuple(piece.strip() for piece in text.split("+"))
    return value


def parse_value(name: str, value: Any) -> Any:
    """One raw value of axis or fixed setting `name`, parsed (not yet validated)."""
    return parse_stages(value) if name in STAGE_KNOBS else parse_scalar(value)


def _is_axis(raw: Any) -> bool:
    """A flag value is an axis when it is a list/tuple or text with a comma; anything else is a fixed value."""
    return isinstance(raw, (list, tuple, ListConfig)) or (isinstance(raw, str) and "," in raw)


def _bracketed(name: str, text: str) -> List[Any]:
    """Text such as "[output, middle+output]" (a list Fire left unparsed) read as a YAML flow list."""
    try:
        items = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise InputError(f"{name}: cannot read the list {text!r}: {svs._one_line(err)}") from None
    if not isinstance(items, list):
        raise InputError(f"{name}: cannot read the list {text!r}")
    return items


def split_values(name: str, raw: Any) -> List[Any]:
    """The values of axis `name` from a flag or YAML entry: a list/tuple, or comma-separated text.

    A value of a stage knob (STAGE_KNOBS) may itself be a list of stages (or `middle+output` text);
    every other value must be a number, a word or none.
    """
    if isinstance(raw, str) and raw.strip().startswith("[") and raw.strip().endswith("]"):
        raw = _bracketed(name, raw.strip())
    if isinstance(raw, (list, tuple, ListConfig)):
        items = list(raw)
    elif isinstance(raw, str):
        items = [piece.strip() for piece in raw.split(",")]
        if len(items) > 1 and items[-1] == "":
            items.pop()  # a trailing comma makes a one-value axis
        if any(piece == "" for piece in items):
            raise InputError(f"{name}: empty value in {raw!r}")
    else:
        items = [raw]
    if not items:
        raise InputError(f"{name}: empty list of values")
    values = []
    for item in items:
        nested = isinstance(item, (list, tuple, ListConfig))
        if isinstance(item, (dict, DictConfig)) or (nested and name not in STAGE_KNOBS):
            raise InputError(f"{name}: each value must be a number, a word or none, got {item!r}")
        values.append(parse_value(name, item))
    return values


def check_value(name: str, value: Any) -> Any:
    """`value` checked (and normalised) for sweep axis or fixed setting `name`; InputError if invalid.

    Knobs are checked one at a time here (`auto` passes: it needs attn_window_min and attn_window_max,
    checked per cell with the other knobs by make_cells)."""
    if name in KNOB_NAMES:
        if name == "attn_window_size" and value == AUTO:
            return AUTO
        try:
            return getattr(MotionKnobs(**{name: value}), name)
        except (ValueError, TypeError) as err:
            raise InputError(f"{err}") from None
    if name == "shuffle_windowed_noise":
        if not isinstance(value, bool):
            raise InputError(f"shuffle_windowed_noise must be True or False, got {value!r}")
        return value
    if name in ("motion_bucket_id", "fps_id"):
        return svs._as_int(name, value, minimum=0)
    if name == "num_frames":
        return svs._as_int(name, value, minimum=1)
    if name == "seed":
        seed = svs._as_int(name, value)
        if not -(2**63) <= seed < 2**64:
            raise InputError(f"seed must fit in 64 bits, got {seed}")
        return seed
    if name == "cond_aug":
        return svs._as_float(name, value, minimum=0.0)
    raise InputError(f"{name} cannot be swept; sweepable: {', '.join(SWEEPABLE)}")


def check_axis(name: str, raw: Any) -> List[Any]:
    values = [check_value(name, v) for v in split_values(name, raw)]
    seen: List[Any] = []
    for value in values:
        if any(value == s and type(value) is type(s) for s in seen):
            raise InputError(f"{name} lists the value {fmt(value, name)} twice")
        seen.append(value)
    return values


def load_grid_file(path: Any) -> Dict[str, Any]:
    """The raw `axis: [values]` entries of a YAML grid file, in file order."""
    path = str(path)
    if not os.path.isfile(path):
        raise InputError(f"grid file not found: {path}")
    try:
        data = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    except Exception as err:  # yaml and omegaconf raise many types for bad YAML
        raise InputError(f"cannot read grid file {path}: {svs._one_line(err)}") from None
    if not isinstance(data, dict) or not data:
        raise InputError(f"grid file {path} must be a non-empty mapping of axis: [values]")
    for name in data:
        if name not in SWEEPABLE:
            kind = "cannot be swept" if name in _SWEEP_PARAMS else "is not an axis"
            raise InputError(f"{name!r} in grid file {path} {kind}; sweepable: {', '.join(SWEEPABLE)}")
    return data


@dataclass
class Cell:
    index: int
    name: str
    values: Dict[str, Any]  # the swept axes only, in axis order
    params: Dict[str, Any]  # seed, num_frames, fps_id, motion_bucket_id, cond_aug, shuffle_windowed_noise
    knobs: MotionKnobs
    overrides: Dict[str, Any]  # knob flags that reproduce the cell with simple_video_sample.py
    cfg: Any = None  # the model config simple_video_sample.py would build for the cell
    angles: Optional[Dict[str, List[float]]] = None
    metrics: Dict[str, float] = field(default_factory=dict)

    def label_lines(self) -> List[str]:
        return [f"{axis}={fmt(value, axis)}" for axis, value in self.values.items()]


def cell_name(index: int, width: int, values: Dict[str, Any]) -> str:
    name = f"cell_{index:0{width}d}" + "".join(f"_{axis}-{_slug(value, axis)}" for axis, value in values.items())
    if len(name) > 180:  # keep file names (plus suffixes) under the usual 255-byte limit
        digest = hashlib.sha1(name.encode()).hexdigest()[:10]
        name = name[:160] + "_" + digest
    return name


def _describe(values: Dict[str, Any]) -> str:
    return ", ".join(f"{k}={fmt(v, k)}" for k, v in values.items())


def make_cells(axes: Dict[str, List[Any]], base: Dict[str, Any], base_knobs: Union[MotionKnobs, Dict[str, Any]],
               base_overrides: Dict[str, Any]) -> List[Cell]:
    """Every combination of the axes (itertools.product order), validated as a whole.

    `base_knobs`: the knobs of the config with the fixed flags applied, as MotionKnobs or, when they
    are no valid combination on their own (e.g. a fixed auto window whose minimum is an axis), as the
    raw {knob: value} mapping; each cell's knobs are these with the cell's values, validated together.
    """
    base_values = base_knobs.as_dict() if isinstance(base_knobs, MotionKnobs) else dict(base_knobs)
    names = list(axes)
    combos = list(itertools.product(*(axes[n] for n in names)))
    width = max(3, len(str(len(combos) - 1)))
    cells = []
    for index, combo in enumerate(combos):
        values = dict(zip(names, combo))
        name = cell_name(index, width, values)
        knob_values = {k: v for k, v in values.items() if k in KNOB_NAMES}
        try:
            knobs = MotionKnobs(**{**base_values, **knob_values})
        except (ValueError, TypeError) as err:
            raise InputError(f"cell {index} ({_describe(values)}): {err}") from None
        params = {k: values.get(k, base[k]) for k in (*SAMPLE_PARAMS, "shuffle_windowed_noise")}
        if params["shuffle_windowed_noise"] and knobs.attn_window_size is None:
            raise InputError(f"cell {index} ({_describe(values)}): shuffle_windowed_noise needs attn_window_size (flag, grid or config)")
        cells.append(Cell(index, name, values, params, knobs, {**base_overrides, **knob_values}))
    return cells


# --------------------------------------------------------------------------------------------------
# Files


def _atomic_write(final_path: str, write: Callable[[str], None], create: bool = True) -> None:
    """Run `write(tmp)` on a temp file next to `final_path`, then os.replace it into place.

    With create=False the temp name is handed over not yet existing (for writers that refuse to
    replace a file).
    """
    tmp = svs._temp_path(os.path.dirname(final_path) or ".", os.path.splitext(final_path)[1])
    try:
        if not create:
            os.unlink(tmp)
        write(tmp)
        os.replace(tmp, final_path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(data: Any, final_path: str) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2)
            handle.write("\n")

    _atomic_write(final_path, write)


def write_image(image: Image.Image, final_path: str) -> None:
    _atomic_write(final_path, lambda tmp: image.save(tmp, format="PNG"))


def write_frames(frames: np.ndarray, final_path: str) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, frames=frames)

    _atomic_write(final_path, write)


def read_frames(path: str) -> np.ndarray:
    with np.load(path) as data:
        return data["frames"]


def write_mp4(frames, final_path: str, fps: int) -> None:
    """simple_video_sample.write_video (same encoder settings), replacing `final_path` atomically."""
    _atomic_write(final_path, lambda tmp: svs.write_video(frames, tmp, fps), create=False)


def cell_paths(folder: str, cell: Cell) -> Dict[str, str]:
    stem = os.path.join(folder, cell.name)
    return {"video": stem + ".mp4", "frames": stem + ".npz", "json": stem + ".json", "gif": stem + ".gif"}


def finished_record(folder: str, cell: Cell) -> Optional[Dict[str, Any]]:
    """The cell's JSON when the cell is complete (JSON readable, video and frames present), else None."""
    paths = cell_paths(folder, cell)
    if not all(os.path.isfile(paths[kind]) for kind in ("video", "frames", "json")):  # the GIF is optional
        return None
    try:
        with open(paths["json"], encoding="utf-8") as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _json_round_trip(value: Any) -> Any:
    return json.loads(json.dumps(value))


# --------------------------------------------------------------------------------------------------
# Labels, grid video, contact sheet


def _font():
    loader = getattr(ImageFont, "load_default_imagefont", None)  # the bitmap font (Pillow >= 10.1)
    return loader() if loader is not None else ImageFont.load_default()


def text_block(lines: Sequence[str], scale: int = 1, pad: int = 2) -> np.ndarray:
    """Lines of text drawn with PIL's default bitmap font, light on dark, enlarged `scale` times (uint8 HxWx3)."""
    font = _font()
    line_h = max(font.getbbox("Ag")[3], 1) + 1
    width = max([font.getbbox(line)[2] for line in lines] + [1]) + 2 * pad
    height = line_h * max(len(lines), 1) + 2 * pad
    image = Image.new("RGB", (width, height), (BACKGROUND,) * 3)
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((pad, pad + i * line_h), line, fill=TEXT_COLOUR, font=font)
    if scale > 1:
        image = image.resize((width * scale, height * scale), Image.Resampling.NEAREST)
    return np.asarray(image, dtype=np.uint8)


def _resize(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    if frame.shape[:2] == (height, width):
        return frame
    return np.asarray(Image.fromarray(frame).resize((width, height), Image.Resampling.BICUBIC), dtype=np.uint8)


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


@dataclass
class Grid:
    """The tiled grid video of a sweep: `frame(t)` is frame t; `boxes[i]` = (y, x, h, w) of cell i's video."""

    videos: List[np.ndarray]
    background: np.ndarray
    boxes: List[Tuple[int, int, int, int]]

    @property
    def num_frames(self) -> int:
        return max(len(v) for v in self.videos)

    def frame(self, t: int) -> np.ndarray:
        canvas = self.background.copy()
        for video, (y, x, h, w) in zip(self.videos, self.boxes):
            canvas[y : y + h, x : x + w] = _resize(video[min(t, len(video) - 1)], h, w)
        return canvas

    def frames(self):
        for t in range(self.num_frames):
            yield self.frame(t)


def build_grid(videos: Sequence[np.ndarray], labels: Sequence[Sequence[str]], max_size: Tuple[int, int] = GRID_MAX_SIZE) -> Grid:
    """Lay out uint8 videos (T_i, H, W, 3) on a near-square grid, each under its label.

    Tiles are scaled down only if the grid would exceed `max_size`; the canvas sides are multiples
    of 16 (so the H.264 writer keeps the frames as they are).
    """
    n = len(videos)
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    height, width = videos[0].shape[1:3]
    pad = 4
    scale = min(1.0, max_size[0] / (cols * (width + pad)), max_size[1] / (rows * (height + pad)))
    tile_h, tile_w = (height, width) if scale >= 1.0 else (max(2, int(height * scale) // 2 * 2), max(2, int(width * scale) // 2 * 2))
    text_scale = max(1, tile_w // 320)
    blocks = [text_block(lines, text_scale) for lines in labels]
    band_h = max(b.shape[0] for b in blocks)
    box_w = max([tile_w] + [b.shape[1] for b in blocks]) + pad
    box_h = band_h + tile_h + pad
    canvas_h, canvas_w = _round_up(rows * box_h + pad, 16), _round_up(cols * box_w + pad, 16)
    background = np.full((canvas_h, canvas_w, 3), BACKGROUND, dtype=np.uint8)
    boxes = []
    for i, block in enumerate(blocks):
        r, c = divmod(i, cols)
        y0, x0 = pad + r * box_h, pad + c * box_w
        background[y0 : y0 + block.shape[0], x0 : x0 + block.shape[1]] = block
        boxes.append((y0 + band_h, x0, tile_h, tile_w))
    return Grid(list(videos), background, boxes)


def sheet_indices(num_frames: int, columns: int = SHEET_COLUMNS) -> List[int]:
    """Up to `columns` evenly spaced frame indices from 0 to num_frames - 1."""
    count = min(columns, num_frames)
    return sorted({int(round(i)) for i in np.linspace(0, num_frames - 1, count)})


def contact_sheet(videos: Sequence[np.ndarray], labels: Sequence[Sequence[str]]) -> Image.Image:
    """Rows = videos (label on the left), columns = up to 8 evenly spaced frames, each captioned t=<index>."""
    height, width = videos[0].shape[1:3]
    scale = min(1.0, SHEET_THUMB_WIDTH / width)
    thumb_h, thumb_w = max(1, round(height * scale)), max(1, round(width * scale))
    pad = 4
    label_blocks = [text_block(lines) for lines in labels]
    label_w = max(b.shape[1] for b in label_blocks) + pad
    caption_h = text_block(["t=0"]).shape[0]
    row_h = max(thumb_h + caption_h, max(b.shape[0] for b in label_blocks)) + pad
    cols = max(len(sheet_indices(len(v))) for v in videos)
    sheet = np.full((pad + len(videos) * row_h, label_w + pad + cols * (thumb_w + pad), 3), BACKGROUND, dtype=np.uint8)
    for r, (video, block) in enumerate(zip(videos, label_blocks)):
        y = pad + r * row_h
        sheet[y : y + block.shape[0], pad : pad + block.shape[1]] = block
        for c, t in enumerate(sheet_indices(len(video))):
            x = label_w + pad + c * (thumb_w + pad)
            sheet[y : y + thumb_h, x : x + thumb_w] = _resize(video[t], thumb_h, thumb_w)
            caption = text_block([f"t={t}"])[:, : thumb_w]
            sheet[y + thumb_h : y + thumb_h + caption.shape[0], x : x + caption.shape[1]] = caption
    return Image.fromarray(sheet)


# --------------------------------------------------------------------------------------------------
# Metrics table and plots


def _csv_value(value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return "inf" if value > 0 else ("-inf" if value < 0 else "nan")
    return fmt(value)


def write_metrics_csv(cells: Sequence[Cell], axes: Sequence[str], final_path: str) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["index", "cell", *axes, *METRICS, "video"])
    for cell in cells:
        writer.writerow([cell.index, cell.name, *(fmt(cell.values[a], a) for a in axes),
                         *(_csv_value(cell.metrics.get(m, math.nan)) for m in METRICS), cell.name + ".mp4"])

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            handle.write(buffer.getvalue())

    _atomic_write(final_path, write)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def numeric_axes(axes: Dict[str, List[Any]]) -> List[str]:
    """Axes whose values are numbers (none allowed, left out of plots) with at least two distinct numbers."""
    return [
        name for name, values in axes.items()
        if all(v is None or _is_number(v) for v in values) and len({float(v) for v in values if v is not None}) >= 2
    ]


def write_plots(cells: Sequence[Cell], axes: Dict[str, List[Any]], folder: str) -> List[str]:
    """plot_<axis>_<metric>.png for each numeric axis and metric; one line per combination of the other axes."""
    from matplotlib.figure import Figure

    written = []
    for axis in numeric_axes(axes):
        others = [a for a in axes if a != axis]
        groups: Dict[Tuple, List[Cell]] = {}
        for cell in cells:
            if cell.values[axis] is not None:
                groups.setdefault(tuple(cell.values[a] for a in others), []).append(cell)
        xs_all = [float(v) for v in axes[axis] if v is not None]
        log_x = min(xs_all) > 0 and max(xs_all) / min(xs_all) >= 8
        for metric in METRICS:
            fig = Figure(figsize=(6.4, 4.2), dpi=100)
            ax = fig.add_subplot()
            for key, members in groups.items():
                members = sorted(members, key=lambda c: float(c.values[axis]))
                xs = [float(c.values[axis]) for c in members]
                ys = [c.metrics.get(metric, math.nan) for c in members]
                ys = [y if math.isfinite(y) else math.nan for y in ys]
                label = ", ".join(f"{a}={fmt(v, a)}" for a, v in zip(others, key)) or None
                ax.plot(xs, ys, "o-", label=label)
            if log_x:
                ax.set_xscale("log", base=2)
            ax.set_xlabel(axis)
            ax.set_ylabel(metric)
            ax.set_title(f"{metric} vs {axis}")
            ax.grid(True, alpha=0.3)
            if others:
                ax.legend(fontsize="small")
            fig.tight_layout()
            path = os.path.join(folder, f"plot_{axis}_{metric}.png")
            _atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
            written.append(path)
    return written


def frame_metrics(frames: np.ndarray, cond_image: torch.Tensor) -> Dict[str, float]:
    """motion_metrics of uint8 frames (T, H, W, 3), frame 0 against cond_image (1, 3, H, W) in [0, 1]."""
    video = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0
    return motion_metrics(video, cond_image)


# --------------------------------------------------------------------------------------------------
# The sweep


def _sweep_command(base_args: Dict[str, Any], fixed: Dict[str, Any], axes: Dict[str, List[Any]]) -> str:
    args = ["python", SCRIPT_PATH]
    for key, value in base_args.items():
        if value is not None:
            args += [f"--{key}", fmt(value)]
    for key, value in fixed.items():
        args += [f"--{key}", fmt(value, key)]
    for axis, values in axes.items():
        args += [f"--{axis}", ",".join(fmt(v, axis) for v in values) + ("," if len(values) == 1 else "")]
    return shlex.join(args)


def run_sweep(
    input_path: Any = "assets/test_image.png",
    num_frames: Any = None,
    num_steps: Any = None,
    version: str = "svd",
    fps_id: Any = None,
    motion_bucket_id: Any = None,
    cond_aug: Any = None,
    seed: Any = None,
    decoding_t: Any = 14,
    device: Optional[str] = None,
    output_folder: Optional[str] = None,
    config: Optional[str] = None,
    ckpt_path: Optional[str] = None,
    verbose: bool = False,
    grid: Optional[str] = None,
    resume: bool = False,
    gif: bool = False,
    axis_flags: Optional[Dict[str, Any]] = None,
) -> Dict[str, Any]:
    """Everything `sweep` does; `axis_flags` maps sweepable names to flag values (None = not given).

    Returns {"output_folder", "cells": [cell JSON records], "ran": [names sampled now], "skipped": [...]}.
    """
    if verbose:
        logging.getLogger().setLevel(logging.INFO)
        for name in (logger.name, svs.logger.name, "sgm"):
            logging.getLogger(name).setLevel(logging.DEBUG)
    # -- cheap checks: nothing below loads a model until every cell is known to be valid
    version = svs.check_version(version)
    default_frames, default_steps = svs.VERSION_DEFAULTS[version]
    num_steps = svs._as_int("num_steps", default_steps if num_steps is None else num_steps, minimum=1)
    decoding_t = svs._as_int("decoding_t", decoding_t, minimum=1)
    for flag_name, flag in (("resume", resume), ("gif", gif)):
        if not isinstance(flag, bool):
            raise InputError(f"{flag_name} must be True or False, got {flag!r}")
    flags = dict(axis_flags or {})
    flags.update({"num_frames": num_frames, "fps_id": fps_id, "motion_bucket_id": motion_bucket_id, "cond_aug": cond_aug, "seed": seed})
    unknown = sorted(set(flags) - set(SWEEPABLE))
    if unknown:
        raise InputError(f"unknown axis {', '.join(unknown)}; sweepable: {', '.join(SWEEPABLE)}")
    grid_entries = load_grid_file(grid) if grid is not None else {}
    raw_axes: Dict[str, Any] = {}
    fixed: Dict[str, Any] = {}
    for name, raw in flags.items():
        if raw is None:
            continue
        if name in grid_entries:
            raise InputError(f"{name} is given both as a flag and in the grid file {grid}")
        if _is_axis(raw):
            raw_axes[name] = raw
        else:
            fixed[name] = check_value(name, parse_value(name, raw))
    raw_axes.update(grid_entries)
    axes = {name: check_axis(name, raw_axes[name]) for name in SWEEPABLE if name in raw_axes}
    if not axes:
        raise InputError("nothing to sweep: give an axis with comma-separated values (e.g. --temporal_attn_scale 0.5,1,2) or --grid FILE.yaml")

    base = {
        "num_frames": fixed.get("num_frames", default_frames),
        "fps_id": fixed.get("fps_id", BASE_DEFAULTS["fps_id"]),
        "motion_bucket_id": fixed.get("motion_bucket_id", BASE_DEFAULTS["motion_bucket_id"]),
        "cond_aug": fixed.get("cond_aug", svs.SV3D_COND_AUG if svs.is_sv3d(version) else 0.02),
        "seed": fixed.get("seed", BASE_DEFAULTS["seed"]),
        "shuffle_windowed_noise": fixed.get("shuffle_windowed_noise", False),
    }
    for value in sorted({base["motion_bucket_id"], *axes.get("motion_bucket_id", [])}):
        if value > 255:
            logger.warning("motion_bucket_id %d is above 255, outside what the models were trained on", value)
    if not svs.is_sv3d(version):
        for value in sorted({base["fps_id"], *axes.get("fps_id", [])}):
            if not 5 <= value <= 30:
                logger.warning("fps_id %d is outside the 5..30 the SVD models were trained on", value)
    base_overrides = {k: v for k, v in fixed.items() if k in KNOB_NAMES}

    if input_path is None or isinstance(input_path, bool) or str(input_path) == "":
        raise InputError("input_path is required")
    input_path = str(input_path)
    if os.path.isdir(input_path):
        raise InputError(f"a sweep takes one image, got the folder {input_path}")
    image_path = svs.list_input_images(input_path)[0]
    image, image_info = svs.load_image(image_path)
    if image_info["resized"]:
        print(f"notice: resized {image_path} from {image_info['original_size'][0]}x{image_info['original_size'][1]} to "
              f"{image_info['size'][0]}x{image_info['size'][1]} (sides must be multiples of {svs.SIDE_MULTIPLE})")
    if resume and output_folder is None:
        raise InputError("--resume needs the --output_folder of the sweep to continue")
    if output_folder is None:
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
        output_folder = os.path.join("outputs", "sweep", version, stamp)
    output_folder = svs.check_output_folder(output_folder)

    cfg, config_path = svs.build_model_config(version, base["num_frames"], num_steps, config=config, ckpt_path=ckpt_path, network_overrides=base_overrides)
    try:
        base_knobs: Optional[MotionKnobs] = svs.motion_knobs_of(cfg, config_path)
    except InputError:
        if not any(name in KNOB_NAMES for name in axes):
            raise
        base_knobs = None  # valid only with the axes' values: each cell is checked (and the model built with cell 0's)
    cells = make_cells(axes, base, base_knobs if base_knobs is not None else svs.config_knob_values(cfg), base_overrides)
    model_knobs = base_knobs if base_knobs is not None else cells[0].knobs
    model_cfg = cfg
    if base_knobs is None:
        model_cfg = copy.deepcopy(cfg)
        for key, value in model_knobs.as_dict().items():
            model_cfg.model.params.network_config.params[key] = value
    cfg_by_frames: Dict[int, Any] = {base["num_frames"]: cfg}
    for cell in cells:
        frames = cell.params["num_frames"]
        if frames not in cfg_by_frames:
            cfg_by_frames[frames] = svs.build_model_config(version, frames, num_steps, config=config, ckpt_path=ckpt_path, network_overrides=base_overrides)[0]
        cell.cfg = copy.deepcopy(cfg_by_frames[frames])
        network = cell.cfg.model.params.get("network_config")
        if cell.overrides and isinstance(network, DictConfig):  # as simple_video_sample.py would set them
            for key, value in cell.overrides.items():
                network.params[key] = value
        if version == "sv3d_p":
            cell.angles = svs.sv3d_angles(frames)
    resolved_ckpt = cfg.model.params.get("ckpt_path")
    if resolved_ckpt is not None:
        svs.check_checkpoint(str(resolved_ckpt))
    device = svs.resolve_device(device)

    image_tensor = svs.image_to_tensor(image)
    cond_image = (image_tensor + 1.0) / 2.0
    image_sha256 = hashlib.sha256(np.asarray(image, dtype=np.uint8).tobytes()).hexdigest()
    common = {
        "version": version,
        "config_path": config_path,
        "ckpt_path": None if resolved_ckpt is None else os.path.abspath(str(resolved_ckpt)),
        "num_steps": num_steps,
        "decoding_t": decoding_t,
        "device": device,
        "input_path": input_path,
        "image_path": os.path.abspath(image_path),
        "image_sha256": image_sha256,
        "image_mode": image_info["mode"],
        "image_original_size": image_info["original_size"],
        "image_size": image_info["size"],
    }
    flag_paths = {"config": None if config is None else str(config), "ckpt_path": None if ckpt_path is None else str(ckpt_path)}
    sweep_args = {
        "input_path": input_path, "version": version, "num_steps": num_steps, "decoding_t": decoding_t, "device": device,
        "output_folder": output_folder, **flag_paths, "grid": None if grid is None else str(grid), "gif": gif or None,
    }
    sweep_command = _sweep_command(sweep_args, fixed, {k: v for k, v in axes.items() if k not in grid_entries})

    def identity(cell: Cell) -> Dict[str, Any]:
        return _json_round_trip({
            **{k: common[k] for k in IDENTITY_KEYS if k in common},
            **{k: cell.params[k] for k in SAMPLE_PARAMS},
            "motion_knobs": cell.knobs.as_dict(),
            "shuffle_windowed_noise": cell.params["shuffle_windowed_noise"],
            "sv3d_angles": cell.angles,
        })

    # -- what is there already
    finished: Dict[int, Dict[str, Any]] = {}
    if os.path.isdir(output_folder):
        if not resume:
            present = [n for n in AGGREGATES if os.path.exists(os.path.join(output_folder, n))]
            present += [os.path.basename(p) for c in cells for p in cell_paths(output_folder, c).values() if os.path.exists(p)]
            if present:
                raise InputError(f"output_folder {output_folder} already holds sweep outputs ({present[0]}); "
                                 "pass --resume to reuse its finished cells, or choose another output_folder")
        else:
            for cell in cells:
                record = finished_record(output_folder, cell)
                if record is None:
                    continue
                mine = identity(cell)
                differ = [k for k in IDENTITY_KEYS if record.get(k) != mine.get(k)]
                if differ:
                    raise InputError(f"cannot resume: {cell.name} in {output_folder} was made with other settings "
                                     f"({', '.join(differ)}); choose another output_folder")
                finished[cell.index] = record
    try:
        os.makedirs(output_folder, exist_ok=True)
    except OSError as err:
        raise InputError(f"cannot create output_folder {output_folder}: {err.strerror or err}") from None

    created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    write_image(image, os.path.join(output_folder, CONDITIONING_PNG))
    write_json({
        "command": sweep_command,
        "axes": {k: v for k, v in axes.items()},
        "axis_order": "fixed order of SWEEPABLE; itertools.product, the last axis varies fastest",
        "base": {**base, "gif": gif, "network_overrides": base_overrides,
                 "motion_knobs": None if base_knobs is None else base_knobs.as_dict(),
                 "model_built_with": model_knobs.as_dict()},
        **common,
        "image": CONDITIONING_PNG,
        "cells": [{"index": c.index, "name": c.name, "values": c.values} for c in cells],
        "created": created,
        "versions": svs.package_versions(),
    }, os.path.join(output_folder, "sweep.json"))

    # -- sampling: the model is built once
    ran: List[str] = []
    todo = [c for c in cells if c.index not in finished]
    records: Dict[int, Dict[str, Any]] = dict(finished)
    progress = tqdm(total=len(cells), desc="Sweep", unit="cell", initial=len(finished))
    try:
        if finished:
            tqdm.write(f"resume: {len(finished)} of {len(cells)} cells already done in {output_folder}")
        if todo:
            logger.debug("building the model from %s on %s", config_path, device)
            model = svs.load_model(model_cfg, device, config_path)
            unet = model.model.diffusion_model
            base_sampler = model.sampler
            samplers = {base["num_frames"]: base_sampler}
            tensor = image_tensor.to(device)
            for cell in todo:
                frames_n = cell.params["num_frames"]
                if frames_n not in samplers:  # the guider's per-frame scales depend on num_frames
                    samplers[frames_n] = instantiate_from_config(OmegaConf.to_container(cell.cfg.model.params.sampler_config, resolve=True))
                try:
                    unet.set_motion_knobs(**cell.knobs.as_dict())
                    model.sampler = samplers[frames_n]
                    noise_windows = svs.noise_windows_of(cell.knobs, cell.params["motion_bucket_id"]) if cell.params["shuffle_windowed_noise"] else None
                    torch.manual_seed(cell.params["seed"])
                    result = svs.sample_video(
                        model, tensor, num_frames=frames_n, fps_id=cell.params["fps_id"],
                        motion_bucket_id=cell.params["motion_bucket_id"], cond_aug=cell.params["cond_aug"],
                        decoding_t=decoding_t, sv3d=svs.is_sv3d(version),
                        polars_rad=None if cell.angles is None else cell.angles["polars_rad"],
                        azimuths_rad=None if cell.angles is None else cell.angles["azimuths_rad"],
                        noise_windows=noise_windows,
                    )
                finally:
                    unet.set_motion_knobs(**model_knobs.as_dict())
                    model.sampler = base_sampler
                video = svs.frames_to_uint8(result["frames"])
                schedule = result["window_schedule"]
                del result
                records[cell.index] = _save_cell(output_folder, cell, video, schedule, cond_image, common, flag_paths,
                                                 sweep_command, created, gif)
                ran.append(cell.name)
                tqdm.write(f"wrote {os.path.join(output_folder, cell.name)}.mp4")
                progress.update(1)
    finally:
        progress.close()

    # -- the views over all cells, rebuilt from the saved frames
    videos = []
    for cell in cells:
        paths = cell_paths(output_folder, cell)
        videos.append(read_frames(paths["frames"]))
        if gif and cell.index in finished and not os.path.isfile(paths["gif"]):  # resumed with --gif: add the GIF
            svs.write_gif(videos[-1], paths["gif"], cell.params["fps_id"] + 1)
            records[cell.index] = {**records[cell.index], "gif": os.path.basename(paths["gif"])}
            write_json(records[cell.index], paths["json"])
        saved = records[cell.index].get("metrics")
        if isinstance(saved, dict) and all(m in saved for m in METRICS):
            cell.metrics = {m: float(saved[m]) for m in METRICS}
        else:
            cell.metrics = frame_metrics(videos[-1], cond_image)
    labels = [cell.label_lines() for cell in cells]
    write_metrics_csv(cells, list(axes), os.path.join(output_folder, "metrics.csv"))
    grid_view = build_grid(videos, labels)
    write_mp4(grid_view.frames(), os.path.join(output_folder, "grid.mp4"), base["fps_id"] + 1)
    write_image(contact_sheet(videos, [[f"#{c.index}", *labels[c.index]] for c in cells]), os.path.join(output_folder, "contact_sheet.png"))
    plots = write_plots(cells, axes, output_folder)
    print(f"wrote {len(cells)} cells ({len(ran)} sampled now), grid.mp4, contact_sheet.png, metrics.csv"
          f"{f' and {len(plots)} plots' if plots else ''} to {output_folder}")
    return {"output_folder": output_folder, "cells": [records[c.index] for c in cells], "ran": ran,
            "skipped": [c.name for c in cells if c.index in finished], "plots": plots}


def _save_cell(folder: str, cell: Cell, video: np.ndarray, schedule: Optional[List[Dict[str, Any]]], cond_image: torch.Tensor,
               common: Dict[str, Any], flag_paths: Dict[str, Optional[str]], sweep_command: str, created: str,
               gif: bool = False) -> Dict[str, Any]:
    """Frames, video (and GIF), then the JSON (last: a cell is finished once its JSON exists)."""
    paths = cell_paths(folder, cell)
    metrics = frame_metrics(video, cond_image)
    fps = cell.params["fps_id"] + 1
    write_frames(video, paths["frames"])
    write_mp4(video, paths["video"], fps)
    if gif:
        svs.write_gif(video, paths["gif"], fps)
    cli_params = {
        "input_path": common["input_path"], "version": common["version"], "num_frames": cell.params["num_frames"],
        "num_steps": common["num_steps"], "fps_id": cell.params["fps_id"], "motion_bucket_id": cell.params["motion_bucket_id"],
        "cond_aug": cell.params["cond_aug"], "seed": cell.params["seed"], "decoding_t": common["decoding_t"],
        "device": common["device"], "output_folder": folder, **flag_paths,
        **{k: "none" if v is None else v for k, v in cell.overrides.items()},  # `--knob none`: null, not the config's value
        "shuffle_windowed_noise": cell.params["shuffle_windowed_noise"] or None, "gif": gif or None,
    }
    if cell.angles is not None:
        cli_params["elevations_deg"] = cell.angles["elevations_deg"]
        cli_params["azimuths_deg"] = cell.angles["azimuths_deg"]
    record = {
        "video": cell.name + ".mp4",
        "frames": cell.name + ".npz",
        "image": CONDITIONING_PNG,
        **{k: common[k] for k in ("version", "config_path", "ckpt_path")},
        "seed": cell.params["seed"],
        "num_frames": cell.params["num_frames"],
        "num_steps": common["num_steps"],
        "fps_id": cell.params["fps_id"],
        "motion_bucket_id": cell.params["motion_bucket_id"],
        "cond_aug": cell.params["cond_aug"],
        "decoding_t": common["decoding_t"],
        "device": common["device"],
        "video_fps": fps,
        "video_fps_rule": "fps_id + 1",
        "input_path": common["input_path"],
        "image_path": common["image_path"],
        "image_sha256": common["image_sha256"],
        "image_mode": common["image_mode"],
        "image_original_size": common["image_original_size"],
        "image_size": common["image_size"],
        "rng": "torch.manual_seed(seed) right before this cell is sampled (as simple_video_sample.py does for one "
               "image): the conditioning noise is drawn first, then the latent noise",
        "sv3d_angles": cell.angles,
        "network_overrides": cell.overrides,
        "motion_knobs": cell.knobs.as_dict(),
        "shuffle_windowed_noise": cell.params["shuffle_windowed_noise"],
        "attn_window_schedule": schedule,
        "gif": os.path.basename(paths["gif"]) if gif else None,
        "cell": {"index": cell.index, "name": cell.name, "values": cell.values},
        "metrics": metrics,
        "metrics_on": "the uint8 frames as saved (/255), psnr_frame0 against the conditioning image as used",
        "command": svs._reproduce_command({k: v for k, v in cli_params.items() if v is not None}),
        "sweep_command": sweep_command,
        "versions": svs.package_versions(),
        "created": created,
        "config": OmegaConf.to_container(cell.cfg, resolve=True),
    }
    record = _json_round_trip(record)
    write_json(record, paths["json"])
    return record


def sweep(
    input_path: str = "assets/test_image.png",
    num_frames: Any = None,
    num_steps: Optional[int] = None,
    version: str = "svd",
    fps_id: Any = None,
    motion_bucket_id: Any = None,
    cond_aug: Any = None,
    seed: Any = None,
    decoding_t: int = 14,
    device: Optional[str] = None,
    output_folder: Optional[str] = None,
    config: Optional[str] = None,
    ckpt_path: Optional[str] = None,
    verbose: bool = False,
    grid: Optional[str] = None,
    resume: bool = False,
    gif: bool = False,
    temporal_attn_scale: Any = None,
    temporal_attn_k_scale: Any = None,
    temporal_attn_scale_stages: Any = None,
    position_embedding_frames: Any = None,
    attn_window_size: Any = None,
    attn_window_stride: Any = None,
    attn_window_fusion: Any = None,
    attn_window_stages: Any = None,
    attn_window_min: Any = None,
    attn_window_max: Any = None,
    attn_window_motion: Any = None,
    attn_window_loop: Any = None,
    noise_correlation: Any = None,
    shuffle_windowed_noise: Any = None,
) -> None:
    """Sample one image over a grid of knob values with one loaded model; write cells, grid, sheet, CSV, plots.

    Every sweepable flag takes one value (a fixed setting of every cell) or comma-separated values
    (an axis): the motion knobs (below), shuffle_windowed_noise, motion_bucket_id, fps_id, cond_aug,
    num_frames, seed. `none` means a null knob. A stage set is written `middle+output` (`all` for
    every stage), so `--attn_window_stages output,middle+output,all` is an axis of three cells and
    `--attn_window_stages middle+output` a fixed setting; "[[output],[middle,output],null]" also works.
    `--attn_window_loop` alone is true; `--attn_window_loop false,true` is an axis.

    Args:
        input_path: one image file.
        num_frames: frames per video (default per version: svd 14, svd_xt 25, sv3d 21); sweepable.
        num_steps: sampler steps (default per version).
        version: svd, svd_xt, svd_xt_1_1, svd_image_decoder, svd_xt_image_decoder, sv3d_u or sv3d_p.
        fps_id: frame-rate conditioning (default 6); sweepable. The grid video plays at the fixed fps_id + 1.
        motion_bucket_id: amount-of-motion conditioning (default 127); sweepable.
        cond_aug: noise on the conditioning image (default 0.02, 1e-5 for sv3d); sweepable.
        seed: torch seed, set right before each cell is sampled (default 23); sweepable.
        decoding_t: frames decoded at once by the VAE.
        device: torch device (default cuda when available, else cpu).
        output_folder: where to write (default outputs/sweep/<version>/<UTC timestamp>).
        config: a model config YAML instead of the version's shipped config.
        ckpt_path: a checkpoint instead of the config's model.params.ckpt_path.
        verbose: log at DEBUG level.
        grid: a YAML file mapping axis names to lists of values (an axis may not also be a flag).
        resume: skip the cells already finished in output_folder and rebuild the grid, sheet, CSV and plots.
        gif: also write an endlessly looping GIF of each cell.
        temporal_attn_scale: s, temporal softmax scale sqrt(s / d_head).
        temporal_attn_k_scale: k, temporal keys times k.
        temporal_attn_scale_stages: stages where s and k act: input, middle, output joined by + (middle+output), or all.
        position_embedding_frames: E, frame positions linspace(0, E-1, T).
        attn_window_size: w, temporal attention in windows of w frames, or auto (sized by motion).
        attn_window_stride: r, window stride (default w // 4).
        attn_window_fusion: pyramid or flat.
        attn_window_stages: stages where windows act, joined by + (middle+output), or all; commas separate cells.
        attn_window_min: smallest auto window (at the most motion).
        attn_window_max: largest auto window (at no motion).
        attn_window_motion: motion score of an auto window: bucket or latent.
        attn_window_loop: circular windows (seamless loops): true or false.
        noise_correlation: rho in [0, 1), temporally correlated initial noise.
        shuffle_windowed_noise: FreeNoise rescheduling of the initial noise with each cell's w and r.
        (docs/PATCHES.md defines every knob; unset knobs keep the config's values.)
    """
    params = dict(locals())
    axis_flags = {name: params.pop(name) for name in (*KNOB_NAMES, "shuffle_windowed_noise")}
    run_sweep(**params, axis_flags=axis_flags)


_SWEEP_PARAMS = list(inspect.signature(sweep).parameters)
_BOOL_PARAMS = {"verbose", "resume", "gif", "attn_window_loop", "shuffle_windowed_noise"}


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    return svs.run_cli(sweep, argv, "sweep.py", _SWEEP_PARAMS, _BOOL_PARAMS, logger)


if __name__ == "__main__":
    sys.exit(main())
