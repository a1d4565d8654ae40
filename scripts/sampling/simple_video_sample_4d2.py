#!/usr/bin/env python
"""Novel views of every frame of a video with SV4D 2.0: for each frame of INPUT_PATH (a video
file, .mp4 or .gif, or a folder of .png/.jpg frames), V views on an orbit around the object.

The config decides the model: scripts/sampling/configs/sv4d2.yaml (default; T 12 frames x V 4
views per chunk, 3D view attention) or sv4d2_8views.yaml (T 5 x V 8). The video is sampled a chunk
at a time, as upstream: the first chunk without reference views, each later chunk starting at the
previous chunk's last frame, whose sampled views are its reference views (sgm.inference.four_d).
The frames are cut to their centred square and resized to img_size; the first n_frames frames are
used, padded with the last one when the video is shorter.

OUTPUT_FOLDER receives NNNNNN_view<k>.mp4 per view, NNNNNN.mp4 (the input frame and the views side
by side), NNNNNN_frames/t<TTT>_v<K>.png and, last, NNNNNN.json (every setting, the cameras, the
knobs and a command that reproduces the run). Nothing is overwritten: NNNNNN is the next free
number. Checkpoints are never downloaded.

Cameras: elevations_deg / azimuths_deg hold V + 1 orbit entries, the first being the input view
(one number for all, or a list of V + 1); by default elevation 0 and azimuths 360 i / (V + 1).

Extensions of upstream's flags: --config (the model config), --ckpt_path (same as --model_path),
and every motion knob (docs/PATCHES.md) as a flag, e.g. --temporal_attn_scale 2.
Background removal (--remove_bg) and re-framing (--image_frame_ratio) are out of scope: refused.
Bad input is one line `error: ...` on stderr and exit status 2, before any model is loaded and
before anything is written.
    python scripts/sampling/simple_video_sample_4d2.py --input_path assets/sv4d_videos/camel.gif
"""
import sys

from sgm.inference.checks import InputError, as_bool
from sgm.inference.cli import command_line, make_parser, parse_value, run_cli
from sgm.inference.four_d import plan_four_d
from sgm.modules.motion import ALL_KNOB_NAMES

SCRIPT = "scripts/sampling/simple_video_sample_4d2.py"
FLAGS = [
    ("input_path", "assets/sv4d_videos/camel.gif", "a video (.mp4, .gif) or a folder of .png/.jpg frames"),
    ("model_path", None, "the checkpoint (default the config's model.params.ckpt_path); same as --ckpt_path"),
    ("output_folder", None, "where to write (default outputs/simple_video_sample_4d2/<version>/)"),
    ("num_steps", 50, "sampler steps"),
    ("img_size", 576, "side of the square frames, a multiple of 64"),
    ("n_frames", 21, "frames of the video sampled (padded with the last frame when shorter)"),
    ("seed", 23, "seed of the run's torch.Generator"),
    ("encoding_t", 8, "accepted for upstream compatibility (the conditioner encodes a chunk at once)"),
    ("decoding_t", 4, "frames decoded at once by the VAE (lower it to save memory)"),
    ("device", None, "torch device (default cuda when available, else cpu)"),
    ("elevations_deg", None, "elevations of the V + 1 orbit entries (the first the input view), one number or a list"),
    ("azimuths_deg", None, "azimuths of the V + 1 orbit entries (the first the input view), a list"),
    ("image_frame_ratio", None, "not supported (re-framing is out of scope)"),
    ("verbose", "false", "log at DEBUG level and show the sampler's bar over the steps"),
    ("remove_bg", "false", "not supported (background removal is out of scope)"),
    ("config", None, "an SV4D 2.0 model config YAML (default scripts/sampling/configs/sv4d2.yaml)"),
    ("ckpt_path", None, "same as --model_path"),
]
BOOLEANS = ("verbose", "remove_bg")


def main(flags):
    flags = {k: parse_value(v) for k, v in flags.items()}
    for name in BOOLEANS:
        flags[name] = as_bool(name, flags[name])
    if flags["model_path"] is not None and flags["ckpt_path"] is not None and str(flags["model_path"]) != str(flags["ckpt_path"]):
        raise InputError("model_path and ckpt_path name the same checkpoint; give one of them")
    flags["ckpt_path"] = flags["ckpt_path"] if flags["ckpt_path"] is not None else flags["model_path"]
    knobs = {k: v for k, v in flags.items() if k in ALL_KNOB_NAMES}  # only those given
    names = [name for name, _, _ in FLAGS if name != "model_path"]

    def command(resolved):
        return command_line(SCRIPT, {k: resolved[k] for k in names + list(knobs) if resolved.get(k) is not False})

    record = plan_four_d("4d2", flags, knobs, command).run()
    print(f"wrote {record['grid']}, {record['views']} view videos and their frames")


PARSER = make_parser("simple_video_sample_4d2.py", __doc__, FLAGS, BOOLEANS)

if __name__ == "__main__":
    sys.exit(run_cli(main, PARSER))
