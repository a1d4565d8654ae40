"""Each motion knob against a straightforward reference written here, on the tiny model at T=12.

The reference replaces every temporal self-attention with an explicit per-head softmax and a
plain loop over explicitly listed windows, and feeds explicitly computed frame positions.
Tolerance: 2e-5 absolute on UNet outputs of magnitude ~3 (float32 rounding of a different
summation order); every knob case also moves the output by far more than that.
"""

import pytest
import torch

import sgm.modules.video_attention as video_attention
from sgm.modules.attention import CrossAttention
from sgm.modules.motion import MotionKnobs

T = 12
TOL = 2e-5
# windows of the spec at T = 12, written out by hand: start frames for (w, r)
EXPECTED_STARTS = {(4, 2): [0, 2, 4, 6, 8], (5, 3): [0, 3, 6, 7], (12, 4): [0]}


def reference_forward(attn, knobs, x, ref):
    q, k, v = attn.to_q(x), attn.to_k(x), attn.to_v(x)
    s, kscale = knobs["temporal_attn_scale"], knobs["temporal_attn_k_scale"]
    w = knobs["attn_window_size"]
    t = x.shape[1]
    if w is None or w >= t:
        return attn.to_out(ref.attention(q, k, v, attn.heads, s, kscale))
    r = knobs["attn_window_stride"] or max(1, w // 4)
    total = torch.zeros_like(q)
    weight_sum = torch.zeros(t)
    for start in ref.starts(t, w, r):
        out = ref.attention(q[:, start : start + w], k[:, start : start + w], v[:, start : start + w], attn.heads, s, kscale)
        for j in range(w):
            weight = min(j + 1, w - j) if knobs["attn_window_fusion"] == "pyramid" else 1.0
            total[:, start + j] += weight * out[:, j]
            weight_sum[start + j] += weight
    return attn.to_out(total / weight_sum[None, :, None])


def reference_positions(num_frames, embedding_frames, device=None):
    if embedding_frames is None:
        return torch.arange(num_frames, dtype=torch.float32)
    step = (embedding_frames - 1) / (num_frames - 1) if num_frames > 1 else 0.0
    return torch.tensor([i * step for i in range(num_frames)], dtype=torch.float32)


def run_reference(unet, inputs, knobs, monkeypatch, ref):
    """UNet output with every temporal attn1 and the frame positions replaced by the references."""
    full = MotionKnobs().as_dict() | knobs
    original = CrossAttention.forward

    def forward(self, x, context=None, mask=None):
        if self.motion_knobs is None:
            return original(self, x, context, mask)
        return reference_forward(self, full, x, ref)

    with monkeypatch.context() as m:
        m.setattr(CrossAttention, "forward", forward)
        m.setattr(video_attention, "frame_positions", lambda t, e, device=None: reference_positions(t, full["position_embedding_frames"]))
        with torch.no_grad():
            return unet(**inputs)


CASES = {
    "s=0.5": dict(temporal_attn_scale=0.5),
    "s=2": dict(temporal_attn_scale=2.0),
    "k=0.7": dict(temporal_attn_k_scale=0.7),
    "s=2,k=0.7": dict(temporal_attn_scale=2.0, temporal_attn_k_scale=0.7),
    "E=5": dict(position_embedding_frames=5),
    "E=20": dict(position_embedding_frames=20),
    **{
        f"w={w},r={r},{fusion}": dict(attn_window_size=w, attn_window_stride=r, attn_window_fusion=fusion)
        for (w, r) in EXPECTED_STARTS
        for fusion in ("pyramid", "flat")
    },
    "all": dict(
        temporal_attn_scale=2.0,
        temporal_attn_k_scale=0.7,
        position_embedding_frames=20,
        attn_window_size=5,
        attn_window_stride=3,
        attn_window_fusion="pyramid",
    ),
    "w=6 default stride": dict(attn_window_size=6),
}


@pytest.mark.parametrize("name", list(CASES))
def test_knob_matches_reference(name, unet, inputs, default_out, monkeypatch, reference):
    knobs = CASES[name]
    try:
        unet.set_motion_knobs(**knobs)
        with torch.no_grad():
            out = unet(**inputs)
    finally:
        unet.set_motion_knobs(**MotionKnobs().as_dict())
    expected = run_reference(unet, inputs, knobs, monkeypatch, reference)
    err = (out - expected).abs().max().item()
    assert err <= TOL, f"{name}: max abs error vs reference {err:.3g}"
    moved = (out - default_out).abs().max().item()
    if knobs.get("attn_window_size") == 12:
        assert moved <= TOL, "w >= T must be plain full attention"
    else:
        assert moved > 1e-3, f"{name} did not change the output ({moved:.3g})"


def test_reference_window_starts_match_spec(reference):
    from sgm.modules.motion import window_starts

    for (w, r), starts in EXPECTED_STARTS.items():
        if w < T:
            assert reference.starts(T, w, r) == starts
            assert window_starts(T, w, r) == starts


def test_defaults_are_bit_identical_to_knob_free_path(unet, inputs, default_out):
    """Default knobs vs the same network with the knob code bypassed (attn1 as plain attention)."""
    attns = [m for m in unet.modules() if isinstance(m, CrossAttention) and m.motion_knobs is not None]
    assert len(attns) == 7  # one temporal self-attention per SpatialVideoTransformer of the tiny model
    try:
        for attn in attns:
            attn.motion_knobs = None
        with torch.no_grad():
            knob_free = unet(**inputs)
    finally:
        for attn in attns:
            attn.motion_knobs = unet.motion_knobs
    assert torch.equal(default_out, knob_free)


def test_setting_defaults_back_is_bit_identical(unet, inputs, default_out):
    unet.set_motion_knobs(**CASES["all"])
    with torch.no_grad():
        changed = unet(**inputs)
    unet.set_motion_knobs(**MotionKnobs().as_dict())
    with torch.no_grad():
        restored = unet(**inputs)
    assert not torch.equal(changed, default_out)
    assert torch.equal(restored, default_out)


def test_knobs_from_config_equal_runtime_knobs(unet, inputs, tiny_model_factory):
    built = tiny_model_factory(**CASES["all"]).model.diffusion_model
    assert built.motion_knobs == MotionKnobs(**CASES["all"])
    unet.set_motion_knobs(**CASES["all"])
    try:
        with torch.no_grad():
            assert torch.equal(built(**inputs), unet(**inputs))
    finally:
        unet.set_motion_knobs(**MotionKnobs().as_dict())


def test_position_knob_leaves_positions_alone_when_off():
    from sgm.modules.motion import frame_positions

    assert torch.equal(frame_positions(12, None), torch.arange(12))
    assert torch.equal(frame_positions(12, 12), torch.arange(12))
    assert torch.equal(frame_positions(1, 20), torch.arange(1))
    assert torch.allclose(frame_positions(12, 20), reference_positions(12, 20))
    assert frame_positions(12, 20)[-1].item() == 19.0


def test_spatial_attention_untouched(unet):
    """Only the temporal self-attention carries knobs: spatial attn1/attn2 and temporal attn2 do not."""
    with_knobs = {name for name, m in unet.named_modules() if isinstance(m, CrossAttention) and m.motion_knobs is not None}
    assert with_knobs and all(name.endswith("time_stack.0.attn1") for name in with_knobs)


def explicit_windows(t, w, r, loop):
    """Window frame lists written out from the spec: starts 0, r, 2r, ... (while they fit, then T - w;
    circular: every start < T, frames mod T)."""
    if loop:
        return [[(s + j) % t for j in range(w)] for s in range(0, t, r)]
    starts = list(range(0, t - w + 1, r))
    if starts[-1] + w < t:
        starts.append(t - w)
    return [list(range(s, s + w)) for s in starts]


def explicit_windowed(q, k, v, w, r, fusion, loop, heads):
    """Per-window softmax attention of each listed window, fused by the weighted mean, in float64."""
    b, t, c = q.shape
    d = c // heads
    out, total = torch.zeros_like(q), torch.zeros(t, dtype=q.dtype)
    for frames in explicit_windows(t, w, r, loop):
        index = torch.tensor(frames)
        qw, kw, vw = (x[:, index].reshape(b, w, heads, d).transpose(1, 2) for x in (q, k, v))
        o = (torch.softmax(qw @ kw.transpose(-1, -2) / d ** 0.5, dim=-1) @ vw).transpose(1, 2).reshape(b, w, c)
        for j, f in enumerate(frames):
            weight = float(min(j + 1, w - j)) if fusion == "pyramid" else 1.0
            out[:, f] += weight * o[:, j]
            total[f] += weight
    return out / total[None, :, None]


@pytest.mark.parametrize("t", [9, 16, 17, 25, 32, 40])
def test_windowed_attention_equals_explicit_windows_at_every_layout(t):
    """Strided group views, padding past T, the tail window and circular extension against windows
    listed one by one: every (w, r) with r <= w < T up to w = 9, both fusions, with and without loop."""
    from functools import partial

    from sgm.modules.attention import multihead_attention
    from sgm.modules.motion import windowed_attention

    g = torch.Generator().manual_seed(t)
    q, k, v = (torch.randn(3, t, 8, generator=g, dtype=torch.float64) for _ in range(3))
    attend = partial(multihead_attention, heads=2)
    worst = 0.0
    for w in range(2, min(t, 10)):
        for r in range(1, w + 1):
            for loop in (False, True):
                for fusion in ("pyramid", "flat"):
                    got = windowed_attention(q, k, v, w, r, fusion, attend, loop=loop)
                    worst = max(worst, (got - explicit_windowed(q, k, v, w, r, fusion, loop, 2)).abs().max().item())
    assert worst < 1e-12, worst


def test_window_layouts_made_in_inference_mode_serve_autograd_later():
    """Layouts are memoised; one first made under torch.inference_mode must not poison a later
    differentiable call (training with windows)."""
    from functools import partial

    from sgm.modules.attention import multihead_attention
    from sgm.modules.motion import windowed_attention

    attend = partial(multihead_attention, heads=2)
    with torch.inference_mode():
        windowed_attention(*(torch.randn(2, 23, 8) for _ in range(3)), 7, 3, "pyramid", attend, loop=True)
    q = torch.randn(2, 23, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: windowed_attention(x, x, x, 7, 3, "pyramid", attend, loop=True), (q,))
