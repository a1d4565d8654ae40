"""FreeNoise noise rescheduling (shuffle_windowed_noise)."""
import pytest
import torch

from sgm.modules.diffusionmodules.noise import shuffle_windowed_noise


def frames_noise(t, seed=0):
    return torch.randn(t, 4, 3, 3, generator=torch.Generator().manual_seed(seed))


def source_index(noise, shuffled):
    """For each output frame, the index of the input frame whose noise it holds."""
    return [next(j for j in range(noise.shape[0]) if torch.equal(shuffled[i], noise[j])) for i in range(shuffled.shape[0])]


@pytest.mark.parametrize("t,w,r", [(12, 4, 2), (13, 5, 3), (25, 8, 8), (7, 4, 1), (10, 16, 4)])
def test_frames_follow_the_spec(t, w, r):
    noise = frames_noise(t)
    out = shuffle_windowed_noise(noise, w, r, generator=torch.Generator().manual_seed(1))
    assert torch.equal(out[: min(w, t)], noise[: min(w, t)])
    src = source_index(noise, out)
    for start in range(w, t, r):
        group = src[start : min(start + r, t)]
        allowed = src[start - w : start - w + r]  # sources of frames [i-w, i-w+r) after earlier steps
        assert len(set(group)) == len(group), "a permutation repeats no frame"
        assert set(group) <= set(allowed)
        if start + r <= t:
            assert sorted(group) == sorted(allowed)
    assert all(j < w for j in src), "every frame's noise comes from the first window"


def test_same_seed_same_noise_and_input_untouched():
    noise = frames_noise(20)
    copy = noise.clone()
    a = shuffle_windowed_noise(noise, 6, 2, generator=torch.Generator().manual_seed(7))
    b = shuffle_windowed_noise(noise, 6, 2, generator=torch.Generator().manual_seed(7))
    c = shuffle_windowed_noise(noise, 6, 2, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(noise, copy)


def test_global_rng_is_the_default_generator():
    noise = frames_noise(20)
    torch.manual_seed(3)
    a = shuffle_windowed_noise(noise, 6, 3)
    torch.manual_seed(3)
    assert torch.equal(a, shuffle_windowed_noise(noise, 6, 3))


@pytest.mark.parametrize("w,r", [(0, 1), (4, 0), (4, 5)])
def test_bad_window(w, r):
    with pytest.raises(ValueError):
        shuffle_windowed_noise(frames_noise(8), w, r)
