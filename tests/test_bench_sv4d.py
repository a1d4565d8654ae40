"""scripts/benchmarks/bench_sv4d.py times the row it names: each row's knobs are in effect on the
SV4D UNet's motion and view attention during its timed forward, and the model is left as it was."""
import pytest

from sgm.modules.spacetime_attention import PostHocSpatialTransformerWithTimeMixingAndMotion


@pytest.fixture(scope="module")
def bench(paths, script_loader):
    return script_loader(paths.repo / "scripts" / "benchmarks" / "bench_sv4d.py")


def test_rows_run_with_their_knobs_and_restore_the_model(bench, paths):
    unet, frames, views, context_dim, adm = bench.build(str(paths.parity / "tiny_sv4d2.yaml"), bench.torch.device("cpu"))
    batch = bench.inputs(frames, views, 8, context_dim, adm, bench.torch.device("cpu"))
    seen = []
    block = next(m for m in unet.modules() if isinstance(m, PostHocSpatialTransformerWithTimeMixingAndMotion))
    hook = block.register_forward_pre_hook(
        lambda module, args: seen.append((module.motion_blocks[0].attn1.motion_knobs.temporal_attn_scale,
                                          module.time_mix_blocks[0].attn1.motion_knobs.temporal_attn_scale)))
    try:
        assert bench.timed(unet, batch, bench.ROWS["s=2"], bench.torch.device("cpu")) > 0
        bench.timed(unet, batch, bench.ROWS["s_v=2"], bench.torch.device("cpu"))
    finally:
        hook.remove()
    assert seen[0] == (2.0, 1.0) and seen[-1] == (1.0, 2.0)
    assert block.motion_blocks[0].attn1.motion_knobs.temporal_attn_scale == 1.0
    assert block.time_mix_blocks[0].attn1.motion_knobs.temporal_attn_scale == 1.0
