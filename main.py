#!/usr/bin/env python
"""Train a model from YAML configs (upstream sgm's schema): the command line over sgm.training.

    python main.py --base scripts/sampling/configs/toy_svd.yaml configs/toy/svd_train.yaml [more.yaml ...] [--name NAME] [--logdir logs]
                   [--seed 23] [--resume CKPT] [dotted.key=value ...]

Configs are merged left to right, then the `key=value` overrides are set (values parsed as YAML;
list items by index, e.g. model.params.conditioner_config.params.emb_models[3].ucg_rate=0.1).
Sections: `model` (target/params, plus base_learning_rate), `data` (a LightningDataModule) and
`lightning` (`trainer`: pl.Trainer arguments; `checkpoint_every`: steps between checkpoints).
Writes LOGDIR/NAME/{config.yaml, checkpoints/last.ckpt, metrics.csv}. Runs on CPU or GPU unchanged.
A bad config is one line `error: ...` on stderr and exit status 2.
"""
import argparse
import logging
import os
import sys

from sgm.training import load_config, train


def parse_args(argv):
    parser = argparse.ArgumentParser(description="Train a model from YAML configs.")
    parser.add_argument("--base", nargs="+", required=True, metavar="CONFIG", help="YAML configs, merged left to right")
    parser.add_argument("--name", default=None, help="run name (default: the last config's file name)")
    parser.add_argument("--logdir", default="logs")
    parser.add_argument("--seed", type=int, default=23)
    parser.add_argument("--resume", default=None, metavar="CKPT", help="continue from a Lightning checkpoint")
    return parser.parse_known_args(argv)


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
