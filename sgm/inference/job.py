"""A job: the items of a sweep or of a folder of images, the files of each item, and the outputs
the job shares, built from those files.

An item is (input image, settings cell); its seed is one of the cell's settings. Its id names
its files in the job's folder, and depends only on the job: the cell name (sweep.cell_name) when
the job has one image and swept settings, imgNNN_<file stem> when it has no swept settings (the
folder of simple_video_sample.py), imgNNN_<stem>__<cell name> otherwise. Items are ordered image
by image, then cell by cell. Files of an item, written whole and its JSON last (an item whose
JSON exists is finished):

  ID.npz / ID.mp4 / ID.json     frames (uint8 (T, H, W, 3)), video, record
  ID.gif, ID_frames/TTT.png     with the gif and save_frames outputs

The shared outputs (collect), rebuilt from the item files at any time:
  conditioning.png (one image) or imgNNN_<stem>.png    each image as used
  manifest.json    every item with its status (done / missing)
  grid.mp4, contact_sheet.png, metrics.csv, plot_<axis>_<metric>.png   (sgm.inference.views)
  sweep.json       the plan of a sweep (axes, cells, items) and the views' layouts
"""
import datetime
import json
import os
import shutil
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
from PIL import Image

from ..modules.motion import ALL_KNOB_NAMES, STAGE_KNOBS
from .checks import InputError
from .cli import SAMPLE_SCRIPT, command_line
from .images import ConditioningImage, conditioning_image, frames_to_uint8, sampled_size
from .outputs import check_output_folder, plain_json, read_npz, write_frame_pngs, write_gif, write_json, write_mp4, write_npz, write_png
from .pipeline import VideoOutput, VideoPipeline
from .record import build_record, package_versions
from .settings import CALL_PARAMS, CAMERA_PARAMS, CallSettings
from .views import METRICS, build_grid, contact_sheet, fmt, frame_metrics, slug, write_csv, write_plots

CONDITIONING_PNG = "conditioning.png"
SWEEP_JSON = "sweep.json"
MANIFEST_JSON = "manifest.json"
# record fields that must match for --resume to reuse a finished item (the device by its type:
# the rank that made an item does not matter)
IDENTITY_KEYS = ("version", "config_path", "ckpt_path", "device", "dtype", "image_sha256", *CALL_PARAMS,
                 "motion_knobs", "sampling_knobs", "sv3d_angles")


# --------------------------------------------------------------------------------------------------
# Images, cells and items


@dataclass(frozen=True)
class JobImage:
    """An input image: its `index` in the job, `path`, `tag` (imgNNN_<stem>), the conditioning
    PNG's `file` name, `facts` of the image as used, and `native` (the size it is resized to, or None)."""

    index: int
    path: str
    tag: str
    file: str
    facts: Dict[str, Any]
    native: Optional[Tuple[int, int]]

    def load(self) -> ConditioningImage:
        return conditioning_image(self.path, self.native)


@dataclass
class Cell:
    """One combination of a sweep's axes: `values` {axis: value}, `given` the settings passed to
    ModelDefaults.settings (the fixed ones and `values`), `settings` the validated result."""

    index: int
    name: str
    values: Dict[str, Any]
    given: Dict[str, Any]
    settings: CallSettings

    @property
    def label(self) -> List[str]:
        return [f"{axis}={fmt(value, axis)}" for axis, value in self.values.items()]


@dataclass(frozen=True)
class Item:
    """One video of a job: `image` sampled with `cell`'s settings."""

    index: int
    id: str
    image: JobImage
    cell: Cell

    def path(self, folder: str, suffix: str) -> str:
        return os.path.join(folder, self.id + suffix)

    @property
    def label(self) -> List[str]:
        return self.cell.label if self.id == self.cell.name else [self.image.tag, *self.cell.label]


def image_tag(index: int, path: str) -> str:
    """imgNNN_<file stem> (the stem with characters other than letters, digits and . + - as _, at most 40)."""
    return f"img{index:03d}_" + slug(os.path.splitext(os.path.basename(path))[0])[:40]


def make_items(images: List[JobImage], cells: List[Cell], swept: bool) -> List[Item]:
    """Every (image, cell), image by image; ids as the module docstring says."""
    items = []
    for image in images:
        for cell in cells:
            if not swept:
                item_id = image.tag
            elif len(images) == 1:
                item_id = cell.name
            else:
                item_id = f"{image.tag}__{cell.name}"
            items.append(Item(len(items), item_id, image, cell))
    return items


# --------------------------------------------------------------------------------------------------
# The job


@dataclass
class Job:
    """A checked job. `pipe` is its VideoPipeline before the model is built (what the records will
    say of version, config and checkpoint paths, device type and dtype). `script` and `flags` (the
    paths and options as given) make the commands; `outputs` {gif, save_frames} the optional item
    files; `options` the model options kept in the commands (resize_to_native,
    allow_partial_checkpoint); `finished` {item id: record} the items found whole in `folder`."""

    folder: str
    pipe: VideoPipeline
    images: List[JobImage]
    cells: List[Cell]
    items: List[Item]
    axes: Dict[str, List[Any]]
    fixed: Dict[str, Any]
    grid_axes: List[str]
    script: str
    flags: Dict[str, Any]
    outputs: Dict[str, bool]
    options: Dict[str, bool]
    finished: Dict[str, Dict[str, Any]] = field(default_factory=dict)

    @property
    def is_sweep(self) -> bool:
        return bool(self.axes)

    def todo(self) -> List[Item]:
        """The items not finished when the job was planned."""
        return [item for item in self.items if item.id not in self.finished]

    def identity(self, item: Item) -> Dict[str, Any]:
        """What a record of `item` must hold to be reused (identity_of the record it would get)."""
        return identity_of(plain_json(build_record(self.pipe, item.cell.settings, item.image.facts, None)))

    def command(self) -> str:
        """The command line of this job (axes from the grid file left to --grid)."""
        fixed = {k: v if isinstance(v, (list, tuple)) and k not in STAGE_KNOBS else fmt(v, k) for k, v in self.fixed.items()}
        axes = {k: ",".join(fmt(v, k) for v in values) + ("," if len(values) == 1 else "")
                for k, values in self.axes.items() if k not in self.grid_axes}
        toggles = {k: True for k, on in {**self.outputs, **self.options}.items() if on}
        return command_line(self.script, {**self.flags, "output_folder": self.folder, **toggles, **fixed, **axes})

    def item_command(self, item: Item) -> str:
        """The simple_video_sample.py command that makes the same video as `item` (a null knob: none)."""
        flags = {k: self.flags.get(k) for k in ("version", "config", "ckpt_path", "device", "dtype")}
        call = {k: getattr(item.cell.settings, k) for k in CALL_PARAMS}
        knobs = {k: "none" if v is None else v for k, v in item.cell.given.items() if k in ALL_KNOB_NAMES + CAMERA_PARAMS}
        toggles = {k: True for k, on in {**self.outputs, **self.options}.items() if on}
        return command_line(SAMPLE_SCRIPT, {"input_path": item.image.path, **flags,
                                            "output_folder": os.path.join(self.folder, "reproduce"), **call, **knobs, **toggles})

    def load(self, device: torch.device, progress: bool = True) -> VideoPipeline:
        """The job's pipeline with its model built on `device` (a process's own)."""
        return self.pipe.planned_on(device, progress).load(self.options["allow_partial_checkpoint"])


def identity_of(record: Dict[str, Any]) -> Dict[str, Any]:
    """The IDENTITY_KEYS of a record, the device by its type (cuda:3 -> cuda)."""
    out = {key: record.get(key) for key in IDENTITY_KEYS}
    if isinstance(out["device"], str):
        out["device"] = out["device"].split(":")[0]
    return out


def read_finished(folder: str, item: Item) -> Optional[Dict[str, Any]]:
    """The record of `item` in `folder` when the item is whole (JSON readable, .npz and .mp4 there), else None."""
    if not all(os.path.isfile(item.path(folder, suffix)) for suffix in (".json", ".npz", ".mp4")):
        return None
    try:
        with open(item.path(folder, ".json"), encoding="utf-8") as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _check_folder(job: Job, resume: bool) -> None:
    """Refuse a non-empty folder without `resume`; with it, collect the finished items, refusing
    any made with other settings."""
    if not os.path.isdir(job.folder) or not os.listdir(job.folder):
        return
    if not resume:
        raise InputError(f"output_folder {job.folder} is not empty; pass --resume to reuse its finished items, "
                         "or choose another output_folder")
    for item in job.items:
        record = read_finished(job.folder, item)
        if record is None:
            continue
        found, expected = identity_of(record), job.identity(item)
        differ = [key for key in IDENTITY_KEYS if found[key] != expected[key]]
        if differ:
            raise InputError(f"cannot resume: {item.id} in {job.folder} was made with other settings "
                             f"({', '.join(differ)}); choose another output_folder")
        job.finished[item.id] = record


def plan_job(pipe: VideoPipeline, image_paths: List[str], cells: List[Cell], axes: Dict[str, List[Any]], fixed: Dict[str, Any],
             folder: str, script: str, flags: Dict[str, Any], grid_axes: Optional[List[str]] = None, resume: bool = False,
             outputs: Optional[Dict[str, bool]] = None, options: Optional[Dict[str, bool]] = None) -> Job:
    """A Job of `cells` over the images at `image_paths`, checked without building a model: the
    output folder (writable; with `resume`, the items already finished there), that the largest
    cell fits in memory at every image size (from the file headers, before any image is decoded),
    and the images. `options` {resize_to_native, allow_partial_checkpoint}."""
    options = {"resize_to_native": False, "allow_partial_checkpoint": False, **(options or {})}
    native = pipe.native_size if options["resize_to_native"] else None
    check_output_folder(folder)
    largest = max(cells, key=lambda c: c.settings.num_frames).settings
    for size in sorted({sampled_size(path, native) for path in image_paths}):
        pipe.memory(*size, largest)
    images = []
    for index, path in enumerate(image_paths):
        tag = image_tag(index, path)
        facts = conditioning_image(path, native).facts
        images.append(JobImage(index, path, tag, CONDITIONING_PNG if len(image_paths) == 1 and axes else tag + ".png", facts, native))
    job = Job(folder, pipe, images, cells, make_items(images, cells, bool(axes)), axes, fixed, list(grid_axes or []), script,
              {k: None if v is None else str(v) for k, v in flags.items()}, {"gif": False, "save_frames": False, **(outputs or {})},
              options)
    _check_folder(job, resume)
    return job


# --------------------------------------------------------------------------------------------------
# Writing an item


def _remove_stale(path: str) -> None:
    """Remove what a killed run left of an unfinished item (its JSON is absent, so it is no result)."""
    if os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def save_item(job: Job, item: Item, image: ConditioningImage, output: VideoOutput, extra: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """Write `item`'s frames (.npz), video, GIF and PNG frames (with those outputs) and, last, its
    record, which is never replaced: returns None, writing nothing, when the item is already
    finished. The record: the pipeline's, the file names, the item, its metrics (views.METRICS on
    the saved frames against `image`, the conditioning image as sampled) and the command that
    reproduces it, with `extra` (job_command, created)."""
    if os.path.exists(item.path(job.folder, ".json")):
        return None
    os.makedirs(job.folder, exist_ok=True)
    video = frames_to_uint8(output.frames)
    fps = item.cell.settings.fps_id + 1
    write_npz(video, item.path(job.folder, ".npz"), overwrite=True)
    write_mp4(video, item.path(job.folder, ".mp4"), fps, overwrite=True)
    if job.outputs["gif"]:
        write_gif(video, item.path(job.folder, ".gif"), fps, overwrite=True)
    if job.outputs["save_frames"]:
        _remove_stale(item.path(job.folder, "_frames"))
        write_frame_pngs(video, item.path(job.folder, "_frames"))
    record = plain_json({
        "video": item.id + ".mp4", "frames": item.id + ".npz", "gif": item.id + ".gif" if job.outputs["gif"] else None,
        "frame_pngs": item.id + "_frames" if job.outputs["save_frames"] else None,
        "image": item.image.file, "video_fps": fps, "video_fps_rule": "fps_id + 1", "input_path": item.image.path,
        "item": {"index": item.index, "id": item.id, "image_index": item.image.index},
        "cell": {"index": item.cell.index, "name": item.cell.name, "values": item.cell.values},
        **output.record,
        "metrics": frame_metrics(video, np.asarray(image.pil)),
        "metrics_on": f"the saved frames and {item.image.file}, pixels / 255",
        "command": job.item_command(item),
        **extra,
    })
    try:
        write_json(record, item.path(job.folder, ".json"))
    except OSError:
        if os.path.exists(item.path(job.folder, ".json")):
            return None  # finished by another process meanwhile: its record stays
        raise
    return record


def job_extra(job: Job) -> Dict[str, Any]:
    """What every record of this run of `job` carries besides its own: the job's command and the time."""
    return {"job_command": job.command(), "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


# --------------------------------------------------------------------------------------------------
# The shared outputs


def _complete_outputs(job: Job, item: Item, record: Dict[str, Any], video: np.ndarray) -> Dict[str, Any]:
    """A finished item's record, with the GIF and PNG frames written now when the job asks for files it lacks."""
    fps = item.cell.settings.fps_id + 1
    added = {}
    if job.outputs["gif"] and not os.path.isfile(item.path(job.folder, ".gif")):
        write_gif(video, item.path(job.folder, ".gif"), fps, overwrite=True)
        added["gif"] = item.id + ".gif"
    if job.outputs["save_frames"] and not os.path.isdir(item.path(job.folder, "_frames")):
        write_frame_pngs(video, item.path(job.folder, "_frames"))
        added["frame_pngs"] = item.id + "_frames"
    if added:
        record = {**record, **added}
        write_json(record, item.path(job.folder, ".json"), overwrite=True)
    return record


def _summary(job: Job) -> Dict[str, Any]:
    return plain_json({
        "command": job.command(), "axes": job.axes, "fixed": job.fixed,
        "cells": [{"index": c.index, "name": c.name, "values": c.values} for c in job.cells],
        "images": [{"index": i.index, "path": i.path, "tag": i.tag, "file": i.file, **{f"image_{k}": v for k, v in i.facts.items()}}
                   for i in job.images],
        "items": [{"index": i.index, "id": i.id, "image": i.image.index, "cell": i.cell.index} for i in job.items],
        "version": job.pipe.version, "config_path": job.pipe.config_path, "ckpt_path": job.pipe.ckpt_path,
        "device": job.pipe.device.type, "dtype": job.pipe.dtype_name, "versions": package_versions(),
    })


def write_manifest(job: Job, records: Dict[str, Dict[str, Any]]) -> Dict[str, Any]:
    """manifest.json: every item (id, image, cell, seed, status done / missing, its record's file)."""
    rows = [{"index": i.index, "id": i.id, "image": i.image.path, "image_tag": i.image.tag, "cell": i.cell.name,
             "values": i.cell.values, "seed": i.cell.settings.seed, "status": "done" if i.id in records else "missing",
             "record": i.id + ".json" if i.id in records else None} for i in job.items]
    manifest = plain_json({"command": job.command(), "total": len(rows), "done": len(records), "missing": len(rows) - len(records),
                      "items": rows})
    write_json(manifest, os.path.join(job.folder, MANIFEST_JSON), overwrite=True)
    return manifest


def write_views(job: Job, done: List[Item], videos: List[np.ndarray], records: List[Dict[str, Any]]) -> Tuple[Dict[str, Any], List[str]]:
    """grid.mp4, contact_sheet.png, metrics.csv and the plots of the finished items `done` (their
    saved frames `videos` and `records`). Returns (the views' layouts: "grid" {"size": [W, H],
    "boxes": a box per item} and "contact_sheet" {"thumbnails": per item, [t, box] per frame shown}, the plots)."""
    several = len(job.images) > 1
    grid = build_grid(videos, [item.label for item in done])
    write_mp4(grid.frames(), os.path.join(job.folder, "grid.mp4"), done[0].cell.settings.fps_id + 1, overwrite=True)
    sheet = contact_sheet(videos, [[f"#{item.index}", *item.label] for item in done])
    write_png(Image.fromarray(sheet.image), os.path.join(job.folder, "contact_sheet.png"), overwrite=True)
    image_axis = {"image": [image.tag for image in job.images]} if several else {}  # not numeric: a line per image

    def values(item: Item) -> Dict[str, Any]:
        return {**({"image": item.image.tag} if several else {}), **item.cell.values}

    rows = [{"index": i.index, "item": i.id, **values(i), **r["metrics"], "video": r["video"]} for i, r in zip(done, records)]
    write_csv(os.path.join(job.folder, "metrics.csv"), ["index", "item", *image_axis, *job.axes, *METRICS, "video"], rows)
    plots = write_plots(job.folder, {**image_axis, **job.axes}, [(values(i), r["metrics"]) for i, r in zip(done, records)])
    layouts = {"grid": {"size": [grid.background.shape[1], grid.background.shape[0]], "boxes": grid.boxes},
               "contact_sheet": {"thumbnails": sheet.thumbnails}}
    return layouts, plots


def _remove_partials(folder: str) -> None:
    """Remove the hidden temp files a killed writer left (no writer of the job runs while it is collected)."""
    for name in os.listdir(folder):
        if name.startswith(".partial-"):
            _remove_stale(os.path.join(folder, name))


@dataclass
class JobResult:
    records: List[Dict[str, Any]]  # the finished items' records, in item order
    missing: List[str]  # ids of the items not finished
    plots: List[str]


def collect(job: Job, say: Callable[[str], None] = lambda line: None) -> JobResult:
    """Build the job's shared outputs from the item files in its folder (see the module
    docstring): after every process has finished, or alone (--collect_only). Views cover the
    finished items; the manifest also lists the missing ones."""
    os.makedirs(job.folder, exist_ok=True)
    _remove_partials(job.folder)
    for image in job.images:
        write_png(image.load().pil, os.path.join(job.folder, image.file), overwrite=True)
    found = {item.id: read_finished(job.folder, item) for item in job.items}
    done = [item for item in job.items if found[item.id] is not None]
    videos = [read_npz(item.path(job.folder, ".npz")) for item in done]
    records = [_complete_outputs(job, item, found[item.id], video) for item, video in zip(done, videos)]
    manifest = write_manifest(job, {item.id: record for item, record in zip(done, records)})
    layouts, plots = write_views(job, done, videos, records) if done else ({}, [])
    if job.is_sweep:
        write_json(plain_json({**_summary(job), **layouts}), os.path.join(job.folder, SWEEP_JSON), overwrite=True)
    missing = [row["id"] for row in manifest["items"] if row["status"] == "missing"]
    if missing:
        say(f"{len(missing)} of {len(job.items)} items are missing ({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}); "
            "run the same command with --resume to sample them")
    return JobResult(records, missing, plots)
