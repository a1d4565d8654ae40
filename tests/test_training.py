"""Training path: loss pieces against their formulas, config merging, and a smoke run of
sgm.training.train (the trainer behind main.py) whose checkpoint the pipeline and the sampling
script load."""
import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from sgm.inference import VideoPipeline
from sgm.inference.images import frames_to_uint8
from sgm.lr_scheduler import LambdaLinearScheduler
from sgm.modules.diffusionmodules.loss import StandardDiffusionLoss
from sgm.modules.diffusionmodules.loss_weighting import EDMWeighting, VWeighting
from sgm.modules.diffusionmodules.sigma_sampling import EDMSampling
from sgm.modules.ema import LitEma
from sgm.training import load_config, train

REPO = Path(__file__).resolve().parents[1]
TOY = REPO / "scripts" / "sampling" / "configs" / "toy_svd.yaml"
TRAIN = REPO / "configs" / "toy" / "svd_train.yaml"


def test_edm_sampling_is_lognormal():
    torch.manual_seed(0)
    log_sigma = EDMSampling(p_mean=0.7, p_std=1.6)(200_000).log()
    assert abs(log_sigma.mean().item() - 0.7) < 0.02 and abs(log_sigma.std().item() - 1.6) < 0.02


def test_weightings():
    sigma = torch.tensor([0.1, 1.0, 10.0])
    assert torch.allclose(EDMWeighting(0.5)(sigma), (sigma**2 + 0.25) / (sigma * 0.5) ** 2)
    assert torch.allclose(VWeighting()(sigma), (sigma**2 + 1) / sigma**2)


def test_scheduler():
    f = LambdaLinearScheduler(warm_up_steps=10, f_start=0.0, f_max=1.0, f_min=0.1, cycle_length=110)
    assert f(0) == 0.0 and f(5) == 0.5 and f(10) == 1.0
    assert math.isclose(f(60), 0.55) and math.isclose(f(110), 0.1) and math.isclose(f(1000), 0.1)


def test_ema_tracks_parameters():
    net = torch.nn.Linear(2, 2)
    ema = LitEma(net, decay=0.5, use_num_updates=False)
    start = net.weight.detach().clone()
    with torch.no_grad():
        net.weight.add_(1.0)
    ema(net)
    copy = torch.nn.Linear(2, 2)
    ema.copy_to(copy)
    assert torch.allclose(copy.weight, start + 0.5)


class _Recorder(torch.nn.Module):
    """Stands in for network + denoiser: records what the loss hands over, returns zeros."""

    def forward(self, network, x, sigma, cond, **extra):
        self.seen = (x, sigma, cond, extra)
        return torch.zeros_like(x)


def test_loss_repeats_clip_conditioning_and_weights_per_sigma():
    loss_fn = StandardDiffusionLoss(
        {"target": "sgm.modules.diffusionmodules.sigma_sampling.EDMSampling"},
        {"target": "sgm.modules.diffusionmodules.loss_weighting.VWeighting"},
        batch2model_keys=["num_video_frames", "image_only_indicator"],
    )
    b, t = 2, 3
    clip_ctx = torch.randn(b, 1, 5)

    def conditioner(batch):
        return {"crossattn": clip_ctx, "vector": torch.randn(b * t, 4)}

    x = torch.randn(b * t, 4, 2, 2)
    batch = {"num_video_frames": t, "image_only_indicator": torch.zeros(b, t)}
    recorder = _Recorder()
    losses = loss_fn(None, recorder, conditioner, x, batch)
    _, sigma, cond, extra = recorder.seen
    assert torch.equal(cond["crossattn"], clip_ctx.repeat_interleave(t, 0))
    assert extra["num_video_frames"] == t and set(extra) == {"num_video_frames", "image_only_indicator"}
    expected = ((sigma**2 + 1) / sigma**2) * x.pow(2).reshape(b * t, -1).mean(1)
    assert torch.allclose(losses, expected, rtol=1e-5)


def test_load_config_merges_left_to_right_then_overrides(tmp_path):
    extra = tmp_path / "extra.yaml"
    extra.write_text("model:\n  base_learning_rate: 0.5\ndata:\n  params:\n    batch_size: 7\n")
    config = load_config([str(TOY), str(TRAIN), str(extra)], ["data.params.seed=11", "model.params.conditioner_config.params.emb_models[3].ucg_rate=0.25"])
    assert config.model.base_learning_rate == 0.5 and config.data.params.batch_size == 7  # the last file wins
    assert config.data.params.seed == 11 and config.data.params.num_frames == 8  # override set; the rest kept
    assert config.model.params.conditioner_config.params.emb_models[3].ucg_rate == 0.25
    assert config.model.params.ckpt_path is None  # svd_train.yaml overrides toy_svd.yaml's shipped checkpoint


@pytest.mark.parametrize("paths, overrides, message", [
    (["missing.yaml"], [], "config not found: missing.yaml"),
    ([str(TRAIN)], ["--flag"], "unrecognised arguments: --flag"),
    ([str(TRAIN)], ["no_equals"], "unrecognised arguments: no_equals"),
    ([str(TOY)], [], "the config has no 'data' section"),
])
def test_load_config_refuses(paths, overrides, message):
    with pytest.raises(ValueError, match=message):
        load_config(paths, overrides)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """A few steps of the toy diffusion config on one clip at a fixed sigma, random autoencoder."""
    logdir = tmp_path_factory.mktemp("logs")
    config = OmegaConf.merge(OmegaConf.load(TOY), OmegaConf.load(TRAIN))
    params = config.model.params
    params.first_stage_config.params.ckpt_path = None
    params.use_ema = False
    params.scheduler_config = None
    params.loss_fn_config.params.sigma_sampler_config.params.p_std = 0.0  # sigma fixed at e^0.7
    config.model.base_learning_rate = 1e-3
    config.data.params.update(train_clips=1, val_clips=1, batch_size=1)
    config.lightning = {"checkpoint_every": 100, "trainer": {"max_steps": 12, "log_every_n_steps": 1, "limit_val_batches": 0, "enable_progress_bar": False}}
    run_dir = Path(train(config, "smoke", str(logdir), seed=0))
    return run_dir


def test_smoke_training_loss_is_finite_and_decreases(smoke_run):
    rows = [r for r in csv.DictReader(open(smoke_run / "metrics.csv")) if r.get("train/loss")]
    losses = [float(r["train/loss"]) for r in rows]
    assert len(losses) == 12 and all(math.isfinite(v) for v in losses)
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3, losses


def test_trainer_checkpoint_loads_into_the_pipeline_and_the_script(smoke_run, tmp_path, paths, sample_script, run_in_process, read_png_frames):
    """The run's config.yaml and last.ckpt load into VideoPipeline with the trained weights, and the
    sampling script given the same files and flags writes exactly the pipeline's frames."""
    ckpt = smoke_run / "checkpoints" / "last.ckpt"
    pipe = VideoPipeline.from_config(smoke_run / "config.yaml", ckpt, device="cpu", progress=False)
    trained = torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]
    unet = {f"model.diffusion_model.{k}": v for k, v in pipe.model.model.diffusion_model.state_dict().items()}
    assert unet and all(torch.equal(v, trained[k]) for k, v in unet.items())
    out = pipe(paths.image, num_frames=8, num_steps=2)
    assert out.frames.shape == (8, 3, 64, 64) and torch.isfinite(out.frames).all()
    assert out.record["ckpt_path"] == str(ckpt)

    args = ["--input_path", paths.image, "--config", smoke_run / "config.yaml", "--ckpt_path", ckpt, "--num_frames", 8,
            "--num_steps", 2, "--device", "cpu", "--output_folder", tmp_path, "--save_frames"]
    result = run_in_process(sample_script, *args)
    assert result.returncode == 0, result.stderr
    assert np.array_equal(read_png_frames(tmp_path / "000000_frames"), frames_to_uint8(out.frames))
    assert json.loads((tmp_path / "000000.json").read_text())["ckpt_path"] == str(ckpt)


def test_training_continues_from_an_inference_export():
    """The shipped toy weights (an export: no EMA buffers) load strictly into the training model,
    whose EMA then starts from them (what scripts/toy/train_toy_model.py --continue_steps relies on)."""
    from sgm.util import instantiate_from_config

    config = load_config([str(TOY), str(TRAIN)], [f"model.params.ckpt_path={REPO / 'sgm' / 'checkpoints' / 'toy_svd.safetensors'}"])
    model = instantiate_from_config(config.model)
    assert model.use_ema and int(model.model_ema.num_updates) == 0
    shadows = dict(model.model_ema.named_buffers())
    for name, param in model.model.named_parameters():
        assert torch.equal(shadows[model.model_ema.names[name]], param.detach()), name
    pipe = VideoPipeline.from_version("toy_svd", device="cpu", progress=False)
    shipped = pipe.model.state_dict()
    assert all(torch.equal(param.detach(), shipped["model." + name].float()) for name, param in model.model.named_parameters())
