#!/usr/bin/env python
"""Train the embedded toy model from scratch and export it: the one command behind toy_svd.

    python scripts/toy/train_toy_model.py [--logdir logs] [--steps 3600] [--finetune_steps 2400]
    python scripts/toy/train_toy_model.py --continue_steps 8000 [--logdir logs]   # continue, resumable
    python scripts/toy/train_toy_model.py --export_continued [--logdir logs]       # export its last checkpoint

--continue_steps N trains the shipped weights further with the low-noise recipe (CONTINUE below),
starting from sgm/checkpoints/toy_svd.safetensors (EMA started from them) or, when
LOGDIR/toy_svd_continue/checkpoints/last.ckpt exists, resuming that run (optimiser, schedule, EMA
and step count) up to N steps in all; it exports the EMA weights when it reaches N. Stop it at any
time: --export_continued exports the last checkpoint (written every 250 steps).

1. the first stage: the top principal directions of 4x4 pixel blocks of synthetic clips
   (LOGDIR/toy_first_stage.safetensors), and scale_factor = 1 / std of its latents, written into
   scripts/sampling/configs/toy_svd.yaml;
2. the diffusion model: sgm.training.train (the trainer behind main.py) on toy_svd.yaml +
   configs/toy/svd_train.yaml, with that first stage loaded into the first_stage_model and into
   the conditioning-frame encoder
   (LOGDIR/toy_svd), noise levels log(sigma) ~ N(0.7, 1.6^2) as SVD;
3. a fine-tune from those weights (EMA included) with a fresh optimiser and schedule and lower noise
   levels, log(sigma) ~ N(-0.6, 1.6^2), which the first phase left under-trained (LOGDIR/toy_svd_finetune);
4. the EMA weights exported as float16 safetensors to sgm/checkpoints/toy_svd.safetensors.
A summary (time, steps, losses) goes to LOGDIR/toy_train_summary.json.
"""
import argparse
import csv
import json
import os
import re
import time

import torch
from omegaconf import OmegaConf
from safetensors.torch import save_file

from sgm.checkpoint import load_checkpoint
from sgm.data.synthetic_motion import SyntheticMotionClips, collate_video
from sgm.training import train
from sgm.util import instantiate_from_config

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout this script is in

INFERENCE_CONFIG = os.path.join(REPO, "scripts", "sampling", "configs", "toy_svd.yaml")
TRAIN_CONFIG = os.path.join(REPO, "configs", "toy", "svd_train.yaml")
EXPORT = os.path.join(REPO, "sgm", "checkpoints", "toy_svd.safetensors")
# The continuation recipe: noise levels aimed at the low end, where the grain of the samples is
# decided (log sigma ~ N(-1.2, 1.2^2): median sigma 0.30, 84% below 1.0), a smaller learning rate.
CONTINUE = {"p_mean": -1.2, "p_std": 1.2, "learning_rate": 1.0e-4, "warm_up_steps": 100}


@torch.no_grad()
def fit_first_stage(config, path: str, clips: int = 96) -> float:
    """Fit the patch projection to synthetic clips (PCA), save it to `path`; returns 1 / latent std."""
    first_stage = instantiate_from_config(config.model.params.first_stage_config)
    encoder, decoder = first_stage.encoder, first_stage.decoder
    data = SyntheticMotionClips(clips, seed=12345, num_frames=config.data.params.num_frames, size=config.data.params.size, pan_prob=config.data.params.pan_prob)
    frames = collate_video([data[i] for i in range(clips)])["jpg"].double()
    blocks = torch.nn.functional.pixel_unshuffle(frames, encoder.patch_size).permute(0, 2, 3, 1).flatten(0, 2)
    mean = blocks.mean(0)
    _, vectors = torch.linalg.eigh(torch.cov((blocks - mean).T))
    basis = vectors.flip(1)[:, : encoder.proj.out_channels].T  # (k, C*p*p), largest variance first
    decoder.set_basis(encoder, basis.float(), mean.float())
    save_file({k: v.contiguous() for k, v in first_stage.state_dict().items()}, path)
    return float(1.0 / first_stage.encode(frames.float()).std())


def set_scale_factor(path: str, value: float) -> None:
    """Rewrite the scale_factor value of the inference config, keeping its comment."""
    text = open(path).read()
    text, count = re.subn(r"(?m)^(\s*scale_factor:)\s*[^\s#]+", rf"\g<1> {value:.6f}", text, count=1)
    if count != 1:
        raise ValueError(f"no scale_factor line in {path}")
    open(path, "w").write(text)


def mean_tail(run_dir: str, key: str = "train/loss", n: int = 20) -> float:
    """Mean of the last n logged values of `key` in the run's metrics.csv (nan if none)."""
    path = os.path.join(run_dir, "metrics.csv")
    values = [float(row[key]) for row in csv.DictReader(open(path)) if row.get(key)] if os.path.isfile(path) else []
    return sum(values[-n:]) / len(values[-n:]) if values else float("nan")


def export(config, checkpoint: str) -> dict:
    """The EMA weights of the Lightning `checkpoint` as float16 safetensors at EXPORT."""
    model = instantiate_from_config(config.model)
    load_checkpoint(model, checkpoint)
    state = {k: v.to(torch.float16) if v.is_floating_point() else v for k, v in model.export_state_dict().items()}
    save_file({k: v.contiguous() for k, v in state.items()}, EXPORT)
    return {"path": os.path.relpath(EXPORT, REPO), "bytes": os.path.getsize(EXPORT), "from": checkpoint}


def use_first_stage(config, first_stage: str) -> None:
    """Train with the fitted first stage at `first_stage` (in the first_stage_model and the
    conditioning-frame encoder) and 15% dropout of the CLIP embedding and of the conditioning latent
    (classifier-free guidance)."""
    embedders = config.model.params.conditioner_config.params.emb_models
    embedders[0].ucg_rate = 0.15
    embedders[3].ucg_rate = 0.15
    embedders[3].params.encoder_config.params.ckpt_path = first_stage
    config.model.params.first_stage_config.params.ckpt_path = first_stage


def continued_config(logdir: str, steps: int):
    """The config of the continuation run: the inference config with the training one, the fitted
    first stage of LOGDIR (fitted again when missing: deterministic), the CONTINUE recipe over `steps`."""
    config = OmegaConf.merge(OmegaConf.load(INFERENCE_CONFIG), OmegaConf.load(TRAIN_CONFIG))
    first_stage = os.path.join(logdir, "toy_first_stage.safetensors")
    if not os.path.isfile(first_stage):
        os.makedirs(logdir, exist_ok=True)
        fit_first_stage(config, first_stage)
    use_first_stage(config, first_stage)
    config.model.params.loss_fn_config.params.sigma_sampler_config.params.p_mean = CONTINUE["p_mean"]
    config.model.params.loss_fn_config.params.sigma_sampler_config.params.p_std = CONTINUE["p_std"]
    config.model.base_learning_rate = CONTINUE["learning_rate"]
    config.model.params.scheduler_config.params.warm_up_steps = CONTINUE["warm_up_steps"]
    config.model.params.scheduler_config.params.cycle_length = steps
    config.lightning.trainer.max_steps = steps
    return config


def continue_training(logdir: str, steps: int, seed: int) -> dict:
    """Train the shipped weights (or resume the continuation run) up to `steps`, then export."""
    config = continued_config(logdir, steps)
    last = os.path.join(logdir, "toy_svd_continue", "checkpoints", "last.ckpt")
    resume = last if os.path.isfile(last) else None
    if resume is None:
        config.model.params.ckpt_path = EXPORT
    start = time.time()
    run_dir = train(config, "toy_svd_continue", logdir, seed, resume=resume)
    config.model.params.ckpt_path = None
    return {"continue": {"steps": steps, "resumed_from": resume, "seconds": round(time.time() - start),
                         "mean_train_loss_last_20_logs": mean_tail(run_dir), **CONTINUE},
            "export": export(config, last)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--logdir", default="logs")
    parser.add_argument("--steps", type=int, default=3600)
    parser.add_argument("--finetune_steps", type=int, default=2400)
    parser.add_argument("--finetune_only", action="store_true", help="reuse LOGDIR/toy_svd from an earlier run")
    parser.add_argument("--seed", type=int, default=23)
    parser.add_argument("--continue_steps", type=int, default=None, help="continue the shipped weights to this many steps")
    parser.add_argument("--export_continued", action="store_true", help="export the continuation run's last checkpoint")
    args = parser.parse_args()
    if args.continue_steps is not None or args.export_continued:
        last = os.path.join(args.logdir, "toy_svd_continue", "checkpoints", "last.ckpt")
        if args.export_continued:
            summary = {"export": export(continued_config(args.logdir, 1), last)}
        else:
            summary = continue_training(args.logdir, args.continue_steps, args.seed + 2)
        print(json.dumps(summary, indent=2))
        return
    summary = {"device": "cuda" if torch.cuda.is_available() else "cpu", "threads": torch.get_num_threads()}

    config = OmegaConf.merge(OmegaConf.load(INFERENCE_CONFIG), OmegaConf.load(TRAIN_CONFIG))
    os.makedirs(args.logdir, exist_ok=True)
    first_stage = os.path.join(args.logdir, "toy_first_stage.safetensors")
    scale = fit_first_stage(config, first_stage)  # deterministic: a rerun gives the same basis
    set_scale_factor(INFERENCE_CONFIG, scale)
    config.model.params.scale_factor = scale
    summary["scale_factor"] = scale

    config.lightning.trainer.max_steps = args.steps
    config.model.params.scheduler_config.params.cycle_length = args.steps
    use_first_stage(config, first_stage)
    start = time.time()
    run_dir = os.path.join(args.logdir, "toy_svd")
    if not args.finetune_only:
        train(config, "toy_svd", args.logdir, args.seed)
    summary["diffusion"] = {"steps": args.steps, "seconds": round(time.time() - start), "mean_train_loss_last_20_logs": mean_tail(run_dir)}

    config.model.params.ckpt_path = os.path.join(run_dir, "checkpoints", "last.ckpt")
    config.model.params.loss_fn_config.params.sigma_sampler_config.params.p_mean = -0.6
    config.lightning.trainer.max_steps = args.finetune_steps
    config.model.params.scheduler_config.params.cycle_length = args.finetune_steps
    start = time.time()
    run_dir = train(config, "toy_svd_finetune", args.logdir, args.seed + 1)
    summary["finetune"] = {"steps": args.finetune_steps, "seconds": round(time.time() - start), "mean_train_loss_last_20_logs": mean_tail(run_dir)}

    config.model.params.ckpt_path = None
    summary["export"] = export(config, os.path.join(run_dir, "checkpoints", "last.ckpt"))
    with open(os.path.join(args.logdir, "toy_train_summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
