"""scripts/sampling/sweep.py and sgm.inference.sweep / views: cells, views, resume, bad grids.

In process through the script's command-line contract. Sampling uses the tiny model of
tests/fixtures/upstream_parity, built once per session and shared (VideoPipeline.load is
replaced by `Pipelines`, which also counts builds and calls); the tests of the views paint
known frames instead of sampling, so that the lossy grid video can be checked tightly. One bad
grid runs in a real process.
"""
import csv
import json
import os
import shlex
import shutil

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from sgm.eval.metrics import motion_metrics
from sgm.inference import VideoPipeline
from sgm.inference.cli import run_cli
from sgm.inference.images import frames_to_uint8
from sgm.inference.pipeline import VideoOutput
from sgm.inference.record import build_record
from sgm.inference.sweep import cell_name, check_axis, read_grid_file, split_settings
from sgm.inference.views import METRICS, build_grid, sheet_indices
from sgm.modules.motion import ALL_KNOB_NAMES, STAGES

SUFFIXES = (".npz", ".mp4", ".json", ".gif")


class Built(Exception):
    """Raised where a test requires that no model is built."""


def architecture(cfg):
    """The network parameters of a config other than the knobs (a call sets every knob)."""
    params = OmegaConf.to_container(cfg.model.params.network_config.params)
    return {k: v for k, v in params.items() if k not in ALL_KNOB_NAMES}


class Pipelines:
    """Stands in for VideoPipeline.load: the model of `tiny` (the tiny pipeline, shared)
    under the config asked for (the tiny model's, knobs aside), or with `paint` no model and frames
    painted by `painted_sample`; `forbid` makes a build raise Built. Counts builds and calls."""

    def __init__(self, tiny=None, paint=False, forbid=False):
        self.tiny, self.paint, self.forbid = tiny, paint, forbid
        self.builds, self.calls = 0, []
        self.interrupt_at = None  # with paint: raise KeyboardInterrupt at this call (0-based)

    def load(self, planned, allow_partial_checkpoint=False):
        if self.forbid:
            raise Built("the model must not be built here")
        self.builds += 1
        if self.tiny is not None:
            assert architecture(planned.config) == architecture(self.tiny.config)
            assert os.path.samefile(planned.ckpt_path, self.tiny.ckpt_path)
        return VideoPipeline(None if self.tiny is None else self.tiny.model, planned.config, planned.version,
                             planned.config_path, planned.device, planned.dtype, planned.defaults, self.tiny and self.tiny.checkpoint)

    def install(self, monkeypatch):
        real_sample = VideoPipeline.sample
        pipelines = self

        def sample(pipe, image, settings, callback=None):
            pipelines.calls.append(settings)
            if pipelines.paint:
                if len(pipelines.calls) - 1 == pipelines.interrupt_at:
                    raise KeyboardInterrupt
                return painted_sample(pipe, image, settings)
            return real_sample(pipe, image, settings, callback)

        pipelines_load = self.load
        monkeypatch.setattr(VideoPipeline, "load", lambda planned, *a, **k: pipelines_load(planned, *a, **k))
        monkeypatch.setattr(VideoPipeline, "sample", sample)
        return self


def painted_sample(pipe, image, settings):
    """Flat frames with the pipeline's record: at frame t the colour (60 s, 20 + 45 t, 30 num_frames) / 255,
    s = 1, 2, 3 when temporal_attn_scale_stages starts with input, middle, output (0 when null)."""
    h, w = image.tensor.shape[-2:]
    stages = settings.motion_knobs.temporal_attn_scale_stages
    s = 0 if stages is None else 1 + STAGES.index(stages[0])
    colours = torch.tensor([[60.0 * s, 20.0 + 45.0 * t, 30.0 * settings.num_frames] for t in range(settings.num_frames)])
    frames = (colours / 255.0)[:, :, None, None].expand(-1, -1, h, w).contiguous()
    return VideoOutput(frames, torch.zeros(settings.num_frames, 4, h // 8, w // 8), None, build_record(pipe, settings, image.facts, None))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def no_build(monkeypatch):
    return Pipelines(forbid=True).install(monkeypatch)


@pytest.fixture
def painted(monkeypatch):
    return Pipelines(paint=True).install(monkeypatch)


def read_json(path):
    return json.loads(open(path, encoding="utf-8").read())


def npz(folder, name):
    return np.load(os.path.join(folder, name + ".npz"))["frames"]


def sweep_files(folder):
    return {name: open(os.path.join(folder, name), "rb").read() for name in sorted(os.listdir(folder)) if name.startswith("cell_")}


# --------------------------------------------------------------------------------------------------
# A sweep on the tiny model: its config windows the output stage (w = 2); the cells vary s and
# the stage set, with circular windows and correlated noise fixed.

CELLS = [
    "cell_000_temporal_attn_scale-0.5_attn_window_stages-all",
    "cell_001_temporal_attn_scale-0.5_attn_window_stages-middle+output",
    "cell_002_temporal_attn_scale-2_attn_window_stages-all",
    "cell_003_temporal_attn_scale-2_attn_window_stages-middle+output",
]
VALUES = [(0.5, None), (0.5, ["middle", "output"]), (2.0, None), (2.0, ["middle", "output"])]


@pytest.fixture(scope="module")
def windowed_config(tmp_path_factory, paths):
    cfg = OmegaConf.load(paths.tiny_config)
    cfg.model.params.network_config.params.attn_window_size = 2
    cfg.model.params.network_config.params.attn_window_stages = ["output"]
    path = tmp_path_factory.mktemp("config") / "tiny_windows_output.yaml"
    OmegaConf.save(cfg, path)
    return path


@pytest.fixture(scope="module")
def sweep_args(tiny_args, paths, windowed_config):
    def args(folder, *extra):
        return tiny_args(paths.image, folder, "--config", windowed_config, "--num_frames", 4, "--num_steps", 2,
                         "--attn_window_stages", "all,middle+output", "--temporal_attn_scale", "0.5,2",
                         "--attn_window_loop", "--noise_correlation", "0.2", "--gif", *extra)

    return args


@pytest.fixture(scope="module")
def swept(tmp_path_factory, sweep_script, sweep_args, tiny_pipeline):
    folder = tmp_path_factory.mktemp("sweep") / "out"
    with pytest.MonkeyPatch.context() as monkeypatch:
        pipelines = Pipelines(tiny_pipeline).install(monkeypatch)
        assert run_cli(sweep_script.main, sweep_script.PARSER, [str(a) for a in sweep_args(folder)]) == 0
    assert pipelines.builds == 1 and len(pipelines.calls) == 4
    return folder


def test_cells_are_the_product_of_the_axes_in_sweepable_order(swept):
    names = set(os.listdir(swept))
    assert {c + s for c in CELLS for s in SUFFIXES} | {"grid.mp4", "contact_sheet.png", "metrics.csv", "sweep.json",
                                                       "conditioning.png"} <= names
    assert not [n for n in names if n.startswith(".partial")]
    for name, (s, stages) in zip(CELLS, VALUES):
        record = read_json(swept / (name + ".json"))
        assert record["cell"]["values"] == {"temporal_attn_scale": s, "attn_window_stages": stages}
        knobs = record["motion_knobs"]
        assert (knobs["temporal_attn_scale"], knobs["attn_window_stages"]) == (s, stages)
        assert (knobs["attn_window_size"], knobs["attn_window_loop"]) == (2, True)  # config, fixed flag
        assert record["sampling_knobs"]["noise_correlation"] == 0.2
        assert (record["seed"], record["num_frames"], record["num_steps"], record["video_fps"]) == (23, 4, 2, 7)
        assert record["config"]["model"]["params"]["network_config"]["params"]["attn_window_stages"] == stages
        with Image.open(swept / record["gif"]) as gif:
            assert gif.n_frames == 4 and gif.info.get("loop") == 0
    summary = read_json(swept / "sweep.json")
    assert summary["axes"] == {"temporal_attn_scale": [0.5, 2.0], "attn_window_stages": [None, ["middle", "output"]]}
    assert summary["fixed"] == {"num_frames": 4, "attn_window_loop": True, "noise_correlation": 0.2}
    command = shlex.split(summary["command"])
    assert command[command.index("--attn_window_stages") + 1] == "all,middle+output"
    # each axis leaves its mark (every cell starts from the same noise: the differences are the knobs')
    frames = [npz(swept, name).astype(int) for name in CELLS]
    for i, j in [(0, 1), (2, 3), (0, 2), (1, 3)]:
        assert np.abs(frames[i] - frames[j]).max() > 0, (CELLS[i], CELLS[j])


def test_a_cell_is_the_pipeline_call_with_its_settings(swept, tiny_pipeline, paths):
    out = tiny_pipeline(str(paths.image), num_frames=4, num_steps=2, seed=23, temporal_attn_scale=2.0, attn_window_size=2,
                        attn_window_stages=["middle", "output"], attn_window_loop=True, noise_correlation=0.2)
    assert np.array_equal(frames_to_uint8(out.frames), npz(swept, CELLS[3]))
    assert read_json(swept / (CELLS[3] + ".json"))["motion_knobs"] == out.record["motion_knobs"]


def test_a_cell_command_makes_the_same_video_with_simple_video_sample(swept, sample_script, run_in_process, tiny_pipeline,
                                                                      monkeypatch, tmp_path, read_png_frames):
    """Cell 0 sets the config's [output] stage set to null: its command must say `none`."""
    record = read_json(swept / (CELLS[0] + ".json"))
    args = shlex.split(record["command"])
    assert args[1] == "scripts/sampling/simple_video_sample.py"
    for flag, value in [("--attn_window_stages", "none"), ("--attn_window_loop", "True"), ("--noise_correlation", "0.2"),
                        ("--temporal_attn_scale", "0.5"), ("--seed", "23"), ("--gif", "True")]:
        assert args[args.index(flag) + 1] == value, flag
    args[args.index("--output_folder") + 1] = str(tmp_path)
    Pipelines(tiny_pipeline).install(monkeypatch)
    result = run_in_process(sample_script, *args[2:], "--save_frames")
    assert result.returncode == 0, result.stderr
    assert np.array_equal(read_png_frames(tmp_path / "000000_frames"), npz(swept, CELLS[0]))
    assert read_json(tmp_path / "000000.json")["motion_knobs"] == record["motion_knobs"]
    assert (tmp_path / "000000.gif").read_bytes() == (swept / record["gif"]).read_bytes()


def test_metrics_csv_holds_the_metrics_of_the_saved_frames(swept, paths):
    cond = torch.from_numpy(np.array(Image.open(swept / "conditioning.png"))).permute(2, 0, 1).float() / 255.0
    with open(swept / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["index", "item", "temporal_attn_scale", "attn_window_stages", *METRICS, "video"]
    assert [(r["item"], r["temporal_attn_scale"], r["attn_window_stages"]) for r in rows] == [
        (CELLS[0], "0.5", "all"), (CELLS[1], "0.5", "middle+output"), (CELLS[2], "2", "all"), (CELLS[3], "2", "middle+output")]
    for row in rows:
        video = torch.from_numpy(npz(swept, row["item"])).permute(0, 3, 1, 2).float() / 255.0
        expected = motion_metrics(video, cond)
        assert {m: float(row[m]) for m in METRICS} == expected  # written at full precision
        assert read_json(swept / (row["item"] + ".json"))["metrics"] == expected
    assert np.array_equal(np.asarray(Image.open(swept / "conditioning.png")), np.asarray(Image.open(paths.image).convert("RGB")))
    # a plot per metric against the one numeric axis
    assert sorted(n for n in os.listdir(swept) if n.startswith("plot_")) == sorted(f"plot_temporal_attn_scale_{m}.png" for m in METRICS)


def test_contact_sheet_shows_every_frame_of_each_cell(swept):
    sheet = np.asarray(Image.open(swept / "contact_sheet.png").convert("RGB"))
    rows = read_json(swept / "sweep.json")["contact_sheet"]["thumbnails"]
    assert len(rows) == 4
    tops = []
    for name, row in zip(CELLS, rows):
        video = npz(swept, name)
        assert [t for t, _ in row] == [0, 1, 2, 3]  # 4 frames: all of them
        for t, (y, x, h, w) in row:
            assert np.array_equal(sheet[y : y + h, x : x + w], video[t])
        tops.append(row[0][1][0])
        assert (sheet[tops[-1] : tops[-1] + 10, :60] > 200).any()  # the label, left of the row
    assert tops == sorted(tops) and len(set(tops)) == 4  # one row per cell, in order


def test_resume_reuses_finished_cells_and_refuses_other_settings(swept, tmp_path, sweep_script, sweep_args, run_in_process,
                                                                 one_line_error, monkeypatch, tiny_pipeline):
    folder = tmp_path / "out"
    shutil.copytree(swept, folder)
    before = sweep_files(folder)
    (folder / "grid.mp4").unlink()
    pipelines = Pipelines(tiny_pipeline).install(monkeypatch)
    assert run_in_process(sweep_script, *sweep_args(folder), "--resume").returncode == 0
    assert (pipelines.builds, pipelines.calls) == (0, [])
    assert sweep_files(folder) == before and (folder / "grid.mp4").is_file()

    (folder / (CELLS[2] + ".json")).unlink()  # cell 2 unfinished: only it is sampled again, the same
    result = run_in_process(sweep_script, *sweep_args(folder), "--resume")
    assert result.returncode == 0 and "4 of 4 items (1 sampled now)" in result.stdout
    assert len(pipelines.calls) == 1 and pipelines.calls[0].motion_knobs.temporal_attn_scale == 2.0
    assert np.array_equal(npz(folder, CELLS[2]), np.load(swept / (CELLS[2] + ".npz"))["frames"])

    for extra, expected in [((), "--resume"), (("--resume", "--seed", "5"), "(seed)"),
                            (("--resume", "--noattn_window_loop"), "(motion_knobs)")]:
        line = one_line_error(run_in_process(sweep_script, *sweep_args(folder), *extra))
        assert expected in line, line
    assert len(pipelines.calls) == 1 and pipelines.builds == 1


# --------------------------------------------------------------------------------------------------
# The views, on painted frames (flat colours survive H.264 within a few levels)


def test_grid_video_tiles_the_cells_frame_synchronised(tmp_path, sweep_script, run_in_process, tiny_args, paths, painted, read_video):
    folder = tmp_path / "out"
    args = tiny_args(paths.image, folder, "--temporal_attn_scale_stages", "input,middle,output", "--num_frames", "3,5")
    result = run_in_process(sweep_script, *args)
    assert result.returncode == 0, result.stderr
    summary = read_json(folder / "sweep.json")
    names = [cell["name"] for cell in summary["cells"]]
    assert [cell["values"] for cell in summary["cells"]] == [
        {"temporal_attn_scale_stages": [s], "num_frames": n} for s in STAGES for n in (3, 5)]
    videos = [npz(folder, name) for name in names]
    decoded, fps = read_video(folder / "grid.mp4")
    boxes = summary["grid"]["boxes"]
    assert decoded.shape == (5, summary["grid"]["size"][1], summary["grid"]["size"][0], 3) and fps == 7
    assert sorted({y for y, *_ in boxes}) == [boxes[0][0], boxes[3][0]] and len({x for _, x, *_ in boxes}) == 3  # 2 rows of 3
    for t in range(5):
        for i, (y, x, h, w) in enumerate(boxes):
            tile = decoded[t, y : y + h, x : x + w].astype(float)
            errors = [np.abs(tile - video[min(t, len(video) - 1)]).mean() for video in videos]
            # within 3 levels of its frame (H.264 in yuv420p; measured 2.3 at most), 10+ from any other
            assert errors[i] < 3 and sorted(errors)[1] > 10 and errors[i] == min(errors), (t, names[i], errors)
    for y, x, h, w in boxes:  # a label above each tile
        assert (decoded[0, y - 12 : y, x : x + w] > 200).any()
    sheet = np.asarray(Image.open(folder / "contact_sheet.png").convert("RGB"))
    for video, row in zip(videos, summary["contact_sheet"]["thumbnails"]):
        assert [t for t, _ in row] == list(range(len(video)))
        assert all(np.array_equal(sheet[y : y + h, x : x + w], video[t]) for t, (y, x, h, w) in row)


def test_build_grid_holds_last_frames_and_scales_to_fit():
    rng = np.random.default_rng(0)
    videos = [rng.integers(0, 256, (n, 48, 80, 3), dtype=np.uint8) for n in (2, 5, 3, 5, 1)]
    grid = build_grid(videos, [[f"cell {i}"] for i in range(5)])
    assert grid.num_frames == 5 and grid.background.shape[0] % 16 == 0 and grid.background.shape[1] % 16 == 0
    assert len({x for _, x, _, _ in grid.boxes}) == 3 and len({y for y, _, _, _ in grid.boxes}) == 2
    for t, frame in enumerate(grid.frames()):
        for video, (y, x, h, w) in zip(videos, grid.boxes):
            assert np.array_equal(frame[y : y + h, x : x + w], video[min(t, len(video) - 1)])
    small = build_grid(videos, [["a"]] * 5, max_size=(200, 100))
    assert len({box[2:] for box in small.boxes}) == 1
    _, _, h, w = small.boxes[0]
    assert h % 2 == 0 and w % 2 == 0 and 3 * w <= 200 and 2 * h <= 100 and (h, w) != (48, 80)
    assert sheet_indices(25) == [0, 3, 7, 10, 14, 17, 21, 24] and sheet_indices(3) == [0, 1, 2]


def test_interrupted_sweep_keeps_whole_cells_and_resumes(tmp_path, sweep_script, run_in_process, paths, painted):
    grid = tmp_path / "grid.yaml"
    grid.write_text("num_frames: [3, 5]\nseed: [7]\n")
    folder = tmp_path / "out"
    args = ["--input_path", paths.image, "--config", paths.tiny_config, "--ckpt_path", paths.tiny_weights, "--device", "cpu",
            "--output_folder", folder, "--grid", grid]
    names = ["cell_000_num_frames-3_seed-7", "cell_001_num_frames-5_seed-7"]
    painted.interrupt_at = 1
    result = run_in_process(sweep_script, *args)
    assert result.returncode == 130 and result.stderr.strip().splitlines()[-1] == "error: interrupted"
    present = set(os.listdir(folder))
    assert {names[0] + s for s in (".npz", ".mp4", ".json")} <= present
    assert not [n for n in present if n.startswith((names[1], ".partial", "grid"))]
    first = sweep_files(folder)

    painted.interrupt_at, painted.calls = None, []
    result = run_in_process(sweep_script, *args, "--resume")
    assert result.returncode == 0, result.stderr
    assert [s.num_frames for s in painted.calls] == [5]
    assert {k: v for k, v in sweep_files(folder).items() if k.startswith(names[0])} == first
    assert [len(npz(folder, n)) for n in names] == [3, 5]
    with open(folder / "metrics.csv", newline="") as handle:
        assert [(r["num_frames"], r["seed"]) for r in csv.DictReader(handle)] == [("3", "7"), ("5", "7")]
    assert "--grid" in read_json(folder / "sweep.json")["command"]
    assert (folder / "plot_num_frames_frame_diff.png").is_file() and not (folder / "plot_seed_frame_diff.png").exists()


# --------------------------------------------------------------------------------------------------
# Axes as written on the command line and in grid files (no model: the build raises)


class Planned(Exception):
    """Raised in place of running a sweep; carries its plan."""


def planned_axes(sweep_script, folder, args, monkeypatch):
    """Run the sweep's command line up to the plan; return its axes, fixed settings and cells as
    sweep.json would hold them (nothing is written before the model is loaded)."""

    def run_job(plan, launch, say):
        raise Planned(plan)

    monkeypatch.setattr(sweep_script, "run_job", run_job)
    with pytest.raises(Planned) as planned:
        run_cli(sweep_script.main, sweep_script.PARSER, [str(a) for a in args])
    assert not folder.exists()
    plan = planned.value.args[0]
    return json.loads(json.dumps({"axes": plan.axes, "fixed": plan.fixed, "cells": [cell.values for cell in plan.cells]}))


FORMS = {
    "stages with + and commas": (["--attn_window_stages", "output,middle+output,all"],
                                 {"attn_window_stages": [["output"], ["middle", "output"], None]}),
    "stages as lists": (["--attn_window_stages", "[[output],[output,middle],null]"],
                        {"attn_window_stages": [["output"], ["middle", "output"], None]}),
    "one-value axis": (["--temporal_attn_scale_stages", "middle+output,"], {"temporal_attn_scale_stages": [["middle", "output"]]}),
    "bool axis": (["--attn_window_loop", "false,true"], {"attn_window_loop": [False, True]}),
    "bool list": (["--attn_window_loop", "[False,True]"], {"attn_window_loop": [False, True]}),
    "auto among sizes": (["--attn_window_size", "[2,auto]", "--attn_window_min", "2", "--attn_window_max", "4"],
                         {"attn_window_size": [2, "auto"]}),
    "fixed auto, min from an axis": (["--attn_window_size", "auto", "--attn_window_max", "4", "--attn_window_min", "2,4"],
                                     {"attn_window_min": [2, 4]}),
    "negative values after a space": (["--seed", "-5,7"], {"seed": [-5, 7]}),
    "sampling knobs": (["--attn_window_size", "auto", "--attn_window_min", "2", "--attn_window_max", "4",
                        "--attn_window_motion", "bucket,latent", "--shuffle_windowed_noise", "true,false"],
                       {"shuffle_windowed_noise": [True, False], "attn_window_motion": ["bucket", "latent"]}),
}


@pytest.mark.parametrize("case", sorted(FORMS))
def test_command_line_forms_of_axes(case, tmp_path, sweep_script, tiny_args, paths, monkeypatch):
    flags, axes = FORMS[case]
    summary = planned_axes(sweep_script, tmp_path / "out", tiny_args(paths.image, tmp_path / "out", "--attn_window_size", "2", *flags),
                           monkeypatch)
    assert summary["axes"] == axes
    order = [*ALL_KNOB_NAMES, "motion_bucket_id", "fps_id", "cond_aug", "num_frames", "seed"]  # documented axis order
    assert list(axes) == [name for name in order if name in axes]  # not the flags' order
    assert len(summary["cells"]) == int(np.prod([len(v) for v in axes.values()]))


@pytest.mark.parametrize("flag, loop", [("--attn_window_loop", True), ("--noattn_window_loop", False)])
def test_a_bool_flag_alone_is_a_fixed_setting(flag, loop, tmp_path, sweep_script, tiny_args, paths, monkeypatch):
    summary = planned_axes(sweep_script, tmp_path / "out", tiny_args(paths.image, tmp_path / "out", "--attn_window_size", "2", flag,
                                                                    "--noise_correlation", "0.2,0.5"), monkeypatch)
    assert summary["fixed"]["attn_window_loop"] is loop and list(summary["axes"]) == ["noise_correlation"]


def test_grid_file_axes_and_value_parsing(tmp_path):
    (tmp_path / "grid.yaml").write_text("attn_window_stages: [[output], [middle, output], all]\n"
                                        "attn_window_size: [4, auto]\nattn_window_loop: [false, true]\nseed: 7\n")
    axes, fixed = split_settings({"temporal_attn_scale": "1, 2.5", "attn_window_min": "2"}, read_grid_file(str(tmp_path / "grid.yaml")))
    assert axes == {"temporal_attn_scale": [1.0, 2.5], "attn_window_size": [4, "auto"], "attn_window_stages": [("output",), ("middle", "output"), None],
                    "attn_window_loop": [False, True], "seed": [7]}
    assert fixed == {"attn_window_min": 2}
    assert check_axis("attn_window_stages", "output+input, all") == [("input", "output"), None]
    assert check_axis("attn_window_size", "8,auto,none") == [8, "auto", None]
    assert check_axis("cond_aug", "0,0.02") == [0.0, 0.02]
    assert cell_name(3, 3, {"temporal_attn_scale": 2.0, "attn_window_stages": ("middle", "output")}) == \
        "cell_003_temporal_attn_scale-2_attn_window_stages-middle+output"
    long = [cell_name(i, 3, {"attn_window_fusion": "x" * 300, "seed": i}) for i in range(2)]
    assert all(len(n) <= 180 for n in long) and long[0] != long[1]


def test_help_names_every_knob_and_toy_svd(sweep_script):
    text = sweep_script.PARSER.format_help()
    assert "toy_svd" in text and "--grid" in text and "--resume" in text
    assert all(f"--{name}" in text for name in ALL_KNOB_NAMES)


# --------------------------------------------------------------------------------------------------
# Bad input: one line, exit status 2, before any model is built or anything is written

BAD = {
    "unknown flag": (["--temporal_attn_scal", "0.5,2"], "unknown option --temporal_attn_scal"),
    "empty list": (["--temporal_attn_scale", "[]"], "empty list"),
    "empty value": (["--seed", "1,,2"], "empty value"),
    "invalid value": (["--temporal_attn_scale", "0.5,0"], "temporal_attn_scale must be a finite number > 0"),
    "fractional window": (["--attn_window_size", "none,2.5"], "attn_window_size must be an integer"),
    "bad fusion": (["--attn_window_size", "4", "--attn_window_fusion", "pyramid,mean"], "attn_window_fusion must be one of"),
    "stride above a cell's window": (["--attn_window_size", "2,4", "--attn_window_stride", "3"],
                                     "cell 0 (attn_window_size=2): attn_window_stride must be <= attn_window_size (2)"),
    "shuffle without window": (["--shuffle_windowed_noise", "true,false"], "shuffle_windowed_noise needs attn_window_size"),
    "fractional seed": (["--seed", "1,2.5"], "seed must be an integer"),
    "negative bucket": (["--motion_bucket_id=-1,10"], "motion_bucket_id must be at least 0"),
    "repeated value": (["--temporal_attn_scale", "1,1.0"], "temporal_attn_scale lists the value 1 twice"),
    "same stage set twice": (["--attn_window_stages", "middle+output,output+middle"], "lists the value middle+output twice"),
    "nothing to sweep": (["--temporal_attn_scale", "2"], "nothing to sweep"),
    "unknown stage": (["--attn_window_stages", "output,middle+sideways"], "attn_window_stages must be a non-empty list"),
    "empty stage set": (["--attn_window_stages", "[[]]"], "attn_window_stages must be a non-empty list"),
    "nested list": (["--temporal_attn_scale", "[[1,2]]"], "each value must be a number, a word or none"),
    "noise correlation 1": (["--noise_correlation", "0,1.0"], "noise_correlation must be a number in [0, 1)"),
    "fixed noise correlation 1": (["--noise_correlation", "1.0", "--seed", "1,2"], "noise_correlation must be a number in [0, 1)"),
    "auto without min": (["--attn_window_size", "4,auto", "--attn_window_max", "4"], "attn_window_size auto needs attn_window_min"),
    "auto min above max": (["--attn_window_size", "auto", "--attn_window_min", "2,5", "--attn_window_max", "4"],
                           "attn_window_min (5) must be <= attn_window_max (4)"),
    "bad size word": (["--attn_window_size", "4,automatic"], "attn_window_size must be an integer >= 1, auto or null"),
    "bad motion source": (["--attn_window_motion", "bucket,flow"], "attn_window_motion must be one of"),
    "bad loop value": (["--attn_window_loop", "maybe,true"], "attn_window_loop must be true or false"),
    "bad gif value": (["--gif", "sometimes", "--seed", "1,2"], "gif must be true or false"),
    "bad num_steps": (["--num_steps", "0", "--seed", "1,2"], "num_steps must be at least 1"),
    "missing config": (["--config", "nowhere.yaml", "--seed", "1,2"], "config file not found"),
    "missing image": (["--input_path", "nowhere.png", "--seed", "1,2"], "input path not found"),
    "a folder without images": (["--input_path", "tests/fixtures/checkpoint_layout", "--seed", "1,2"], "no .png/.jpg/.jpeg images in folder"),
}
BAD_GRID_FILES = {
    "unknown axis": ("temporal_attn_scale: [1, 2]\nwobble: [1]\n", [], "'wobble' in grid file"),
    "not sweepable": ("num_steps: [2, 3]\n", [], "'num_steps' in grid file"),
    "empty list": ("temporal_attn_scale: []\n", [], "empty list"),
    "flag and file": ("temporal_attn_scale: [1, 2]\n", ["--temporal_attn_scale", "0.5,2"], "both as a flag and in the grid file"),
    "not a mapping": ("- 1\n- 2\n", [], "must be a non-empty mapping"),
    "not YAML": ("seed: [1, 2\n", [], "cannot read grid file"),
    "invalid value": ("attn_window_size: [null, 0]\n", [], "attn_window_size must be an integer"),
    "auto without min": ("attn_window_size: [4, auto]\n", ["--attn_window_max", "4"], "attn_window_size auto needs attn_window_min"),
}


def check_refused(result, folder, one_line_error, expected):
    line = one_line_error(result)
    assert expected in line, line
    assert not folder.exists()


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_flags_are_one_line_errors_before_loading(case, tmp_path, sweep_script, run_in_process, tiny_args, paths,
                                                      one_line_error, no_build):
    flags, expected = BAD[case]
    check_refused(run_in_process(sweep_script, *tiny_args(paths.image, tmp_path / "out", *flags)), tmp_path / "out", one_line_error, expected)


@pytest.mark.parametrize("case", sorted(BAD_GRID_FILES))
def test_bad_grid_files_are_one_line_errors_before_loading(case, tmp_path, sweep_script, run_in_process, tiny_args, paths,
                                                           one_line_error, no_build):
    text, flags, expected = BAD_GRID_FILES[case]
    (tmp_path / "grid.yaml").write_text(text)
    args = tiny_args(paths.image, tmp_path / "out", "--grid", tmp_path / "grid.yaml", *flags)
    check_refused(run_in_process(sweep_script, *args), tmp_path / "out", one_line_error, expected)


def test_a_folder_that_is_not_empty_needs_resume(tmp_path, sweep_script, run_in_process, tiny_args, paths, one_line_error, no_build):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine\n")
    line = one_line_error(run_in_process(sweep_script, *tiny_args(paths.image, folder, "--seed", "1,2")))
    assert "is not empty" in line and "--resume" in line
    assert os.listdir(folder) == ["notes.txt"]
    args = ["--input_path", paths.image, "--config", paths.tiny_config, "--device", "cpu", "--seed", "1,2", "--resume"]
    assert "--resume needs the --output_folder" in one_line_error(run_in_process(sweep_script, *args))


def test_bad_grid_in_a_real_process(tmp_path, paths, tiny_args, run_process, one_line_error):
    proc = run_process(paths.sweep_script, *tiny_args(paths.image, tmp_path / "out", "--attn_window_stages", "[sideways]"))
    check_refused(proc, tmp_path / "out", one_line_error, "attn_window_stages must be a non-empty list")
