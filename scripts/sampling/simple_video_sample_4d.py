#!/usr/bin/env python
"""Novel views of every frame of a video with SV4D: for each frame of INPUT_PATH (a video file,
.mp4 or .gif, or a folder of .png/.jpg frames), V views on an orbit around the object.

As upstream's script, SV4D first makes the reference views of frame 0 with SV3D (--sv3d_version
sv3d_u or sv3d_p), then samples the video a chunk of T frames x V views at a time (released model:
T 5 x V 8), every chunk conditioned on those reference views (sgm.inference.four_d documents the
chunk loop: anchor frames, then upstream's dense per-step forward/backward sampling between them).
From Python the same run is sgm.inference.four_d.FourDPipeline. The frames
are cut to their centred square and resized to img_size; the first n_frames frames are used,
padded with the last one when the video is shorter.

OUTPUT_FOLDER receives NNNNNN_view<k>.mp4 per view, NNNNNN.mp4 (the input frame and the views side
by side), NNNNNN_frames/t<TTT>_v<K>.png and, last, NNNNNN.json (every setting, the cameras, the
knobs and a command that reproduces the run). Nothing is overwritten: NNNNNN is the next free
number. Checkpoints are never downloaded.

Cameras: elevations_deg / azimuths_deg give the V novel views' cameras (one number for all, or a
list of V); by default elevation 0 and the azimuths of the SV3D views picked as reference views.

Extensions of upstream's flags:
  --config / --ckpt_path          the SV4D model (default scripts/sampling/configs/sv4d.yaml and its checkpoint)
  --sv3d_config / --sv3d_ckpt_path the reference-view model (default the shipped config of --sv3d_version):
                                  any image-to-K-views model of sgm.inference.VideoPipeline; it samples
                                  frame 0 into K views and V of them, spread evenly, are the reference views
  --n_frames                      frames of the video to sample (upstream: 21)
  every motion knob (docs/PATCHES.md) as a flag, e.g. --temporal_attn_scale 2 or --view_attn_scale 0.8
Background removal (--remove_bg) and re-framing (--image_frame_ratio) are out of scope: refused.
Bad input is one line `error: ...` on stderr and exit status 2, before any model is loaded and
before anything is written.
    python scripts/sampling/simple_video_sample_4d.py --input_path assets/sv4d_videos/test_video1.mp4
"""
import sys

from sgm.inference.checks import as_bool
from sgm.inference.cli import command_line, make_parser, parse_value, run_cli
from sgm.inference.four_d import plan_four_d
from sgm.modules.motion import ALL_KNOB_NAMES

SCRIPT = "scripts/sampling/simple_video_sample_4d.py"
FLAGS = [
    ("input_path", "assets/sv4d_videos/test_video1.mp4", "a video (.mp4, .gif) or a folder of .png/.jpg frames"),
    ("output_folder", None, "where to write (default outputs/simple_video_sample_4d/sv4d/)"),
    ("num_steps", 20, "sampler steps (SV3D stage and SV4D)"),
    ("sv3d_version", "sv3d_u", "sv3d_u or sv3d_p: the model that makes the reference views of frame 0"),
    ("img_size", 576, "side of the square frames, a multiple of 64"),
    ("n_frames", 21, "frames of the video sampled (padded with the last frame when shorter)"),
    ("fps_id", 1, "frame-rate conditioning of the SV3D stage"),
    ("motion_bucket_id", 300, "motion conditioning of the SV3D stage"),
    ("cond_aug", None, "noise on the SV3D stage's conditioning image (default its version's, 1e-5 for SV3D)"),
    ("seed", 23, "seed of the run's torch.Generator"),
    ("encoding_t", 8, "accepted for upstream compatibility (the conditioner encodes a chunk at once)"),
    ("decoding_t", 4, "frames decoded at once by the VAE (lower it to save memory)"),
    ("device", None, "torch device (default cuda when available, else cpu)"),
    ("elevations_deg", None, "elevation of the V views, one number or a list of V (default 0)"),
    ("azimuths_deg", None, "azimuths of the V views, a list of V (default those of the picked SV3D views)"),
    ("image_frame_ratio", None, "not supported (re-framing is out of scope)"),
    ("verbose", "false", "log at DEBUG level and show the sampler's bar over the steps"),
    ("remove_bg", "false", "not supported (background removal is out of scope)"),
    ("config", None, "an SV4D model config YAML instead of scripts/sampling/configs/sv4d.yaml"),
    ("ckpt_path", None, "a checkpoint instead of the config's model.params.ckpt_path"),
    ("sv3d_config", None, "the reference-view model's config (default the shipped config of sv3d_version)"),
    ("sv3d_ckpt_path", None, "the reference-view model's checkpoint (default its config's)"),
]
BOOLEANS = ("verbose", "remove_bg")


def main(flags):
    flags = {k: parse_value(v) for k, v in flags.items()}
    for name in BOOLEANS:
        flags[name] = as_bool(name, flags[name])
    knobs = {k: v for k, v in flags.items() if k in ALL_KNOB_NAMES}  # only those given
    names = [name for name, _, _ in FLAGS]

    def command(resolved):
        return command_line(SCRIPT, {k: resolved[k] for k in names + list(knobs) if resolved.get(k) is not False})

    record = plan_four_d("4d", flags, knobs, command).run()
    print(f"wrote {record['grid']}, {record['views']} view videos and their frames")


PARSER = make_parser("simple_video_sample_4d.py", __doc__, FLAGS, BOOLEANS)

if __name__ == "__main__":
    sys.exit(run_cli(main, PARSER))
