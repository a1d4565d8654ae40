"""Training from YAML configs (upstream sgm's schema) with pytorch_lightning.

    config = load_config(["scripts/sampling/configs/toy_svd.yaml", "configs/toy/svd_train.yaml"], ["model.base_learning_rate=1e-3"])
    run_dir = train(config, "toy_svd", "logs", seed=23)

Configs are merged left to right, then the `key=value` overrides are set (values parsed as YAML;
list items by index, e.g. model.params.conditioner_config.params.emb_models[3].ucg_rate=0.1).
Sections: `model` (target/params, plus base_learning_rate), `data` (a LightningDataModule) and
`lightning` (`trainer`: pl.Trainer arguments; `checkpoint_every`: steps between checkpoints).
`train` writes LOGDIR/NAME/{config.yaml, checkpoints/last.ckpt, metrics.csv}; it runs on CPU or
GPU unchanged. `main.py` is the command line over this module.
"""
import os
from typing import Optional, Sequence

import yaml
from omegaconf import DictConfig, OmegaConf

from .util import instantiate_from_config

DEFAULT_TRAINER = {"accelerator": "auto", "devices": 1, "max_steps": 1000, "log_every_n_steps": 10}
DEFAULT_CHECKPOINT_EVERY = 500
DEFAULT_LEARNING_RATE = 1e-4


def load_config(paths: Sequence[str], overrides: Sequence[str] = ()) -> DictConfig:
    """The YAML files `paths` merged left to right, then the dotted `key=value` overrides set.

    ValueError for a missing file, an override that is not `key=value`, or a merged config without
    a `model` or `data` section (YAML and OmegaConf errors pass through as they are).
    """
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


def train(config: DictConfig, name: str, logdir: str, seed: int, resume: Optional[str] = None) -> str:
    """Fit config.model on config.data (seeded with `seed`, optionally continuing from the
    Lightning checkpoint `resume`); returns the run folder LOGDIR/NAME."""
    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import ModelCheckpoint, TQDMProgressBar
    from pytorch_lightning.loggers import CSVLogger

    pl.seed_everything(seed, workers=True, verbose=False)
    run_dir = os.path.join(logdir, name)
    os.makedirs(run_dir, exist_ok=True)
    OmegaConf.save(config, os.path.join(run_dir, "config.yaml"))
    model = instantiate_from_config(config.model)
    model.learning_rate = float(config.model.get("base_learning_rate", DEFAULT_LEARNING_RATE))
    data = instantiate_from_config(config.data)
    lightning = config.get("lightning") or OmegaConf.create({})
    trainer_kwargs = dict(DEFAULT_TRAINER)
    trainer_kwargs.update(OmegaConf.to_container(lightning.get("trainer") or OmegaConf.create({}), resolve=True))
    checkpoint = ModelCheckpoint(
        dirpath=os.path.join(run_dir, "checkpoints"),
        save_last=True,
        save_top_k=0,
        every_n_train_steps=int(lightning.get("checkpoint_every", DEFAULT_CHECKPOINT_EVERY)),
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
