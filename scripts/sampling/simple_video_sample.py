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
Bad input is one line `error: ...` on stderr and exit status 2, before the model is loaded and
before anything is written: flags, knobs, config, checkpoint file, images, that the output folder
can be written, and that the estimated memory fits in what the device has free. A checkpoint that
lacks weights of the model is refused when it is loaded (before any sampling). The output folder is
created when the first video is written.

As a job (any of Lightning's --accelerator, --devices, --num_nodes, --strategy, or --resume or
--collect_only; --output_folder required): the images are the items of a one-cell job
(sgm.inference.job), sampled on Trainer.predict with one process per device, each written by the
process that made it under the image's name: imgNNN_<stem>.npz / .mp4 / .json (with --gif .gif,
with --save_frames imgNNN_<stem>_frames/), and imgNNN_<stem>.png the image as used; rank 0 then
writes manifest.json, metrics.csv, grid.mp4 and contact_sheet.png. --resume samples only the
images whose files are missing; a video does not depend on the process that made it.
    python scripts/sampling/simple_video_sample.py --input_path images/ --version svd \
        --accelerator cuda --devices 8 --output_folder outputs/batch
"""
import datetime
import os
import sys

from sgm.inference import VideoPipeline, conditioning_image
from sgm.inference.checks import InputError, as_bool
from sgm.inference.cli import MODEL_BOOLEANS, MODEL_FLAGS, NOT_GIVEN, SAMPLE_SCRIPT, command_line, make_parser, parse_value, run_cli
from sgm.inference.engine import LAUNCH_FLAGS, check_job_folder, check_launch, is_rank_zero, run_job
from sgm.inference.images import image_notices, list_input_images, sampled_size
from sgm.inference.job import Cell, collect, plan_job
from sgm.inference.outputs import check_output_folder, save_numbered
from sgm.inference.settings import CAMERA_PARAMS
from sgm.modules.motion import ALL_KNOB_NAMES

FLAGS = [
    ("input_path", "assets/test_image.png", "an image, or a folder whose .png/.jpg/.jpeg images are all used"),
    *MODEL_FLAGS,
    *LAUNCH_FLAGS,
    ("num_frames", None, "frames to generate (default per version: svd 14, svd_xt 25, sv3d 21, toy_svd 8)"),
    ("num_steps", None, "sampler steps (default per version: svd 25, svd_xt 30, sv3d 50, toy_svd 16)"),
    ("fps_id", 6, "frame-rate conditioning (SVD); the mp4 plays at fps_id + 1 frames per second"),
    ("motion_bucket_id", 127, "amount-of-motion conditioning (SVD), 0..255"),
    ("cond_aug", None, "noise added to the conditioning image (default 0.02; 1e-5 for sv3d)"),
    ("seed", 23, "seed of the call's torch.Generator (each image uses it)"),
    ("decoding_t", 14, "frames decoded at once by the VAE (lower it to save memory)"),
    ("output_folder", None, "where to write (default outputs/simple_video_sample/<version>/)"),
    ("elevations_deg", NOT_GIVEN, "sv3d_p camera elevation, one number or a list with one per frame (default 10)"),
    ("azimuths_deg", NOT_GIVEN, "sv3d_p camera azimuths, a list with one per frame (default an even orbit)"),
    ("image_frame_ratio", None, "not supported (SV3D background removal and re-framing are out of scope)"),
    ("resume", "false", "as a job: sample only the images whose files are missing in output_folder"),
    ("collect_only", "false", "as a job: rebuild manifest.json and the views of output_folder; sample nothing"),
    ("gif", "false", "also write an endlessly looping GIF of each video"),
    ("save_frames", "false", "also write every frame as a PNG (NNNNNN_frames/)"),
    ("verbose", "false", "log at DEBUG level (a progress bar over the steps is always shown)"),
]
BOOLEANS = (*MODEL_BOOLEANS, "resume", "collect_only", "gif", "save_frames", "verbose")
JOB_FLAGS = ("accelerator", "devices", "num_nodes", "strategy", "resume", "collect_only")
CALL_FLAGS = ("num_frames", "num_steps", "fps_id", "motion_bucket_id", "cond_aug", "seed", "decoding_t")


def reproduce_command(flags, settings_flags):
    """The command that reproduces one video (paths and settings as given, defaults filled in)."""
    fixed = {k: flags[k] for k in ("input_path", "version", "device", "dtype", "output_folder", "config", "ckpt_path")}
    knobs = {k: "none" if v is None else v for k, v in settings_flags.items()}
    toggles = {k: True for k in ("resize_to_native", "allow_partial_checkpoint", "gif", "save_frames") if flags[k]}
    return command_line(SAMPLE_SCRIPT, {**fixed, **knobs, **toggles})


def run_as_job(flags, plan, settings, knobs, paths, folder, launch):
    """The images as the items of a one-cell job (sgm.inference.job) on `launch`."""
    given = {**{k: flags[k] for k in CALL_FLAGS if flags[k] is not None}, **knobs}
    job = plan_job(plan, paths, [Cell(0, "cell_000", {}, given, settings)], {}, given, folder, SAMPLE_SCRIPT,
                   {k: flags[k] for k in ("input_path", "version", "config", "ckpt_path", "dtype")} | {"device": launch.device},
                   resume=flags["resume"] or flags["collect_only"], outputs={k: flags[k] for k in ("gif", "save_frames")},
                   options={k: flags[k] for k in ("resize_to_native", "allow_partial_checkpoint")})
    if is_rank_zero():
        for image in job.images:
            for line in image_notices(image.path, image.facts, plan.native_size, plan.version):
                print(line)
    result = collect(job, print) if flags["collect_only"] else run_job(job, launch, say=print)
    if result is not None:
        print(f"wrote {len(result.records)} of {len(job.items)} videos, manifest.json, metrics.csv, grid.mp4 and "
              f"contact_sheet.png to {folder}")


def main(flags):
    flags = {k: parse_value(v) for k, v in flags.items()}
    for name in BOOLEANS:
        flags[name] = as_bool(name, flags[name])
    if flags["image_frame_ratio"] is not None:
        raise InputError("image_frame_ratio belongs to SV3D background removal and re-framing, which sgm-motion "
                         "leaves out; frame the object in the image yourself")
    as_job = any(flags[k] not in (None, False) for k in JOB_FLAGS)
    launch = check_launch(flags["accelerator"], flags["devices"], flags["num_nodes"], flags["strategy"], flags["device"])
    if as_job:
        check_job_folder(launch, flags["output_folder"], flags["collect_only"])
        if flags["output_folder"] is None:
            raise InputError("as a job (--resume, or Lightning's flags) the images are written by name: give an --output_folder of their own")
    plan = VideoPipeline.plan(flags["version"], flags["config"], flags["ckpt_path"], launch.device, flags["dtype"],
                              check_memory=flags["check_memory"])
    knobs = {k: v for k, v in flags.items() if k in ALL_KNOB_NAMES + CAMERA_PARAMS}  # only those given
    settings = plan.settings(**{k: flags[k] for k in CALL_FLAGS if flags[k] is not None}, **knobs)
    native = plan.native_size if flags["resize_to_native"] else None
    if flags["resize_to_native"] and native is None:
        raise InputError("resize_to_native needs a --version whose native resolution is known")
    paths = list_input_images(flags["input_path"])
    folder = str(flags["output_folder"] or os.path.join("outputs", "simple_video_sample", plan.version))
    if as_job:
        return run_as_job(flags, plan, settings, knobs, paths, folder, launch)
    check_output_folder(folder)
    for size in sorted({sampled_size(path, native) for path in paths}):  # from the headers: before decoding
        plan.memory(*size, settings)
    images = [(path, conditioning_image(path, native)) for path in paths]

    for path, image in images:
        for line in image_notices(path, image.facts, plan.native_size, plan.version):
            print(line)
    print(f"Loading model {plan.version} ({plan.ckpt_path or 'no checkpoint'}) on {plan.device} ...", flush=True)
    pipe = plan.load(flags["allow_partial_checkpoint"])
    resolved = settings.as_dict()
    command = reproduce_command({**flags, "device": str(plan.device), "output_folder": folder},
                                {**{k: resolved[k] for k in CALL_FLAGS}, **knobs})
    for index, (path, image) in enumerate(images):
        output = pipe.sample(image, settings)
        extra = {"input_path": str(flags["input_path"]), "image_index": index, "video_fps_rule": "fps_id + 1",
                 "command": command, "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
        record = save_numbered(folder, output, image.pil, settings.fps_id + 1, {**extra, **output.record},
                               gif=flags["gif"], frames=flags["save_frames"])
        print(f"wrote {os.path.join(folder, record['video'])}" + (f" and {record['gif']}" if record["gif"] else ""))


PARSER = make_parser("simple_video_sample.py", __doc__, FLAGS, BOOLEANS)

if __name__ == "__main__":
    sys.exit(run_cli(main, PARSER))
