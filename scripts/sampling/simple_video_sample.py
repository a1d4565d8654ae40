#!/usr/bin/env python
"""Turn an image (or every .png/.jpg/.jpeg image in a folder) into a short video with Stable Video
Diffusion (svd, svd_xt, svd_xt_1_1, svd_image_decoder, svd_xt_image_decoder), an orbit with SV3D
(sv3d_u, sv3d_p), or a 64x64 clip with toy_svd, the small model that ships with the package.

For each image, OUTPUT_FOLDER receives NNNNNN.mp4 (fps_id + 1 frames per second), NNNNNN.png (the
image as used) and NNNNNN.json (the record: every setting, and a command that reproduces it), with
--gif a looping NNNNNN.gif and with --save_frames the frames as NNNNNN_frames/TTT.png. Nothing is
overwritten: NNNNNN is the next free number. Every image is sampled with the same seed, exactly as
sgm.inference.VideoPipeline samples it alone. Checkpoints are never downloaded. SV3D takes the
image as given (square, object-centred, plain background).

Every motion knob (docs/PATCHES.md) is a flag; unset, the config's value holds; `none` sets null.
Bad input is one line `error: ...` on stderr and exit status 2, before the model is loaded.
"""
import datetime
import os
import sys

from sgm.inference import VideoPipeline, conditioning_image
from sgm.inference.checks import InputError, as_bool, resolve_device, resolve_dtype
from sgm.inference.cli import NOT_GIVEN, SAMPLE_SCRIPT, command_line, make_parser, parse_value, run_cli
from sgm.inference.images import SIDE_MULTIPLE, list_input_images
from sgm.inference.loading import resolve_config_path
from sgm.inference.outputs import save_numbered
from sgm.inference.settings import CAMERA_PARAMS
from sgm.modules.motion import ALL_KNOB_NAMES

FLAGS = [
    ("input_path", "assets/test_image.png", "an image, or a folder whose .png/.jpg/.jpeg images are all used"),
    ("version", "svd", "svd, svd_xt, svd_xt_1_1, svd_image_decoder, svd_xt_image_decoder, sv3d_u, sv3d_p or toy_svd"),
    ("num_frames", None, "frames to generate (default per version: svd 14, svd_xt 25, sv3d 21, toy_svd 8)"),
    ("num_steps", None, "sampler steps (default per version: svd 25, svd_xt 30, sv3d 50, toy_svd 16)"),
    ("fps_id", 6, "frame-rate conditioning (SVD); the mp4 plays at fps_id + 1 frames per second"),
    ("motion_bucket_id", 127, "amount-of-motion conditioning (SVD), 0..255"),
    ("cond_aug", None, "noise added to the conditioning image (default 0.02; 1e-5 for sv3d)"),
    ("seed", 23, "seed of the call's torch.Generator (each image uses it)"),
    ("decoding_t", 14, "frames decoded at once by the VAE (lower it to save memory)"),
    ("device", None, "torch device (default cuda when available, else cpu)"),
    ("dtype", None, "float32, float16 or bfloat16 (default: float32 on CPU, upstream's autocast on CUDA)"),
    ("output_folder", None, "where to write (default outputs/simple_video_sample/<version>/)"),
    ("elevations_deg", NOT_GIVEN, "sv3d_p camera elevation, one number or a list with one per frame (default 10)"),
    ("azimuths_deg", NOT_GIVEN, "sv3d_p camera azimuths, a list with one per frame (default an even orbit)"),
    ("image_frame_ratio", None, "not supported (SV3D background removal and re-framing are out of scope)"),
    ("config", None, "a model config YAML instead of the version's shipped config"),
    ("ckpt_path", None, "a checkpoint instead of the config's model.params.ckpt_path"),
    ("gif", "false", "also write an endlessly looping GIF of each video"),
    ("save_frames", "false", "also write every frame as a PNG (NNNNNN_frames/)"),
    ("verbose", "false", "log at DEBUG level (a progress bar over the steps is always shown)"),
]
BOOLEANS = ("gif", "save_frames", "verbose")
CALL_FLAGS = ("num_frames", "num_steps", "fps_id", "motion_bucket_id", "cond_aug", "seed", "decoding_t")


def reproduce_command(flags, settings_flags):
    """The command that reproduces one video (paths and settings as given, defaults filled in)."""
    fixed = {k: flags[k] for k in ("input_path", "version", "device", "dtype", "output_folder", "config", "ckpt_path")}
    knobs = {k: "none" if v is None else v for k, v in settings_flags.items()}
    toggles = {k: True for k in ("gif", "save_frames") if flags[k]}
    return command_line(SAMPLE_SCRIPT, {**fixed, **knobs, **toggles})


def main(flags):
    flags = {k: parse_value(v) for k, v in flags.items()}
    for name in BOOLEANS:
        flags[name] = as_bool(name, flags[name])
    if flags["image_frame_ratio"] is not None:
        raise InputError("image_frame_ratio belongs to SV3D background removal and re-framing, which sgm-motion "
                         "leaves out; frame the object in the image yourself")
    defaults = VideoPipeline.preflight(flags["version"], flags["config"], flags["ckpt_path"])
    knobs = {k: v for k, v in flags.items() if k in ALL_KNOB_NAMES + CAMERA_PARAMS}  # only those given
    settings = defaults.settings(**{k: flags[k] for k in CALL_FLAGS if flags[k] is not None}, **knobs)
    images = [(path, conditioning_image(path)) for path in list_input_images(flags["input_path"])]
    folder = str(flags["output_folder"] or os.path.join("outputs", "simple_video_sample", defaults.version))
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise InputError(f"output_folder exists and is not a folder: {folder}")
    device, dtype = resolve_device(flags["device"]), resolve_dtype(flags["dtype"])
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as err:
        raise InputError(f"cannot create output_folder {folder}: {err.strerror or err}") from None

    config_path = resolve_config_path(defaults.version, flags["config"])
    pipe = VideoPipeline.from_config(config_path, flags["ckpt_path"], device, dtype, version=defaults.version)
    resolved = settings.as_dict()
    command = reproduce_command({**flags, "device": str(device), "output_folder": folder}, {**{k: resolved[k] for k in CALL_FLAGS}, **knobs})
    for index, (path, image) in enumerate(images):
        if image.facts["resized"]:
            w, h = image.facts["original_size"]
            print(f"notice: resized {path} from {w}x{h} to {image.facts['size'][0]}x{image.facts['size'][1]} "
                  f"(sides must be multiples of {SIDE_MULTIPLE})")
        output = pipe.sample(image, settings)
        extra = {"input_path": str(flags["input_path"]), "image_index": index, "video_fps_rule": "fps_id + 1",
                 "command": command, "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
        record = save_numbered(folder, output, image.pil, settings.fps_id + 1, {**extra, **output.record},
                               gif=flags["gif"], frames=flags["save_frames"])
        print(f"wrote {os.path.join(folder, record['video'])}" + (f" and {record['gif']}" if record["gif"] else ""))


PARSER = make_parser("simple_video_sample.py", __doc__, FLAGS, BOOLEANS)

if __name__ == "__main__":
    sys.exit(run_cli(main, PARSER))
