"""The command-line contract shared by every script.

Flags are built from tables (the knob flags from sgm.modules.motion, so their names are defined
once). Values arrive as text and are read by `parse_value`: none/null/~ -> None, true/false (any
case) -> bool, numbers, a bracketed YAML list, else the text. A boolean flag alone means true,
`--noFLAG` false. Bad input is one line `error: ...` on stderr with exit status 2; other failures
one line and exit status 1 (the traceback with --verbose); an interrupt exit status 130.
"""
import argparse
import json
import logging
import shlex
import sys
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import yaml

from ..checkpoint import CheckpointError
from ..modules.motion import ALL_KNOB_NAMES, BOOL_KNOBS, KNOB_HELP
from .checks import InputError, Interrupted, one_line
from .versions import VERSION_DEFAULTS

SAMPLE_SCRIPT = "scripts/sampling/simple_video_sample.py"
SWEEP_SCRIPT = "scripts/sampling/sweep.py"
NOT_GIVEN = argparse.SUPPRESS  # default of flags whose absence means "keep the config's value"

# The flags that choose and check the model, shared by the sampling scripts: (name, default, help).
MODEL_FLAGS = [
    ("version", "svd", f"one of {', '.join(VERSION_DEFAULTS)}; toy_svd is a small model that ships with the package "
                       "and runs at once, the others need their released weights (never downloaded)"),
    ("device", None, "torch device (default cuda when available, else cpu)"),
    ("dtype", None, "float32, float16 or bfloat16 (default: float32 on CPU, upstream's autocast on CUDA)"),
    ("config", None, "a model config YAML instead of the version's shipped config"),
    ("ckpt_path", None, "a checkpoint instead of the config's model.params.ckpt_path"),
    ("resize_to_native", "false", "resize the image to the version's native pixel count (svd 1024x576, sv3d 576x576, "
                                  "toy_svd 64x64), its aspect kept"),
    ("allow_partial_checkpoint", "false", "sample even when the checkpoint lacks weights of the model (they keep their "
                                          "initial values and each JSON lists them); by default that is an error"),
    ("check_memory", "true", "refuse, before loading, a run whose estimated memory exceeds what the device has free "
                             "(--nocheck_memory skips the check)"),
]
MODEL_BOOLEANS = ("resize_to_native", "allow_partial_checkpoint", "check_memory")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise InputError(message)


def make_parser(prog: str, description: str, flags: Iterable[Tuple[str, Any, str]], booleans: Iterable[str]) -> argparse.ArgumentParser:
    """A parser of `--name VALUE` flags, (name, default, help) each, plus every motion knob as a
    flag that keeps the config's value unless given. Names in `booleans` (and boolean knobs) may
    stand alone (true) or as --noNAME (false)."""
    parser = _Parser(prog=prog, description=description, allow_abbrev=False,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    booleans = set(booleans) | set(BOOL_KNOBS)
    knob_flags = [(name, NOT_GIVEN, KNOB_HELP[name] + " (default: the config's)") for name in ALL_KNOB_NAMES]
    for name, default, help_text in [*flags, *knob_flags]:
        metavar = name.upper()
        if name in booleans:
            parser.add_argument(f"--{name}", nargs="?", const="true", default=default, metavar="true|false", help=help_text)
            parser.add_argument(f"--no{name}", dest=name, action="store_const", const="false", default=default, help=argparse.SUPPRESS)
        else:
            parser.add_argument(f"--{name}", default=default, metavar=metavar, help=help_text)
    return parser


def _attach_dash_values(parser: argparse.ArgumentParser, argv: Sequence[str]) -> List[str]:
    """`--flag -1,10` as `--flag=-1,10`: argparse takes a value that starts with '-' and is not a
    plain number for an option."""
    takes_value = {o for a in parser._actions if a.nargs is None and a.option_strings for o in a.option_strings}
    out: List[str] = []
    for token in argv:
        if out and out[-1] in takes_value and token.startswith("-") and token not in parser._option_string_actions:
            out[-1] = f"{out[-1]}={token}"
        else:
            out.append(token)
    return out


def parse_flags(parser: argparse.ArgumentParser, argv: Sequence[str]) -> Dict[str, Any]:
    """The flags given in `argv` (raw text) and the defaults of the others (knob flags only when given)."""
    args, unknown = parser.parse_known_args(_attach_dash_values(parser, list(argv)))
    if unknown:
        options = ", ".join(a.option_strings[0] for a in parser._actions if a.help != argparse.SUPPRESS and a.option_strings)
        raise InputError(f"unknown option {unknown[0].split('=', 1)[0]}; options: {options}")
    return vars(args)


def parse_value(value: Any) -> Any:
    """One command-line value as meant (see the module docstring); non-text values pass unchanged."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    word = text.lower()
    if word in ("none", "null", "~"):
        return None
    if word in ("true", "false"):
        return word == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    if text.startswith("[") and text.endswith("]"):
        try:
            items = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise InputError(f"cannot read the list {text!r}: {one_line(err)}") from None
        return [parse_value(item if not isinstance(item, str) else item) for item in items]
    return text


def command_line(script: str, params: Dict[str, Any]) -> str:
    """`python SCRIPT --key value ...` for the params that are not None (lists as JSON, None-valued
    knobs that must be null written `none` by the caller)."""
    args = ["python", script]
    for key, value in params.items():
        if value is not None:
            args += [f"--{key}", json.dumps(value) if isinstance(value, (list, tuple)) else str(value)]
    return shlex.join(args)


def setup_logging(verbose: bool) -> None:
    """WARNING for everything; with `verbose` DEBUG for sgm and the scripts."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in ("pytorch_lightning", "lightning_fabric"):  # their INFO lines (devices found, tips, ranks) only with verbose
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.WARNING)
    if verbose:
        logging.getLogger().setLevel(logging.INFO)
        for name in ("sgm", "__main__"):
            logging.getLogger(name).setLevel(logging.DEBUG)


def run_cli(main: Callable[[Dict[str, Any]], Any], parser: argparse.ArgumentParser, argv: Optional[Sequence[str]] = None) -> int:
    """Parse `argv` with `parser` and run `main(flags)` under the contract; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = False
    try:
        flags = parse_flags(parser, argv)
        verbose = parse_value(flags.get("verbose", False)) is True
        setup_logging(verbose)
        main(flags)
    except (InputError, CheckpointError) as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        return 2
    except (OSError, ValueError, RuntimeError) as err:
        if verbose:
            logging.getLogger(__name__).exception("failed")
        hint = "" if verbose else " (--verbose shows the traceback)"
        print(f"error: {type(err).__name__}: {one_line(err)}{hint}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, Interrupted):
        print("error: interrupted", file=sys.stderr)
        return 130
    return 0
