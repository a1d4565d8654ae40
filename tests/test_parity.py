"""Default behaviour equals upstream sgm: every golden of tests/fixtures/upstream_parity.

Bounds (fixtures README): 5e-5 absolute for single calls, 2e-4 for the 3-step sampling loop,
float32 on CPU. Measured here: <= 6e-6 single calls, <= 1.6e-5 loop.
"""
import pytest
import torch

from einops import rearrange, repeat

SINGLE = 5e-5
LOOP = 2e-4
FRAMES = 5


@pytest.fixture(scope="module")
def model(tiny_model):
    return tiny_model


@pytest.fixture(scope="module")
def g(goldens):
    return goldens


def conditioning_batch(g, frames=FRAMES):
    """The conditioner's inputs exactly as the goldens were computed (fixtures README)."""
    image = g["sample.image"]
    batch = {
        "cond_frames_without_noise": image,
        "fps_id": torch.tensor([6]).repeat(frames),
        "motion_bucket_id": torch.tensor([127]).repeat(frames),
        "cond_aug": torch.tensor([0.02]).repeat(frames),
        "cond_frames": image + 0.02 * g["sample.cond_noise"],
        "num_video_frames": frames,
    }
    return batch, {k: v.clone() for k, v in batch.items() if isinstance(v, torch.Tensor)}


def per_frame(cond, frames=FRAMES):
    """crossattn / concat repeated over the frames."""
    out = dict(cond)
    for k in ("crossattn", "concat"):
        out[k] = rearrange(repeat(cond[k], "b ... -> b t ...", t=frames), "b t ... -> (b t) ...")
    return out


def model_inputs(frames=FRAMES):
    return {"image_only_indicator": torch.zeros(2, frames), "num_video_frames": frames}


def assert_close(actual, expected, atol):
    assert actual.shape == expected.shape
    err = (actual - expected).abs().max().item()
    assert err <= atol, f"max abs error {err:.3g} > {atol:.1g}"


@torch.no_grad()
def test_unet(model, g):
    out = model.model.diffusion_model(
        g["unet.x"], timesteps=g["unet.t"], context=g["unet.context"], y=g["unet.y"], **model_inputs()
    )
    assert_close(out, g["unet.out"], SINGLE)


@torch.no_grad()
def test_conditioner(model, g):
    batch, batch_uc = conditioning_batch(g)
    c, uc = model.conditioner.get_unconditional_conditioning(
        batch, batch_uc=batch_uc, force_uc_zero_embeddings=["cond_frames", "cond_frames_without_noise"]
    )
    for key in ("crossattn", "concat", "vector"):
        assert_close(c[key], g[f"cond.c.{key}"], SINGLE)
        assert_close(uc[key], g[f"cond.uc.{key}"], SINGLE)


@torch.no_grad()
def test_denoiser(model, g):
    c = per_frame({k: g[f"cond.c.{k}"] for k in ("crossattn", "concat", "vector")})
    uc = per_frame({k: g[f"cond.uc.{k}"] for k in ("crossattn", "concat", "vector")})
    cond = {k: torch.cat((uc[k], c[k])) for k in c}
    x = torch.cat([g["sample.randn"]] * 2)
    out = model.denoiser(model.model, x, torch.full((2 * FRAMES,), 3.0), cond, **model_inputs())
    assert_close(out, g["denoiser.out"], SINGLE)


@torch.no_grad()
def test_sample_and_chunked_decode(model, g):
    batch, batch_uc = conditioning_batch(g)
    c, uc = model.conditioner.get_unconditional_conditioning(
        batch, batch_uc=batch_uc, force_uc_zero_embeddings=["cond_frames", "cond_frames_without_noise"]
    )
    c, uc = per_frame(c), per_frame(uc)

    def denoiser(x, sigma, cond):
        return model.denoiser(model.model, x, sigma, cond, **model_inputs())

    randn = g["sample.randn"].clone()
    z = model.sampler(denoiser, randn, cond=c, uc=uc)
    assert torch.equal(randn, g["sample.randn"]), "the sampler must not modify its input noise"
    assert_close(z, g["sample.z"], LOOP)
    frames = model.decode_first_stage(z, 3)  # 3 + 2 frames, each chunk one clip
    assert_close(frames, g["sample.frames"], LOOP)


@torch.no_grad()
def test_vae_decode(model, g):
    assert_close(model.decode_first_stage(g["vae.z"]), g["vae.frames"], SINGLE)


@torch.no_grad()
def test_chunked_decode_differs_from_whole_clip(model, g):
    """The temporal decoder really mixes frames: decoding in chunks changes the result."""
    chunked = model.decode_first_stage(g["vae.z"], 3)
    assert (chunked - g["vae.frames"]).abs().max() > 1e-3


def test_pipeline_sampling_loop_matches_upstream(tiny_pipeline, g):
    """sgm.inference.sample_video (the pipeline's loop) with the goldens' noise: upstream's sample."""
    from sgm.inference import sample_video

    settings = tiny_pipeline.settings(num_frames=FRAMES, num_steps=3, decoding_t=3)
    out = sample_video(tiny_pipeline.model, g["sample.image"], settings, torch.Generator().manual_seed(0),
                       cond_noise=g["sample.cond_noise"], noise=g["sample.randn"])
    assert_close(out["latents"], g["sample.z"], LOOP)
    assert_close(out["decoded"], g["sample.frames"], LOOP)
    assert_close(out["frames"], ((g["sample.frames"] + 1) / 2).clamp(0, 1), LOOP / 2)
