"""FourDPipeline, the Python API of SV4D / SV4D 2.0, on the tiny 4D models (CPU, 2 steps, a 3-frame
64x64 GIF): knobs in effect for the call only, same seed -> equal views, a knob changes them, the
model loaded once; bad values as InputError; SV4D's reference views required, from a reference
stage or given."""
import json
from pathlib import Path

import pytest
import torch

from sgm.inference import InputError, VideoPipeline
from sgm.inference.four_d import FourDPipeline

PARITY = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "upstream_parity"
CALL = dict(num_steps=2, n_frames=3, img_size=64)


@pytest.fixture(scope="module")
def sv4d2():
    return FourDPipeline.from_config(PARITY / "tiny_sv4d2.yaml", PARITY / "sv4d2_weights.safetensors", device="cpu")


def knob_state(pipe):
    unet = pipe.model.model.diffusion_model
    state = {name: m.motion_knobs for name, m in unet.named_modules() if getattr(m, "motion_knobs", None) is not None}
    assert "" in state and len(state) > 1  # the UNet's knobs and its attention blocks'
    return state


def test_call_only_knobs_same_seed_equal_views_and_a_knob_changes_them(sv4d2, video_gif):
    before = knob_state(sv4d2)
    model = sv4d2.model
    a = sv4d2(video_gif, seed=5, **CALL)
    b = sv4d2(str(video_gif), seed=5, **CALL)
    knobbed = sv4d2(video_gif, seed=5, temporal_attn_scale=2.0, view_attn_scale=0.5, **CALL)
    assert sv4d2.model is model and knob_state(sv4d2) == before  # loaded once, left as it was
    assert a.views.shape == (3, 3, 3, 64, 64) and a.inputs.shape == (3, 3, 64, 64)
    assert a.views.device.type == "cpu" and 0.0 <= a.views.min() and a.views.max() <= 1.0
    assert torch.equal(a.views, b.views)
    assert not torch.equal(a.views, knobbed.views)
    assert not torch.equal(a.views, sv4d2(video_gif, seed=6, **CALL).views)
    record = json.loads(json.dumps(knobbed.record))
    assert record["version"] == "sv4d2" and record["seed"] == 5 and record["num_steps"] == 2
    assert record["config"].endswith("tiny_sv4d2.yaml") and record["ckpt_path"].endswith("sv4d2_weights.safetensors")
    assert record["motion_knobs"]["temporal_attn_scale"] == 2.0 and record["motion_knobs"]["view_attn_scale"] == 0.5
    assert record["knobs_given"] == {"temporal_attn_scale": 2.0, "view_attn_scale": 0.5}
    assert len(record["cameras"]["azimuths_deg"]) == 4 and record["cameras"]["camera_views"] == [1, 2, 3]
    # a tensor video (N, 3, H, W) in [-1, 1] is taken as it is
    tensor = sv4d2(a.inputs * 2 - 1, seed=5, num_steps=2)
    assert tensor.views.shape == a.views.shape and (tensor.views - a.views).abs().max() < 0.05


BAD = [
    (dict(temporal_attn_scale=-1), "temporal_attn_scale"),
    (dict(noise_correlation=0.5), "SVD sampling loop"),
    (dict(attn_window_size="auto", attn_window_min=2, attn_window_max=4), "attn_window_size auto"),
    (dict(frobnicate=1), "unknown setting"),
    (dict(num_steps=0), "num_steps"),
    (dict(azimuths_deg=[0, 90]), "azimuths_deg needs 4"),
    (dict(reference_views=torch.zeros(3, 3, 64, 64)), "reference_views apply to SV4D"),
    (dict(n_frames=0), "n_frames"),
]


@pytest.mark.parametrize("kwargs, expected", BAD, ids=[next(iter(k)) for k, _ in BAD])
def test_bad_values_are_input_errors_and_leave_the_model(sv4d2, video_gif, kwargs, expected):
    before = knob_state(sv4d2)
    with pytest.raises(InputError, match=expected):
        sv4d2(video_gif, **{**CALL, **kwargs})
    assert knob_state(sv4d2) == before


def test_bad_videos(sv4d2, tmp_path):
    with pytest.raises(InputError, match="not found"):
        sv4d2(tmp_path / "missing.gif", **CALL)
    with pytest.raises(InputError, match=r"\(N, 3, H, W\)"):
        sv4d2(torch.zeros(3, 64, 64))
    with pytest.raises(InputError, match="in \\[-1, 1\\]"):
        sv4d2(torch.full((2, 3, 64, 64), 3.0))


def test_sv4d_needs_reference_views(video_gif):
    bare = FourDPipeline.from_config(PARITY / "tiny_sv4d.yaml", PARITY / "sv4d_weights.safetensors", device="cpu")
    assert bare.version == "sv4d"
    with pytest.raises(InputError, match="SV4D needs the reference views"):
        bare(video_gif, **CALL)
    given = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    out = bare(video_gif, reference_views=given, **CALL)
    assert out.views.shape == (3, 3, 3, 64, 64) and out.record["reference_stage"] == {"given": True}
    with pytest.raises(InputError, match="reference_views must be a tensor"):
        bare(video_gif, reference_views=given[:2], **CALL)

    stage = VideoPipeline.plan(None, PARITY / "tiny_svd.yaml", PARITY / "weights.safetensors", device="cpu", progress=False,
                               check_memory=False)
    staged = bare.with_reference(stage)
    a = staged(video_gif, seed=3, **CALL)
    assert torch.equal(a.views, staged(video_gif, seed=3, **CALL).views)
    ref = a.record["reference_stage"]
    assert ref["picked_views"] == [1, 3, 4] and ref["config"].endswith("tiny_svd.yaml")
    assert a.record["cameras"]["azimuths_deg"] == [72.0, 216.0, 288.0]
    with pytest.raises(InputError, match="applies to SV4D only"):
        FourDPipeline.plan(PARITY / "tiny_sv4d2.yaml", PARITY / "sv4d2_weights.safetensors", device="cpu", reference=stage)
    with pytest.raises(InputError, match="not an SV4D model"):
        FourDPipeline.plan(PARITY / "tiny_svd.yaml", PARITY / "weights.safetensors", device="cpu")
