"""Failing before the expensive part: strict checkpoints, the output folder and memory checked in
preflight, image sizes, and messages a person can act on. Each failure is one `error:` line with
exit status 2, and nothing is written; in process through the scripts' command-line contract.
"""
import json
import os
import time

import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image
from safetensors.torch import load_file, save_file

from sgm.checkpoint import DROPPABLE_KEYS, CheckpointError, load_checkpoint, load_into
from sgm.inference import VideoPipeline
from sgm.inference.cli import run_cli
from sgm.inference.images import conditioning_image, image_notices, native_sides
from sgm.inference.versions import VERSION_DEFAULTS
from sgm.util import instantiate_from_config

PREFLIGHT_SECONDS = 5.0  # the bound for a run refused in preflight on the toy model


class Loaded(Exception):
    """Raised instead of building the model: the run got past preflight."""


@pytest.fixture
def sample(sample_script, run_in_process):
    return lambda *args: run_in_process(sample_script, *args)


@pytest.fixture
def sweep(sweep_script, run_in_process):
    return lambda *args: run_in_process(sweep_script, *args)


@pytest.fixture
def no_load(monkeypatch):
    def load(*args, **kwargs):
        raise Loaded

    monkeypatch.setattr(VideoPipeline, "load", load)


@pytest.fixture
def no_sampling(monkeypatch):
    monkeypatch.setattr(VideoPipeline, "sample", lambda *a, **k: pytest.fail("sampling started"))


@pytest.fixture(scope="module")
def tiny_weights(paths):
    return load_file(str(paths.tiny_weights))


def unet_weight(state):
    return next(k for k in state if k.startswith("model.diffusion_model.") and k.endswith(".weight"))


def save_variant(folder, name, state):
    path = folder / f"{name}.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return path


# --------------------------------------------------------------------------------------------------
# Strict checkpoints


def checkpoint_variants(state):
    key = unet_weight(state)
    return {
        "one_key": ({key: state[key]}, "lacks {n} of the model's {total} weights"),
        "wrong_shape": ({**state, key: torch.zeros(3, 3)}, f"does not fit the model: {key} is (3, 3) there"),
        "one_unet_weight_missing": ({k: v for k, v in state.items() if k != key}, f"lacks 1 of the model's {{total}} weights ({key})"),
        "missing_and_unexpected": ({**{k: v for k, v in state.items() if k != key}, "extra.weight": torch.zeros(1)},
                                   "it also holds 1 keys the model lacks (extra.weight)"),
    }


@pytest.mark.parametrize("case", ["one_key", "wrong_shape", "one_unet_weight_missing", "missing_and_unexpected"])
def test_checkpoint_that_does_not_fit_is_one_line_before_sampling(case, tmp_path, paths, tiny_weights, tiny_args, sample,
                                                                  one_line_error, no_sampling):
    state, message = checkpoint_variants(tiny_weights)[case]
    ckpt = save_variant(tmp_path, case, state)
    out = tmp_path / "out"
    args = tiny_args(paths.image, out)
    args[args.index("--ckpt_path") + 1] = ckpt
    line = one_line_error(sample(*args))
    total = sum(1 for key in tiny_weights if not DROPPABLE_KEYS.search(key))  # the model's weights
    assert message.format(n=total - 1, total=total) in line
    assert case == "wrong_shape" or "--allow_partial_checkpoint" in line
    assert not out.exists()


def test_allow_partial_checkpoint_samples_and_records_what_was_missing(tmp_path, paths, tiny_weights, tiny_args, sample, caplog):
    key = unet_weight(tiny_weights)
    ckpt = save_variant(tmp_path, "partial", {**{k: v for k, v in tiny_weights.items() if k != key}, "extra.bias": torch.ones(2)})
    args = tiny_args(paths.image, tmp_path / "out", "--allow_partial_checkpoint", "--num_frames", 2, "--num_steps", 1)
    args[args.index("--ckpt_path") + 1] = ckpt
    proc = sample(*args)
    assert proc.returncode == 0, proc.stderr
    record = json.loads((tmp_path / "out" / "000000.json").read_text())
    assert record["checkpoint_missing_keys"] == [key] and record["checkpoint_unexpected_keys"] == ["extra.bias"]
    assert "--allow_partial_checkpoint" in record["command"]
    warnings = [r.getMessage() for r in caplog.records if r.name == "sgm.checkpoint" and r.levelname == "WARNING"]
    assert len(warnings) == 2 and key in warnings[0] and "extra.bias" in warnings[1]


def test_strict_load_in_the_library(paths, tiny_weights, tiny_pipeline):
    cfg = OmegaConf.to_container(tiny_pipeline.config.model, resolve=True)
    cfg["params"].pop("ckpt_path")
    model = instantiate_from_config(cfg)
    key = unet_weight(tiny_weights)
    before = model.state_dict()[key].clone()
    state = {k: v for k, v in tiny_weights.items() if k != key}
    with pytest.raises(CheckpointError, match="lacks 1 of"):
        load_into(model, state)
    report = load_checkpoint(model, str(paths.tiny_weights))
    assert report.missing == [] and report.unexpected == []
    assert not torch.equal(model.state_dict()[key], before)  # the full checkpoint did load
    assert tiny_pipeline.checkpoint.missing == [] and tiny_pipeline.checkpoint.unexpected == []


def test_pickle_with_code_is_refused_without_running_it(tmp_path, paths, tiny_args, sample, one_line_error):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    ckpt = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"a": torch.zeros(1)}, "payload": Payload()}, ckpt)
    args = tiny_args(paths.image, tmp_path / "out")
    args[args.index("--ckpt_path") + 1] = ckpt
    line = one_line_error(sample(*args))
    assert "refused checkpoint" in line and "may only hold tensors" in line and "weights_only" not in line
    assert not marker.exists() and not (tmp_path / "out").exists()


# --------------------------------------------------------------------------------------------------
# Output folder, memory and images in preflight


def unwritable_folder(tmp_path):
    """A folder path whose parent refuses new files, also for root (sysfs); None when none is found."""
    if os.geteuid() != 0:
        parent = tmp_path / "read_only"
        parent.mkdir()
        parent.chmod(0o500)
        return parent / "out"
    probe = "/sys/sgm-motion-preflight"
    try:
        os.mkdir(probe)
    except OSError:
        return os.path.join(probe, "out")
    os.rmdir(probe)
    return None


def test_unwritable_output_folder_is_refused_in_preflight(tmp_path, paths, sample, sweep, one_line_error, no_load):
    folder = unwritable_folder(tmp_path)
    if folder is None:
        pytest.skip("no folder here refuses writes")
    start = time.perf_counter()
    line = one_line_error(sample("--version", "toy_svd", "--input_path", paths.image, "--device", "cpu", "--output_folder", folder))
    assert time.perf_counter() - start < PREFLIGHT_SECONDS
    assert f"cannot write to output_folder {folder}" in line and not os.path.exists(folder)
    line = one_line_error(sweep("--version", "toy_svd", "--input_path", paths.image, "--device", "cpu", "--seed", "1,2",
                                "--output_folder", folder))
    assert f"cannot write to output_folder {folder}" in line


def test_output_folder_under_a_file_is_refused(tmp_path, paths, sample, one_line_error, no_load):
    (tmp_path / "a_file").write_text("x")
    line = one_line_error(sample("--version", "toy_svd", "--input_path", paths.image, "--device", "cpu",
                                 "--output_folder", tmp_path / "a_file" / "out"))
    assert "is not a folder" in line


@pytest.fixture
def huge_image(tmp_path):
    path = tmp_path / "photo_4000x3000.png"
    Image.new("RGB", (4000, 3000), (120, 80, 40)).save(path)
    return path


def test_over_budget_image_is_refused_in_preflight(tmp_path, huge_image, sample, sweep, one_line_error, no_load):
    """The issue's 4000x3000 photo given to the 64x64 toy model, at 64 frames (over any machine's memory)."""
    out = tmp_path / "out"
    args = ("--version", "toy_svd", "--input_path", huge_image, "--device", "cpu", "--num_frames", 64, "--output_folder", out)
    start = time.perf_counter()
    line = one_line_error(sample(*args))
    assert time.perf_counter() - start < PREFLIGHT_SECONDS
    assert "3968x2944" in line and "needs about" in line and "available" in line and "--resize_to_native" in line
    assert "num_frames" in line and not out.exists()
    sweep_line = one_line_error(sweep(*args, "--seed", "1,2"))
    assert "needs about" in sweep_line and not out.exists()
    with pytest.raises(Loaded):  # at the native size the same run passes preflight and goes on to load
        sample(*args, "--resize_to_native")


def test_memory_check_can_be_skipped(tmp_path, sample, one_line_error, no_load):
    image = tmp_path / "wide_2048x1536.png"
    Image.new("RGB", (2048, 1536)).save(image)
    args = ("--version", "toy_svd", "--input_path", image, "--device", "cpu", "--num_frames", 512, "--output_folder", tmp_path / "out")
    assert "needs about" in one_line_error(sample(*args))
    with pytest.raises(Loaded):
        sample(*args, "--nocheck_memory")


def test_thumbnail_is_resized_up_with_a_notice(tmp_path, paths, sample):
    image = tmp_path / "thumb_70x50.png"
    Image.new("RGB", (70, 50), (10, 200, 30)).save(image)
    proc = sample("--version", "toy_svd", "--input_path", image, "--device", "cpu", "--num_frames", 2, "--num_steps", 1,
                  "--output_folder", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    assert f"notice: resized {image} from 70x50 to 64x64 (sides must be multiples of 64, at least 64)" in proc.stdout
    assert proc.stdout.index("Loading model toy_svd") < proc.stdout.index("wrote")
    assert json.loads((tmp_path / "out" / "000000.json").read_text())["image_size"] == [64, 64]


def test_image_sizes_and_notices():
    tall = conditioning_image(Image.new("RGB", (40, 130)))
    assert tall.facts["size"] == [64, 128] and tall.facts["resized"]
    assert native_sides(3840, 2160, (1024, 576)) == (1024, 576)
    assert native_sides(4000, 3000, (1024, 576)) == (896, 640)  # 4:3 at about 1024 * 576 pixels
    big = conditioning_image(Image.new("RGB", (256, 192)))
    notices = image_notices("big.png", big.facts, (64, 64), "toy_svd")
    assert notices == ["notice: big.png is sampled at 256x192, far above the 64x64 toy_svd was trained at "
                       "(slower, more memory, often worse); --resize_to_native resizes it to that pixel count"]
    native = conditioning_image(Image.new("RGB", (256, 192)), native=(64, 64))
    assert native.facts["size"] == [64, 64]
    assert image_notices("big.png", native.facts, (64, 64), "toy_svd") == [
        "notice: resized big.png from 256x192 to 64x64 (toy_svd's native 64x64 pixel count, aspect kept)"]
    assert image_notices("ok.png", conditioning_image(Image.new("RGB", (128, 64))).facts, (64, 64), "toy_svd") == []


# --------------------------------------------------------------------------------------------------
# Messages


def test_no_arguments_says_where_weights_come_from(tmp_path, monkeypatch, sample, one_line_error, no_load):
    monkeypatch.chdir(tmp_path)
    line = one_line_error(sample())
    assert line.startswith("error: checkpoint not found: checkpoints/svd.safetensors (looked for ")
    assert os.path.join(str(tmp_path), "checkpoints", "svd.safetensors") in line
    assert "stabilityai/stable-video-diffusion-img2vid " in line and "never downloads" in line and "--version toy_svd" in line
    assert not (tmp_path / "outputs").exists()


@pytest.mark.parametrize("script", ["sample_script", "sweep_script"])
def test_help_is_on_stdout_readable_and_lists_every_version(script, request, capsys):
    module = request.getfixturevalue(script)
    with pytest.raises(SystemExit) as done:
        run_cli(module.main, module.PARSER, ["--help"])
    out, err = capsys.readouterr()
    assert done.value.code == 0 and not err
    assert all(version in out for version in VERSION_DEFAULTS) and "Type:" not in out and "Optional[" not in out
    assert "--allow_partial_checkpoint" in out and "--resize_to_native" in out and "--check_memory" in out
