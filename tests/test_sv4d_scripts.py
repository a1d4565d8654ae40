"""The 4D sampling scripts end to end on the tiny SV4D / SV4D 2.0 models (CPU, 2 steps, a 3-frame
64x64 GIF): outputs and their counts, the JSON record, same seed -> same frames, a knob changes
them; and bad input as one `error:` line with exit status 2 and nothing written."""
import json
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
PARITY = REPO / "tests" / "fixtures" / "upstream_parity"
SCRIPT_4D = REPO / "scripts" / "sampling" / "simple_video_sample_4d.py"
SCRIPT_4D2 = REPO / "scripts" / "sampling" / "simple_video_sample_4d2.py"


@pytest.fixture(scope="module")
def script_4d(sample_4d_script):
    return sample_4d_script


@pytest.fixture(scope="module")
def script_4d2(sample_4d2_script):
    return sample_4d2_script


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def gif(video_gif):
    return video_gif


def args_4d2(input_path, out, *extra, config="tiny_sv4d2.yaml"):
    return ["--input_path", input_path, "--config", PARITY / config, "--model_path", PARITY / "sv4d2_weights.safetensors",
            "--num_steps", 2, "--img_size", 64, "--n_frames", 3, "--device", "cpu", "--output_folder", out, *extra]


def args_4d(input_path, out, *extra):
    return ["--input_path", input_path, "--config", PARITY / "tiny_sv4d.yaml", "--ckpt_path", PARITY / "sv4d_weights.safetensors",
            "--sv3d_config", PARITY / "tiny_svd.yaml", "--sv3d_ckpt_path", PARITY / "weights.safetensors",
            "--num_steps", 2, "--img_size", 64, "--n_frames", 3, "--device", "cpu", "--output_folder", out, *extra]


def check_outputs(folder, stem, read_video, frames=3, views=3):
    """Files of one run; returns (record, frames as uint8 (frames, views, 64, 64, 3))."""
    folder = Path(folder)
    record = json.loads((folder / f"{stem}.json").read_text())
    assert record["grid"] == f"{stem}.mp4" and record["frames"] == f"{stem}_frames"
    assert record["view_videos"] == [f"{stem}_view{k}.mp4" for k in range(views)]
    for k in range(views):
        video, _ = read_video(folder / f"{stem}_view{k}.mp4")
        assert video.shape == (frames, 64, 64, 3)
    grid, fps = read_video(folder / f"{stem}.mp4")
    assert grid.shape == (frames, 64, 64 * (views + 1), 3) and fps == record["video_fps"]
    names = sorted(p.name for p in (folder / f"{stem}_frames").iterdir())
    assert names == sorted(f"t{t:03d}_v{k}.png" for t in range(frames) for k in range(views))
    from PIL import Image

    pngs = np.stack([np.stack([np.asarray(Image.open(folder / f"{stem}_frames" / f"t{t:03d}_v{k}.png"))
                               for k in range(views)]) for t in range(frames)])
    assert pngs.shape == (frames, views, 64, 64, 3)
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temp files left
    return record, pngs


def test_sv4d2_outputs_record_reproducible_and_knob(script_4d2, run_in_process, read_video, gif, tmp_path):
    out = tmp_path / "out"
    res = run_in_process(script_4d2, *args_4d2(gif, out))
    assert res.returncode == 0, res.stderr
    record, base = check_outputs(out, "000000", read_video)
    assert record["version"] == "sv4d2" and record["views"] == 3 and record["frames_per_chunk"] == 2
    assert record["n_frames"] == 3 and record["seed"] == 23 and record["num_steps"] == 2
    assert record["input"]["frames_read"] == 3 and record["input"]["padded_frames"] == 0
    cams = record["cameras"]
    assert len(cams["elevations_deg"]) == len(cams["azimuths_deg"]) == 4 and cams["relative_to_first"]
    assert cams["camera_views"] == [1, 2, 3] and cams["azimuth_rad"][0] == pytest.approx(np.pi / 2)
    assert record["ckpt_path"].endswith("sv4d2_weights.safetensors") and record["config"].endswith("tiny_sv4d2.yaml")
    assert record["motion_knobs"]["temporal_attn_scale"] == 1.0 and record["knobs_given"] == {}
    assert base.std() > 0

    # The recorded command reproduces the frames exactly (same seed), under the next number.
    argv = shlex.split(record["command"])
    assert argv[:2] == ["python", "scripts/sampling/simple_video_sample_4d2.py"]
    res = run_in_process(script_4d2, *argv[2:])
    assert res.returncode == 0, res.stderr
    again, frames = check_outputs(out, "000001", read_video)
    np.testing.assert_array_equal(frames, base)
    assert (out / "000000.json").read_text() != ""  # the first run's record untouched
    assert json.loads((out / "000000.json").read_text())["frames"] == "000000_frames"

    res = run_in_process(script_4d2, *args_4d2(gif, out, "--temporal_attn_scale", 2))
    assert res.returncode == 0, res.stderr
    knobbed, frames = check_outputs(out, "000002", read_video)
    assert knobbed["motion_knobs"]["temporal_attn_scale"] == 2.0 and knobbed["knobs_given"] == {"temporal_attn_scale": 2}
    assert "--temporal_attn_scale 2" in knobbed["command"]
    assert np.abs(frames.astype(int) - base.astype(int)).max() > 0


def test_sv4d2_8views_by_config_and_padding(script_4d2, run_in_process, read_video, gif, tmp_path):
    out = tmp_path / "out"
    res = run_in_process(script_4d2, *args_4d2(gif, out, "--config", PARITY / "tiny_sv4d2_8views.yaml", "--n_frames", 4,
                                               "--azimuths_deg", "[0,90,180,270]", "--elevations_deg", 10))
    assert res.returncode == 0, res.stderr
    record, _ = check_outputs(out, "000000", read_video, frames=4)
    assert record["version"] == "sv4d2_8views" and record["input"]["padded_frames"] == 1
    assert record["cameras"]["azimuths_deg"] == [0, 90, 180, 270] and record["cameras"]["elevations_deg"] == [10.0] * 4


def test_sv4d_end_to_end_subprocess(run_process, read_video, gif, tmp_path):
    """A true end-to-end run of the SV4D script, the tiny SVD model as its reference stage."""
    out = tmp_path / "out"
    proc = run_process(SCRIPT_4D, *args_4d(gif, out, "--view_attn_scale", 0.5))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    record, frames = check_outputs(out, "000000", read_video)
    assert record["version"] == "sv4d" and record["script"] == "4d" and record["frames_per_chunk"] == 2
    ref = record["reference_stage"]
    assert ref["num_frames"] == 5 and ref["picked_views"] == [1, 3, 4] and ref["config"].endswith("tiny_svd.yaml")
    cams = record["cameras"]
    assert len(cams["elevations_deg"]) == 3 and cams["azimuths_deg"] == [72.0, 216.0, 288.0]
    assert not cams["relative_to_first"] and cams["camera_views"] == [0, 1, 2]
    assert record["motion_knobs"]["view_attn_scale"] == 0.5 and "--view_attn_scale 0.5" in record["command"]
    assert "--sv3d_config" in record["command"] and frames.std() > 0


def _bad_inputs(tmp_path, gif):
    empty = tmp_path / "empty"
    empty.mkdir()
    corrupt_gif = tmp_path / "bad.gif"
    corrupt_gif.write_bytes(b"GIF89a not really")
    corrupt_mp4 = tmp_path / "bad.mp4"
    corrupt_mp4.write_bytes(b"\x00\x00\x00\x18ftypmp42 garbage" * 4)
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    return {
        "missing_input": (["--input_path", tmp_path / "nope.mp4"], "not found"),
        "empty_folder": (["--input_path", empty], "no .png/.jpg/.jpeg frames"),
        "corrupt_gif": (["--input_path", corrupt_gif], "cannot read video"),
        "corrupt_mp4": (["--input_path", corrupt_mp4], "cannot read video"),
        "elevation_count": (["--elevations_deg", "[0, 10]"], "elevations_deg needs"),
        "azimuth_count": (["--azimuths_deg", "[0, 10, 20, 30, 40, 50]"], "azimuths_deg needs"),
        "bad_knob": (["--temporal_attn_scale", -1], "temporal_attn_scale"),
        "sampling_knob": (["--noise_correlation", 0.5], "noise_correlation"),
        "remove_bg": (["--remove_bg", "true"], "background removal is out of scope"),
        "image_frame_ratio": (["--image_frame_ratio", 0.9], "image_frame_ratio"),
        "unwritable_output": (["--output_folder", a_file / "sub"], "output_folder"),
        "missing_checkpoint": (["--ckpt_path", tmp_path / "none.safetensors"], "checkpoint not found"),
        "missing_config": (["--config", tmp_path / "none.yaml"], "config file not found"),
        "img_size": (["--img_size", 100], "img_size must be a multiple of 64"),
        "num_steps": (["--num_steps", 0], "num_steps must be at least 1"),
        "unknown_flag": (["--frobnicate", 1], "unknown option --frobnicate"),
    }


CASES = ["missing_input", "empty_folder", "corrupt_gif", "corrupt_mp4", "elevation_count", "azimuth_count", "bad_knob",
         "sampling_knob", "remove_bg", "image_frame_ratio", "unwritable_output", "missing_checkpoint", "missing_config",
         "img_size", "num_steps", "unknown_flag"]


@pytest.mark.parametrize("which", ["4d", "4d2"])
def test_bad_input_is_one_line_before_anything(which, script_4d, script_4d2, run_in_process, one_line_error, gif, tmp_path):
    script, make = (script_4d, args_4d) if which == "4d" else (script_4d2, args_4d2)
    out = tmp_path / "out"
    cases = _bad_inputs(tmp_path, gif)
    assert sorted(cases) == sorted(CASES)
    for case in CASES:
        extra, expected = cases[case]
        if which == "4d2":  # its checkpoint flag is upstream's --model_path (--ckpt_path an alias)
            extra = ["--model_path" if a == "--ckpt_path" else a for a in extra]
        res = run_in_process(script, *make(gif, out), *extra)
        line = one_line_error(res)
        assert expected in line, (case, line)
        assert not out.exists(), case
        assert "Loading" not in res.stdout, case
    if which == "4d2":
        line = one_line_error(run_in_process(script, *make(gif, out), "--ckpt_path", PARITY / "weights.safetensors"))
        assert "model_path and ckpt_path" in line
        line = one_line_error(run_in_process(script, *make(gif, out, config="tiny_svd.yaml")))
        assert "not an SV4D model" in line
    else:
        line = one_line_error(run_in_process(script, *make(gif, out), "--sv3d_version", "sv3d_x"))
        assert "sv3d_version" in line
        line = one_line_error(run_in_process(script, *make(gif, out), "--sv3d_ckpt_path", tmp_path / "none.safetensors"))
        assert "checkpoint not found" in line
    assert not out.exists()


def test_released_configs_need_their_checkpoints(script_4d, script_4d2, run_in_process, one_line_error, gif, tmp_path):
    """Without --config the shipped configs are used; their checkpoints are never downloaded."""
    out = tmp_path / "out"
    for script, name in ((script_4d, "sv4d.safetensors"), (script_4d2, "sv4d2.safetensors")):
        line = one_line_error(run_in_process(script, "--input_path", gif, "--output_folder", out, "--device", "cpu"))
        assert "checkpoint not found" in line and name in line
    assert not out.exists()


def test_reading_videos_and_frame_folders(tmp_path):
    """mp4 and frame folders are read in order, cut to their centred square, padded with the last frame."""
    import imageio
    from PIL import Image

    from sgm.inference.four_d import read_video_frames, square_frames

    shades = [0, 120, 240]
    mp4 = tmp_path / "in.mp4"
    imageio.mimsave(str(mp4), [np.full((64, 64, 3), s, np.uint8) for s in shades], fps=5, codec="libx264")
    frames, facts = read_video_frames(mp4, 5)
    assert len(frames) == 5 and facts["frames_read"] == 3 and facts["padded_frames"] == 2
    means = [np.asarray(f).mean() for f in frames]
    assert means[0] < means[1] < means[2] == means[3] == means[4]

    folder = tmp_path / "frames"
    folder.mkdir()
    for i, s in enumerate(shades):  # 96x64: the centred 64x64 square is kept
        arr = np.zeros((64, 96, 3), np.uint8)
        arr[:, 16:80] = s
        Image.fromarray(arr).save(folder / f"f{i:02d}.png")
    (folder / "notes.txt").write_text("ignored")
    frames, facts = read_video_frames(folder, 2)
    assert facts["frames_available"] == 3 and facts["original_size"] == [96, 64]
    video = square_frames(frames, 64)
    assert video.shape == (2, 3, 64, 64)
    assert torch.allclose(video[1], torch.full_like(video[1], 120 / 255 * 2 - 1))
