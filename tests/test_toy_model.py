"""The embedded toy model (toy_svd): trained motion conditioning, frame-0 fidelity, and the
sampling script running the shipped model.

Measured through VideoPipeline on held-out synthetic images (first frames of render_clip seeds
900_000 + i, as scripts/eval/toy_results.py uses; the model never saw them), one image per seed,
8 frames at 8 sampling steps (half the shipped 16, to keep the test within a minute on 2 cores),
scored with the calibrated optical-flow displacement.
"""
import json

import numpy as np
import pytest
import torch

from sgm.data.synthetic_motion import render_clip
from sgm.eval.metrics import motion_metrics, spearman

HELD_OUT_SEED = 900_000
SEEDS = (0, 1)
BUCKETS = (0, 127, 255)
STEPS = 8
PSNR_MIN_DB = 21.0


def held_out_image(index: int) -> torch.Tensor:
    """(1, 3, 64, 64) in [-1, 1]: the first frame of a synthetic clip the model never saw."""
    return render_clip(HELD_OUT_SEED + index, num_frames=1)["frames"][:1]


@pytest.fixture(scope="module")
def bucket_rows(toy_pipeline):
    """{bucket: [motion_metrics per seed]}; the same image and noise (seed) across buckets."""
    rows = {b: [] for b in BUCKETS}
    for seed in SEEDS:
        image = held_out_image(seed)
        for b in BUCKETS:
            out = toy_pipeline(image, num_frames=8, num_steps=STEPS, motion_bucket_id=b, seed=seed, decoding_t=8)
            rows[b].append(motion_metrics(out.frames, cond_image=(image[0] + 1) / 2))
    return rows


def test_motion_rises_with_motion_bucket(bucket_rows):
    """Spearman(motion_bucket_id, mean displacement) >= 0.9: with three buckets, strictly rising.
    Measured on CPU with the calibrated optical flow (sgm.eval.metrics.displacement): bucket means
    0.504 < 0.624 < 0.757 px/frame (the smallest step, 0.120 px, is the margin); each seed rises on
    its own (0.495 < 0.533 < 0.672 and 0.513 < 0.714 < 0.841), and so does each of seeds 2..5
    (smallest step 0.133 px)."""
    motion = [np.mean([r["displacement_px"] for r in bucket_rows[b]]) for b in BUCKETS]
    rho = spearman(list(BUCKETS), motion)
    assert rho >= 0.9, f"Spearman {rho:.2f}; mean displacement per bucket {np.round(motion, 3).tolist()}"


def test_frame0_matches_the_conditioning_image(bucket_rows):
    """Default bucket 127: frame-0 PSNR against the conditioning image, mean over the seeds,
    >= 21 dB (measured 22.10 dB: 21.15 and 23.05; the target of 28 dB is not met, see RESULTS.md)."""
    psnr = [r["psnr_frame0"] for r in bucket_rows[127]]
    assert np.mean(psnr) >= PSNR_MIN_DB, f"frame-0 PSNR per seed {np.round(psnr, 2).tolist()} dB"


def test_sampling_script_runs_the_shipped_model(tmp_path, paths, sample_script, run_in_process, read_png_frames):
    """--version toy_svd finds the config and checkpoint shipped in the package; the shapes move."""
    result = run_in_process(sample_script, "--input_path", paths.toy_image, "--version", "toy_svd", "--device", "cpu",
                            "--num_steps", STEPS, "--save_frames", "--output_folder", tmp_path)
    assert result.returncode == 0, result.stderr
    frames = read_png_frames(tmp_path / "000000_frames")
    assert frames.shape == (8, 64, 64, 3)
    moved = np.abs(np.diff(frames.astype(float), axis=0)).mean()
    assert moved > 1.0, f"mean |frame difference| {moved:.2f} of 255: the shapes do not move"
    record = json.loads((tmp_path / "000000.json").read_text())
    assert record["version"] == "toy_svd" and record["ckpt_path"].endswith("sgm/checkpoints/toy_svd.safetensors")
    assert record["num_frames"] == 8 and record["num_steps"] == STEPS
    assert (tmp_path / "000000.mp4").is_file()
