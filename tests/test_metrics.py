"""Clip metrics on hand-built clips with known answers."""
import math

import numpy as np
import pytest
import torch

from sgm.data.synthetic_motion import render_clip
from sgm.eval.calibration import calibrate, moving_clips, static_clips
from sgm.eval import metrics
from sgm.eval.metrics import (
    displacement,
    flow_fields,
    loop_closure,
    loop_seam_ratio,
    mean_abs_frame_difference,
    motion_metrics,
    psnr,
    temporal_smoothness,
)


def textured(size=160, seed=0):
    """A random texture, lightly blurred so neighbouring pixels correlate (as in real frames)."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.rand(1, 3, size, size, generator=g)
    return torch.nn.functional.avg_pool2d(noise, 3, stride=1, padding=1)[0]


def translating(dx, dy, frames=6, size=64, seed=0):
    """Clip whose content moves by (dx, dy) px per frame (x right, y down); no wrap-around."""
    image = textured(seed=seed)
    o = 48  # crop origin, leaves room for the motion either way
    # content moving by +d appears when the crop window moves by -d
    return torch.stack([image[:, o - dy * t : o - dy * t + size, o - dx * t : o - dx * t + size] for t in range(frames)])


@pytest.mark.parametrize("shift", [(1, 0), (2, 1), (0, 3), (-2, -1)])
def test_displacement_of_translation(shift):
    dx, dy = shift
    assert displacement(translating(dx, dy)) == pytest.approx(math.hypot(dx, dy), abs=0.25)


def test_flow_points_along_the_motion():
    flows = flow_fields(translating(2, -1))
    assert flows.shape == (5, 64, 64, 2)
    inner = flows[:, 8:-8, 8:-8]  # away from the borders, where content enters and leaves
    assert np.median(inner[..., 0]) == pytest.approx(2.0, abs=0.1) and np.median(inner[..., 1]) == pytest.approx(-1.0, abs=0.1)


def test_displacement_static_and_degenerate_clips():
    assert displacement(translating(0, 0)) == 0.0
    assert displacement(torch.full((5, 3, 64, 64), 0.4)) == 0.0  # nothing to track
    assert displacement(translating(1, 1)[:1]) == 0.0  # a single frame


def test_displacement_tracks_synthetic_motion():
    panning = next(c for c in (render_clip(s, pan_prob=1.0) for s in range(50)) if math.hypot(*c["pan"]) > 1.0)
    static = next(c for c in (render_clip(s) for s in range(50)) if c["speed"] == 0.0)
    assert displacement((panning["frames"] + 1) / 2) == pytest.approx(panning["motion"], abs=0.25)
    assert displacement((static["frames"] + 1) / 2) == 0.0


def test_calibration_on_held_out_clips_with_known_motion():
    """The calibration RESULTS.md reports, held: 50 held-out clips spanning 0-4 px/frame and 10
    exactly static ones, without grain: static clips read below 0.1 px/frame and the mean absolute
    error against the true mean displacement is below 0.25 px/frame; grain raises the static reading."""
    moving, still = moving_clips(50, pool_factor=2), static_clips(10)
    truth = [clip["motion"] for clip in moving]
    assert min(truth) < 0.3 and max(truth) > 3.5  # the clips span the range
    clean = calibrate(displacement, moving, still)
    assert clean["static_max"] < 0.1 and clean["mae"] < 0.25, clean
    grainy = calibrate(displacement, moving[:10], still[:3], grain=0.02)
    assert grainy["static_mean"] > clean["static_mean"] + 0.1  # the sensitivity RESULTS.md reports is real


def test_mean_abs_frame_difference():
    static = textured()[:, :32, :32].expand(4, 3, 32, 32)
    assert mean_abs_frame_difference(static) == 0.0
    ramp = torch.zeros(3, 3, 8, 8)
    ramp[1], ramp[2] = 0.2, 0.6
    assert mean_abs_frame_difference(ramp) == pytest.approx((0.2 + 0.4) / 2)
    assert mean_abs_frame_difference(ramp[:1]) == 0.0


def test_psnr():
    a = torch.rand(3, 16, 16)
    assert psnr(a, a.clone()) == math.inf
    zeros, quarter = torch.zeros(2, 3, 8, 8), torch.full((2, 3, 8, 8), 0.25)  # exact in float32
    assert psnr(zeros, quarter) == pytest.approx(10 * math.log10(16.0), abs=1e-12)  # MSE 1/16
    assert psnr(zeros, quarter, data_range=2.0) == pytest.approx(10 * math.log10(64.0), abs=1e-12)
    half = zeros.clone()
    half[0] = 0.5  # MSE 0.125 over the clip
    assert psnr(half, zeros) == pytest.approx(10 * math.log10(8.0), abs=1e-12)
    with pytest.raises(ValueError):
        psnr(torch.zeros(3, 4, 4), torch.zeros(3, 4, 5))


def test_temporal_smoothness():
    g = torch.Generator().manual_seed(1)
    start, rate = torch.rand(3, 16, 16, generator=g), torch.rand(3, 16, 16, generator=g) * 0.1
    t = torch.arange(6.0)[:, None, None, None]
    linear = start + rate * t  # constant-velocity intensity change
    assert temporal_smoothness(linear) == pytest.approx(0.0, abs=1e-12)
    jitter = linear + 0.05 * torch.randn(linear.shape, generator=g)
    assert temporal_smoothness(jitter) > 1e-3
    # the value is the mean squared second difference
    steps = torch.zeros(3, 3, 2, 2)
    steps[1] = 1.0
    assert temporal_smoothness(steps) == pytest.approx(4.0)
    assert temporal_smoothness(linear[:2]) == 0.0


def test_loop_closure_and_seam_ratio():
    # a linear intensity ramp: every step is 0.1, the seam from the last frame back to the first 0.5
    ramp = torch.arange(6.0)[:, None, None, None].expand(6, 3, 4, 4) * 0.1
    assert loop_closure(ramp) == pytest.approx(0.5)
    assert loop_seam_ratio(ramp) == pytest.approx(5.0)  # T - 1 steps in one seam
    # a clip that returns to its first frame: 0, 0.2, 0.4, 0.2 -> seam 0.2, mean step 0.2
    there_and_back = torch.tensor([0.0, 0.2, 0.4, 0.2])[:, None, None, None].expand(4, 3, 2, 2)
    assert loop_closure(there_and_back) == pytest.approx(0.2)
    assert loop_seam_ratio(there_and_back) == pytest.approx(1.0)
    # a slow drift of a smooth pattern (a sinusoid of period 64 px moving 1 px/frame over 8 frames)
    # opens a seam of about sin(7 pi / 64) / sin(pi / 64) steps; a whole period of motion closes it
    cols = torch.arange(64.0)
    drifting = torch.stack([torch.sin(2 * math.pi * (cols - t) / 64).expand(3, 8, 64) for t in range(8)]) * 0.5 + 0.5
    assert loop_seam_ratio(drifting) == pytest.approx(math.sin(7 * math.pi / 64) / math.sin(math.pi / 64), rel=0.02)
    texture = textured(size=64)
    period = torch.stack([torch.roll(texture, shifts=8 * t, dims=-1) for t in range(8)])  # 8 steps of 8 px = 64 px
    assert loop_closure(period) == pytest.approx(mean_abs_frame_difference(period), rel=0.05)
    assert loop_seam_ratio(period) == pytest.approx(1.0, rel=0.05)
    # the seam is the mean absolute difference between the last and first frames, per pixel and channel
    g = torch.Generator().manual_seed(2)
    clip = torch.rand(5, 3, 8, 8, generator=g)
    assert loop_closure(clip) == pytest.approx(float((clip[-1] - clip[0]).abs().mean()))
    # degenerate clips
    still = textured()[:, :16, :16].expand(4, 3, 16, 16)
    assert loop_closure(still) == 0.0 and loop_seam_ratio(still) == 1.0
    assert loop_closure(clip[:1]) == 0.0 and loop_seam_ratio(clip[:1]) == 1.0
    jump = torch.zeros(3, 3, 2, 2)
    jump[-1] = 1.0  # only the last step moves: seam 1, mean step 0.5
    assert loop_seam_ratio(jump) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        loop_closure(clip[0])


def test_motion_metrics_keys_and_values():
    clip = translating(2, 0)
    out = motion_metrics(clip)
    assert set(out) == {"frame_diff", "displacement_px", "smoothness"}
    assert all(type(v) is float for v in out.values())
    assert out["displacement_px"] == pytest.approx(2.0, abs=0.25)
    out = motion_metrics(clip, cond_image=clip[0])
    assert set(out) == {"frame_diff", "displacement_px", "smoothness", "psnr_frame0"}
    assert out["psnr_frame0"] == math.inf
    assert motion_metrics(clip, cond_image=clip[0] * 0.9)["psnr_frame0"] < 40.0
    with pytest.raises(ValueError):
        motion_metrics(clip[0])  # not a clip


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_metrics_on_cuda():
    clip = translating(1, 2).cuda()
    out = motion_metrics(clip, cond_image=clip[0])
    assert out["displacement_px"] == pytest.approx(math.sqrt(5), abs=0.25)
    assert metrics.psnr(clip, clip) == math.inf


def test_spearman_against_hand_computed_values():
    assert metrics.spearman([1, 2, 3, 4], [10, 20, 25, 90]) == pytest.approx(1.0)
    assert metrics.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # ranks (0, 1, 2) vs (0.5, 0.5, 2): covariance 1.5 / sqrt(2 * 1.5) = 0.866
    assert metrics.spearman([0, 1, 2], [5.0, 5.0, 9.0]) == pytest.approx(math.sqrt(3) / 2)
    assert math.isnan(metrics.spearman([0, 1, 2], [5.0, 5.0, 5.0]))  # a flat series is no order
