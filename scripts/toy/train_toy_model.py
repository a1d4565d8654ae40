#!/usr/bin/env python
"""Train the embedded toy model from scratch and export it: the one command behind toy_svd.

    python scripts/toy/train_toy_model.py [--logdir logs] [--ae_steps 900] [--steps 3000]

1. the autoencoder (configs/toy/autoencoder.yaml) with main.py's trainer;
2. scale_factor = 1 / std of its latents on held-out clips, written into
   scripts/sampling/configs/toy_svd.yaml;
3. the diffusion model (toy_svd.yaml + configs/toy/svd_train.yaml, the autoencoder loaded into the
   first stage and the conditioning-frame encoder);
4. the EMA weights exported as float16 safetensors to sgm/checkpoints/toy_svd.safetensors.
A summary (times, steps, losses) goes to LOGDIR/toy_train_summary.json.
"""
import argparse
import json
import os
import re
import sys
import time

import torch
from omegaconf import OmegaConf
from safetensors.torch import save_file

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)

from main import train  # noqa: E402
from sgm.checkpoint import load_checkpoint  # noqa: E402
from sgm.data.synthetic_motion import SyntheticMotionClips, collate_video  # noqa: E402
from sgm.util import instantiate_from_config  # noqa: E402

INFERENCE_CONFIG = os.path.join(REPO, "scripts", "sampling", "configs", "toy_svd.yaml")
AE_CONFIG = os.path.join(REPO, "configs", "toy", "autoencoder.yaml")
TRAIN_CONFIG = os.path.join(REPO, "configs", "toy", "svd_train.yaml")
EXPORT = os.path.join(REPO, "sgm", "checkpoints", "toy_svd.safetensors")


@torch.no_grad()
def latent_scale_factor(ae_config, ae_ckpt: str, clips: int = 32) -> float:
    """1 / std of the autoencoder's latent means over held-out synthetic clips."""
    ae = instantiate_from_config(ae_config.model).eval()
    load_checkpoint(ae, ae_ckpt)
    data = SyntheticMotionClips(clips, seed=12345, **{k: ae_config.data.params[k] for k in ("num_frames", "size")})
    frames = collate_video([data[i] for i in range(clips)])["jpg"]
    latents = torch.cat([ae.encoder(frames[i : i + 64]).chunk(2, dim=1)[0] for i in range(0, len(frames), 64)])
    return float(1.0 / latents.std())


def set_scale_factor(path: str, value: float) -> None:
    """Rewrite the scale_factor line of the inference config, keeping its comments."""
    text = open(path).read()
    text, count = re.subn(r"(?m)^(\s*scale_factor:)\s*[^\s#]+", rf"\g<1> {value:.6f}", text, count=1)
    if count != 1:
        raise ValueError(f"no scale_factor line in {path}")
    open(path, "w").write(text)


def last_metric(run_dir: str, key: str):
    path = os.path.join(run_dir, "metrics.csv")
    if not os.path.isfile(path):
        return None
    import csv

    values = [row[key] for row in csv.DictReader(open(path)) if row.get(key)]
    return float(values[-1]) if values else None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--logdir", default="logs")
    parser.add_argument("--ae_steps", type=int, default=900)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=23)
    parser.add_argument("--skip_autoencoder", action="store_true", help="reuse LOGDIR/toy_autoencoder")
    args = parser.parse_args()
    summary = {"device": "cuda" if torch.cuda.is_available() else "cpu", "threads": torch.get_num_threads()}

    ae_config = OmegaConf.load(AE_CONFIG)
    ae_config.lightning.trainer.max_steps = args.ae_steps
    ae_dir = os.path.join(args.logdir, "toy_autoencoder")
    start = time.time()
    if not args.skip_autoencoder:
        train(ae_config, "toy_autoencoder", args.logdir, args.seed)
    summary["autoencoder"] = {"steps": args.ae_steps, "seconds": round(time.time() - start), "last_train_loss": last_metric(ae_dir, "train/loss")}
    ae_ckpt = os.path.join(ae_dir, "checkpoints", "last.ckpt")

    scale = latent_scale_factor(ae_config, ae_ckpt)
    set_scale_factor(INFERENCE_CONFIG, scale)
    summary["scale_factor"] = scale

    config = OmegaConf.merge(OmegaConf.load(INFERENCE_CONFIG), OmegaConf.load(TRAIN_CONFIG))
    config.lightning.trainer.max_steps = args.steps
    config.model.params.scheduler_config.params.cycle_length = args.steps
    embedders = config.model.params.conditioner_config.params.emb_models
    embedders[0].ucg_rate = 0.15  # CLIP embedding dropped for 15% of clips (classifier-free guidance)
    embedders[3].ucg_rate = 0.15  # conditioning latent likewise
    embedders[3].params.encoder_config.params.ckpt_path = ae_ckpt
    config.model.params.first_stage_config.params.ckpt_path = ae_ckpt
    start = time.time()
    run_dir = train(config, "toy_svd", args.logdir, args.seed)
    summary["diffusion"] = {"steps": args.steps, "seconds": round(time.time() - start), "last_train_loss": last_metric(run_dir, "train/loss")}

    model = instantiate_from_config(config.model)
    load_checkpoint(model, os.path.join(run_dir, "checkpoints", "last.ckpt"))
    state = {k: v.to(torch.float16) if v.is_floating_point() else v for k, v in model.export_state_dict().items()}
    save_file({k: v.contiguous() for k, v in state.items()}, EXPORT)
    summary["export"] = {"path": os.path.relpath(EXPORT, REPO), "bytes": os.path.getsize(EXPORT)}
    with open(os.path.join(args.logdir, "toy_train_summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
