#!/usr/bin/env python
"""Sweep motion knobs and sampling parameters over a grid: one image or a folder of them, the model
loaded once per process, one or many processes (GPUs, nodes).

    python scripts/sampling/sweep.py --input_path my_image.png --version svd \\
        --temporal_attn_scale 0.5,1,2 --attn_window_size none,8
    python scripts/sampling/sweep.py --input_path assets/toy_image.png --version toy_svd --device cpu \\
        --grid sweep.yaml --output_folder outputs/sweep/s

Sweepable: every motion knob (docs/PATCHES.md), motion_bucket_id, fps_id, cond_aug, num_frames and
seed. A flag with comma-separated values is an axis (`none` for a null knob; a trailing comma, as
in `--seed 7,`, makes a one-value axis; a bracketed list such as "[0.5,2]" works too), and so is
each entry of the YAML mapping `axis: [values]` given as --grid. A flag with one value is a fixed
setting of every cell. The cells are the cartesian product of the axes, taken in the fixed order
of the sweepable names (the last varies fastest), each axis' values in the order given.

Stage sets (temporal_attn_scale_stages, attn_window_stages) join stages with `+`, or say `all`:

    --attn_window_stages output,middle+output,all         three cells
    --attn_window_stages middle+output                    a fixed setting (windows in two stages)
    --attn_window_stages "[[output],[middle,output],null]"  the same three cells, as lists
    attn_window_stages: [[output], [middle, output], all]   in a --grid YAML file

attn_window_size takes `auto` among its values (`--attn_window_size 8,auto --attn_window_min 2
--attn_window_max 8`). attn_window_loop and shuffle_windowed_noise take `--flag` alone (true),
`--noflag` (false) or `--flag false,true` (an axis). Each cell is validated whole, with the fixed
settings and the config's knobs (a fixed auto window may take its minimum from an axis), before
the model is loaded. A cell is exactly the video simple_video_sample.py makes with the same flags
(its JSON holds that command), sampled by sgm.inference.VideoPipeline with its own seeded generator.

A job item is one (image, cell). OUTPUT_FOLDER (default outputs/sweep/<version>/<UTC timestamp>) receives:
  ID.npz / .mp4 / .json   each item's frames (uint8 (T, H, W, 3)), video and record (the
                    pipeline's record, the cell's values, metrics and command); with --gif also an
                    endlessly looping .gif, with --save_frames ID_frames/TTT.png. ID is the cell's
                    name cell_NNN_<axis>-<value>... for one image, imgNNN_<stem>__<cell name> for several
  conditioning.png  the image as used (imgNNN_<stem>.png each, for several)
  sweep.json        the axes, cells, items, and the views' layouts
  manifest.json     every item with its status (done / missing)
  grid.mp4          every item tiled under its label, frame-synchronised (shorter ones hold their last frame)
  contact_sheet.png one row per item, up to 8 evenly spaced frames
  metrics.csv       one row per item: its values and frame_diff, displacement_px, smoothness,
                    psnr_frame0 (sgm.eval.metrics on the saved frames, against the image as used)
  plot_<axis>_<metric>.png   per numeric axis (two numbers or more), a line per combination of the others
Every file is written whole (temp file, then moved) and an item's JSON last: an interrupted sweep
leaves only whole items. An output folder that is not empty is refused unless --resume is given;
--resume reuses the finished items made with the same settings (and refuses any made otherwise),
samples the rest and rebuilds the shared files from the saved frames (--collect_only rebuilds
them without sampling).

Many GPUs and nodes: Lightning's --accelerator, --devices, --num_nodes and --strategy run the
items on Trainer.predict, one process per device, each item written by the process that made it;
rank 0 builds the shared files once every process has finished. An item's video does not depend
on the process or the number of processes. One node with 8 GPUs:
    python scripts/sampling/sweep.py ... --accelerator cuda --devices 8 --output_folder out
Several nodes: start the same command on each with torchrun (or srun under SLURM), adding
--num_nodes; docs in the README.

SV4D / SV4D 2.0 (a 4D --config, or --version sv4d, sv4d2 or sv4d2_8views for the shipped
scripts/sampling/configs/<version>.yaml): INPUT_PATH is one video (file, GIF or folder of frames,
read as simple_video_sample_4d(2).py reads it: --n_frames, --img_size), the axes are the motion
knobs and seed, and the sweep runs in one process (no Lightning flags, --resume, --collect_only,
--gif, --save_frames, --dtype). SV4D's reference views come from the SV3D stage (--sv3d_version,
--sv3d_config, --sv3d_ckpt_path, as the SV4D script), made once per seed. OUTPUT_FOLDER (new or
empty) receives per cell <cell name>.mp4 (the input frame and the V views side by side),
<cell name>.npz (uint8 views (N, V, H, W, 3)) and <cell name>.json (record, the cell's values and
the simple_video_sample_4d(2).py command that makes it), then sweep.json and contact_sheet.png.
    python scripts/sampling/sweep.py --version sv4d2 --input_path assets/sv4d_videos/camel.gif \\
        --temporal_attn_scale 0.5,1,2 --seed 1,2

Bad input (unknown setting, empty list, invalid value or combination, bad grid file) is refused
before the model is loaded, as one line `error: ...` on stderr with exit status 2.
"""
import sys

from sgm.inference.checks import InputError, as_bool
from sgm.inference.cli import MODEL_BOOLEANS, MODEL_FLAGS, NOT_GIVEN, SWEEP_SCRIPT, command_line, make_parser, parse_value, run_cli
from sgm.inference.engine import LAUNCH_FLAGS, check_job_folder, check_launch, is_rank_zero, run_job
from sgm.inference.four_d_sweep import is_four_d, plan_four_d_sweep
from sgm.inference.images import image_notices
from sgm.inference.job import collect
from sgm.inference.sweep import SWEEPABLE, plan_sweep

AXIS = " (sweepable: comma-separated values make an axis)"
FOUR_D = " (4D sweeps only)"
FOUR_D_FLAGS = [
    ("img_size", None, "side of the square frames, a multiple of 64 (default 576)" + FOUR_D),
    ("n_frames", None, "frames of the input video sampled, padded with its last (default 21)" + FOUR_D),
    ("elevations_deg", None, "the orbit's elevations, as simple_video_sample_4d(2).py takes them" + FOUR_D),
    ("azimuths_deg", None, "the orbit's azimuths, as simple_video_sample_4d(2).py takes them" + FOUR_D),
    ("sv3d_version", None, "sv3d_u or sv3d_p: SV4D's reference-view model (default sv3d_u)" + FOUR_D),
    ("sv3d_config", None, "the reference-view model's config (default the shipped config of sv3d_version)" + FOUR_D),
    ("sv3d_ckpt_path", None, "the reference-view model's checkpoint (default its config's)" + FOUR_D),
]
LAUNCH_NAMES = ("accelerator", "devices", "num_nodes", "strategy")
FLAGS = [
    ("input_path", "assets/test_image.png", "an image, or a folder whose .png/.jpg/.jpeg images are all swept"),
    *MODEL_FLAGS,
    *LAUNCH_FLAGS,
    ("num_frames", NOT_GIVEN, "frames per video (default per version: svd 14, svd_xt 25, sv3d 21, toy_svd 8)" + AXIS),
    ("num_steps", None, "sampler steps (default per version: svd 25, svd_xt 30, sv3d 50, toy_svd 16)"),
    ("fps_id", NOT_GIVEN, "frame-rate conditioning (default 6); the grid video plays at the first cell's fps_id + 1" + AXIS),
    ("motion_bucket_id", NOT_GIVEN, "amount-of-motion conditioning (default 127)" + AXIS),
    ("cond_aug", NOT_GIVEN, "noise added to the conditioning image (default 0.02; 1e-5 for sv3d)" + AXIS),
    ("seed", NOT_GIVEN, "seed of each cell's torch.Generator (default 23)" + AXIS),
    ("decoding_t", None, "frames decoded at once by the VAE (lower it to save memory; default 14, 4D 4)"),
    ("output_folder", None, "where to write (default outputs/sweep/<version>/<UTC timestamp>)"),
    ("grid", None, "a YAML file mapping axis names to lists of values (an axis may not also be a flag)"),
    ("resume", "false", "reuse the finished items in output_folder, sample the rest, rebuild the shared files"),
    ("collect_only", "false", "rebuild the shared files (views, manifest) of output_folder from its items; sample nothing"),
    ("gif", "false", "also write an endlessly looping GIF of each item"),
    ("save_frames", "false", "also write every frame of each item as a PNG (ID_frames/)"),
    ("verbose", "false", "log at DEBUG level (a progress bar over the steps is always shown)"),
    *FOUR_D_FLAGS,
]
BOOLEANS = (*MODEL_BOOLEANS, "resume", "collect_only", "gif", "save_frames", "verbose")


def main_four_d(flags, settings):
    """One input video over the motion knobs with an SV4D / SV4D 2.0 model, in this process."""
    for name in LAUNCH_NAMES:
        if flags[name] is not None:
            raise InputError(f"4D sweeps run in one process: leave out --{name} (pick the device with --device)")
    for name in ("resume", "collect_only", "gif", "save_frames", "resize_to_native", "allow_partial_checkpoint"):
        if flags[name]:
            raise InputError(f"--{name} is not available for 4D sweeps (they run in one process into a new folder)")
    if flags["dtype"] is not None:
        raise InputError("--dtype is not available for 4D sweeps (float32, CUDA autocast on GPUs, as the 4D scripts)")
    given = {k: v for k, v in flags.items() if v is not None and v is not False and k not in ("check_memory", "verbose")}
    sweep = plan_four_d_sweep(
        flags["input_path"], settings, grid=flags["grid"], version=flags["version"], config=flags["config"],
        ckpt_path=flags["ckpt_path"], device=flags["device"], num_steps=flags["num_steps"],
        decoding_t=4 if flags["decoding_t"] is None else flags["decoding_t"],
        img_size=576 if flags["img_size"] is None else flags["img_size"],
        n_frames=21 if flags["n_frames"] is None else flags["n_frames"], elevations_deg=flags["elevations_deg"],
        azimuths_deg=flags["azimuths_deg"], sv3d_version=flags["sv3d_version"] or "sv3d_u",
        sv3d_config=flags["sv3d_config"], sv3d_ckpt_path=flags["sv3d_ckpt_path"], output_folder=flags["output_folder"],
        command=command_line(SWEEP_SCRIPT, {**given, **settings}))
    summary = sweep.run(say=print)
    print(f"wrote {len(summary['cells'])} cells (.mp4, .npz, .json), sweep.json and contact_sheet.png to {sweep.folder}")


def main(flags):
    settings = {name: flags.pop(name) for name in SWEEPABLE if name in flags}  # raw text: axes or fixed values
    flags = {k: parse_value(v) for k, v in flags.items()}
    for name in BOOLEANS:
        flags[name] = as_bool(name, flags[name])
    if is_four_d(flags["version"], flags["config"]):
        return main_four_d(flags, settings)
    for name, _, _ in FOUR_D_FLAGS:
        if flags[name] is not None:
            raise InputError(f"--{name} applies to 4D sweeps only (an SV4D / SV4D 2.0 --config or --version)")
    flags["decoding_t"] = 14 if flags["decoding_t"] is None else flags["decoding_t"]
    launch = check_launch(flags["accelerator"], flags["devices"], flags["num_nodes"], flags["strategy"], flags["device"])
    check_job_folder(launch, flags["output_folder"], flags["collect_only"])
    job = plan_sweep(flags["input_path"], settings, grid=flags["grid"], version=flags["version"], num_steps=flags["num_steps"],
                     decoding_t=flags["decoding_t"], config=flags["config"], ckpt_path=flags["ckpt_path"], device=launch.device,
                     dtype=flags["dtype"], output_folder=flags["output_folder"], resume=flags["resume"] or flags["collect_only"],
                     gif=flags["gif"], save_frames=flags["save_frames"], resize_to_native=flags["resize_to_native"],
                     allow_partial_checkpoint=flags["allow_partial_checkpoint"], check_memory=flags["check_memory"])
    if is_rank_zero():
        for image in job.images:
            for line in image_notices(image.path, image.facts, job.pipe.native_size, job.pipe.version):
                print(line)
    result = collect(job, print) if flags["collect_only"] else run_job(job, launch, say=print)
    if result is not None:
        plots = f" and {len(result.plots)} plots" if result.plots else ""
        sampled = 0 if flags["collect_only"] else len(job.todo())
        print(f"wrote {len(result.records)} of {len(job.items)} items ({sampled} sampled now), grid.mp4, "
              f"contact_sheet.png, metrics.csv, manifest.json{plots} to {job.folder}")


PARSER = make_parser("sweep.py", __doc__, FLAGS, BOOLEANS)

if __name__ == "__main__":
    sys.exit(run_cli(main, PARSER))
