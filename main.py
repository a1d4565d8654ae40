#!/usr/bin/env python
"""Train a model from YAML configs (upstream sgm's schema) with pytorch_lightning.

    python main.py --base scripts/sampling/configs/toy_svd.yaml configs/toy/svd_train.yaml [more.yaml ...] [--name NAME] [--logdir logs]
                   [--seed 23] [--resume CKPT] [dotted.key=value ...]

Configs are merged left to right, then the `key=value` overrides are set (values parsed as YAML;
list items by index, e.g. model.params.conditioner_config.params.emb_models[3].ucg_rate=0.1).
Sections: `model` (target/params, plus base_learning_rate), `data` (a LightningDataModule) and
`lightning` (`trainer`: pl.Trainer arguments; `checkpoint_every`: steps between checkpoints).
Writes LOGDIR/NAME/{config.yaml, checkpoints/last.ckpt, metrics.csv}. Runs on CPU or GPU unchanged.
"""
import argparse
import logging
import os
import sys

import yaml
from omegaconf import OmegaConf

from sgm.util import instantiate_from_config

logger = logging.getLogger("main")


def parse_args(argv):
    parser = argparse.ArgumentParser(description="Train a model from YAML configs.")
    parser.add_argument("--base", nargs="+", required=True, metavar="CONFIG", help="YAML configs, merged left to right")
    parser.add_argument("--name", default=None, help="run name (default: the last config's file name)")
    parser.add_argument("--logdir", default="logs")
    parser.add_argument("--seed", type=int, default=23)
    parser.add_argument("--resume", default=None, metavar="CKPT", help="continue from a Lightning checkpoint")
    return parser.parse_known_args(argv)


def load_config(paths, overrides):
    for path in paths:
        if not os.path.isfile(path):
            raise ValueError(f"config not found: {path}")
    bad = [o for o in overrides if "=" not in o or o.startswith("-")]
    if bad:
        raise ValueError(f"unrecognised arguments: {' '.join(bad)} (overrides are dotted.key=value)")
    config = OmegaConf.merge(*[OmegaConf.load(p) for p in paths])
    for override in overrides:
        key, value = override.split("=", 1)
        OmegaConf.update(config, key, yaml.safe_load(value), force_add=True)
    for section in ("model", "data"):
        if section not in config:
            raise ValueError(f"the config has no '{section}' section")
    return config


def train(config, name: str, logdir: str, seed: int, resume=None):
    """Fit config.model on config.data; returns the run folder."""
    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import ModelCheckpoint, TQDMProgressBar
    from pytorch_lightning.loggers import CSVLogger

    pl.seed_everything(seed, workers=True, verbose=False)
    run_dir = os.path.join(logdir, name)
    os.makedirs(run_dir, exist_ok=True)
    OmegaConf.save(config, os.path.join(run_dir, "config.yaml"))
    model = instantiate_from_config(config.model)
    model.learning_rate = float(config.model.get("base_learning_rate", 1e-4))
    data = instantiate_from_config(config.data)
    lightning = config.get("lightning", {})
    trainer_kwargs = {"accelerator": "auto", "devices": 1, "max_steps": 1000, "log_every_n_steps": 10}
    trainer_kwargs.update(OmegaConf.to_container(lightning.get("trainer", {}), resolve=True))
    checkpoint = ModelCheckpoint(
        dirpath=os.path.join(run_dir, "checkpoints"),
        save_last=True,
        save_top_k=0,
        every_n_train_steps=int(lightning.get("checkpoint_every", 500)),
    )
    callbacks = [checkpoint]
    if trainer_kwargs.get("enable_progress_bar", True):
        callbacks.append(TQDMProgressBar(refresh_rate=10))
    trainer = pl.Trainer(
        default_root_dir=run_dir,
        callbacks=callbacks,
        logger=CSVLogger(logdir, name=name, version=""),
        enable_model_summary=False,
        **trainer_kwargs,
    )
    trainer.fit(model, datamodule=data, ckpt_path=resume)
    return run_dir


def main(argv=None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args, overrides = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        config = load_config(args.base, overrides)
    except Exception as err:  # YAML and OmegaConf raise many types for a bad config
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    name = args.name or os.path.splitext(os.path.basename(args.base[-1]))[0]
    run_dir = train(config, name, args.logdir, args.seed, args.resume)
    print(f"checkpoints in {os.path.join(run_dir, 'checkpoints')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
