"""Issue-6 mechanisms against straightforward references, on the tiny model at T=12.

Stage cascade: every temporal attn1 is assigned its stage from its module path (input_blocks,
middle_block, output_blocks) and attended with an explicit per-head softmax over explicitly listed
windows, with the stage's knobs worked out here. Circular windows are written out by hand.
Tolerance: 2e-5 absolute on UNet outputs of magnitude ~3, as in test_motion_knobs.py.
"""
import math

import pytest
import torch

from sgm.modules.attention import CrossAttention, multihead_attention, temporal_self_attention
from sgm.modules.motion import STAGES, MotionKnobs, adaptive_window_size, bucket_motion_score, window_starts

T = 12
TOL = 2e-5
# circular windows at T = 12, written out by hand, for (w, r)
EXPECTED_LOOP_WINDOWS = {
    (4, 3): [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9], [9, 10, 11, 0]],
    (5, 4): [[0, 1, 2, 3, 4], [4, 5, 6, 7, 8], [8, 9, 10, 11, 0]],
    (6, 5): [[0, 1, 2, 3, 4, 5], [5, 6, 7, 8, 9, 10], [10, 11, 0, 1, 2, 3]],
}


def stage_of(module_name: str) -> str:
    for prefix, stage in (("input_blocks.", "input"), ("middle_block.", "middle"), ("output_blocks.", "output")):
        if module_name.startswith(prefix):
            return stage
    raise AssertionError(f"temporal attention outside the UNet stages: {module_name}")


def reference_windows(t, w, r, loop, ref):
    if w is None or w >= t:
        return [list(range(t))]
    if loop:
        return [[(start + j) % t for j in range(w)] for start in range(0, t, r)]
    return [list(range(start, start + w)) for start in ref.starts(t, w, r)]


def stage_knobs(knobs: dict, stage: str) -> dict:
    """What the spec says is in effect in `stage`: s, k only in their stages, windows only in theirs."""
    s, k, w = knobs.get("temporal_attn_scale", 1.0), knobs.get("temporal_attn_k_scale", 1.0), knobs.get("attn_window_size")
    scale_stages = knobs.get("temporal_attn_scale_stages") or STAGES
    window_stages = knobs.get("attn_window_stages") or STAGES
    if stage not in scale_stages:
        s, k = 1.0, 1.0
    if stage not in window_stages:
        w = None
    r = knobs.get("attn_window_stride") or (max(1, w // 4) if w else None)
    return dict(s=s, k=k, w=w, r=r, fusion=knobs.get("attn_window_fusion", "pyramid"), loop=knobs.get("attn_window_loop", False))


def reference_forward(attn, knobs, x, ref):
    q, k, v = attn.to_q(x), attn.to_k(x), attn.to_v(x)
    t = x.shape[1]
    total = torch.zeros_like(q)
    weight_sum = torch.zeros(t)
    for window in reference_windows(t, knobs["w"], knobs["r"], knobs["loop"], ref):
        out = ref.attention(q[:, window], k[:, window], v[:, window], attn.heads, knobs["s"], knobs["k"])
        size = len(window)
        for j, frame in enumerate(window):
            weight = min(j + 1, size - j) if knobs["fusion"] == "pyramid" else 1.0
            total[:, frame] += weight * out[:, j]
            weight_sum[frame] += weight
    return attn.to_out(total / weight_sum[None, :, None])


def run_reference(unet, inputs, knobs, monkeypatch, ref):
    stages = {
        id(m): stage_of(name) for name, m in unet.named_modules() if isinstance(m, CrossAttention) and m.motion_knobs is not None
    }
    original = CrossAttention.forward

    def forward(self, x, context=None, mask=None):
        if id(self) not in stages:
            return original(self, x, context, mask)
        return reference_forward(self, stage_knobs(knobs, stages[id(self)]), x, ref)

    with monkeypatch.context() as m:
        m.setattr(CrossAttention, "forward", forward)
        with torch.no_grad():
            return unet(**inputs)


def forward_with(unet, inputs, knobs, score=None):
    try:
        unet.set_motion_knobs(**knobs)
        unet.set_motion_score(score)
        with torch.no_grad():
            return unet(**inputs)
    finally:
        unet.set_motion_score(None)
        unet.set_motion_knobs(**MotionKnobs().as_dict())


WINDOWS = dict(attn_window_size=4, attn_window_stride=2)
CASES = {
    "windows in output": dict(WINDOWS, attn_window_stages=["output"]),
    "windows in input+middle": dict(WINDOWS, attn_window_stages=["input", "middle"]),
    "windows in middle (text)": dict(WINDOWS, attn_window_stages="middle"),
    "s,k in output": dict(temporal_attn_scale=2.0, temporal_attn_k_scale=0.7, temporal_attn_scale_stages=["output"]),
    "s in input": dict(temporal_attn_scale=0.5, temporal_attn_scale_stages=["input"]),
    **{
        f"loop w={w},r={r},{fusion}": dict(attn_window_size=w, attn_window_stride=r, attn_window_fusion=fusion, attn_window_loop=True)
        for (w, r) in EXPECTED_LOOP_WINDOWS
        for fusion in ("pyramid", "flat")
    },
    "cascade": dict(
        temporal_attn_scale=2.0,
        temporal_attn_scale_stages=["middle", "output"],
        attn_window_size=5,
        attn_window_stride=3,
        attn_window_stages=["output"],
        attn_window_loop=True,
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_mechanism_matches_reference(name, unet, inputs, default_out, monkeypatch, reference):
    knobs = CASES[name]
    out = forward_with(unet, inputs, knobs)
    expected = run_reference(unet, inputs, knobs, monkeypatch, reference)
    err = (out - expected).abs().max().item()
    assert err <= TOL, f"{name}: max abs error vs reference {err:.3g}"
    assert (out - default_out).abs().max().item() > 1e-3, f"{name} did not change the output"


@pytest.mark.parametrize("limited", [dict(attn_window_stages=["output"]), dict(attn_window_loop=True)])
def test_stage_limit_and_loop_differ_from_plain_windows(unet, inputs, limited):
    plain = forward_with(unet, inputs, WINDOWS)
    assert (forward_with(unet, inputs, {**WINDOWS, **limited}) - plain).abs().max().item() > 1e-3


def test_circular_windows_match_hand_written_lists(reference):
    for (w, r), windows in EXPECTED_LOOP_WINDOWS.items():
        assert reference_windows(T, w, r, True, reference) == windows
        assert [[(s + j) % T for j in range(w)] for s in window_starts(T, w, r, loop=True)] == windows


def test_loop_lets_last_frame_see_the_first():
    """Perturbing frame 0 reaches frame T-1 through a circular window, not through a linear one."""
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(3, T, 16, generator=g) for _ in range(3))
    v2 = v.clone()
    v2[:, 0] += 1.0
    for loop in (False, True):
        knobs = MotionKnobs(attn_window_size=4, attn_window_stride=2, attn_window_loop=loop)
        a = temporal_self_attention(q, k, v, 2, knobs)
        b = temporal_self_attention(q, k, v2, 2, knobs)
        moved = (a[:, -1] - b[:, -1]).abs().max().item()
        assert (moved > 1e-3) if loop else (moved == 0.0)


def test_loop_with_window_covering_the_clip_is_full_attention():
    g = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(2, T, 16, generator=g) for _ in range(3))
    full = multihead_attention(q, k, v, 2)
    assert torch.equal(temporal_self_attention(q, k, v, 2, MotionKnobs(attn_window_size=T, attn_window_loop=True)), full)


def test_stage_knobs_reach_each_attention(unet, tiny_model_factory):
    """After set_motion_knobs and when built from a config, attn1 carries its stage's knobs."""
    knobs = CASES["cascade"]
    built = tiny_model_factory(**knobs).model.diffusion_model
    for model in (built, unet):
        if model is unet:
            model.set_motion_knobs(**knobs)
        try:
            for name, m in model.named_modules():
                if isinstance(m, CrossAttention) and m.motion_knobs is not None:
                    expect = stage_knobs(knobs, stage_of(name))
                    got = m.motion_knobs
                    assert (got.attn_window_size, got.temporal_attn_scale) == (expect["w"], expect["s"]), name
        finally:
            unet.set_motion_knobs(**MotionKnobs().as_dict())


# -- defaults and equivalences: torch.equal


def test_new_knobs_at_defaults_are_bit_identical(inputs, default_out, tiny_model_factory):
    defaults = dict(
        temporal_attn_scale_stages=None,
        attn_window_stages=None,
        attn_window_min=None,
        attn_window_max=None,
        attn_window_loop=False,
    )
    built = tiny_model_factory(**defaults).model.diffusion_model
    with torch.no_grad():
        assert torch.equal(built(**inputs), default_out)


def test_all_stages_listed_equals_no_stage_limit(unet, inputs):
    everywhere = dict(WINDOWS, temporal_attn_scale=2.0)
    listed = dict(everywhere, attn_window_stages=list(STAGES), temporal_attn_scale_stages="input,middle,output")
    assert torch.equal(forward_with(unet, inputs, listed), forward_with(unet, inputs, everywhere))


def test_loop_and_stages_off_without_windows_change_nothing(unet, inputs, default_out):
    assert torch.equal(forward_with(unet, inputs, dict(attn_window_loop=True, attn_window_stages=["output"])), default_out)


def test_auto_window_equals_the_fixed_window_it_resolves_to(unet, inputs):
    auto = dict(attn_window_size="auto", attn_window_min=4, attn_window_max=12)
    for score, size in ((0.5, 8), (1.0, 4), (0.0, 12), (0.3, 10)):
        assert adaptive_window_size(score, 4, 12) == size
        assert torch.equal(forward_with(unet, inputs, auto, score), forward_with(unet, inputs, dict(attn_window_size=size)))


def test_auto_window_without_score_is_a_clear_error(unet, inputs):
    with pytest.raises(ValueError, match="set_motion_score"):
        forward_with(unet, inputs, dict(attn_window_size="auto", attn_window_min=4, attn_window_max=8))


def test_set_motion_score_returns_the_window(unet):
    try:
        assert unet.set_motion_score(0.5) is None  # not auto: no window to size
        unet.set_motion_knobs(attn_window_size="auto", attn_window_min=2, attn_window_max=10)
        assert unet.set_motion_score(0.5) == 6
        assert unet.set_motion_score(2.0) == 2  # clipped to 1
        unet.set_motion_knobs(attn_window_max=6)  # the score is kept; the window follows the new range
        assert unet.motion_knobs.resolved(unet.motion_score).attn_window_size == 2
    finally:
        unet.set_motion_score(None)
        unet.set_motion_knobs(**MotionKnobs().as_dict())


# -- window-size schedule


@pytest.mark.parametrize(
    "score,w_min,w_max,size",
    [
        (0.0, 4, 16, 16),
        (1.0, 4, 16, 4),
        (0.5, 4, 16, 10),
        (0.25, 4, 16, 13),
        (0.75, 4, 16, 7),
        (-1.0, 4, 16, 16),  # clipped
        (3.0, 4, 16, 4),  # clipped
        (0.5, 4, 11, 8),  # 7.5 rounds half up
        (0.5, 5, 6, 6),  # 5.5 rounds half up
        (0.3, 8, 8, 8),
    ],
)
def test_adaptive_window_size_schedule(score, w_min, w_max, size):
    assert adaptive_window_size(score, w_min, w_max) == size
    assert MotionKnobs(attn_window_size="auto", attn_window_min=w_min, attn_window_max=w_max).resolved(score).attn_window_size == size


@pytest.mark.parametrize("bucket,score", [(0, 0.0), (127, 127 / 255), (255, 1.0), (300, 1.0), (51, 0.2)])
def test_bucket_motion_score(bucket, score):
    assert math.isclose(bucket_motion_score(bucket), score, rel_tol=0, abs_tol=1e-12)


def test_auto_window_stride_default_follows_the_window():
    knobs = MotionKnobs(attn_window_size="auto", attn_window_min=4, attn_window_max=16)
    assert knobs.window_stride is None
    assert knobs.resolved(0.0).window_stride == 4 and knobs.resolved(1.0).window_stride == 1
    fixed = MotionKnobs(attn_window_size="auto", attn_window_min=4, attn_window_max=16, attn_window_stride=3)
    assert fixed.resolved(0.0).window_stride == 3 and fixed.resolved(1.0).window_stride == 3


def test_non_finite_motion_score_is_refused(unet):
    try:
        unet.set_motion_knobs(attn_window_size="auto", attn_window_min=2, attn_window_max=10)
        unet.set_motion_score(0.5)
        with pytest.raises(ValueError, match="motion score"):
            unet.set_motion_score(float("nan"))
        assert unet.motion_score == 0.5
    finally:
        unet.set_motion_score(None)
        unet.set_motion_knobs(**MotionKnobs().as_dict())
