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


@pytest.mark.parametrize("cell", [2, 3])
def test_a_cell_equals_the_same_simple_video_sample_run(swept, cell, tmp_path):
    record = json.loads((swept / (CELLS[cell] + ".json")).read_text())
    args = shlex.split(record["command"])
    assert args[1] == "scripts/sampling/simple_video_sample.py"
    args = args[2:]
    args[args.index("--output_folder") + 1] = str(tmp_path)
    assert svs.main(args) == 0
    single = json.loads((tmp_path / "000000.json").read_text())
    assert single["motion_knobs"] == record["motion_knobs"]
    assert np.array_equal(read_video(tmp_path / "000000.mp4"), read_video(swept / (CELLS[cell] + ".mp4")))


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
}


@pytest.mark.parametrize("case", sorted(BAD_YAML))
def test_bad_grid_files_are_one_line_errors_before_loading(case, tmp_path, no_model, capsys):
    text, flags, expected = BAD_YAML[case]
    (tmp_path / "grid.yaml").write_text(text)
    assert sweep.main(tiny_args(tmp_path / "out", "--grid", tmp_path / "grid.yaml", *flags)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and expected in err[0], err


def test_bad_grid_from_the_command_line(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO) + (os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else ""))
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *tiny_args(tmp_path / "out", "--attn_window_size", "none,0")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "attn_window_size" in lines[0], proc.stderr
    assert not (tmp_path / "out").exists()
