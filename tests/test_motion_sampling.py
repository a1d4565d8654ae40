"""The sampling-loop side of issue 6 through sgm.inference.sample_video on the tiny model (5 frames, 3 steps):
the auto window's per-step schedule for both motion sources, the correlated initial noise and
its RNG order, and that defaults leave the samples bit-identical."""
import pytest
import torch

from sgm.inference import sample_video
from sgm.modules.attention import CrossAttention
from sgm.modules.diffusionmodules.noise import shuffle_windowed_noise
from sgm.modules.motion import adaptive_window_size, latent_motion_score

FRAMES = 5
AUTO = dict(attn_window_size="auto", attn_window_min=2, attn_window_max=5)


def reference_latent_score(x, frames):
    """D_t / (D_t + D_s) by explicit loops: adjacent-frame and adjacent-pixel mean |differences|."""
    x = x.double().reshape(-1, frames, *x.shape[1:])
    b, t, c, h, w = x.shape
    d_t = sum(abs(x[i, f + 1, ch, y, z] - x[i, f, ch, y, z]) for i in range(b) for f in range(t - 1) for ch in range(c) for y in range(h) for z in range(w))
    d_t = d_t / (b * (t - 1) * c * h * w)
    d_v = sum(abs(x[i, f, ch, y + 1, z] - x[i, f, ch, y, z]) for i in range(b) for f in range(t) for ch in range(c) for y in range(h - 1) for z in range(w))
    d_h = sum(abs(x[i, f, ch, y, z + 1] - x[i, f, ch, y, z]) for i in range(b) for f in range(t) for ch in range(c) for y in range(h) for z in range(w - 1))
    d_s = 0.5 * (d_v / (b * t * c * (h - 1) * w) + d_h / (b * t * c * h * (w - 1)))
    return float(d_t / (d_t + d_s))


class RecordingSampler:
    """Wraps the model's sampler: keeps its initial noise and every step's denoised estimate."""

    def __init__(self, sampler):
        self.sampler, self.noise, self.denoised = sampler, None, []

    def __call__(self, denoiser, x, cond, uc=None, callback=None, **kwargs):
        self.noise = x.clone()

        def record(info):
            self.denoised.append(info["denoised"].clone())
            if callback is not None:
                callback(info)

        return self.sampler(denoiser, x, cond, uc=uc, callback=record, **kwargs)


@pytest.fixture(scope="module")
def image(goldens):
    return goldens["sample.image"]


def sample(pipe, image, seed=0, **settings):
    """sample_video with these settings; returns (result, recorder, windows seen by the first
    output-stage temporal attention at each UNet call)."""
    unet = pipe.model.model.diffusion_model
    attn = next(m for n, m in unet.named_modules() if n.startswith("output_blocks") and isinstance(m, CrossAttention) and m.motion_knobs is not None)
    seen = []
    hook = attn.register_forward_pre_hook(lambda module, args: seen.append(module.motion_knobs.attn_window_size))
    recorder = RecordingSampler(pipe.model.sampler)
    try:
        call = pipe.settings(num_frames=FRAMES, seed=seed, **settings)
        result = sample_video(pipe.model, image, call, torch.Generator().manual_seed(seed), sampler=recorder)
    finally:
        hook.remove()
    return result, recorder, seen


@pytest.fixture(scope="module")
def base(tiny_pipeline, image):
    return sample(tiny_pipeline, image)


def test_latent_score_matches_the_loop_reference():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2 * 4, 3, 5, 6, generator=g)
    assert abs(latent_motion_score(x, 4) - reference_latent_score(x, 4)) < 1e-6


def test_latent_score_reads_speed():
    """A still video scores 0; an isotropic pattern moving v latent pixels per frame about v / (1 + v)."""
    grid = torch.arange(64.0)
    pattern = torch.sin(0.2 * grid)[None, :] + torch.sin(0.2 * grid)[:, None]  # (H, W), same slopes in y and x
    still = pattern.expand(6, 2, 64, 64).clone()
    assert latent_motion_score(still, 6) == 0.0
    for v in (1, 2):
        moving = torch.stack([torch.roll(pattern, shifts=v * t, dims=1) for t in range(6)])[:, None].expand(6, 2, 64, 64)
        score = latent_motion_score(moving[..., 12:-12], 6)  # crop the columns rolled across the seam
        assert abs(score - v / (1 + v)) < 0.03, (v, score)
    assert latent_motion_score(still[:1], 1) == 0.0


def test_defaults_and_rho_zero_are_bit_identical(tiny_pipeline, image, base):
    explicit = dict(noise_correlation=0.0, attn_window_loop=False, attn_window_stages=None, temporal_attn_scale_stages=None)
    result, _, _ = sample(tiny_pipeline, image, **explicit)
    assert torch.equal(result["latents"], base[0]["latents"])
    assert base[0]["window_schedule"] is None and base[2] == [None] * 3


def test_bucket_window_schedule(tiny_pipeline, image):
    for bucket in (0, 127, 255):
        result, _, seen = sample(tiny_pipeline, image, motion_bucket_id=bucket, **AUTO)
        size = adaptive_window_size(bucket / 255, 2, 5)
        schedule = result["window_schedule"]
        assert [s["step"] for s in schedule] == [0, 1, 2]
        assert all(s["source"] == "bucket" and s["window_size"] == size for s in schedule)
        assert seen == [size] * 3, "the UNet must attend with the logged window at every step"
    assert tiny_pipeline.model.model.diffusion_model.motion_score is None, "the score is given back after sampling"


def test_latent_window_schedule(tiny_pipeline, image):
    result, recorder, seen = sample(tiny_pipeline, image, motion_bucket_id=200, attn_window_motion="latent", **AUTO)
    schedule = result["window_schedule"]
    assert schedule[0]["source"] == "bucket" and schedule[0]["window_size"] == adaptive_window_size(200 / 255, 2, 5)
    for step in (1, 2):
        score = reference_latent_score(recorder.denoised[step - 1], FRAMES)
        assert schedule[step]["source"] == "latent"
        assert abs(schedule[step]["motion_score"] - score) < 1e-6
        assert schedule[step]["window_size"] == adaptive_window_size(score, 2, 5)
    assert seen == [s["window_size"] for s in schedule]
    assert [s["sigma"] for s in schedule] == sorted((s["sigma"] for s in schedule), reverse=True)


@pytest.mark.parametrize("rho", [0.2, 0.5])
def test_correlated_noise_rng_order(tiny_pipeline, image, base, rho):
    """Conditioning noise, then the frames' own noise, then the shared frame, all from the call's
    seeded generator; with shuffling the permutations come last."""
    latent = base[1].noise.shape[1:]
    for windows in (None, (3, 1)):
        knobs = dict(noise_correlation=rho)
        if windows is not None:
            knobs.update(attn_window_size=3, attn_window_stride=1, shuffle_windowed_noise=True)
        result, recorder, _ = sample(tiny_pipeline, image, **knobs)
        g = torch.Generator().manual_seed(0)
        torch.randn(image.shape, generator=g)  # conditioning-frame noise
        own = torch.randn(FRAMES, *latent, generator=g)
        expected = rho**0.5 * torch.randn(1, *latent, generator=g) + (1 - rho) ** 0.5 * own
        if windows is not None:
            expected = shuffle_windowed_noise(expected, *windows, generator=g)
        # the sampler scales its input by sqrt(1 + sigma_max^2); compare the noise it was given
        assert torch.allclose(recorder.noise, expected, atol=1e-6, rtol=0)
        assert not torch.equal(result["latents"], base[0]["latents"])


def test_latent_score_with_a_one_pixel_side():
    """A side of one latent pixel has no neighbours along it: D_s uses the other direction only."""
    x = torch.randn(4 * 2, 3, 1, 6, generator=torch.Generator().manual_seed(5))
    d_t = (x.reshape(2, 4, 3, 1, 6)[:, 1:] - x.reshape(2, 4, 3, 1, 6)[:, :-1]).abs().mean()
    d_s = (x[..., 1:] - x[..., :-1]).abs().mean()
    assert abs(latent_motion_score(x, 4) - float(d_t / (d_t + d_s))) < 1e-6
    assert latent_motion_score(torch.randn(4, 2, 1, 1), 4) == 1.0  # only frame differences exist
