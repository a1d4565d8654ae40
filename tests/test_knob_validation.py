"""Bad knob values raise ValueError naming the key and the value: in a config (network knobs in
network_config, sampling knobs in sampler_config), at runtime, and in a pipeline call."""
import math

import pytest
from omegaconf import OmegaConf

from sgm.inference import InputError
from sgm.modules.motion import SAMPLING_KNOB_NAMES, MotionKnobs, SamplingKnobs
from sgm.util import instantiate_from_config

BAD = [
    ("temporal_attn_scale", 0),
    ("temporal_attn_scale", -1.0),
    ("temporal_attn_scale", math.inf),
    ("temporal_attn_scale", math.nan),
    ("temporal_attn_scale", "2"),
    ("temporal_attn_k_scale", 0.0),
    ("temporal_attn_k_scale", -0.5),
    ("temporal_attn_k_scale", math.inf),
    ("position_embedding_frames", 0),
    ("position_embedding_frames", 2.5),
    ("position_embedding_frames", -3),
    ("attn_window_size", 0),
    ("attn_window_size", 4.5),
    ("attn_window_stride", 0),
    ("attn_window_fusion", "gaussian"),
    ("attn_window_fusion", None),
    ("attn_window_size", "Auto"),
    ("attn_window_size", "adaptive"),
    ("attn_window_stages", ["sideways"]),
    ("attn_window_stages", []),
    ("attn_window_stages", "down"),
    ("attn_window_stages", 3),
    ("temporal_attn_scale_stages", ["input", "up"]),
    ("temporal_attn_scale_stages", ""),
    ("attn_window_min", 0),
    ("attn_window_max", 2.5),
    ("attn_window_loop", "yes"),
    ("attn_window_loop", 1),
    ("attn_window_loop", None),
]
BAD_SAMPLING = [
    ("noise_correlation", 1.0),
    ("noise_correlation", -0.1),
    ("noise_correlation", math.nan),
    ("noise_correlation", True),
    ("noise_correlation", "0.5"),
    ("shuffle_windowed_noise", "yes"),
    ("shuffle_windowed_noise", 1),
    ("attn_window_motion", "flow"),
    ("attn_window_motion", None),
]


@pytest.mark.parametrize("key,value", BAD)
def test_bad_value_in_config(key, value, paths):
    network = OmegaConf.load(paths.tiny_config).model.params.network_config
    network.params[key] = value
    with pytest.raises(ValueError) as err:
        instantiate_from_config(network)
    assert key in str(err.value) and repr(value) in str(err.value)


@pytest.mark.parametrize("key,value", BAD_SAMPLING)
def test_bad_sampling_knob_in_sampler_config(key, value, paths):
    sampler = OmegaConf.load(paths.tiny_config).model.params.sampler_config
    sampler.params[key] = value
    with pytest.raises(ValueError) as err:
        instantiate_from_config(sampler)
    assert key in str(err.value) and repr(value) in str(err.value)


def test_sampling_knobs_are_not_network_parameters(paths):
    for key, value in (("noise_correlation", 0.2), ("attn_window_motion", "latent"), ("shuffle_windowed_noise", True)):
        network = OmegaConf.load(paths.tiny_config).model.params.network_config
        network.params[key] = value
        with pytest.raises(TypeError, match=key):
            instantiate_from_config(network)
    assert set(SAMPLING_KNOB_NAMES).isdisjoint(MotionKnobs.__dataclass_fields__)


@pytest.mark.parametrize("key,value", BAD + BAD_SAMPLING)
def test_bad_value_in_a_pipeline_call_is_refused_before_sampling(key, value, tiny_pipeline):
    with pytest.raises(InputError) as err:
        tiny_pipeline.settings(**{"attn_window_size": 4, key: value})
    assert key in str(err.value)


def test_stride_larger_than_window():
    with pytest.raises(ValueError, match=r"attn_window_stride.*got 5"):
        MotionKnobs(attn_window_size=4, attn_window_stride=5)


@pytest.mark.parametrize(
    "knobs,match",
    [
        (dict(attn_window_size="auto"), "attn_window_min and attn_window_max"),
        (dict(attn_window_size="auto", attn_window_min=4), "attn_window_min and attn_window_max"),
        (dict(attn_window_size="auto", attn_window_max=8), "attn_window_min and attn_window_max"),
        (dict(attn_window_min=8, attn_window_max=4), r"attn_window_min \(8\) must be <= attn_window_max \(4\)"),
        (dict(attn_window_size="auto", attn_window_min=4, attn_window_max=8, attn_window_stride=5), r"attn_window_stride must be <= attn_window_min \(4\)"),
    ],
)
def test_auto_window_needs_a_consistent_range(knobs, match):
    with pytest.raises(ValueError, match=match):
        MotionKnobs(**knobs)


@pytest.mark.parametrize("key,value", BAD)
def test_bad_value_at_runtime_changes_nothing(unet, key, value):
    before = unet.motion_knobs
    with pytest.raises(ValueError) as err:
        unet.set_motion_knobs(**{"attn_window_size": 4, key: value})
    assert key in str(err.value)
    assert unet.motion_knobs == before


def test_unknown_knob_at_runtime(unet):
    with pytest.raises(ValueError, match="temporal_attn_scael"):
        unet.set_motion_knobs(temporal_attn_scael=2.0)


def test_good_values_normalised():
    knobs = MotionKnobs(temporal_attn_scale=2, attn_window_size=16)
    assert knobs.temporal_attn_scale == 2.0 and isinstance(knobs.temporal_attn_scale, float)
    assert knobs.window_stride == 4
    assert MotionKnobs(attn_window_size=3).window_stride == 1
    assert MotionKnobs(attn_window_size=16, attn_window_stride=16).window_stride == 16
    stages = MotionKnobs(attn_window_stages=["output", "input", "output"], temporal_attn_scale_stages=" middle, output")
    assert stages.attn_window_stages == ("input", "output") and stages.temporal_attn_scale_stages == ("middle", "output")
    assert stages.as_dict()["attn_window_stages"] == ["input", "output"]
    assert SamplingKnobs(noise_correlation=0).noise_correlation == 0.0 and isinstance(SamplingKnobs(noise_correlation=0).noise_correlation, float)
    # knobs of a mechanism that is off are kept but have no effect
    assert MotionKnobs(attn_window_min=2, attn_window_max=6).window_stride is None
