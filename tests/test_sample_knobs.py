"""The motion knobs through simple_video_sample.py: flags override the YAML, runs are recorded,
bad values are one-line errors before anything is written."""
import json

import numpy as np
import pytest
from omegaconf import OmegaConf


@pytest.fixture
def run_main(sample_script, run_in_process):
    def run(args):
        proc = run_in_process(sample_script, *args)
        return proc.returncode, proc

    return run


@pytest.fixture(scope="module")
def image(paths):
    return paths.image


@pytest.fixture(scope="module")
def tiny_config(paths):
    return paths.tiny_config

FAMILIES = {
    "scales": ["--temporal_attn_scale", 2.0, "--temporal_attn_k_scale", 1.5],
    "positions": ["--position_embedding_frames", 14],
    "windows": ["--attn_window_size", 4, "--attn_window_stride", 2, "--attn_window_fusion", "flat", "--shuffle_windowed_noise"],
}


@pytest.fixture(scope="module")
def default_frames(tmp_path_factory, sample_script, tiny_args, image, read_png_frames):
    from sgm.inference.cli import run_cli

    out = tmp_path_factory.mktemp("default")
    assert run_cli(sample_script.main, sample_script.PARSER, [str(a) for a in tiny_args(image, out, "--save_frames")]) == 0
    return read_png_frames(out / "000000_frames")


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_knob_family_runs_and_is_recorded(family, tmp_path, default_frames, run_main, tiny_args, image, read_png_frames):
    code, captured = run_main(tiny_args(image, tmp_path, "--save_frames", *FAMILIES[family]))
    assert code == 0, captured.stderr
    record = json.loads((tmp_path / "000000.json").read_text())
    frames = read_png_frames(tmp_path / "000000_frames")
    assert frames.shape == (5, 64, 64, 3)
    knobs = record["motion_knobs"]
    flags = FAMILIES[family]
    for name, value in zip(flags[::2], flags[1::2]):
        if name == "--shuffle_windowed_noise":
            break
        assert knobs[name[2:]] == value
    assert record["sampling_knobs"]["shuffle_windowed_noise"] is (family == "windows")
    assert record["config"]["model"]["params"]["network_config"]["params"]["temporal_attn_scale" if family == "scales" else flags[0][2:]] == flags[1]
    assert "--" + flags[0][2:] in record["command"]
    assert np.abs(frames.astype(int) - default_frames.astype(int)).max() > 2, "the knobs did not change the video"


def test_default_knob_values_as_flags_change_nothing(tmp_path, default_frames, run_main, tiny_args, image, read_png_frames):
    flags = ["--temporal_attn_scale", 1.0, "--temporal_attn_k_scale", 1.0, "--position_embedding_frames", 5, "--attn_window_size", 5]
    code, captured = run_main(tiny_args(image, tmp_path, "--save_frames", *flags))
    assert code == 0, captured.stderr
    assert np.array_equal(read_png_frames(tmp_path / "000000_frames"), default_frames)


def test_flags_override_the_yaml(tmp_path, run_main, tiny_args, image, tiny_config):
    cfg = OmegaConf.load(tiny_config)
    cfg.model.params.network_config.params.temporal_attn_scale = 2.0
    cfg.model.params.network_config.params.attn_window_size = 4
    config = tmp_path / "knobs.yaml"
    OmegaConf.save(cfg, config)
    args = tiny_args(image, tmp_path / "out", "--temporal_attn_scale", 0.5)
    args[args.index("--config") + 1] = config
    code, captured = run_main(args)
    assert code == 0, captured.stderr
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
    "stage name": (["--attn_window_stages", "sideways"], "attn_window_stages"),
    "scale stage name": (["--temporal_attn_scale_stages", "[input,up]"], "temporal_attn_scale_stages"),
    "auto without range": (["--attn_window_size", "auto"], "attn_window_min"),
    "min above max": (["--attn_window_size", "auto", "--attn_window_min", 6, "--attn_window_max", 3], "attn_window_min"),
    "motion source": (["--attn_window_motion", "flow"], "attn_window_motion"),
    "loop text": (["--attn_window_loop", "yes"], "attn_window_loop"),
    "rho one": (["--noise_correlation", 1], "noise_correlation"),
    "rho negative": (["--noise_correlation", -0.5], "noise_correlation"),
    "gif text": (["--gif", "maybe"], "gif"),
}


@pytest.mark.parametrize("case", sorted(BAD_FLAGS))
def test_bad_knob_flag_is_one_line_error(case, tmp_path, run_main, tiny_args, image):
    flags, key = BAD_FLAGS[case]
    code, captured = run_main(tiny_args(image, tmp_path / "out", *flags))
    assert code == 2
    lines = captured.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and key in lines[0], captured.stderr
    assert not (tmp_path / "out").exists(), "nothing may be written for a refused run"


def test_bad_knob_in_yaml_is_one_line_error(tmp_path, run_main, tiny_args, image, tiny_config):
    cfg = OmegaConf.load(tiny_config)
    cfg.model.params.network_config.params.attn_window_fusion = "gaussian"
    config = tmp_path / "bad.yaml"
    OmegaConf.save(cfg, config)
    args = tiny_args(image, tmp_path / "out")
    args[args.index("--config") + 1] = config
    code, captured = run_main(args)
    assert code == 2 and captured.stderr.count("\n") == 1 and "attn_window_fusion" in captured.stderr


def test_issue6_flags_run_and_are_recorded(tmp_path, default_frames, run_main, tiny_args, image, read_png_frames):
    flags = [
        "--attn_window_size", "auto", "--attn_window_min", 2, "--attn_window_max", 4, "--attn_window_motion", "latent",
        "--attn_window_stages", "[middle,output]", "--attn_window_loop", "--temporal_attn_scale", 2.0,
        "--temporal_attn_scale_stages", "output", "--noise_correlation", 0.3, "--gif",
    ]
    code, captured = run_main(tiny_args(image, tmp_path, "--save_frames", *flags))
    assert code == 0, captured.stderr
    record = json.loads((tmp_path / "000000.json").read_text())
    knobs = {**record["motion_knobs"], **record["sampling_knobs"]}
    assert knobs["attn_window_size"] == "auto" and (knobs["attn_window_min"], knobs["attn_window_max"]) == (2, 4)
    assert knobs["attn_window_stages"] == ["middle", "output"] and knobs["temporal_attn_scale_stages"] == ["output"]
    assert knobs["attn_window_loop"] is True and knobs["noise_correlation"] == 0.3 and knobs["attn_window_motion"] == "latent"
    schedule = record["attn_window_schedule"]
    assert [s["step"] for s in schedule] == [0, 1, 2] and schedule[0]["source"] == "bucket"
    assert all(s["source"] == "latent" and 2 <= s["window_size"] <= 4 for s in schedule[1:])
    frames = read_png_frames(tmp_path / "000000_frames")
    assert np.abs(frames.astype(int) - default_frames.astype(int)).max() > 2

    # the looping GIF: same frames count, endless loop, listed in the record
    from PIL import Image

    assert record["gif"] == "000000.gif"
    with Image.open(tmp_path / "000000.gif") as gif:
        assert gif.n_frames == 5 and gif.info.get("loop") == 0
        assert abs(gif.info["duration"] - 1000 / record["video_fps"]) <= 5  # GIF delays are whole centiseconds

    # the recorded command reproduces the run
    command = record["command"].split()
    assert "--attn_window_stages" in command and "--gif" in command and "--save_frames" in command
    out2 = tmp_path / "again"
    args = [a for a in __import__("shlex").split(record["command"])[2:]]
    args[args.index("--output_folder") + 1] = str(out2)
    code, captured = run_main(args)
    assert code == 0, captured.stderr
    assert np.array_equal(read_png_frames(out2 / "000000_frames"), frames)


def test_no_gif_and_no_schedule_by_default(tmp_path, run_main, tiny_args, image):
    code, captured = run_main(tiny_args(image, tmp_path))
    assert code == 0, captured.stderr
    record = json.loads((tmp_path / "000000.json").read_text())
    assert record["gif"] is None and record["attn_window_schedule"] is None
    assert not list(tmp_path.glob("*.gif"))


def test_none_and_lowercase_booleans_on_the_command_line(tmp_path, default_frames, run_main, tiny_args, image, tiny_config, read_png_frames):
    """`--knob none` sets a config's knob back to null (and is what the recorded command says);
    true/false work in any case."""
    cfg = OmegaConf.load(tiny_config)
    cfg.model.params.network_config.params.attn_window_size = 3
    cfg.model.params.network_config.params.attn_window_loop = True
    config = tmp_path / "windows.yaml"
    OmegaConf.save(cfg, config)
    args = tiny_args(image, tmp_path / "out", "--attn_window_size", "none", "--attn_window_loop", "false", "--gif", "FALSE", "--save_frames", "True")
    args[args.index("--config") + 1] = config
    code, captured = run_main(args)
    assert code == 0, captured.stderr
    record = json.loads((tmp_path / "out" / "000000.json").read_text())
    assert record["motion_knobs"]["attn_window_size"] is None and record["motion_knobs"]["attn_window_loop"] is False
    assert "--attn_window_size none" in record["command"] and record["gif"] is None
    assert np.array_equal(read_png_frames(tmp_path / "out" / "000000_frames"), default_frames)
