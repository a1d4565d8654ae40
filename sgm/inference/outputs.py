"""Writing results: every file goes to a hidden temp file first and is moved into place whole.

Numbered outputs (NNNNNN.mp4, .png, .json, optional .gif and NNNNNN_frames/) never replace an
existing file: NNNNNN is claimed by creating NNNNNN.json exclusively, and a failed write gives the
number back. Files with fixed names (a sweep's cells and views) are replaced atomically.
"""
import json
import os
import re
import shutil
import tempfile
from typing import Any, Callable, Dict, Iterable, Tuple

import numpy as np
from PIL import Image

from .checks import InputError
from .images import frames_to_uint8

NUMBERED = re.compile(r"^(\d{6,})[._]")


def plain_json(value: Any) -> Any:
    """`value` as JSON gives it back (tuples become lists)."""
    return json.loads(json.dumps(value))


def check_output_folder(folder: str) -> None:
    """Refuse (InputError) an output folder that is not a folder or cannot be created and written:
    a file is created and removed in it or, while it does not exist, in its nearest existing parent
    (a real write, so it holds for root and on read-only mounts too). Creates nothing."""
    path = os.path.abspath(folder)
    if os.path.lexists(path) and not os.path.isdir(path):
        raise InputError(f"output_folder exists and is not a folder: {folder}")
    probe = path
    while not os.path.lexists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise InputError(f"cannot create output_folder {folder}: {probe} is not a folder")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".write-test-", dir=probe)
        os.close(fd)
        os.unlink(tmp)
    except OSError as err:
        where = "" if probe == path else f" (it would be made in {probe})"
        raise InputError(f"cannot write to output_folder {folder}{where}: {err.strerror or err}") from None


def _temp_path(folder: str, suffix: str) -> str:
    """A fresh hidden file in `folder` (never matching NNNNNN.*), with the usual umask-based mode."""
    fd, path = tempfile.mkstemp(prefix=".partial-", suffix=suffix, dir=folder or ".")
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)
    return path


def _publish(tmp: str, final: str) -> None:
    """Move `tmp` to `final`, refusing to replace an existing file."""
    try:
        os.link(tmp, final)  # fails if final exists
    except FileExistsError:
        raise OSError(f"refusing to overwrite {final}") from None
    except OSError:  # hard links unsupported here: fall back to a checked rename
        if os.path.lexists(final):
            raise OSError(f"refusing to overwrite {final}") from None
        os.replace(tmp, final)
        return
    os.unlink(tmp)


def atomic_write(final: str, write: Callable[[str], None], overwrite: bool = False) -> None:
    """Run `write(tmp)` on a temp file next to `final`, then move it into place (replacing an
    existing file only with `overwrite`)."""
    tmp = _temp_path(os.path.dirname(final), os.path.splitext(final)[1])
    try:
        write(tmp)
        (os.replace if overwrite else _publish)(tmp, final)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(data: Any, path: str, overwrite: bool = False) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2)
            handle.write("\n")

    atomic_write(path, write, overwrite)


def write_png(image: Image.Image, path: str, overwrite: bool = False) -> None:
    atomic_write(path, lambda tmp: image.save(tmp, format="PNG"), overwrite)


def write_mp4(frames: Any, path: str, fps: int, overwrite: bool = False) -> None:
    """H.264 mp4 of uint8 frames (T, H, W, 3) (or any iterable of them) at `fps`."""
    import imageio

    def write(tmp: str) -> None:
        writer = imageio.get_writer(tmp, format="FFMPEG", mode="I", fps=fps, codec="libx264")
        try:
            for frame in frames:
                writer.append_data(frame)
        finally:
            writer.close()

    atomic_write(path, write, overwrite)


def write_gif(frames: np.ndarray, path: str, fps: int, overwrite: bool = False) -> None:
    """Endlessly looping GIF of uint8 frames (T, H, W, 3) at `fps` (delays are whole centiseconds)."""
    images = [Image.fromarray(frame) for frame in frames]
    atomic_write(path, lambda tmp: images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                                                  loop=0, duration=round(1000 / fps), disposal=1), overwrite)


def write_npz(frames: np.ndarray, path: str, overwrite: bool = False) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, frames=frames)

    atomic_write(path, write, overwrite)


def read_npz(path: str) -> np.ndarray:
    with np.load(path) as data:
        return data["frames"]


def write_pngs(images: Iterable[Tuple[str, np.ndarray]], folder: str) -> None:
    """Folder `folder` of the (file name, uint8 (H, W, 3) image) pairs, created whole or not at all."""
    tmp = tempfile.mkdtemp(prefix=".partial-", dir=os.path.dirname(folder) or ".")
    try:
        for name, image in images:
            Image.fromarray(image).save(os.path.join(tmp, name), format="PNG")
        os.rename(tmp, folder)  # fails if `folder` exists and is not empty
    except OSError:
        if os.path.lexists(folder):
            raise OSError(f"refusing to overwrite {folder}") from None
        raise
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp)


def write_frame_pngs(frames: np.ndarray, folder: str) -> None:
    """Folder `folder` of 000.png, 001.png, ... (uint8 frames (T, H, W, 3)), created whole or not at all."""
    write_pngs(((f"{t:03d}.png", frame) for t, frame in enumerate(frames)), folder)


def reserve_number(folder: str, make_record: Callable[[str], Dict[str, Any]]) -> Tuple[int, str]:
    """Claim the next free number N (no NNNNNN.* or NNNNNN_* exists) by creating NNNNNN.json
    exclusively with `make_record(stem)`. Returns (N, path of the JSON)."""
    taken = [int(m.group(1)) for m in map(NUMBERED.match, os.listdir(folder)) if m]
    number = max(taken, default=-1) + 1
    while True:
        stem = f"{number:06d}"
        json_path = os.path.join(folder, stem + ".json")
        if any(name.startswith((stem + ".", stem + "_")) for name in os.listdir(folder)):
            number += 1
            continue
        try:
            handle = open(json_path, "x", encoding="utf-8")
        except FileExistsError:
            number += 1
            continue
        try:
            with handle:
                json.dump(make_record(stem), handle, indent=2)
                handle.write("\n")
        except BaseException:
            os.unlink(json_path)
            raise
        return number, json_path


def save_numbered(folder: str, output, image: Image.Image, fps: int, record: Dict[str, Any], gif: bool = False,
                  frames: bool = False) -> Dict[str, Any]:
    """Write one video of `output` (a VideoOutput) into `folder` (created when missing) as NNNNNN.mp4 with NNNNNN.png (the image as used),
    NNNNNN.json (`record` plus the file names), NNNNNN.gif with `gif`, NNNNNN_frames/ with `frames`.
    Returns the record as written."""
    video = frames_to_uint8(output.frames)
    os.makedirs(folder, exist_ok=True)

    def full_record(stem: str) -> Dict[str, Any]:
        names = {"video": stem + ".mp4", "image": stem + ".png", "gif": stem + ".gif" if gif else None,
                 "frames": stem + "_frames" if frames else None, "video_fps": fps}
        return {**names, **record}

    number, json_path = reserve_number(folder, full_record)
    stem = os.path.join(folder, f"{number:06d}")
    written = []
    try:
        for path, write in ((stem + ".png", lambda p: write_png(image, p)), (stem + ".mp4", lambda p: write_mp4(video, p, fps)),
                            (stem + ".gif" if gif else None, lambda p: write_gif(video, p, fps)),
                            (stem + "_frames" if frames else None, lambda p: write_frame_pngs(video, p))):
            if path is not None:
                write(path)
                written.append(path)
    except BaseException:
        for path in written:  # only files this call created: give the number back
            shutil.rmtree(path) if os.path.isdir(path) else os.unlink(path)
        os.unlink(json_path)
        raise
    return full_record(f"{number:06d}")
