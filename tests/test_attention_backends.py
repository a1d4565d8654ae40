"""The xformers backend: chosen only where it can run, and honouring every knob.

On CPU, xformers cannot run, so `softmax-xformers` configs must fall back to SDPA; the xformers
call itself is covered with a fake backend that computes attention explicitly and records calls.
"""
import math
import types

import pytest
import torch

import sgm.modules.attention as attention
from sgm.modules.motion import MotionKnobs

CASES = {
    "s=2,k=0.7": dict(temporal_attn_scale=2.0, temporal_attn_k_scale=0.7),
    "E=20": dict(position_embedding_frames=20),
    "w=5,r=3,pyramid": dict(attn_window_size=5, attn_window_stride=3, attn_window_fusion="pyramid"),
    "all": dict(temporal_attn_scale=2.0, temporal_attn_k_scale=0.7, position_embedding_frames=20, attn_window_size=5,
                attn_window_stride=3, attn_window_fusion="pyramid"),
}


def test_xformers_never_chosen_for_cpu_tensors():
    assert not attention.xformers_can_run(torch.zeros(1, 2, 8))
    assert not attention.xformers_can_run(torch.zeros(1, 2, 8, dtype=torch.float16))


def fake_xformers(calls):
    def memory_efficient_attention(q, k, v, attn_bias=None, scale=None):
        """q, k, v: (B, N, H, D), the xformers layout."""
        assert attn_bias is None
        calls.append((tuple(q.shape), k.shape[1], scale))
        d = q.shape[-1]
        logits = torch.einsum("bnhd,bmhd->bhnm", q, k) * (1 / math.sqrt(d) if scale is None else scale)
        return torch.einsum("bhnm,bmhd->bnhd", logits.softmax(-1), v)

    return types.SimpleNamespace(memory_efficient_attention=memory_efficient_attention)


@pytest.fixture(scope="module")
def sdpa_unet(unet):
    return unet


@pytest.fixture(scope="module")
def xformers_unet(tiny_model_factory):
    return tiny_model_factory(spatial_transformer_attn_type="softmax-xformers").model.diffusion_model


def test_softmax_xformers_config_runs_on_cpu(sdpa_unet, xformers_unet, unet_inputs):
    inputs = unet_inputs(frames=5)
    with torch.no_grad():
        assert torch.equal(sdpa_unet(**inputs), xformers_unet(**inputs))


@pytest.mark.parametrize("name", ["s=2,k=0.7", "E=20", "w=5,r=3,pyramid", "all"])
def test_fake_xformers_honours_knobs(name, sdpa_unet, xformers_unet, monkeypatch, unet_inputs):
    calls = []
    monkeypatch.setattr(attention, "xformers_can_run", lambda q: True)
    monkeypatch.setattr(attention, "_xformers", lambda: fake_xformers(calls))
    inputs = unet_inputs()
    knobs = CASES[name]
    try:
        sdpa_unet.set_motion_knobs(**knobs)
        xformers_unet.set_motion_knobs(**knobs)
        with torch.no_grad():
            expected, out = sdpa_unet(**inputs), xformers_unet(**inputs)
    finally:
        for unet in (sdpa_unet, xformers_unet):
            unet.set_motion_knobs(**MotionKnobs().as_dict())
    assert calls, "the xformers branch was not taken"
    assert (out - expected).abs().max().item() <= 2e-5
    s = knobs.get("temporal_attn_scale", 1.0)
    # temporal self-attention: queries and keys are the frames (5 per window or all 12)
    temporal = [(shape, scale) for shape, keys, scale in calls if shape[1] == keys and keys in (5, 12)]
    assert temporal
    for shape, scale in temporal:
        assert (scale is None) if s == 1.0 else abs(scale - math.sqrt(s / 16)) < 1e-12
    if "attn_window_size" in knobs:
        assert all(shape[1] == knobs["attn_window_size"] for shape, _ in temporal)
