"""Initial-noise schedules: FreeNoise rescheduling (shuffle_windowed_noise) and correlation (correlate_noise)."""
import pytest
import torch

from sgm.modules.diffusionmodules.noise import correlate_noise, shuffle_windowed_noise


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
    """Without a generator the permutations follow torch's global RNG: its seed decides them, and
    drawing them advances it (a private fixed-seed generator would fail both checks)."""
    noise = frames_noise(20)
    torch.manual_seed(3)
    a = shuffle_windowed_noise(noise, 6, 3)
    after = torch.get_rng_state()
    torch.manual_seed(3)
    assert torch.equal(a, shuffle_windowed_noise(noise, 6, 3))
    torch.manual_seed(4)
    assert not torch.equal(a, shuffle_windowed_noise(noise, 6, 3))
    torch.manual_seed(3)
    assert not torch.equal(after, torch.get_rng_state())


@pytest.mark.parametrize("w,r", [(0, 1), (4, 0), (4, 5)])
def test_bad_window(w, r):
    with pytest.raises(ValueError):
        shuffle_windowed_noise(frames_noise(8), w, r)


# -- temporally correlated noise (noise_correlation)


def test_correlation_zero_is_the_noise_itself_and_draws_nothing():
    noise = frames_noise(8)
    g = torch.Generator().manual_seed(5)
    assert correlate_noise(noise, 0.0, generator=g) is noise
    assert torch.equal(torch.randn(3, generator=g), torch.randn(3, generator=torch.Generator().manual_seed(5)))


@pytest.mark.parametrize("rho", [0.2, 0.5, 0.9])
def test_correlation_is_the_documented_mixture(rho):
    g = torch.Generator().manual_seed(11)
    noise = torch.randn(6, 4, 5, 5, generator=g)
    out = correlate_noise(noise, rho, generator=g)
    replay = torch.Generator().manual_seed(11)
    own = torch.randn(6, 4, 5, 5, generator=replay)
    shared = torch.randn(1, 4, 5, 5, generator=replay)  # drawn right after the frames' own noise
    assert torch.allclose(out, rho**0.5 * shared + (1 - rho) ** 0.5 * own, atol=1e-6, rtol=0)


@pytest.mark.parametrize("rho", [0.2, 0.5, 0.9])
def test_correlation_statistics(rho):
    """Unit variance kept, every pair of frames correlated by rho. 16 frames of 4*64*64 values: the
    estimates' standard errors are about 0.01 (variance) and 0.012 (pair correlation), so 0.04 is
    over 3 standard errors."""
    g = torch.Generator().manual_seed(0)
    out = correlate_noise(torch.randn(16, 4, 64, 64, generator=g), rho, generator=g).reshape(16, -1).double()
    assert abs(out.var().item() - 1.0) < 0.04
    assert abs(out.mean().item()) < 0.04
    corr = torch.corrcoef(out)
    pairs = corr[~torch.eye(16, dtype=torch.bool)]
    assert abs(pairs.mean().item() - rho) < 0.04
    assert pairs.std().item() < 0.04  # every pair, not just on average


@pytest.mark.parametrize("rho", [-0.1, 1.0, 1.5])
def test_bad_correlation(rho):
    with pytest.raises(ValueError, match="correlation"):
        correlate_noise(frames_noise(4), rho)


def test_shuffle_after_correlation_equals_correlating_shuffled_noise():
    """The shared frame is the same in every frame, so the documented order (correlate, then
    shuffle) gives the same frames as the reverse, given the same draws."""
    noise = frames_noise(12)
    shared_gen = torch.Generator().manual_seed(4)
    mixed = correlate_noise(noise, 0.5, generator=shared_gen)
    a = shuffle_windowed_noise(mixed, 4, 2, generator=torch.Generator().manual_seed(9))
    b = correlate_noise(
        shuffle_windowed_noise(noise, 4, 2, generator=torch.Generator().manual_seed(9)), 0.5, generator=torch.Generator().manual_seed(4)
    )
    assert torch.allclose(a, b, atol=1e-6, rtol=0)
