"""scripts/sampling/sweep.py with a 4D model (tiny SV4D 2.0, CPU, 2 steps, a 3-frame 64x64 GIF): the
cells' files, cells differ, a cell equals the FourDPipeline call and the simple_video_sample_4d2.py
command in its JSON; bad input as one `error:` line, exit status 2, nothing written, no model loaded."""
import json
import shlex
from pathlib import Path

import numpy as np
import pytest

from sgm.inference import VideoPipeline
from sgm.inference.four_d import FourDPipeline, views_uint8

REPO = Path(__file__).resolve().parents[1]
PARITY = REPO / "tests" / "fixtures" / "upstream_parity"
CELLS = ["cell_000_temporal_attn_scale-1", "cell_001_temporal_attn_scale-2"]


def sweep_args(input_path, out, *extra, config="tiny_sv4d2.yaml", weights="sv4d2_weights.safetensors"):
    return ["--config", PARITY / config, "--ckpt_path", PARITY / weights, "--input_path", input_path, "--num_steps", 2,
            "--img_size", 64, "--n_frames", 3, "--device", "cpu", "--output_folder", out, *extra]


def test_sv4d2_sweep_end_to_end(sweep_script, run_in_process, read_video, sample_4d2_script, video_gif, tmp_path):
    out = tmp_path / "out"
    res = run_in_process(sweep_script, *sweep_args(video_gif, out, "--temporal_attn_scale", "1,2"))
    assert res.returncode == 0, res.stderr
    names = {p.name for p in out.iterdir()}
    assert names == {n + s for n in CELLS for s in (".mp4", ".npz", ".json")} | {"sweep.json", "contact_sheet.png"}
    summary = json.loads((out / "sweep.json").read_text())
    assert summary["axes"] == {"temporal_attn_scale": [1.0, 2.0]} and [c["name"] for c in summary["cells"]] == CELLS
    views = [np.load(out / f"{n}.npz")["frames"] for n in CELLS]
    assert views[0].shape == (3, 3, 64, 64, 3) and views[0].dtype == np.uint8
    assert np.abs(views[0].astype(int) - views[1].astype(int)).max() > 0
    grid, _ = read_video(out / f"{CELLS[1]}.mp4")
    assert grid.shape == (3, 64, 64 * 4, 3)
    from PIL import Image

    sheet = np.asarray(Image.open(out / "contact_sheet.png"))
    assert sheet.shape[0] > 2 * 64 and sheet.std() > 0

    record = json.loads((out / f"{CELLS[1]}.json").read_text())
    assert record["cell"]["values"] == {"temporal_attn_scale": 2.0} and record["motion_knobs"]["temporal_attn_scale"] == 2.0
    assert record["version"] == "sv4d2" and record["seed"] == 23 and record["num_steps"] == 2

    # the same cell from the Python API ...
    api = FourDPipeline.from_config(PARITY / "tiny_sv4d2.yaml", PARITY / "sv4d2_weights.safetensors", device="cpu")
    np.testing.assert_array_equal(views_uint8(api(video_gif, temporal_attn_scale=2, num_steps=2, n_frames=3, img_size=64)), views[1])
    # ... and from the 4D script, by the command in the cell's JSON
    argv = shlex.split(record["command"])
    assert argv[:2] == ["python", "scripts/sampling/simple_video_sample_4d2.py"]
    res = run_in_process(sample_4d2_script, *argv[2:])
    assert res.returncode == 0, res.stderr
    frames = np.stack([np.stack([np.asarray(Image.open(out / "reproduce" / "000000_frames" / f"t{t:03d}_v{k}.png"))
                                 for k in range(3)]) for t in range(3)])
    np.testing.assert_array_equal(frames, views[1])


@pytest.fixture
def no_load(monkeypatch):
    def refuse(self, *args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(FourDPipeline, "load", refuse)
    monkeypatch.setattr(VideoPipeline, "load", refuse)


def bad_cases(tmp_path, gif):
    sv4d = ["--config", PARITY / "tiny_sv4d.yaml", "--ckpt_path", PARITY / "sv4d_weights.safetensors"]
    return [
        (["--temporal_attn_scale", "1,2", "--devices", 2], "4D sweeps run in one process"),
        (["--temporal_attn_scale", "1,2", "--accelerator", "cpu"], "4D sweeps run in one process"),
        (["--temporal_attn_scale", "1,2", "--resume"], "--resume is not available for 4D sweeps"),
        (["--temporal_attn_scale", "1,2", "--collect_only"], "--collect_only is not available for 4D sweeps"),
        (["--fps_id", "6,8"], "cannot be swept with a 4D model"),
        (["--noise_correlation", "0,0.5"], "cannot be swept with a 4D model"),
        (["--attn_window_size", "2,auto"], "attn_window_size auto"),
        (["--temporal_attn_scale", "1,-1"], "temporal_attn_scale"),
        (["--view_attn_scale", "1,1"], "twice"),
        (["--temporal_attn_scale", "2"], "nothing to sweep"),
        (["--seed", "1,2", "--input_path", tmp_path / "missing.gif"], "not found"),
        (["--seed", "1,2", "--img_size", 100], "multiple of 64"),
        (["--seed", "1,2", "--azimuths_deg", "[0,1]"], "azimuths_deg needs 4"),
        (["--seed", "1,2", "--sv3d_config", PARITY / "tiny_svd.yaml"], "has none"),
        (["--seed", "1,2", "--version", "sv4d"], "does not match"),
        (["--seed", "1,2", *sv4d], "checkpoint not found"),  # SV4D without its reference stage's checkpoint
    ]


def test_bad_input_is_one_line_before_anything(sweep_script, run_in_process, one_line_error, no_load, video_gif, tmp_path):
    out = tmp_path / "out"
    for extra, expected in bad_cases(tmp_path, video_gif):
        line = one_line_error(run_in_process(sweep_script, *sweep_args(video_gif, out), *extra))
        assert expected in line, (extra, line)
        assert not out.exists(), extra
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    line = one_line_error(run_in_process(sweep_script, *sweep_args(video_gif, out), "--seed", "1,2"))
    assert "not empty" in line and [p.name for p in out.iterdir()] == ["keep.txt"] and (out / "keep.txt").read_text() == "mine"
    # 4D-only flags on an SVD sweep
    svd = ["--config", PARITY / "tiny_svd.yaml", "--ckpt_path", PARITY / "weights.safetensors", "--input_path",
           REPO / "tests" / "fixtures" / "image_64.png", "--seed", "1,2", "--output_folder", tmp_path / "svd", "--n_frames", 3]
    assert "applies to 4D sweeps only" in one_line_error(run_in_process(sweep_script, *svd))
    assert not (tmp_path / "svd").exists()
