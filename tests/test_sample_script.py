"""scripts/sampling/simple_video_sample.py: outputs, bad input, image handling, SV3D, and the library
pieces behind them (numbered outputs, camera paths, version configs).

Everything runs on the CPU with the tiny model of tests/fixtures/upstream_parity, in this process
through the script's command-line contract; a few cases run the script as a real process.
"""
import json
import os

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image
from safetensors.torch import load_file, save_file

from sgm.inference import InputError, VideoPipeline
from sgm.inference.cli import run_cli
from sgm.inference.images import frames_to_uint8
from sgm.inference.loading import resolve_config_path
from sgm.inference.outputs import reserve_number
from sgm.inference.versions import SV3D_COND_AUG, VERSION_DEFAULTS, sv3d_angles


def snapshot(folder):
    """{relative path: bytes} of every file under `folder`."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def sample(sample_script, run_in_process):
    def run(*args):
        return run_in_process(sample_script, *args)

    return run


# --------------------------------------------------------------------------------------------------
# End to end


def test_writes_numbered_outputs_and_never_overwrites(tmp_path, paths, tiny_args, sample, tiny_pipeline, read_video,
                                                      read_png_frames):
    out = tmp_path / "out"
    first = sample(*tiny_args(paths.image, out, "--save_frames"))
    assert first.returncode == 0, first.stderr
    assert sorted(p.name for p in out.iterdir()) == ["000000.json", "000000.mp4", "000000.png", "000000_frames"]

    expected = frames_to_uint8(tiny_pipeline(str(paths.image), num_frames=5, num_steps=3).frames)
    assert np.array_equal(read_png_frames(out / "000000_frames"), expected)
    frames, fps = read_video(out / "000000.mp4")
    assert frames.shape == (5, 64, 64, 3) and fps == pytest.approx(7)  # fps_id + 1
    other = frames_to_uint8(tiny_pipeline(str(paths.image), num_frames=5, num_steps=3, seed=24).frames)
    loss, apart = (np.abs(frames.astype(int) - v.astype(int)).mean() for v in (expected, other))
    assert loss < 0.6 * apart, f"the mp4 is the video up to H.264 loss ({loss:.1f} vs {apart:.1f} to another seed's)"
    assert np.array_equal(np.asarray(Image.open(out / "000000.png")), np.asarray(Image.open(paths.image).convert("RGB")))

    record = json.loads((out / "000000.json").read_text())
    expected_fields = {
        "version": "svd", "seed": 23, "num_frames": 5, "num_steps": 3, "fps_id": 6, "motion_bucket_id": 127,
        "cond_aug": 0.02, "decoding_t": 14, "device": "cpu", "dtype": "float32", "video_fps": 7, "image_size": [64, 64],
        "input_path": str(paths.image), "video": "000000.mp4", "image": "000000.png", "frames": "000000_frames",
    }
    assert {k: record[k] for k in expected_fields} == expected_fields
    assert os.path.samefile(record["config_path"], paths.tiny_config)
    assert os.path.samefile(record["ckpt_path"], paths.tiny_weights)
    sampler = record["config"]["model"]["params"]["sampler_config"]["params"]
    assert sampler["num_steps"] == 3 and sampler["guider_config"]["params"]["num_frames"] == 5
    assert set(record["versions"]) >= {"sgm-motion", "torch", "numpy", "python"}
    assert "--seed 23" in record["command"] and "--num_steps 3" in record["command"]

    before = snapshot(out)
    second = sample(*tiny_args(paths.image, out))
    assert second.returncode == 0, second.stderr
    assert sorted(p.name for p in out.iterdir()) == ["000000.json", "000000.mp4", "000000.png", "000000_frames",
                                                     "000001.json", "000001.mp4", "000001.png"]
    after = snapshot(out)
    assert all(after[name] == data for name, data in before.items())
    assert json.loads((out / "000001.json").read_text())["video"] == "000001.mp4"


def test_a_real_process_shows_progress_and_writes(tmp_path, paths, tiny_args, run_process):
    proc = run_process(paths.sample_script, *tiny_args(paths.image, tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "Sampling" in proc.stderr  # the sampler's progress bar
    assert "wrote" in proc.stdout and (tmp_path / "000000.mp4").is_file()


def test_folder_of_odd_images_is_converted_and_resized(tmp_path, paths, tiny_args, sample, read_video):
    images = tmp_path / "images"
    images.mkdir()
    rgba = np.random.default_rng(0).integers(0, 256, size=(70, 100, 4), dtype=np.uint8)
    Image.fromarray(rgba, mode="RGBA").save(images / "a_rgba_100x70.png")
    Image.fromarray(np.arange(64 * 64, dtype=np.uint8).reshape(64, 64), mode="L").save(images / "b_gray.jpg")
    Image.open(paths.image).convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(images / "c_palette.png")
    (images / "notes.txt").write_text("not an image, and ignored in a folder\n")
    out = tmp_path / "out"

    proc = sample(*tiny_args(images, out))
    assert proc.returncode == 0, proc.stderr
    assert "notice: resized" in proc.stdout and "100x70 to 64x64" in proc.stdout
    for n, name in enumerate(["a_rgba_100x70.png", "b_gray.jpg", "c_palette.png"]):
        stem = out / f"{n:06d}"
        record = json.loads(stem.with_suffix(".json").read_text())
        assert os.path.samefile(record["image_path"], images / name)
        assert record["image_size"] == [64, 64] and record["image_index"] == n
        assert Image.open(stem.with_suffix(".png")).mode == "RGB"
        assert read_video(stem.with_suffix(".mp4"))[0].shape == (5, 64, 64, 3)
    first = json.loads((out / "000000.json").read_text())
    assert first["image_original_size"] == [100, 70] and first["image_mode"] == "RGBA"


# --------------------------------------------------------------------------------------------------
# Bad input: one line on stderr, exit status 2, no traceback, nothing written


@pytest.fixture
def garbage_files(tmp_path, paths):
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    fake_png = tmp_path / "fake.png"
    fake_png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(paths.tiny_weights.read_bytes()[:300_000])
    garbage_ckpt = tmp_path / "garbage.safetensors"
    garbage_ckpt.write_bytes(os.urandom(4096))
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("model: [unclosed\n  params: {\n")
    no_model_yaml = tmp_path / "nomodel.yaml"
    no_model_yaml.write_text("something: 1\n")
    old_yaml = tmp_path / "old.yaml"
    cfg = OmegaConf.load(paths.tiny_config)
    cfg.model.params.network_config.params.noise_correlation = 0.2
    OmegaConf.save(cfg, old_yaml)
    empty = tmp_path / "empty"
    empty.mkdir()
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    return locals()


def with_ckpt(args, ckpt):
    args = list(args)
    args[args.index("--ckpt_path") + 1] = ckpt
    return args


BAD_INPUTS = {
    "missing_input": (lambda f, a: a(f["empty"] / "nope.png"), "input path not found"),
    "text_file": (lambda f, a: a(f["text"]), "cannot read image"),
    "png_pil_cannot_open": (lambda f, a: a(f["fake_png"]), "cannot read image"),
    "empty_folder": (lambda f, a: a(f["empty"]), "no .png/.jpg/.jpeg images"),
    "missing_checkpoint": (lambda f, a: with_ckpt(a(), f["empty"] / "none.safetensors"), "checkpoint not found"),
    "missing_version_checkpoint": (lambda f, a: ["--version", "svd_xt", "--device", "cpu", *a()[:2]],
                                   "checkpoint not found: checkpoints/svd_xt.safetensors (looked for "),
    "truncated_checkpoint": (lambda f, a: with_ckpt(a(), f["truncated"]), "cannot read checkpoint"),
    "garbage_checkpoint": (lambda f, a: with_ckpt(a(), f["garbage_ckpt"]), "cannot read checkpoint"),
    "num_frames_zero": (lambda f, a: a(None, "--num_frames", 0), "num_frames must be at least 1"),
    "num_frames_fraction": (lambda f, a: a(None, "--num_frames", 2.5), "num_frames must be an integer"),
    "num_frames_word": (lambda f, a: a(None, "--num_frames", "many"), "num_frames must be an integer"),
    "num_steps_zero": (lambda f, a: a(None, "--num_steps", 0), "num_steps must be at least 1"),
    "seed_too_big": (lambda f, a: a(None, "--seed", 2**64), "seed must fit in 64 bits"),
    "output_folder_is_file": (lambda f, a: a(None, "--output_folder", f["a_file"]), "output_folder exists and is not a folder"),
    "unknown_version": (lambda f, a: a(None, "--version", "svd_ultra"), "unknown version"),
    "missing_config": (lambda f, a: a(None, "--config", f["empty"] / "none.yaml"), "config file not found"),
    "invalid_yaml": (lambda f, a: a(None, "--config", f["bad_yaml"]), "cannot read config"),
    "config_without_model": (lambda f, a: a(None, "--config", f["no_model_yaml"]), "no model section"),
    "sampling_knob_in_network_config": (lambda f, a: a(None, "--config", f["old_yaml"]), "sampler_config.params"),
    "unknown_flag": (lambda f, a: a(None, "--num_framez", 3), "unknown option --num_framez"),
    "image_frame_ratio": (lambda f, a: a(None, "--image_frame_ratio", 0.9), "image_frame_ratio"),
    "bad_device": (lambda f, a: a(None, "--device", "toaster"), "invalid device"),
    "bad_dtype": (lambda f, a: a(None, "--dtype", "float8"), "dtype must be one of"),
    "camera_on_svd": (lambda f, a: a(None, "--elevations_deg", 5), "sv3d_p"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_error(case, garbage_files, tmp_path, paths, tiny_args, sample, one_line_error, monkeypatch):
    """Refused before the model is built (VideoPipeline.load fails the test if reached)."""
    out = tmp_path / "out"
    make_args, message = BAD_INPUTS[case]

    def args(image=None, *extra):
        return tiny_args(paths.image if image is None else image, out, *extra)

    monkeypatch.setattr(VideoPipeline, "load", lambda *a, **k: pytest.fail("the model was built"))
    line = one_line_error(sample(*make_args(garbage_files, args)))
    assert message in line
    assert not out.exists() or not any(out.iterdir())


def test_cuda_device_without_cuda_is_one_line_error(tmp_path, paths, tiny_args, sample, one_line_error):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    assert "CUDA is not available" in one_line_error(sample(*tiny_args(paths.image, tmp_path / "out", "--device", "cuda")))


def test_existing_outputs_survive_a_failed_run(tmp_path, paths, tiny_args, sample, one_line_error):
    out = tmp_path / "out"
    out.mkdir()
    (out / "000000.mp4").write_bytes(b"precious")
    one_line_error(sample(*tiny_args(paths.image, out, "--num_steps", -3)))
    assert snapshot(out) == {"000000.mp4": b"precious"}


def test_help_goes_to_stdout_and_names_every_knob(sample_script, capsys):
    with pytest.raises(SystemExit) as done:
        run_cli(sample_script.main, sample_script.PARSER, ["--help"])
    assert done.value.code == 0
    out, err = capsys.readouterr()
    assert not err and "toy_svd" in out and "--temporal_attn_scale" in out and "--noise_correlation" in out


# --------------------------------------------------------------------------------------------------
# Pieces


def test_reserve_number_skips_every_taken_number(tmp_path):
    for name in ["000000.mp4", "000002.png", "000003.json.bak", "000004_frames", ".partial-x.mp4", "notes.txt"]:
        (tmp_path / name).write_text("x")
    number, path = reserve_number(str(tmp_path), lambda stem: {"stem": stem})
    assert number == 5 and json.loads(open(path).read()) == {"stem": "000005"}
    assert reserve_number(str(tmp_path), lambda stem: {})[0] == 6


def test_sv3d_angles():
    angles = sv3d_angles(21)
    assert angles["elevations_deg"] == [10.0] * 21
    assert len(angles["azimuths_deg"]) == 21 and angles["azimuths_deg"][-1] == 0.0
    assert angles["polars_rad"] == pytest.approx([np.deg2rad(80.0)] * 21)
    assert angles["azimuths_rad"] == pytest.approx([np.deg2rad((k + 1) * 360 / 21 % 360) for k in range(21)])
    custom = sv3d_angles(3, [0, 10, 20], [90, 180, 45])
    assert custom["polars_rad"] == pytest.approx(np.deg2rad([90, 80, 70]).tolist())
    assert custom["azimuths_rad"] == pytest.approx(np.deg2rad([45, 135, 0]).tolist())
    with pytest.raises(InputError, match="elevations_deg has 2 values"):
        sv3d_angles(3, [1, 2])
    with pytest.raises(InputError, match="azimuths_deg has 4 values"):
        sv3d_angles(3, 5.0, [1, 2, 3, 4])


def test_version_configs_resolve_from_the_checkout(paths):
    for version in VERSION_DEFAULTS:
        assert os.path.samefile(resolve_config_path(version), paths.repo / "scripts" / "sampling" / "configs" / f"{version}.yaml")


@pytest.fixture(scope="module")
def sv3d_p_config(tmp_path_factory, paths):
    """The tiny model with SV3D-p's conditioning: camera embedders, per-frame decoder, triangle guider,
    and its checkpoint (the tiny weights with the kept embedders renumbered) as model.params.ckpt_path."""
    folder = tmp_path_factory.mktemp("sv3d")
    renumber = {"conditioner.embedders.3.": "conditioner.embedders.1.", "conditioner.embedders.4.": "conditioner.embedders.2."}
    weights = {}
    for key, value in load_file(str(paths.tiny_weights)).items():
        prefix = next((p for p in renumber if key.startswith(p)), None)
        if not key.startswith(("conditioner.embedders.1.", "conditioner.embedders.2.")) or prefix:
            weights[renumber[prefix] + key[len(prefix):] if prefix else key] = value
    save_file(weights, str(folder / "tiny_sv3d_p.safetensors"))
    cfg = OmegaConf.load(paths.tiny_config)
    cfg.model.params.ckpt_path = str(folder / "tiny_sv3d_p.safetensors")
    embedders = cfg.model.params.conditioner_config.params.emb_models
    clip, vae, cond_aug = embedders[0], embedders[3], embedders[4]
    angle = lambda key: OmegaConf.create(  # noqa: E731
        {"input_key": key, "is_trainable": False, "target": cond_aug.target, "params": {"outdim": 16}})
    cfg.model.params.conditioner_config.params.emb_models = [clip, vae, cond_aug, angle("polars_rad"), angle("azimuths_rad")]
    decoder = cfg.model.params.first_stage_config.params.decoder_config
    decoder.target = "sgm.modules.diffusionmodules.model.Decoder"
    decoder.params.pop("video_kernel_size")
    cfg.model.params.sampler_config.params.guider_config = {
        "target": "sgm.modules.diffusionmodules.guiders.TrianglePredictionGuider", "params": {"max_scale": 2.5, "num_frames": 5}}
    path = folder / "tiny_sv3d_p.yaml"
    OmegaConf.save(cfg, path)
    return path


def test_sv3d_p_camera_reaches_the_model_and_the_input_view_is_kept(sv3d_p_config, paths, tmp_path, sample):
    pipe = VideoPipeline.from_config(sv3d_p_config, device="cpu", version="sv3d_p", progress=False)
    assert pipe.checkpoint.missing == []
    image = str(paths.image)
    orbit = pipe(image, num_frames=5, num_steps=2, seed=0)
    tilted = pipe(image, num_frames=5, num_steps=2, seed=0, elevations_deg=[0, 5, 10, 15, 20])
    assert (orbit.frames[:-1] - tilted.frames[:-1]).abs().max() > 1e-3, "the camera path must change the video"
    assert orbit.record["cond_aug"] == SV3D_COND_AUG
    decoded = pipe.model.decode_first_stage(orbit.latents)
    as_used = (torch.from_numpy(np.array(Image.open(image).convert("RGB"))).permute(2, 0, 1) / 255.0)
    assert (orbit.frames[-1] - as_used).abs().max() < 1e-6, "the last frame is the input view (as upstream)"
    assert ((decoded[-1] + 1) / 2 - as_used).abs().max() > 1e-2, "which the sampler alone did not produce"

    proc = sample("--input_path", image, "--version", "sv3d_p", "--config", sv3d_p_config,
                  "--num_frames", 5, "--num_steps", 2, "--device", "cpu", "--output_folder", tmp_path,
                  "--elevations_deg", "[0,5,10,15,20]")
    assert proc.returncode == 0, proc.stderr
    record = json.loads((tmp_path / "000000.json").read_text())
    assert record["version"] == "sv3d_p" and record["cond_aug"] == SV3D_COND_AUG
    assert record["sv3d_angles"]["elevations_deg"] == [0, 5, 10, 15, 20]
    assert record["sv3d_angles"]["azimuths_deg"] == pytest.approx([72, 144, 216, 288, 0])
    assert record["sv3d_angles"]["polars_rad"] == pytest.approx(np.deg2rad([90, 85, 80, 75, 70]).tolist())
    assert "--elevations_deg" in record["command"]
