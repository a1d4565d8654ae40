"""scripts/benchmarks/bench_temporal_attention.py times what each row names: with its own case
builders, the knob code runs inside the timed call of every knobbed row (and with that row's
knobs), never in a knob-free row, windows only in window rows, and every row leaves the modules'
knobs as it found them."""
import importlib.util
from collections import Counter

import pytest

from sgm.modules import attention
from sgm.modules.motion import MotionKnobs

T = 17  # > 16, so the w16 rows really window
LATENT = 8


@pytest.fixture(scope="module")
def bench(paths):
    path = paths.repo / "scripts" / "benchmarks" / "bench_temporal_attention.py"
    spec = importlib.util.spec_from_file_location("bench_temporal_attention_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def unet(bench):
    return bench.toy_unet()


@pytest.fixture
def calls(monkeypatch):
    """Counts of temporal_self_attention / windowed_attention calls, and the knobs each temporal call got."""
    seen = {"counts": Counter(), "knobs": []}
    temporal, windowed = attention.temporal_self_attention, attention.windowed_attention

    def counting_temporal(q, k, v, heads, knobs, **kw):
        seen["counts"]["temporal"] += 1
        seen["knobs"].append(knobs)
        return temporal(q, k, v, heads, knobs, **kw)

    def counting_windowed(*args, **kw):
        seen["counts"]["windowed"] += 1
        return windowed(*args, **kw)

    monkeypatch.setattr(attention, "temporal_self_attention", counting_temporal)
    monkeypatch.setattr(attention, "windowed_attention", counting_windowed)
    return seen


def timed(bench, case, calls):
    """Counts and knobs seen during one bench.time_case(case) (setup, then the timed run)."""
    calls["counts"].clear()
    calls["knobs"].clear()
    assert bench.time_case(case, "cpu") > 0
    return dict(calls["counts"]), list(calls["knobs"])


def test_unet_rows_run_their_knobs_inside_the_timed_forward(bench, unet, calls):
    temporal = bench.temporal_attentions(unet)
    before = [m.motion_knobs for m in temporal]
    assert len(temporal) > 0 and all(k is not None for k in before)
    cases = bench.unet_cases(unet, T, LATENT)
    assert [c.name for c in cases] == list(bench.UNET_CASES)  # knob-free first: the order that hid the old bug
    for case in cases:
        counts, knobs = timed(bench, case, calls)
        spec = bench.UNET_CASES[case.name]
        if spec is None:
            assert counts == {}, f"{case.name}: knob code ran {counts}"
        else:
            assert counts.get("temporal") == len(temporal), f"{case.name}: {counts}"
            expected = MotionKnobs(**spec)
            assert all(k == expected for k in knobs), f"{case.name}: ran with {set(knobs)}"
            assert counts.get("windowed", 0) == (len(temporal) if "attn_window_size" in spec else 0), f"{case.name}: {counts}"
        assert [m.motion_knobs for m in bench.temporal_attentions(unet)] == before, f"{case.name} left the knobs changed"
        assert all(m.motion_knobs is k for m, k in zip(temporal, before))
        assert unet.motion_knobs == MotionKnobs() and unet.motion_score is None


def test_knob_free_restores_the_knobs_also_on_error(bench, unet):
    temporal = bench.temporal_attentions(unet)
    before = [m.motion_knobs for m in temporal]
    with pytest.raises(RuntimeError):
        with bench.knob_free(unet):
            assert all(m.motion_knobs is None for m in temporal)
            raise RuntimeError("inside the timed block")
    assert all(m.motion_knobs is k for m, k in zip(temporal, before))


def test_attention_rows_run_their_knobs_inside_the_timed_call(bench, calls):
    cases = bench.attention_cases(T, positions=4)
    assert [c.name for c in cases] == list(bench.ATTENTION_CASES)
    for case in cases:
        counts, knobs = timed(bench, case, calls)
        spec = bench.ATTENTION_CASES[case.name]
        if spec is None:
            assert counts == {}, f"{case.name}: knob code ran {counts}"
        else:
            assert counts.get("temporal") == 1 and knobs == [MotionKnobs(**spec)], f"{case.name}: {counts}"
            assert counts.get("windowed", 0) == (1 if "attn_window_size" in spec else 0), f"{case.name}: {counts}"


def test_interleaved_median_times_every_row_round_robin(bench, calls):
    cases = bench.attention_cases(T, positions=4)
    order = []
    for case in cases:
        case.run = (lambda run, name: lambda: (order.append(name), run())[1])(case.run, case.name)
    timings = bench.interleaved_median_ms(cases, repeats=2, device="cpu", warmup=1)
    assert list(timings) == list(bench.ATTENTION_CASES) and all(ms > 0 for ms in timings.values())
    assert order == 3 * list(bench.ATTENTION_CASES)  # warm-up round, then two timed rounds, each case once per round
    assert calls["counts"]["temporal"] == 3 * 3 and calls["counts"]["windowed"] == 3 * 2  # three knobbed rows, two windowed
