"""Conditioning images in and video frames out.

Images are RGB with both sides multiples of 64 (the VAE factor 8 times the UNet's downsampling),
cut down to one or, under 64 pixels, raised to 64; as tensors they are (1, 3, H, W) float in [-1, 1]. Frames are (T, 3, H, W) in [0, 1].
"""
import hashlib
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
from PIL import Image

from .checks import InputError, one_line

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
SIDE_MULTIPLE = 64


@dataclass(frozen=True)
class ConditioningImage:
    """The image a call is conditioned on: `tensor` (1, 3, H, W) in [-1, 1] on the CPU and facts
    for the record (`facts`: size, sha256 of the pixels, and for files path, mode, original size)."""

    tensor: torch.Tensor
    facts: Dict[str, Any]

    @property
    def pil(self) -> Image.Image:
        """The image as 8-bit RGB (exactly the file's pixels after conversion and resizing)."""
        arr = ((self.tensor[0].permute(1, 2, 0) + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)
        return Image.fromarray(arr.numpy())


def list_input_images(input_path: Any) -> List[str]:
    """The image files named by `input_path`: the file itself, or the folder's .png/.jpg/.jpeg files, sorted."""
    if input_path is None or isinstance(input_path, bool) or str(input_path) == "":
        raise InputError("input_path is required")
    input_path = str(input_path)
    if os.path.isdir(input_path):
        names = sorted(
            n for n in os.listdir(input_path)
            if n.lower().endswith(IMAGE_SUFFIXES) and os.path.isfile(os.path.join(input_path, n))
        )
        if not names:
            raise InputError(f"no {'/'.join(IMAGE_SUFFIXES)} images in folder {input_path}")
        return [os.path.join(input_path, n) for n in names]
    if os.path.isfile(input_path):
        return [input_path]
    if os.path.exists(input_path):
        raise InputError(f"input path is neither a file nor a folder: {input_path}")
    raise InputError(f"input path not found: {input_path}")


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode -> 8-bit RGB (alpha is dropped; 16-bit and float grayscale are scaled to 8 bits)."""
    if image.mode == "RGB":
        return image
    if image.mode.startswith("I;16") or image.mode == "I":
        arr = np.asarray(image, dtype=np.float64) / 257.0
        image = Image.fromarray(np.clip(np.round(arr), 0, 255).astype(np.uint8), mode="L")
    elif image.mode == "F":
        arr = np.asarray(image, dtype=np.float64)
        if arr.size and np.nanmax(arr) <= 1.0:
            arr = arr * 255.0
        image = Image.fromarray(np.clip(np.nan_to_num(np.round(arr)), 0, 255).astype(np.uint8), mode="L")
    elif image.mode in ("La", "PA"):
        image = image.convert("RGBA")
    return image.convert("RGB")


def valid_sides(width: int, height: int) -> Tuple[int, int]:
    """The size an image of `width` x `height` is sampled at: each side cut down to a multiple of 64,
    and a side under 64 pixels raised to 64."""
    return tuple(max(SIDE_MULTIPLE, side - side % SIDE_MULTIPLE) for side in (width, height))


def native_sides(width: int, height: int, native: Tuple[int, int]) -> Tuple[int, int]:
    """The size with the pixel count of `native` (width, height) and the aspect of `width` x
    `height`, sides rounded to multiples of 64 (exactly `native` when the aspects agree)."""
    scale = (native[0] * native[1] / (width * height)) ** 0.5
    return tuple(max(SIDE_MULTIPLE, int(round(side * scale / SIDE_MULTIPLE)) * SIDE_MULTIPLE) for side in (width, height))


def fit_sides(image: Image.Image, size: Optional[Tuple[int, int]] = None) -> Image.Image:
    """RGB `image` at `size` (width, height), by default valid_sides of its own (bicubic when it changes)."""
    size = tuple(size or valid_sides(*image.size))
    return image if size == image.size else image.resize(size, Image.Resampling.BICUBIC)


def sampled_size(path: str, native: Optional[Tuple[int, int]] = None) -> Tuple[int, int]:
    """(width, height) the image file `path` will be sampled at (conditioning_image's rule), read
    from the file's header without decoding the pixels."""
    try:
        with Image.open(path) as opened:
            width, height = opened.size
    except Exception as err:  # PIL raises many types for undecodable files; all mean "not an image"
        raise InputError(f"cannot read image {path}: {one_line(err)}") from None
    return native_sides(width, height, native) if native is not None else valid_sides(width, height)


def read_image(path: str) -> Tuple[Image.Image, Dict[str, Any]]:
    """Open `path` as 8-bit RGB; returns (image, facts about the file: path, mode, original size)."""
    try:
        with Image.open(path) as opened:
            opened.load()
            mode, original_size = opened.mode, opened.size
            image = to_rgb(opened)
            image.load()
    except Exception as err:  # PIL raises many types for undecodable files; all mean "not an image"
        raise InputError(f"cannot read image {path}: {one_line(err)}") from None
    return image, {"path": os.path.abspath(path), "mode": mode, "original_size": list(original_size)}


def pil_to_tensor(image: Image.Image) -> torch.Tensor:
    """RGB PIL image -> float32 tensor (1, 3, H, W) in [-1, 1]."""
    x = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1).float().div(255.0)
    return (x * 2.0 - 1.0).unsqueeze(0)


def _check_tensor(image: torch.Tensor) -> torch.Tensor:
    x = image.detach()
    if x.ndim == 3:
        x = x.unsqueeze(0)
    if x.ndim != 4 or x.shape[:2] != (1, 3):
        raise InputError(f"an image tensor is (3, H, W) or (1, 3, H, W), got {tuple(image.shape)}")
    if not x.is_floating_point() or not bool(torch.isfinite(x).all()):
        raise InputError("an image tensor holds finite floating-point values in [-1, 1]")
    if float(x.min()) < -1.0 - 1e-3 or float(x.max()) > 1.0 + 1e-3:
        raise InputError(f"an image tensor holds values in [-1, 1], got [{float(x.min()):.3g}, {float(x.max()):.3g}]")
    h, w = x.shape[-2:]
    if h % SIDE_MULTIPLE or w % SIDE_MULTIPLE:
        raise InputError(f"an image tensor's sides must be multiples of {SIDE_MULTIPLE}, got {w}x{h}")
    return x.float().cpu()


def conditioning_image(image: Any, native: Optional[Tuple[int, int]] = None) -> ConditioningImage:
    """A path, a PIL image or a (3, H, W) / (1, 3, H, W) tensor in [-1, 1] as a ConditioningImage.

    Images are brought to valid sides (valid_sides) or, given `native` (width, height), to
    native_sides; a tensor must already have valid sides."""
    facts: Dict[str, Any] = {}
    if isinstance(image, (str, os.PathLike)):
        image, facts = read_image(os.fspath(image))
    elif isinstance(image, Image.Image):
        facts = {"mode": image.mode, "original_size": list(image.size)}
        image = to_rgb(image)
    if isinstance(image, Image.Image):
        image = fit_sides(image, None if native is None else native_sides(*image.size, native))
        facts["resized"] = list(image.size) != facts["original_size"]
        facts["resized_to_native"] = native is not None
        tensor = pil_to_tensor(image)
    elif isinstance(image, torch.Tensor):
        tensor = _check_tensor(image)
    else:
        raise InputError(f"image must be a path, a PIL image or a tensor, got {type(image).__name__}")
    facts["size"] = [int(tensor.shape[-1]), int(tensor.shape[-2])]
    facts["sha256"] = hashlib.sha256(tensor.numpy().tobytes()).hexdigest()
    return ConditioningImage(tensor, facts)


FAR_ABOVE_NATIVE = 2.0  # pixel count over the native one beyond which an image gets a notice


def image_notices(name: str, facts: Dict[str, Any], native: Optional[Tuple[int, int]], model: str = "the model") -> List[str]:
    """The lines that tell a person what happened to image `name` (facts of a ConditioningImage):
    resized, and why; far above the `native` (width, height) resolution of `model`."""
    lines = []
    if facts.get("resized"):
        (w, h), (new_w, new_h) = facts["original_size"], facts["size"]
        why = (f"{model}'s native {native[0]}x{native[1]} pixel count, aspect kept" if facts.get("resized_to_native")
               else f"sides must be multiples of {SIDE_MULTIPLE}" + (f", at least {SIDE_MULTIPLE}" if min(w, h) < SIDE_MULTIPLE else ""))
        lines.append(f"notice: resized {name} from {w}x{h} to {new_w}x{new_h} ({why})")
    if native is not None and not facts.get("resized_to_native") and facts["size"][0] * facts["size"][1] > FAR_ABOVE_NATIVE * native[0] * native[1]:
        w, h = facts["size"]
        lines.append(f"notice: {name} is sampled at {w}x{h}, far above the {native[0]}x{native[1]} {model} was trained at "
                     "(slower, more memory, often worse); --resize_to_native resizes it to that pixel count")
    return lines


def frames_to_uint8(frames: torch.Tensor) -> np.ndarray:
    """(T, 3, H, W) in [0, 1] -> (T, H, W, 3) uint8 (scaled by 255 and truncated, as upstream)."""
    return (frames.permute(0, 2, 3, 1).float() * 255).cpu().numpy().astype(np.uint8)
