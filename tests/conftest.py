"""Shared fixtures: paths of the fixtures, the tiny upstream-parity model, the shipped toy model,
the scripts loaded as modules and their command-line contract run in process."""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from safetensors.torch import load_file

from sgm.checkpoint import load_checkpoint
from sgm.inference import VideoPipeline
from sgm.inference.cli import run_cli
from sgm.util import instantiate_from_config

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
PARITY = FIXTURES / "upstream_parity"


class Paths:
    repo = REPO
    parity = PARITY
    fixtures = FIXTURES
    tiny_config = PARITY / "tiny_svd.yaml"
    tiny_weights = PARITY / "weights.safetensors"
    goldens = PARITY / "goldens.safetensors"
    image = FIXTURES / "image_64.png"
    toy_image = REPO / "assets" / "toy_image.png"
    sample_script = REPO / "scripts" / "sampling" / "simple_video_sample.py"
    sweep_script = REPO / "scripts" / "sampling" / "sweep.py"


@pytest.fixture(autouse=True, scope="session")
def one_thread_per_worker():
    """With pytest-xdist (`-n 2`, the README's test line) each worker process uses one torch thread:
    two workers with two threads each on two cores run 10-50x slower (measured here)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        torch.set_num_threads(1)


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module's tests (use with pytest.mark.usefixtures): the tiny models
    sample fastest so, and 2 shared cores are not oversubscribed."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def paths():
    return Paths


@pytest.fixture(scope="session")
def goldens():
    """Upstream's outputs on the tiny model (tests/fixtures/README.md)."""
    return load_file(str(Paths.goldens))


def build_tiny_model(**network_overrides):
    """The tiny upstream-parity model with its fixture weights, eval mode, CPU float32."""
    cfg = OmegaConf.load(Paths.tiny_config)
    for key, value in network_overrides.items():
        cfg.model.params.network_config.params[key] = value
    model = instantiate_from_config(cfg.model).eval()
    report = load_checkpoint(model, str(Paths.tiny_weights))
    assert not report.missing and not report.unexpected
    return model


@pytest.fixture(scope="session")
def tiny_model_factory():
    return build_tiny_model


@pytest.fixture(scope="module")
def tiny_model():
    return build_tiny_model()


@pytest.fixture(scope="session")
def tiny_pipeline():
    """VideoPipeline over the tiny model (5 frames by its guider, 3 steps), CPU, no progress bar."""
    return VideoPipeline.from_config(Paths.tiny_config, Paths.tiny_weights, device="cpu", progress=False)


@pytest.fixture(scope="session")
def toy_pipeline():
    return VideoPipeline.from_version("toy_svd", device="cpu", progress=False)


def load_script(path: Path):
    """A script as a module (its PARSER and main), without running it."""
    spec = importlib.util.spec_from_file_location(path.stem + "_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def script_loader():
    """load_script, for modules that load a script of their own (benchmarks)."""
    return load_script


@pytest.fixture(scope="session")
def sample_script():
    return load_script(Paths.sample_script)


@pytest.fixture(scope="session")
def sweep_script():
    return load_script(Paths.sweep_script)


class CliResult:
    def __init__(self, code, out, err):
        self.returncode, self.stdout, self.stderr = code, out, err


@pytest.fixture
def run_in_process(capsys):
    """run(script_module, *args) -> CliResult: the script's command-line contract, in this process."""

    def run(script, *args):
        capsys.readouterr()
        code = run_cli(script.main, script.PARSER, [str(a) for a in args])
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return run


def run_subprocess(script: Path, *args, cwd=REPO):
    """The script in a fresh Python process (a true end-to-end run; one thread, as the workers)."""
    return subprocess.run([sys.executable, str(script), *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"})


@pytest.fixture(scope="session")
def run_process():
    return run_subprocess


@pytest.fixture(scope="session")
def one_line_error():
    """Check a CliResult / CompletedProcess is the contract's single `error:` line; returns the line."""

    def check(proc, status=2):
        assert proc.returncode == status, proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
        lines = proc.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
        return lines[0]

    return check


@pytest.fixture(scope="session")
def tiny_args():
    """Flags that run the tiny model (5 frames, 3 steps) on `input_path` into `output_folder`."""

    def args(input_path, output_folder, *extra):
        return ["--input_path", input_path, "--config", Paths.tiny_config, "--ckpt_path", Paths.tiny_weights,
                "--num_frames", 5, "--num_steps", 3, "--device", "cpu", "--output_folder", output_folder, *extra]

    return args


@pytest.fixture(scope="session")
def read_png_frames():
    """NNNNNN_frames/ folder -> uint8 array (T, H, W, 3)."""
    from PIL import Image

    def read(folder):
        return np.stack([np.asarray(Image.open(p)) for p in sorted(Path(folder).glob("*.png"))])

    return read


@pytest.fixture(scope="session")
def read_video():
    def read(path):
        import imageio

        reader = imageio.get_reader(str(path), format="FFMPEG")
        try:
            return np.stack([frame for frame in reader]), reader.get_meta_data()["fps"]
        finally:
            reader.close()

    return read


# --------------------------------------------------------------------------------------------------
# The tiny model's VideoUNet and straightforward references of the temporal attention (T = 12)


def make_unet_inputs(frames=12, seed=0):
    """Inputs of the tiny VideoUNet for 2 clips of `frames` frames (x (2T, 8, 16, 16), ...)."""
    g = torch.Generator().manual_seed(seed)
    n = 2 * frames
    return dict(
        x=torch.randn(n, 8, 16, 16, generator=g),
        timesteps=torch.full((n,), 0.3),
        context=torch.randn(n, 1, 32, generator=g),
        y=torch.randn(n, 48, generator=g),
        num_video_frames=frames,
        image_only_indicator=torch.zeros(2, frames),
    )


@pytest.fixture(scope="session")
def unet_inputs():
    return make_unet_inputs


@pytest.fixture(scope="module")
def unet(tiny_model):
    return tiny_model.model.diffusion_model


@pytest.fixture(scope="module")
def inputs():
    return make_unet_inputs()


@pytest.fixture(scope="module")
def default_out(unet, inputs):
    with torch.no_grad():
        return unet(**inputs)


class Reference:
    """Attention written out plainly: explicit per-head softmax, explicitly listed windows."""

    @staticmethod
    def starts(t, w, r):
        """Linear window starts: 0, r, 2r, ... while the window fits, then T - w if frames remain."""
        starts, s = [], 0
        while s + w <= t:
            starts.append(s)
            s += r
        if starts[-1] + w < t:
            starts.append(t - w)
        return starts

    @staticmethod
    def attention(q, k, v, heads, s, kscale):
        """q, k, v (B, N, H*D); softmax(q (k * kscale)^T * sqrt(s / D)) v per head, in float64."""
        b, n, hd = q.shape
        d = hd // heads
        q, k, v = (x.reshape(b, -1, heads, d).transpose(1, 2).double() for x in (q, k, v))
        logits = q @ (k * kscale).transpose(-1, -2) * (s / d) ** 0.5
        out = torch.softmax(logits, dim=-1) @ v
        return out.transpose(1, 2).reshape(b, n, hd).float()


@pytest.fixture(scope="session")
def reference():
    return Reference


# --------------------------------------------------------------------------------------------------
# 4D inputs


@pytest.fixture
def video_gif(tmp_path):
    """A 3-frame 64x64 GIF of different random frames (the 4D API and sweep tests' input video)."""
    import imageio

    rng = np.random.default_rng(0)
    frames = [(rng.random((64, 64, 3)) * 255).astype(np.uint8) for _ in range(3)]
    path = tmp_path / "clip.gif"
    imageio.mimsave(str(path), frames, duration=0.1)
    return path


@pytest.fixture(scope="session")
def sample_4d2_script():
    """scripts/sampling/simple_video_sample_4d2.py as a module."""
    return load_script(REPO / "scripts" / "sampling" / "simple_video_sample_4d2.py")


@pytest.fixture(scope="session")
def sample_4d_script():
    """scripts/sampling/simple_video_sample_4d.py as a module."""
    return load_script(REPO / "scripts" / "sampling" / "simple_video_sample_4d.py")
