"""scripts/sampling/simple_video_sample.py: outputs, bad input, image handling, determinism, upstream parity.

Everything runs on the CPU with the tiny model of tests/fixtures/upstream_parity.
"""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "sampling" / "simple_video_sample.py"
FIXTURES = REPO / "tests" / "fixtures"
TINY_CONFIG = FIXTURES / "upstream_parity" / "tiny_svd.yaml"
TINY_WEIGHTS = FIXTURES / "upstream_parity" / "weights.safetensors"
GOLDENS = FIXTURES / "upstream_parity" / "goldens.safetensors"
IMAGE = FIXTURES / "image_64.png"


def _load_script_module():
    spec = importlib.util.spec_from_file_location("simple_video_sample", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


svs = _load_script_module()


def run_script(*args, cwd=REPO):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )


def tiny_args(input_path, output_folder, *extra):
    return [
        "--input_path", input_path, "--config", TINY_CONFIG, "--ckpt_path", TINY_WEIGHTS,
        "--num_frames", 5, "--num_steps", 3, "--device", "cpu", "--output_folder", output_folder, *extra,
    ]


def read_video(path):
    import imageio

    reader = imageio.get_reader(str(path), format="FFMPEG")
    try:
        fps = reader.get_meta_data()["fps"]
        return np.stack([frame for frame in reader]), fps
    finally:
        reader.close()


def snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir())}


def assert_one_line_error(proc):
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: "), proc.stderr
    return lines[0]


# --------------------------------------------------------------------------------------------------
# End to end


def test_writes_numbered_outputs_and_never_overwrites(tmp_path):
    out = tmp_path / "out"
    first = run_script(*tiny_args(IMAGE, out))
    assert first.returncode == 0, first.stderr
    assert "Sampling" in first.stderr  # the sampler's tqdm progress bar
    assert sorted(p.name for p in out.iterdir()) == ["000000.json", "000000.mp4", "000000.png"]

    frames, fps = read_video(out / "000000.mp4")
    assert frames.shape == (5, 64, 64, 3)
    assert fps == pytest.approx(7)  # fps_id + 1
    used = np.asarray(Image.open(out / "000000.png"))
    assert used.shape == (64, 64, 3)
    assert np.array_equal(used, np.asarray(Image.open(IMAGE).convert("RGB")))

    record = json.loads((out / "000000.json").read_text())
    expected = {
        "version": "svd", "seed": 23, "num_frames": 5, "num_steps": 3, "fps_id": 6, "motion_bucket_id": 127,
        "cond_aug": 0.02, "decoding_t": 14, "device": "cpu", "video_fps": 7, "image_size": [64, 64],
        "input_path": str(IMAGE), "network_overrides": {}, "video": "000000.mp4", "image": "000000.png",
    }
    for key, value in expected.items():
        assert record[key] == value, key
    assert os.path.samefile(record["config_path"], TINY_CONFIG)
    assert os.path.samefile(record["ckpt_path"], TINY_WEIGHTS)
    assert record["config"]["model"]["params"]["sampler_config"]["params"]["num_steps"] == 3
    assert record["config"]["model"]["params"]["sampler_config"]["params"]["guider_config"]["params"]["num_frames"] == 5
    assert record["config"]["model"]["params"]["ckpt_path"] == str(TINY_WEIGHTS)
    assert set(record["versions"]) >= {"sgm-motion", "torch", "numpy", "python"}
    assert "--seed 23" in record["command"]

    before = snapshot(out)
    second = run_script(*tiny_args(IMAGE, out))
    assert second.returncode == 0, second.stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == ["000000.json", "000000.mp4", "000000.png", "000001.json", "000001.mp4", "000001.png"]
    after = snapshot(out)
    assert all(after[name] == data for name, data in before.items())
    assert json.loads((out / "000001.json").read_text())["video"] == "000001.mp4"


def test_folder_of_odd_images_is_converted_and_resized(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    rgba = np.random.default_rng(0).integers(0, 256, size=(70, 100, 4), dtype=np.uint8)
    Image.fromarray(rgba, mode="RGBA").save(images / "a_rgba_100x70.png")
    Image.fromarray(np.arange(64 * 64, dtype=np.uint8).reshape(64, 64), mode="L").save(images / "b_gray.jpg")
    Image.open(IMAGE).convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(images / "c_palette.png")
    (images / "notes.txt").write_text("not an image, and ignored in a folder\n")
    out = tmp_path / "out"

    proc = run_script(*tiny_args(images, out))
    assert proc.returncode == 0, proc.stderr
    assert "notice: resized" in proc.stdout and "100x70 to 64x64" in proc.stdout
    for n, name in enumerate(["a_rgba_100x70.png", "b_gray.jpg", "c_palette.png"]):
        stem = out / f"{n:06d}"
        record = json.loads(stem.with_suffix(".json").read_text())
        assert os.path.samefile(record["image_path"], images / name)
        assert record["image_size"] == [64, 64]
        assert record["image_index"] == n
        assert Image.open(stem.with_suffix(".png")).mode == "RGB"
        frames, _ = read_video(stem.with_suffix(".mp4"))
        assert frames.shape == (5, 64, 64, 3)
    assert json.loads((out / "000000.json").read_text())["image_original_size"] == [100, 70]
    assert json.loads((out / "000000.json").read_text())["image_mode"] == "RGBA"


# --------------------------------------------------------------------------------------------------
# Bad input: one line on stderr, non-zero exit, no traceback, nothing written


@pytest.fixture
def garbage_files(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    fake_png = tmp_path / "fake.png"
    fake_png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(TINY_WEIGHTS.read_bytes()[:300_000])
    garbage_ckpt = tmp_path / "garbage.safetensors"
    garbage_ckpt.write_bytes(os.urandom(4096))
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("model: [unclosed\n  params: {\n")
    no_model_yaml = tmp_path / "nomodel.yaml"
    no_model_yaml.write_text("something: 1\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    tiny_image = tmp_path / "tiny.png"
    Image.new("RGB", (40, 128)).save(tiny_image)
    return {
        "text": text, "fake_png": fake_png, "truncated": truncated, "garbage_ckpt": garbage_ckpt,
        "bad_yaml": bad_yaml, "no_model_yaml": no_model_yaml, "empty": empty, "a_file": a_file, "tiny_image": tiny_image,
    }


BAD_INPUTS = {
    "missing_input": (lambda f, out: tiny_args(f["empty"] / "nope.png", out), "input path not found"),
    "text_file": (lambda f, out: tiny_args(f["text"], out), "cannot read image"),
    "png_pil_cannot_open": (lambda f, out: tiny_args(f["fake_png"], out), "cannot read image"),
    "empty_folder": (lambda f, out: tiny_args(f["empty"], out), "no .png/.jpg/.jpeg images"),
    "image_too_small": (lambda f, out: tiny_args(f["tiny_image"], out), "at least 64"),
    "missing_checkpoint": (
        lambda f, out: tiny_args(IMAGE, out)[:4] + ["--ckpt_path", f["empty"] / "none.safetensors"] + tiny_args(IMAGE, out)[6:],
        "checkpoint not found",
    ),
    "missing_version_checkpoint": (
        lambda f, out: ["--input_path", IMAGE, "--version", "svd", "--device", "cpu", "--output_folder", out],
        "checkpoint not found: checkpoints/svd.safetensors",
    ),
    "truncated_checkpoint": (
        lambda f, out: tiny_args(IMAGE, out)[:4] + ["--ckpt_path", f["truncated"]] + tiny_args(IMAGE, out)[6:],
        "cannot read checkpoint",
    ),
    "garbage_checkpoint": (
        lambda f, out: tiny_args(IMAGE, out)[:4] + ["--ckpt_path", f["garbage_ckpt"]] + tiny_args(IMAGE, out)[6:],
        "cannot read checkpoint",
    ),
    "num_frames_zero": (lambda f, out: tiny_args(IMAGE, out, "--num_frames", 0), "num_frames must be at least 1"),
    "num_frames_fraction": (lambda f, out: tiny_args(IMAGE, out, "--num_frames", 2.5), "num_frames must be an integer"),
    "num_frames_word": (lambda f, out: tiny_args(IMAGE, out, "--num_frames", "many"), "num_frames must be an integer"),
    "num_steps_zero": (lambda f, out: tiny_args(IMAGE, out, "--num_steps", 0), "num_steps must be at least 1"),
    "output_folder_is_file": (lambda f, out: tiny_args(IMAGE, f["a_file"]), "output_folder exists and is not a folder"),
    "unknown_version": (lambda f, out: tiny_args(IMAGE, out, "--version", "svd_ultra"), "unknown version"),
    "missing_config": (lambda f, out: tiny_args(IMAGE, out, "--config", f["empty"] / "none.yaml"), "config file not found"),
    "invalid_yaml": (lambda f, out: tiny_args(IMAGE, out, "--config", f["bad_yaml"]), "cannot read config"),
    "config_without_model": (lambda f, out: tiny_args(IMAGE, out, "--config", f["no_model_yaml"]), "no model section"),
    "unknown_flag": (lambda f, out: tiny_args(IMAGE, out, "--num_framez", 3), "unknown option --num_framez"),
    "image_frame_ratio": (lambda f, out: tiny_args(IMAGE, out, "--image_frame_ratio", 0.9), "image_frame_ratio"),
    "bad_device": (lambda f, out: tiny_args(IMAGE, out, "--device", "toaster"), "invalid device"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_error(case, garbage_files, tmp_path):
    make_args, message = BAD_INPUTS[case]
    out = tmp_path / "out"
    proc = run_script(*make_args(garbage_files, out), cwd=tmp_path)
    line = assert_one_line_error(proc)
    assert message in line
    assert proc.returncode == 2
    assert not out.exists() or not any(out.iterdir())


def test_cuda_device_without_cuda_is_one_line_error(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    proc = run_script(*tiny_args(IMAGE, tmp_path / "out", "--device", "cuda"))
    assert "CUDA is not available" in assert_one_line_error(proc)


def test_existing_outputs_survive_a_failed_run(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "000000.mp4").write_bytes(b"precious")
    proc = run_script(*tiny_args(IMAGE, out, "--num_steps", -3))
    assert_one_line_error(proc)
    assert snapshot(out) == {"000000.mp4": b"precious"}


# --------------------------------------------------------------------------------------------------
# Pieces, in process


def test_reserve_output_skips_every_taken_number(tmp_path):
    for name in ["000000.mp4", "000002.png", "000003.json.bak", ".partial-x.mp4", "notes.txt"]:
        (tmp_path / name).write_text("x")
    number, path = svs.reserve_output(str(tmp_path), lambda stem: {"stem": stem})
    assert number == 4 and json.loads(Path(path).read_text()) == {"stem": "000004"}
    number, _ = svs.reserve_output(str(tmp_path), lambda stem: {})
    assert number == 5


def test_sv3d_angles():
    angles = svs.sv3d_angles(21)
    assert angles["elevations_deg"] == [10.0] * 21
    assert len(angles["azimuths_deg"]) == 21 and angles["azimuths_deg"][-1] == 0.0
    assert angles["polars_rad"] == pytest.approx([np.deg2rad(80.0)] * 21)
    assert angles["azimuths_rad"] == pytest.approx([np.deg2rad((k + 1) * 360 / 21 % 360) for k in range(21)])
    custom = svs.sv3d_angles(3, [0, 10, 20], [90, 180, 45])
    assert custom["polars_rad"] == pytest.approx(np.deg2rad([90, 80, 70]).tolist())
    assert custom["azimuths_rad"] == pytest.approx(np.deg2rad([45, 135, 0]).tolist())
    with pytest.raises(svs.InputError, match="elevations_deg has 2 values"):
        svs.sv3d_angles(3, [1, 2])
    with pytest.raises(svs.InputError, match="azimuths_deg has 4 values"):
        svs.sv3d_angles(3, 5.0, [1, 2, 3, 4])


def test_build_model_config_applies_settings_and_overrides():
    cfg, path = svs.build_model_config(
        "svd", 7, 4, config=str(TINY_CONFIG), ckpt_path="x.safetensors", network_overrides={"num_head_channels": 8}
    )
    assert os.path.samefile(path, TINY_CONFIG)
    params = cfg.model.params
    assert params.ckpt_path == "x.safetensors"
    assert params.sampler_config.params.num_steps == 4
    assert params.sampler_config.params.verbose is True
    assert params.sampler_config.params.guider_config.params.num_frames == 7
    assert params.network_config.params.num_head_channels == 8


def test_version_configs_resolve_from_the_checkout():
    for version in svs.VERSION_DEFAULTS:
        path = svs.resolve_config_path(version)
        assert os.path.samefile(path, REPO / "scripts" / "sampling" / "configs" / f"{version}.yaml")


@pytest.fixture(scope="module")
def tiny_model():
    cfg, path = svs.build_model_config("svd", 5, 3, config=str(TINY_CONFIG), ckpt_path=str(TINY_WEIGHTS))
    return svs.load_model(cfg, "cpu", path)


def test_sampling_matches_upstream_goldens(tiny_model):
    from safetensors.torch import load_file

    golden = load_file(str(GOLDENS))
    result = svs.sample_video(
        tiny_model, golden["sample.image"], num_frames=5, decoding_t=3,
        cond_noise=golden["sample.cond_noise"], randn=golden["sample.randn"],
    )
    assert result["z"].dtype == torch.float32
    torch.testing.assert_close(result["z"], golden["sample.z"], atol=2e-4, rtol=0)
    torch.testing.assert_close(result["x"], golden["sample.frames"], atol=2e-4, rtol=0)
    torch.testing.assert_close(result["frames"], ((golden["sample.frames"] + 1) / 2).clamp(0, 1), atol=1e-4, rtol=0)


def test_same_seed_same_video_other_seed_other_video(tiny_model):
    image, _ = svs.load_image(str(IMAGE))
    x = svs.image_to_tensor(image)

    def run(seed):
        torch.manual_seed(seed)
        result = svs.sample_video(tiny_model, x, num_frames=5, decoding_t=2)
        return result["z"], svs.frames_to_uint8(result["frames"])

    z1, v1 = run(23)
    z2, v2 = run(23)
    z3, v3 = run(24)
    assert torch.equal(z1, z2) and np.array_equal(v1, v2)
    assert not torch.equal(z1, z3) and not np.array_equal(v1, v3)
    assert v1.shape == (5, 64, 64, 3) and v1.dtype == np.uint8


def test_sv3d_p_conditioning_and_last_frame(tmp_path):
    cfg = OmegaConf.load(TINY_CONFIG)
    embedders = cfg.model.params.conditioner_config.params.emb_models
    clip, vae, cond_aug = embedders[0], embedders[3], embedders[4]
    angle = lambda key: OmegaConf.create(  # noqa: E731
        {"input_key": key, "is_trainable": False, "target": cond_aug.target, "params": {"outdim": 16}}
    )
    cfg.model.params.conditioner_config.params.emb_models = [clip, vae, cond_aug, angle("polars_rad"), angle("azimuths_rad")]
    decoder = cfg.model.params.first_stage_config.params.decoder_config
    decoder.target = "sgm.modules.diffusionmodules.model.Decoder"
    decoder.params.pop("video_kernel_size")
    cfg.model.params.sampler_config.params.guider_config = {
        "target": "sgm.modules.diffusionmodules.guiders.TrianglePredictionGuider", "params": {"max_scale": 2.5}
    }
    config_path = tmp_path / "tiny_sv3d_p.yaml"
    OmegaConf.save(cfg, config_path)

    model_cfg, path = svs.build_model_config("sv3d_p", 5, 2, config=str(config_path), ckpt_path=str(TINY_WEIGHTS))
    assert model_cfg.model.params.sampler_config.params.guider_config.params.num_frames == 5
    model = svs.load_model(model_cfg, "cpu", path)
    angles = svs.sv3d_angles(5, 10.0)
    image, _ = svs.load_image(str(IMAGE))
    x = svs.image_to_tensor(image)
    torch.manual_seed(0)
    result = svs.sample_video(
        model, x, num_frames=5, cond_aug=svs.SV3D_COND_AUG, sv3d=True,
        polars_rad=angles["polars_rad"], azimuths_rad=angles["azimuths_rad"],
    )
    assert result["x"].shape == (5, 3, 64, 64)
    torch.testing.assert_close(result["x"][-1], x[0])
    assert not torch.allclose(result["x"][0], x[0])

    records = svs.run(
        input_path=str(IMAGE), version="sv3d_p", config=str(config_path), ckpt_path=str(TINY_WEIGHTS),
        num_frames=5, num_steps=2, device="cpu", output_folder=str(tmp_path / "out"), elevations_deg=[0, 5, 10, 15, 20],
    )
    assert len(records) == 1
    record = records[0]
    assert record["version"] == "sv3d_p" and record["cond_aug"] == svs.SV3D_COND_AUG
    assert record["sv3d_angles"]["elevations_deg"] == [0, 5, 10, 15, 20]
    assert record["sv3d_angles"]["azimuths_deg"] == pytest.approx([72, 144, 216, 288, 0])
    assert record["sv3d_angles"]["polars_rad"] == pytest.approx(np.deg2rad([90, 85, 80, 75, 70]).tolist())
    assert "--elevations_deg" in record["command"]
    assert (tmp_path / "out" / "000000.mp4").is_file()
