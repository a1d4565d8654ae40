"""The embedded toy model (toy_svd): trained motion conditioning, frame-0 fidelity, and the
sampling script running it from the package.

Measured on held-out synthetic images (seeds the model never saw), 4 seeds per setting.
"""
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts" / "eval"))

import toy_results  # noqa: E402
from test_sample_script import read_video, run_script  # noqa: E402

SEEDS = 4
BUCKETS = (0, 64, 127, 191, 255)


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(2)
    return toy_results.load_toy_model("cpu")


@pytest.fixture(scope="module")
def bucket_rows(model):
    return {
        b: toy_results.run_setting(model, toy_results.Setting("motion_bucket_id", str(b), motion_bucket_id=b), SEEDS, "cpu")[0]
        for b in BUCKETS
    }


def test_motion_rises_with_motion_bucket(bucket_rows):
    motion = [np.mean([r["displacement_px"] for r in bucket_rows[b]]) for b in BUCKETS]
    rho = toy_results.spearman(list(BUCKETS), motion)
    assert rho >= 0.9, f"Spearman {rho:.2f}; mean displacement per bucket {np.round(motion, 3).tolist()}"


def test_frame0_matches_the_conditioning_image(bucket_rows):
    """Default settings (bucket 127): frame-0 PSNR averaged over the 4 seeds (one image each) >= 22 dB."""
    psnr = [r["psnr_frame0"] for r in bucket_rows[127]]
    assert np.mean(psnr) >= 22.0, f"frame-0 PSNR per seed {np.round(psnr, 2).tolist()} dB"


def test_sampling_script_runs_the_shipped_model(tmp_path):
    proc = run_script("--input_path", REPO / "assets" / "toy_image.png", "--version", "toy_svd", "--device", "cpu", "--output_folder", tmp_path)
    assert proc.returncode == 0, proc.stderr
    frames, _ = read_video(tmp_path / "000000.mp4")
    assert frames.shape == (8, 64, 64, 3)
    moved = np.abs(np.diff(frames.astype(float), axis=0)).mean()
    assert moved > 1.0, f"mean |frame difference| {moved:.2f} of 255: the shapes do not move"
    record = json.loads((tmp_path / "000000.json").read_text())
    assert record["version"] == "toy_svd" and record["ckpt_path"].endswith("sgm/checkpoints/toy_svd.safetensors")
