"""The motion knobs through simple_video_sample.py: flags override the YAML, runs are recorded,
bad values are one-line errors before anything is written."""
import json

import numpy as np
import pytest
from omegaconf import OmegaConf

from test_sample_script import IMAGE, TINY_CONFIG, assert_one_line_error, read_video, run_script, svs, tiny_args

FAMILIES = {
    "scales": ["--temporal_attn_scale", 2.0, "--temporal_attn_k_scale", 0.7],
    "positions": ["--position_embedding_frames", 14],
    "windows": ["--attn_window_size", 4, "--attn_window_stride", 2, "--attn_window_fusion", "flat", "--shuffle_windowed_noise"],
}


def run_main(args, capsys):
    code = svs.main([str(a) for a in args])
    return code, capsys.readouterr()


@pytest.fixture(scope="module")
def default_frames(tmp_path_factory):
    out = tmp_path_factory.mktemp("default")
    assert svs.main([str(a) for a in tiny_args(IMAGE, out)]) == 0
    return read_video(out / "000000.mp4")[0]


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_knob_family_runs_and_is_recorded(family, tmp_path, capsys, default_frames):
    code, captured = run_main(tiny_args(IMAGE, tmp_path, *FAMILIES[family]), capsys)
    assert code == 0, captured.err
    record = json.loads((tmp_path / "000000.json").read_text())
    frames, _ = read_video(tmp_path / "000000.mp4")
    assert frames.shape == (5, 64, 64, 3)
    knobs = record["motion_knobs"]
    flags = FAMILIES[family]
    for name, value in zip(flags[::2], flags[1::2]):
        if name == "--shuffle_windowed_noise":
            break
        assert knobs[name[2:]] == value and record["network_overrides"][name[2:]] == value
    assert record["shuffle_windowed_noise"] is (family == "windows")
    assert record["config"]["model"]["params"]["network_config"]["params"]["temporal_attn_scale" if family == "scales" else flags[0][2:]] == flags[1]
    assert "--" + flags[0][2:] in record["command"]
    assert np.abs(frames.astype(int) - default_frames.astype(int)).max() > 2, "the knobs did not change the video"


def test_default_knob_values_as_flags_change_nothing(tmp_path, capsys, default_frames):
    flags = ["--temporal_attn_scale", 1.0, "--temporal_attn_k_scale", 1.0, "--position_embedding_frames", 5, "--attn_window_size", 5]
    code, captured = run_main(tiny_args(IMAGE, tmp_path, *flags), capsys)
    assert code == 0, captured.err
    assert np.array_equal(read_video(tmp_path / "000000.mp4")[0], default_frames)


def test_flags_override_the_yaml(tmp_path, capsys):
    cfg = OmegaConf.load(TINY_CONFIG)
    cfg.model.params.network_config.params.temporal_attn_scale = 2.0
    cfg.model.params.network_config.params.attn_window_size = 4
    config = tmp_path / "knobs.yaml"
    OmegaConf.save(cfg, config)
    args = tiny_args(IMAGE, tmp_path / "out", "--temporal_attn_scale", 0.5)
    args[args.index("--config") + 1] = config
    code, captured = run_main(args, capsys)
    assert code == 0, captured.err
    knobs = json.loads((tmp_path / "out" / "000000.json").read_text())["motion_knobs"]
    assert knobs["temporal_attn_scale"] == 0.5 and knobs["attn_window_size"] == 4


BAD_FLAGS = {
    "scale zero": (["--temporal_attn_scale", 0], "temporal_attn_scale"),
    "scale negative": (["--temporal_attn_scale", -2], "temporal_attn_scale"),
    "scale text": (["--temporal_attn_scale", "fast"], "temporal_attn_scale"),
    "k zero": (["--temporal_attn_k_scale", 0], "temporal_attn_k_scale"),
    "k inf": (["--temporal_attn_k_scale", "inf"], "temporal_attn_k_scale"),
    "E zero": (["--position_embedding_frames", 0], "position_embedding_frames"),
    "E fractional": (["--position_embedding_frames", 2.5], "position_embedding_frames"),
    "w zero": (["--attn_window_size", 0], "attn_window_size"),
    "r zero": (["--attn_window_size", 4, "--attn_window_stride", 0], "attn_window_stride"),
    "r above w": (["--attn_window_size", 4, "--attn_window_stride", 5], "attn_window_stride"),
    "fusion": (["--attn_window_size", 4, "--attn_window_fusion", "max"], "attn_window_fusion"),
    "shuffle without window": (["--shuffle_windowed_noise"], "attn_window_size"),
}


@pytest.mark.parametrize("case", sorted(BAD_FLAGS))
def test_bad_knob_flag_is_one_line_error(case, tmp_path, capsys):
    flags, key = BAD_FLAGS[case]
    code, captured = run_main(tiny_args(IMAGE, tmp_path / "out", *flags), capsys)
    assert code == 2
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and key in lines[0], captured.err
    assert not (tmp_path / "out").exists(), "nothing may be written for a refused run"


def test_bad_knob_in_yaml_is_one_line_error(tmp_path, capsys):
    cfg = OmegaConf.load(TINY_CONFIG)
    cfg.model.params.network_config.params.attn_window_fusion = "gaussian"
    config = tmp_path / "bad.yaml"
    OmegaConf.save(cfg, config)
    args = tiny_args(IMAGE, tmp_path / "out")
    args[args.index("--config") + 1] = config
    code, captured = run_main(args, capsys)
    assert code == 2 and captured.err.count("\n") == 1 and "attn_window_fusion" in captured.err


def test_bad_knob_in_a_real_process_has_no_traceback(tmp_path):
    line = assert_one_line_error(run_script(*tiny_args(IMAGE, tmp_path, "--attn_window_stride", -1, "--attn_window_size", 3)))
    assert "attn_window_stride" in line and "-1" in line
