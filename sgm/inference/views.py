"""Views over the cells of a sweep: the tiled grid video, the contact sheet, the metrics table and plots.

Videos here are uint8 arrays (T, H, W, 3); a box is (y, x, h, w) in pixels of its canvas (top,
left, height, width). Every file is written atomically and replaced when it exists.
"""
import csv
import io
import math
import numbers
import os
import re
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from ..eval.metrics import motion_metrics
from ..modules.motion import STAGE_KNOBS
from .outputs import atomic_write

METRICS = ("frame_diff", "displacement_px", "smoothness", "psnr_frame0")
BACKGROUND = 24  # grey level of the canvas
TEXT_COLOUR = (235, 235, 235)
PAD = 4  # pixels between boxes and around the canvas
GRID_MAX_SIZE = (3840, 2160)  # (width, height) the grid video is scaled down to fit
SHEET_COLUMNS = 8  # frames per contact-sheet row, at most
SHEET_THUMB_WIDTH = 256  # contact-sheet frames wider than this are scaled down

Box = Tuple[int, int, int, int]


def fmt(value: Any, axis: Optional[str] = None) -> str:
    """A value as names, labels, the CSV and commands show it: none, True, 2 (for 2.0), 0.5,
    full-precision floats (repr), words as they are; a stage set (a tuple or list, or any value of
    a STAGE_KNOBS axis) as middle+output, and a null stage set as all."""
    if value is None:
        return "all" if axis in STAGE_KNOBS else "none"
    if isinstance(value, float):
        return str(int(value)) if math.isfinite(value) and value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, (tuple, list)):
        return "+".join(fmt(item) for item in value)
    return str(value)


def slug(value: Any, axis: Optional[str] = None) -> str:
    """fmt(value, axis) with every character but letters, digits and . + - replaced by _ (for file names)."""
    return re.sub(r"[^A-Za-z0-9.+-]", "_", fmt(value, axis))


def text_block(lines: Sequence[str], scale: int = 1, pad: int = 2) -> np.ndarray:
    """`lines` in PIL's bitmap font, light on the canvas grey, enlarged `scale` times: uint8 (h, w, 3)."""
    font = ImageFont.load_default_imagefont()
    line_h = font.getbbox("Ag")[3] + 1
    width = max([font.getbbox(line)[2] for line in lines] + [1]) + 2 * pad
    image = Image.new("RGB", (width, line_h * max(len(lines), 1) + 2 * pad), (BACKGROUND,) * 3)
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((pad, pad + i * line_h), line, fill=TEXT_COLOUR, font=font)
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
    return np.asarray(image, dtype=np.uint8)


def fit(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    """`frame` (H, W, 3) uint8 at (height, width): itself when it has that size, else resized bicubically."""
    if frame.shape[:2] == (height, width):
        return frame
    return np.asarray(Image.fromarray(frame).resize((width, height), Image.Resampling.BICUBIC), dtype=np.uint8)


def _paste(canvas: np.ndarray, block: np.ndarray, y: int, x: int) -> None:
    canvas[y : y + block.shape[0], x : x + block.shape[1]] = block


@dataclass
class Grid:
    """The grid video: `background` (H, W, 3) with the labels drawn; video i plays in `boxes[i]`.
    Frames are synchronised: at frame t every video shows its frame t, or its last when shorter."""

    videos: List[np.ndarray]
    background: np.ndarray
    boxes: List[Box]

    @property
    def num_frames(self) -> int:
        return max(len(video) for video in self.videos)

    def frame(self, t: int) -> np.ndarray:
        canvas = self.background.copy()
        for video, (y, x, h, w) in zip(self.videos, self.boxes):
            canvas[y : y + h, x : x + w] = fit(video[min(t, len(video) - 1)], h, w)
        return canvas

    def frames(self) -> Iterator[np.ndarray]:
        return (self.frame(t) for t in range(self.num_frames))


def build_grid(videos: Sequence[np.ndarray], labels: Sequence[Sequence[str]], max_size: Tuple[int, int] = GRID_MAX_SIZE) -> Grid:
    """Videos of one frame size on a near-square grid (ceil(sqrt(n)) columns, row by row), each
    under its label lines. Tiles are scaled down (to even sides) only if the canvas would exceed
    `max_size` (width, height); the canvas sides are multiples of 16, which H.264 keeps as they are."""
    n = len(videos)
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    height, width = videos[0].shape[1:3]
    scale = min(1.0, max_size[0] / (cols * (width + PAD)), max_size[1] / (rows * (height + PAD)))
    tile_h, tile_w = (height, width) if scale == 1.0 else (max(2, int(height * scale) // 2 * 2), max(2, int(width * scale) // 2 * 2))
    blocks = [text_block(lines, max(1, tile_w // 320)) for lines in labels]
    band_h = max(block.shape[0] for block in blocks)
    box_w = max([tile_w] + [block.shape[1] for block in blocks]) + PAD
    box_h = band_h + tile_h + PAD
    canvas_h, canvas_w = (-(-(count * size + PAD) // 16) * 16 for count, size in ((rows, box_h), (cols, box_w)))
    background = np.full((canvas_h, canvas_w, 3), BACKGROUND, dtype=np.uint8)
    boxes = []
    for i, block in enumerate(blocks):
        y, x = PAD + (i // cols) * box_h, PAD + (i % cols) * box_w
        _paste(background, block, y, x)
        boxes.append((y + band_h, x, tile_h, tile_w))
    return Grid(list(videos), background, boxes)


def sheet_indices(num_frames: int, columns: int = SHEET_COLUMNS) -> List[int]:
    """Up to `columns` evenly spaced frame indices from 0 to num_frames - 1 (rounded, no repeats)."""
    return sorted({int(round(i)) for i in np.linspace(0, num_frames - 1, min(columns, num_frames))})


@dataclass
class ContactSheet:
    """`image` (H, W, 3) uint8; `thumbnails[i]` lists (t, box) of the frames of video i shown in row i."""

    image: np.ndarray
    thumbnails: List[List[Tuple[int, Box]]]


def contact_sheet(videos: Sequence[np.ndarray], labels: Sequence[Sequence[str]]) -> ContactSheet:
    """One row per video: its label lines on the left, then the frames at sheet_indices (scaled
    to SHEET_THUMB_WIDTH when wider), each captioned t=<index>."""
    height, width = videos[0].shape[1:3]
    scale = min(1.0, SHEET_THUMB_WIDTH / width)
    thumb_h, thumb_w = max(1, round(height * scale)), max(1, round(width * scale))
    blocks = [text_block(lines) for lines in labels]
    label_w = max(block.shape[1] for block in blocks) + PAD
    caption_h = text_block(["t=0"]).shape[0]
    row_h = max(thumb_h + caption_h, max(block.shape[0] for block in blocks)) + PAD
    cols = max(len(sheet_indices(len(video))) for video in videos)
    image = np.full((PAD + len(videos) * row_h, label_w + PAD + cols * (thumb_w + PAD), 3), BACKGROUND, dtype=np.uint8)
    thumbnails = []
    for r, (video, block) in enumerate(zip(videos, blocks)):
        y = PAD + r * row_h
        _paste(image, block, y, PAD)
        row = []
        for c, t in enumerate(sheet_indices(len(video))):
            x = label_w + PAD + c * (thumb_w + PAD)
            image[y : y + thumb_h, x : x + thumb_w] = fit(video[t], thumb_h, thumb_w)
            _paste(image, text_block([f"t={t}"])[:, :thumb_w], y + thumb_h, x)
            row.append((t, (y, x, thumb_h, thumb_w)))
        thumbnails.append(row)
    return ContactSheet(image, thumbnails)


def frame_metrics(frames: np.ndarray, image: np.ndarray) -> Dict[str, float]:
    """The METRICS (sgm.eval.metrics.motion_metrics) of uint8 frames (T, H, W, 3), frame 0 against
    the uint8 conditioning image (H, W, 3); pixels are read as value / 255. The arrays are taken in
    C order, so the float32 sums (and the values to the last bit) do not depend on their layout."""
    video = torch.from_numpy(np.ascontiguousarray(frames).copy()).permute(0, 3, 1, 2).float() / 255.0
    return motion_metrics(video, torch.from_numpy(np.ascontiguousarray(image).copy()).permute(2, 0, 1).float() / 255.0)


def write_csv(path: str, columns: Sequence[str], rows: Sequence[Dict[str, Any]]) -> None:
    """A CSV with a header of `columns` and one line per row (values shown by fmt, under their column)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([fmt(row[column], column) for column in columns] for row in rows)

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            handle.write(buffer.getvalue())

    atomic_write(path, write, overwrite=True)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def numeric_axes(axes: Dict[str, List[Any]]) -> List[str]:
    """The axes whose values are numbers (none allowed) with at least two different numbers."""
    return [name for name, values in axes.items()
            if all(v is None or _is_number(v) for v in values) and len({float(v) for v in values if v is not None}) >= 2]


def write_plots(folder: str, axes: Dict[str, List[Any]], points: Sequence[Tuple[Dict[str, Any], Dict[str, float]]]) -> List[str]:
    """plot_<axis>_<metric>.png in `folder` for each numeric axis and metric: the metric against
    the axis (cells where it is none left out), one line per combination of the other axes; a
    log2 x scale when the positive values span a factor of 8 or more. `points`: (values, metrics)
    per cell. Returns the paths written."""
    from matplotlib.figure import Figure

    written = []
    for axis in numeric_axes(axes):
        others = [a for a in axes if a != axis]
        lines: Dict[tuple, List[Tuple[float, Dict[str, float]]]] = {}
        for values, metrics in points:
            if values[axis] is not None:
                lines.setdefault(tuple(values[a] for a in others), []).append((float(values[axis]), metrics))
        xs = [float(v) for v in axes[axis] if v is not None]
        for metric in METRICS:
            fig = Figure(figsize=(6.4, 4.2), dpi=100)
            ax = fig.add_subplot()
            for key, members in lines.items():
                members.sort(key=lambda member: member[0])
                label = ", ".join(f"{a}={fmt(v, a)}" for a, v in zip(others, key)) or None
                ax.plot([x for x, _ in members], [m[metric] if math.isfinite(m[metric]) else math.nan for _, m in members], "o-", label=label)
            if min(xs) > 0 and max(xs) / min(xs) >= 8:
                ax.set_xscale("log", base=2)
            ax.set(xlabel=axis, ylabel=metric, title=f"{metric} vs {axis}")
            ax.grid(True, alpha=0.3)
            if others:
                ax.legend(fontsize="small")
            fig.subplots_adjust(left=0.13, right=0.97, bottom=0.12, top=0.92)
            path = os.path.join(folder, f"plot_{axis}_{metric}.png")
            atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"), overwrite=True)
            written.append(path)
    return written
