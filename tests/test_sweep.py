"""scripts/sampling/sweep.py: a knob grid on one loaded model, its outputs, resume, and bad grids.

Everything runs on the CPU with the tiny model of tests/fixtures/upstream_parity, in-process
(sweep.main) except one subprocess check of the one-line error.
"""
import csv
import importlib.util
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "sampling" / "sweep.py"
FIXTURES = REPO / "tests" / "fixtures"
TINY_CONFIG = FIXTURES / "upstream_parity" / "tiny_svd.yaml"
TINY_WEIGHTS = FIXTURES / "upstream_parity" / "weights.safetensors"
IMAGE = FIXTURES / "image_64.png"


def _load_sweep_module():
    spec = importlib.util.spec_from_file_location("sweep_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sweep = _load_sweep_module()
svs = sweep.svs  # the simple_video_sample module the sweep uses

AXES = ["--temporal_attn_scale", "0.5,2", "--attn_window_size", "none,4"]
CELLS = [
    "cell_000_temporal_attn_scale-0.5_attn_window_size-none",
    "cell_001_temporal_attn_scale-0.5_attn_window_size-4",
    "cell_002_temporal_attn_scale-2_attn_window_size-none",
    "cell_003_temporal_attn_scale-2_attn_window_size-4",
]


def tiny_args(output_folder, *extra, num_frames=5):
    args = ["--input_path", IMAGE, "--config", TINY_CONFIG, "--ckpt_path", TINY_WEIGHTS, "--num_steps", 3,
            "--device", "cpu", "--output_folder", output_folder, *extra]
    if num_frames is not None:
        args += ["--num_frames", num_frames]
    return [str(a) for a in args]


def read_video(path):
    import imageio

    reader = imageio.get_reader(str(path), format="FFMPEG")
    try:
        return np.stack([frame for frame in reader])
    finally:
        reader.close()


def mtimes(folder, names):
    return {n: os.stat(folder / n).st_mtime_ns for n in names}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The tiny model is fastest on one thread (and does not fight other jobs for cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "2x2"
    assert sweep.main(tiny_args(out, *AXES)) == 0
    return out


@pytest.fixture
def no_model(monkeypatch):
    """Fail loudly if the sweep builds a model or samples."""

    def refuse(*args, **kwargs):
        raise AssertionError("the model must not be loaded / sampled here")

    monkeypatch.setattr(svs, "load_model", refuse)
    monkeypatch.setattr(svs, "sample_video", refuse)


# --------------------------------------------------------------------------------------------------
# A 2x2 sweep


def test_two_by_two_sweep_writes_cells_grid_sheet_csv_and_plots(swept):
    names = {p.name for p in swept.iterdir()}
    for cell in CELLS:
        assert {cell + ".mp4", cell + ".json", cell + ".npz"} <= names
        assert read_video(swept / (cell + ".mp4")).shape == (5, 64, 64, 3)
    assert {"grid.mp4", "contact_sheet.png", "metrics.csv", "sweep.json", "conditioning.png"} <= names
    assert not [n for n in names if n.startswith(".partial")]
    plots = sorted(n for n in names if n.startswith("plot_"))
    # attn_window_size has a single number (4) besides none: no plot against it
    assert plots == [f"plot_temporal_attn_scale_{m}.png" for m in sorted(sweep.METRICS)]
    for plot in plots:
        assert Image.open(swept / plot).size[0] > 100

    with open(swept / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["cell"] for r in rows] == CELLS
    assert [(r["temporal_attn_scale"], r["attn_window_size"]) for r in rows] == [("0.5", "none"), ("0.5", "4"), ("2", "none"), ("2", "4")]
    for row in rows:
        for metric in sweep.METRICS:
            assert np.isfinite(float(row[metric])), (row, metric)

    records = [json.loads((swept / (c + ".json")).read_text()) for c in CELLS]
    for record, (s, w) in zip(records, [(0.5, None), (0.5, 4), (2.0, None), (2.0, 4)]):
        assert record["cell"]["values"] == {"temporal_attn_scale": s, "attn_window_size": w}
        assert record["motion_knobs"]["temporal_attn_scale"] == s and record["motion_knobs"]["attn_window_size"] == w
        assert record["seed"] == 23 and record["num_frames"] == 5 and record["video_fps"] == 7
        assert set(record["metrics"]) == set(sweep.METRICS)
        assert record["config"]["model"]["params"]["network_config"]["params"]["temporal_attn_scale"] == s
    # the knobs change the video (the same seed gives every cell the same noise: differences are the knobs')
    frames = [np.load(swept / (c + ".npz"))["frames"] for c in CELLS]
    assert all(np.abs(f.astype(int) - frames[0].astype(int)).max() > 0 for f in frames[1:])


def test_grid_video_frames_are_the_labelled_tiled_cells(swept):
    videos = [np.load(swept / (c + ".npz"))["frames"] for c in CELLS]
    labels = [[f"temporal_attn_scale={s}", f"attn_window_size={w}"] for s, w in [("0.5", "none"), ("0.5", "4"), ("2", "none"), ("2", "4")]]
    grid = sweep.build_grid(videos, labels)
    decoded = read_video(swept / "grid.mp4")
    assert decoded.shape == (grid.num_frames, *grid.background.shape) and len(decoded) == 5
    assert len({(y, x) for y, x, _, _ in grid.boxes}) == 4
    rows, cols = {y for y, *_ in grid.boxes}, {x for _, x, *_ in grid.boxes}
    assert len(rows) == 2 and len(cols) == 2  # near-square: 2 x 2
    for t in range(5):
        frame = grid.frame(t)
        assert np.abs(decoded[t].astype(int) - frame.astype(int)).mean() < 6
        for i, (y, x, h, w) in enumerate(grid.boxes):
            assert (h, w) == (64, 64)
            assert np.array_equal(frame[y : y + h, x : x + w], videos[i][t])  # before encoding: exact
            cell_mp4 = read_video(swept / (CELLS[i] + ".mp4"))[t].astype(int)
            assert np.abs(decoded[t, y : y + h, x : x + w].astype(int) - cell_mp4).mean() < 10
            band = frame[y - 12 : y, x : x + w]  # the label drawn above the tile
            assert (band > 200).any(), "no label text above the tile"

    sheet = np.asarray(Image.open(swept / "contact_sheet.png").convert("RGB"))
    expected = np.asarray(sweep.contact_sheet(videos, [[f"#{i}", *lab] for i, lab in enumerate(labels)]))
    assert np.array_equal(sheet, expected)
    assert sheet.shape[0] >= 4 * 64 and sheet.shape[1] >= 5 * 64  # rows = cells, columns = the 5 frames


def check_cell_equals_sample_script(folder, cell, tmp_path):
    """Re-run the cell's recorded simple_video_sample.py command: same knobs, schedule and frames."""
    record = json.loads((folder / (cell + ".json")).read_text())
    args = shlex.split(record["command"])
    assert args[1] == "scripts/sampling/simple_video_sample.py"
    args = args[2:]
    args[args.index("--output_folder") + 1] = str(tmp_path)
    assert svs.main(args) == 0
    single = json.loads((tmp_path / "000000.json").read_text())
    assert single["motion_knobs"] == record["motion_knobs"]
    assert single["attn_window_schedule"] == record["attn_window_schedule"]
    assert np.array_equal(read_video(tmp_path / "000000.mp4"), read_video(folder / (cell + ".mp4")))
    if record["gif"] is not None:
        assert single["gif"] == "000000.gif"
        assert (tmp_path / "000000.gif").read_bytes() == (folder / record["gif"]).read_bytes()
    return record


@pytest.mark.parametrize("cell", [2, 3])
def test_a_cell_equals_the_same_simple_video_sample_run(swept, cell, tmp_path):
    check_cell_equals_sample_script(swept, CELLS[cell], tmp_path)


def test_resume_reruns_nothing_when_every_cell_exists(swept, no_model, capsys):
    files = [c + s for c in CELLS for s in (".mp4", ".json", ".npz")]
    before = mtimes(swept, files)
    csv_before = (swept / "metrics.csv").read_text()
    (swept / "grid.mp4").unlink()
    code = sweep.main(tiny_args(swept, *AXES, "--resume"))
    assert code == 0, capsys.readouterr().err
    assert "4 cells (0 sampled now)" in capsys.readouterr().out
    assert mtimes(swept, files) == before
    assert (swept / "metrics.csv").read_text() == csv_before
    assert len(read_video(swept / "grid.mp4")) == 5
    # without --resume the folder is refused, before any model is built
    assert sweep.main(tiny_args(swept, *AXES)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--resume" in err[0]
    assert mtimes(swept, files) == before


def test_interrupted_yaml_sweep_keeps_finished_cells_and_resumes(tmp_path, monkeypatch, capsys):
    grid_file = tmp_path / "sweep.yaml"
    grid_file.write_text("num_frames: [3, 5]\nseed: [7]\n")
    out = tmp_path / "out"
    args = tiny_args(out, "--grid", grid_file, num_frames=None)
    names = ["cell_000_num_frames-3_seed-7", "cell_001_num_frames-5_seed-7"]
    real = svs.sample_video
    calls = []

    def interrupt_second(*a, **kw):
        calls.append(kw["num_frames"])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **kw)

    monkeypatch.setattr(svs, "sample_video", interrupt_second)
    assert sweep.main(args) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == "error: interrupted"
    present = {p.name for p in out.iterdir()}
    assert {names[0] + s for s in (".mp4", ".json", ".npz")} <= present
    assert not [n for n in present if n.startswith(names[1]) or n.startswith(".partial")]
    assert "grid.mp4" not in present
    first = mtimes(out, [names[0] + ".mp4", names[0] + ".json"])

    calls.clear()
    monkeypatch.setattr(svs, "sample_video", lambda *a, **kw: (calls.append(kw["num_frames"]), real(*a, **kw))[1])
    code = sweep.main(args + ["--resume"])
    assert code == 0, capsys.readouterr().err
    assert calls == [5]  # only the unfinished cell
    assert mtimes(out, [names[0] + ".mp4", names[0] + ".json"]) == first
    short, long = (np.load(out / (n + ".npz"))["frames"] for n in names)
    assert short.shape[0] == 3 and long.shape[0] == 5
    assert json.loads((out / (names[0] + ".json")).read_text())["cell"]["values"] == {"num_frames": 3, "seed": 7}
    # frame-synchronised grid: the 3-frame cell holds its last frame
    grid = sweep.build_grid([short, long], [["num_frames=3", "seed=7"], ["num_frames=5", "seed=7"]])
    y, x, h, w = grid.boxes[0]
    assert np.array_equal(grid.frame(4)[y : y + h, x : x + w], short[2])
    assert len(read_video(out / "grid.mp4")) == 5
    with open(out / "metrics.csv", newline="") as handle:
        assert [(r["num_frames"], r["seed"]) for r in csv.DictReader(handle)] == [("3", "7"), ("5", "7")]
    assert (out / "plot_num_frames_frame_diff.png").exists() and not (out / "plot_seed_frame_diff.png").exists()


# --------------------------------------------------------------------------------------------------
# The issue-6 knobs: stage sets, correlated noise, circular windows, auto windows, GIFs

STAGE_AXES = ["--attn_window_size", "2", "--attn_window_loop", "--attn_window_stages", "output,middle+output,all",
              "--noise_correlation", "0,0.5", "--gif"]
STAGE_CELLS = [
    "cell_000_attn_window_stages-output_noise_correlation-0",
    "cell_001_attn_window_stages-output_noise_correlation-0.5",
    "cell_002_attn_window_stages-middle+output_noise_correlation-0",
    "cell_003_attn_window_stages-middle+output_noise_correlation-0.5",
    "cell_004_attn_window_stages-all_noise_correlation-0",
    "cell_005_attn_window_stages-all_noise_correlation-0.5",
]
AUTO_AXES = ["--attn_window_size", "[4,auto]", "--attn_window_min", "2", "--attn_window_max", "4",
             "--attn_window_motion", "bucket,latent", "--shuffle_windowed_noise"]
AUTO_CELLS = [
    "cell_000_attn_window_size-4_attn_window_motion-bucket",
    "cell_001_attn_window_size-4_attn_window_motion-latent",
    "cell_002_attn_window_size-auto_attn_window_motion-bucket",
    "cell_003_attn_window_size-auto_attn_window_motion-latent",
]


@pytest.fixture(scope="module")
def stages_swept(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "stages"
    assert sweep.main(tiny_args(out, *STAGE_AXES)) == 0
    return out


@pytest.fixture(scope="module")
def auto_swept(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "auto"
    assert sweep.main(tiny_args(out, *AUTO_AXES)) == 0
    return out


def test_every_knob_is_a_flag():
    params = set(sweep._SWEEP_PARAMS)
    assert set(sweep.KNOB_NAMES) <= params and "gif" in params
    assert {"attn_window_loop", "shuffle_windowed_noise", "gif"} <= sweep._BOOL_PARAMS
    assert set(sweep.SWEEPABLE) == {*sweep.KNOB_NAMES, "shuffle_windowed_noise", *sweep.SAMPLE_PARAMS}


def test_stage_sets_times_noise_correlation(stages_swept):
    names = {p.name for p in stages_swept.iterdir()}
    for cell in STAGE_CELLS:
        assert {cell + s for s in (".mp4", ".json", ".npz", ".gif")} <= names
        with Image.open(stages_swept / (cell + ".gif")) as gif:
            assert gif.n_frames == 5 and gif.info.get("loop") == 0  # loops endlessly
    assert sorted(n for n in names if n.startswith("plot_")) == [f"plot_noise_correlation_{m}.png" for m in sorted(sweep.METRICS)]
    with open(stages_swept / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    stage_labels = ["output", "output", "middle+output", "middle+output", "all", "all"]
    assert [r["cell"] for r in rows] == STAGE_CELLS
    assert [(r["attn_window_stages"], r["noise_correlation"]) for r in rows] == list(zip(stage_labels, ["0", "0.5"] * 3))

    stage_values = [["output"], ["output"], ["middle", "output"], ["middle", "output"], None, None]
    for name, stages, rho in zip(STAGE_CELLS, stage_values, [0.0, 0.5] * 3):
        record = json.loads((stages_swept / (name + ".json")).read_text())
        assert record["cell"]["values"] == {"attn_window_stages": stages, "noise_correlation": rho}
        knobs = record["motion_knobs"]
        assert (knobs["attn_window_stages"], knobs["noise_correlation"]) == (stages, rho)
        assert (knobs["attn_window_size"], knobs["attn_window_loop"]) == (2, True)
        assert record["attn_window_schedule"] is None  # no auto window
        assert record["gif"] == name + ".gif"
        assert record["config"]["model"]["params"]["network_config"]["params"]["attn_window_stages"] == stages
    summary = json.loads((stages_swept / "sweep.json").read_text())
    assert summary["axes"] == {"attn_window_stages": [["output"], ["middle", "output"], None], "noise_correlation": [0.0, 0.5]}
    command = shlex.split(summary["command"])
    assert command[command.index("--attn_window_stages") + 1] == "output,middle+output,all"
    assert command[command.index("--attn_window_loop") + 1] == "True"

    labels = [c for c in sweep.make_cells({"attn_window_stages": [("middle", "output"), None]}, {
        "num_frames": 5, "fps_id": 6, "motion_bucket_id": 127, "cond_aug": 0.02, "seed": 23, "shuffle_windowed_noise": False,
    }, sweep.MotionKnobs(), {})]
    assert [c.label_lines() for c in labels] == [["attn_window_stages=middle+output"], ["attn_window_stages=all"]]
    # every knob leaves its mark: the stage set (at rho 0 and at rho 0.5) and rho change the video
    frames = [np.load(stages_swept / (c + ".npz"))["frames"].astype(int) for c in STAGE_CELLS]
    for i, j in [(0, 2), (0, 4), (1, 3), (1, 5), (0, 1), (4, 5)]:
        assert np.abs(frames[i] - frames[j]).max() > 0, (STAGE_CELLS[i], STAGE_CELLS[j])


@pytest.mark.parametrize("cell", [3, 5])
def test_a_stage_loop_noise_cell_equals_the_same_simple_video_sample_run(stages_swept, cell, tmp_path):
    record = check_cell_equals_sample_script(stages_swept, STAGE_CELLS[cell], tmp_path)
    args = shlex.split(record["command"])
    assert args[args.index("--attn_window_loop") + 1] == "True" and "--gif" in args
    assert args[args.index("--attn_window_stages") + 1] == ('["middle", "output"]' if cell == 3 else "none")


def test_a_null_cell_overrides_the_config_knob_in_its_command(tmp_path):
    """A config with windows in the output stage only: the `all` cell's command must say so (`none`)."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(TINY_CONFIG)
    cfg.model.params.network_config.params.attn_window_size = 2
    cfg.model.params.network_config.params.attn_window_stages = ["output"]
    config = tmp_path / "windows_output.yaml"
    OmegaConf.save(cfg, config)
    out = tmp_path / "out"
    args = tiny_args(out, "--attn_window_stages", "all,input+middle", "--num_steps", 2, num_frames=4)
    args[args.index("--config") + 1] = str(config)
    assert sweep.main(args) == 0
    name = "cell_000_attn_window_stages-all"
    record = check_cell_equals_sample_script(out, name, tmp_path / "single")
    assert record["motion_knobs"]["attn_window_stages"] is None and record["motion_knobs"]["attn_window_size"] == 2
    command = shlex.split(record["command"])
    assert command[command.index("--attn_window_stages") + 1] == "none"


def test_auto_window_axis_with_fixed_min_and_max(auto_swept):
    records = [json.loads((auto_swept / (c + ".json")).read_text()) for c in AUTO_CELLS]
    assert [r["cell"]["values"] for r in records] == [
        {"attn_window_size": w, "attn_window_motion": m} for w in (4, "auto") for m in ("bucket", "latent")
    ]
    assert records[0]["attn_window_schedule"] is None and records[1]["attn_window_schedule"] is None
    bucket, latent = records[2]["attn_window_schedule"], records[3]["attn_window_schedule"]
    assert [s["step"] for s in bucket] == [0, 1, 2] and [s["step"] for s in latent] == [0, 1, 2]
    # the bucket score is motion_bucket_id / 255 at every step: round(4 - (127 / 255) * (4 - 2)) = 3
    assert {(s["source"], s["motion_score"], s["window_size"]) for s in bucket} == {("bucket", 127 / 255, 3)}
    # the latent source starts from the bucket and follows each step's denoised estimate
    assert latent[0]["source"] == "bucket" and [s["source"] for s in latent[1:]] == ["latent", "latent"]
    assert all(0 <= s["motion_score"] <= 1 and 2 <= s["window_size"] <= 4 for s in latent)
    for record in records:
        assert record["shuffle_windowed_noise"] is True
        assert (record["motion_knobs"]["attn_window_min"], record["motion_knobs"]["attn_window_max"]) == (2, 4)
    with open(auto_swept / "metrics.csv", newline="") as handle:
        assert [r["attn_window_size"] for r in csv.DictReader(handle)] == ["4", "4", "auto", "auto"]
    assert not [p for p in auto_swept.iterdir() if p.name.startswith("plot_")]  # no numeric axis
    # a fixed window ignores the motion source; the auto window does not
    frames = [np.load(auto_swept / (c + ".npz"))["frames"] for c in AUTO_CELLS]
    assert np.array_equal(frames[0], frames[1]) and not np.array_equal(frames[0], frames[2])


@pytest.mark.parametrize("cell", [2, 3])
def test_an_auto_window_cell_equals_the_same_simple_video_sample_run(auto_swept, cell, tmp_path):
    record = check_cell_equals_sample_script(auto_swept, AUTO_CELLS[cell], tmp_path)
    assert record["attn_window_schedule"] is not None


def test_fixed_auto_window_may_take_its_minimum_from_an_axis(tmp_path):
    # the fixed flags alone (auto, max 4, no min) are no valid set of knobs; every cell is
    out = tmp_path / "out"
    assert sweep.main(tiny_args(out, "--attn_window_size", "auto", "--attn_window_max", "4", "--attn_window_min", "2,4",
                                "--num_steps", "2", num_frames=4)) == 0
    records = [json.loads(p.read_text()) for p in sorted(out.glob("cell_*.json"))]
    assert [r["cell"]["values"] for r in records] == [{"attn_window_min": 2}, {"attn_window_min": 4}]
    assert [{s["window_size"] for s in r["attn_window_schedule"]} for r in records] == [{3}, {4}]
    summary = json.loads((out / "sweep.json").read_text())
    assert summary["base"]["motion_knobs"] is None and summary["base"]["model_built_with"]["attn_window_min"] == 2


def test_resume_matches_stage_sets_written_in_another_form(stages_swept, no_model, capsys):
    files = [c + s for c in STAGE_CELLS for s in (".mp4", ".npz")]
    before = mtimes(stages_swept, files)
    gif = stages_swept / (STAGE_CELLS[2] + ".gif")
    gif_bytes = gif.read_bytes()
    gif.unlink()
    axes = list(STAGE_AXES)
    axes[axes.index("output,middle+output,all")] = "[[output],[output,middle],null]"
    code = sweep.main(tiny_args(stages_swept, *axes, "--resume"))
    assert code == 0, capsys.readouterr().err
    assert "6 cells (0 sampled now)" in capsys.readouterr().out
    assert mtimes(stages_swept, files) == before
    assert gif.read_bytes() == gif_bytes  # rebuilt from the saved frames
    assert json.loads((stages_swept / (STAGE_CELLS[2] + ".json")).read_text())["gif"] == gif.name
    # a finished cell made with other knobs (here a fixed one) is refused, not reused
    axes[axes.index("--attn_window_loop")] = "--noattn_window_loop"
    assert sweep.main(tiny_args(stages_swept, *axes, "--resume")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot resume" in err[0] and "motion_knobs" in err[0], err


# --------------------------------------------------------------------------------------------------
# Axis values and bad grids


def test_axis_values_from_flags_and_yaml():
    assert sweep.split_values("a", (0.5, 1, 2)) == [0.5, 1, 2]
    assert sweep.split_values("a", ("none", 16)) == [None, 16]
    assert sweep.split_values("a", "None, 16") == [None, 16]
    assert sweep.split_values("a", "0.5,") == [0.5]
    assert sweep.check_axis("attn_window_fusion", "pyramid,flat") == ["pyramid", "flat"]
    assert sweep.check_axis("temporal_attn_scale", (1, 2)) == [1.0, 2.0]
    assert sweep.check_axis("shuffle_windowed_noise", "true,False") == [True, False]
    assert sweep.cell_name(3, 3, {"temporal_attn_scale": 2.0, "attn_window_size": None}) == "cell_003_temporal_attn_scale-2_attn_window_size-none"


def test_stage_bool_and_auto_axis_values():
    stage_sets = [("output",), ("middle", "output"), None]
    assert sweep.check_axis("attn_window_stages", "output, middle+output, all") == stage_sets
    assert sweep.check_axis("attn_window_stages", [["output"], ["output", "middle"], None]) == stage_sets
    assert sweep.check_axis("attn_window_stages", "[output, output+middle, null]") == stage_sets
    assert sweep.check_axis("temporal_attn_scale_stages", "input,") == [("input",)]
    assert sweep.check_value("attn_window_stages", sweep.parse_value("attn_window_stages", "output+input")) == ("input", "output")
    assert [sweep.fmt(v, "attn_window_stages") for v in stage_sets] == ["output", "middle+output", "all"]
    assert sweep.fmt(None, "attn_window_size") == "none"
    assert sweep.cell_name(1, 3, {"attn_window_stages": ("middle", "output"), "temporal_attn_scale_stages": None}) == \
        "cell_001_attn_window_stages-middle+output_temporal_attn_scale_stages-all"
    assert sweep.check_axis("attn_window_size", "8,auto,none") == [8, "auto", None]
    assert sweep.check_axis("attn_window_loop", ("false", "true")) == [False, True]
    assert sweep.check_axis("attn_window_motion", "bucket,latent") == ["bucket", "latent"]
    assert sweep.check_axis("noise_correlation", "0,0.2,0.5") == [0.0, 0.2, 0.5]
    assert sweep.check_axis("attn_window_min", "2,4") == [2, 4]


def test_stage_sets_in_a_grid_file(tmp_path):
    (tmp_path / "grid.yaml").write_text(
        "attn_window_stages: [[output], [middle, output], null]\n"
        "temporal_attn_scale_stages: [input+middle, all]\n"
        "attn_window_size: [4, auto]\n"
        "attn_window_loop: [false, true]\n"
    )
    entries = sweep.load_grid_file(tmp_path / "grid.yaml")
    assert sweep.check_axis("attn_window_stages", entries["attn_window_stages"]) == [("output",), ("middle", "output"), None]
    assert sweep.check_axis("temporal_attn_scale_stages", entries["temporal_attn_scale_stages"]) == [("input", "middle"), None]
    assert sweep.check_axis("attn_window_size", entries["attn_window_size"]) == [4, "auto"]
    assert sweep.check_axis("attn_window_loop", entries["attn_window_loop"]) == [False, True]


CLI_FORMS = {
    "stages, + and commas": (["--attn_window_stages", "output,middle+output,all"], "attn_window_stages", [["output"], ["middle", "output"], None]),
    "stages, list of lists": (["--attn_window_stages", "[[output],[middle,output],null]"], "attn_window_stages", [["output"], ["middle", "output"], None]),
    "stages, one-value axis": (["--temporal_attn_scale_stages", "middle+output,"], "temporal_attn_scale_stages", [["middle", "output"]]),
    "loop, commas": (["--attn_window_loop", "false,true"], "attn_window_loop", [False, True]),
    "loop, list": (["--attn_window_loop", "[False,True]"], "attn_window_loop", [False, True]),
    "auto among sizes": (["--attn_window_size", "[2,auto]", "--attn_window_min", "2", "--attn_window_max", "4"], "attn_window_size", [2, "auto"]),
    "motion source": (["--attn_window_size", "auto", "--attn_window_min", "2", "--attn_window_max", "4", "--attn_window_motion", "bucket,latent"],
                      "attn_window_motion", ["bucket", "latent"]),
}


@pytest.mark.parametrize("case", sorted(CLI_FORMS))
def test_command_line_forms_of_the_new_axes(case, tmp_path, no_model):
    """Fire's parsing of each form gives the intended cells (read from sweep.json, written before the model loads)."""
    flags, axis, values = CLI_FORMS[case]
    out = tmp_path / "out"
    with pytest.raises(AssertionError, match="must not be loaded"):
        sweep.main(tiny_args(out, "--attn_window_size", "2", *flags) if "--attn_window_size" not in flags else tiny_args(out, *flags))
    summary = json.loads((out / "sweep.json").read_text())
    assert summary["axes"] == {axis: values}
    assert [c["values"] for c in summary["cells"]] == [{axis: v} for v in values]


@pytest.mark.parametrize("flag, loop", [("--attn_window_loop", True), ("--noattn_window_loop", False)])
def test_attn_window_loop_alone_is_a_fixed_setting(flag, loop, tmp_path, no_model):
    out = tmp_path / "out"
    with pytest.raises(AssertionError, match="must not be loaded"):
        sweep.main(tiny_args(out, "--attn_window_size", "2", flag, "--noise_correlation", "0.2,0.5"))
    summary = json.loads((out / "sweep.json").read_text())
    assert summary["base"]["motion_knobs"]["attn_window_loop"] is loop and summary["base"]["network_overrides"]["attn_window_loop"] is loop
    assert list(summary["axes"]) == ["noise_correlation"]


BAD_GRIDS = {
    "unknown knob": (["--temporal_attn_scal", "0.5,2"], "unknown option --temporal_attn_scal"),
    "empty list": (["--temporal_attn_scale", "[]"], "empty list"),
    "invalid value": (["--temporal_attn_scale", "0.5,0"], "temporal_attn_scale"),
    "fractional window": (["--attn_window_size", "none,2.5"], "attn_window_size"),
    "bad fusion": (["--attn_window_size", "4", "--attn_window_fusion", "pyramid,mean"], "attn_window_fusion"),
    "stride above window": (["--attn_window_size", "2,4", "--attn_window_stride", "3"], "attn_window_stride"),
    "shuffle without window": (["--shuffle_windowed_noise", "True,False"], "needs attn_window_size"),
    "fractional seed": (["--seed", "1,2.5"], "seed must be an integer"),
    "negative bucket": (["--motion_bucket_id", "-1,10"], "motion_bucket_id"),
    "repeated value": (["--temporal_attn_scale", "1,1.0"], "twice"),
    "nothing to sweep": (["--temporal_attn_scale", "2"], "nothing to sweep"),
    "unknown stage": (["--attn_window_stages", "[sideways]"], "attn_window_stages must be a non-empty list of input, middle, output"),
    "unknown stage in a set": (["--temporal_attn_scale_stages", "output,middle+sideways"], "temporal_attn_scale_stages"),
    "empty stage set": (["--attn_window_stages", "[[]]"], "attn_window_stages must be a non-empty list"),
    "same stage set twice": (["--attn_window_stages", "middle+output,output+middle"], "lists the value middle+output twice"),
    "nested list": (["--temporal_attn_scale", "[[1,2]]"], "each value must be a number"),
    "noise correlation 1": (["--noise_correlation", "0,1.0"], "noise_correlation must be a number in [0, 1)"),
    "fixed noise correlation 1": (["--noise_correlation", "1.0", "--seed", "1,2"], "noise_correlation must be a number in [0, 1)"),
    "auto without min": (["--attn_window_size", "4,auto", "--attn_window_max", "4"], "attn_window_size auto needs attn_window_min"),
    "fixed auto without min": (["--attn_window_size", "auto", "--attn_window_max", "4", "--seed", "1,2"], "attn_window_size auto needs attn_window_min"),
    "auto min above max": (["--attn_window_size", "auto", "--attn_window_min", "2,5", "--attn_window_max", "4"], "attn_window_min (5) must be <= attn_window_max (4)"),
    "bad size word": (["--attn_window_size", "4,automatic"], "attn_window_size must be an integer >= 1, auto or null"),
    "bad motion source": (["--attn_window_size", "auto", "--attn_window_min", "2", "--attn_window_max", "4", "--attn_window_motion", "bucket,flow"], "attn_window_motion"),
    "bad loop value": (["--attn_window_size", "4", "--attn_window_loop", "maybe,true"], "attn_window_loop must be true or false"),
    "bad gif value": (["--gif", "sometimes", "--seed", "1,2"], "gif must be True or False"),
}


@pytest.mark.parametrize("case", sorted(BAD_GRIDS))
def test_bad_grid_flags_are_one_line_errors_before_loading(case, tmp_path, no_model, capsys):
    flags, expected = BAD_GRIDS[case]
    assert sweep.main(tiny_args(tmp_path / "out", *flags)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and expected in err[0], err
    assert not (tmp_path / "out").exists()


BAD_YAML = {
    "unknown axis": ("temporal_attn_scale: [1, 2]\nwobble: [1]\n", [], "'wobble' in grid file"),
    "not sweepable": ("num_steps: [2, 3]\n", [], "cannot be swept"),
    "empty list": ("temporal_attn_scale: []\n", [], "empty list"),
    "flag and yaml": ("temporal_attn_scale: [1, 2]\n", ["--temporal_attn_scale", "0.5,2"], "both as a flag and in the grid file"),
    "not a mapping": ("- 1\n- 2\n", [], "mapping"),
    "invalid value": ("attn_window_size: [null, 0]\n", [], "attn_window_size"),
    "unknown stage": ("attn_window_stages: [[output], [sideways]]\n", [], "attn_window_stages"),
    "noise correlation 1": ("noise_correlation: [0, 1]\n", [], "noise_correlation"),
    "auto without min": ("attn_window_size: [4, auto]\n", ["--attn_window_max", "4"], "attn_window_size auto needs attn_window_min"),
}


@pytest.mark.parametrize("case", sorted(BAD_YAML))
def test_bad_grid_files_are_one_line_errors_before_loading(case, tmp_path, no_model, capsys):
    text, flags, expected = BAD_YAML[case]
    (tmp_path / "grid.yaml").write_text(text)
    assert sweep.main(tiny_args(tmp_path / "out", "--grid", tmp_path / "grid.yaml", *flags)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and expected in err[0], err


@pytest.mark.parametrize("flags, expected", [
    (["--attn_window_size", "none,0"], "attn_window_size"),
    (["--attn_window_stages", "[sideways]"], "attn_window_stages"),
])
def test_bad_grid_from_the_command_line(flags, expected, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO) + (os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else ""))
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *tiny_args(tmp_path / "out", *flags)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], proc.stderr
    assert not (tmp_path / "out").exists()
