"""Checks of user-given values: each returns the normalised value or raises InputError (one line).

InputError is a ValueError, so library callers catch it as one; the command-line contract
(sgm.inference.cli) turns it into `error: ...` and exit status 2.
"""
import math
from typing import Any, List, Optional

import torch


class Interrupted(Exception):
    """An interrupt (Ctrl-C) raised where a KeyboardInterrupt would not reach the caller as one
    (Lightning turns it into an exit); the scripts report it as one."""


class InputError(ValueError):
    """Bad user input, reported as one line."""


def one_line(err: BaseException) -> str:
    """The message of `err` on one line (its type name when it has none)."""
    return " ".join(str(err).split()) or type(err).__name__


def as_int(name: str, value: Any, minimum: Optional[int] = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (isinstance(value, float) and not value.is_integer()):
        raise InputError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise InputError(f"{name} must be at least {minimum}, got {value}")
    return value


def as_float(name: str, value: Any, minimum: Optional[float] = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"{name} must be a finite number, got {value!r}")
    value = float(value)
    if minimum is not None and value < minimum:
        raise InputError(f"{name} must be at least {minimum}, got {value}")
    return value


def as_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise InputError(f"{name} must be true or false, got {value!r}")
    return value


def as_seed(value: Any) -> int:
    seed = as_int("seed", value)
    if not -(2**63) <= seed < 2**64:
        raise InputError(f"seed must fit in 64 bits, got {seed}")
    return seed


def as_number_list(name: str, value: Any) -> List[float]:
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise InputError(f"{name} must be a number or a list of numbers, got {value!r}")
    return [as_float(f"{name}[{i}]", v) for i, v in enumerate(value)]


def resolve_device(device: Any) -> torch.device:
    """`device` as a torch.device (default cuda when available, else cpu), refused when absent here."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        parsed = torch.device(str(device)) if not isinstance(device, torch.device) else device
    except RuntimeError as err:
        raise InputError(f"invalid device {str(device)!r}: {str(err).splitlines()[0]}") from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {str(device)!r} requested but CUDA is not available (try --device cpu)")
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"device {str(device)!r} requested but MPS is not available (try --device cpu)")
    return parsed


DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def resolve_dtype(dtype: Any) -> Optional[torch.dtype]:
    """None (float32 on CPU, autocast on CUDA as upstream) or an explicit float32/float16/bfloat16."""
    if dtype is None or isinstance(dtype, torch.dtype) and dtype in DTYPES.values():
        return dtype
    name = str(dtype).replace("torch.", "")
    if name not in DTYPES:
        raise InputError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return DTYPES[name]
