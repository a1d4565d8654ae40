"""SV4D, SV4D 2.0 and SV4D 2.0 8-view against upstream's goldens (tests/fixtures/README-sv4d-samplers.md).

Tiny models (T 2 frames x V 3 views, 64x64 images, 16x16 latents) with the fixture weights, CPU
float32. Tolerances are the README's: single calls (unet, conditioner, denoiser) 5e-5 absolute,
samples and decodes 2e-4 absolute, the dense loop's step 0 1e-5 relative to its max.
"""
import json

import pytest
import torch
from omegaconf import OmegaConf
from safetensors.torch import load_file

from sgm.inference import sv4d
from sgm.modules.diffusionmodules.guiders import SpatiotemporalPredictionGuider, TrapezoidPredictionGuider
from sgm.modules.motion import MotionKnobs
from sgm.util import instantiate_from_config

SINGLE, SAMPLE = 5e-5, 2e-4
VARIANTS = {"sv4d": "sv4d", "sv4d2": "sv4d2", "sv4d2_8views": "sv4d2"}  # variant -> weights
KEYS = ("crossattn", "concat", "vector", "cond_view", "cond_motion")


@pytest.fixture(scope="module")
def fixture_json(paths):
    return json.loads((paths.parity / "sv4d_goldens.json").read_text())


@pytest.fixture(scope="module")
def variant(request, paths):
    """(name, model, goldens) for one variant, built once per module."""
    name = request.param
    cfg = OmegaConf.load(paths.parity / f"tiny_{name}.yaml")
    model = instantiate_from_config(cfg.model).eval()
    weights = {k: v.float() for k, v in load_file(str(paths.parity / f"{VARIANTS[name]}_weights.safetensors")).items()}
    missing, unexpected = model.load_state_dict(weights, strict=False)
    assert not missing
    assert all(".open_clip.model." in k for k in unexpected)  # the OpenCLIP text side only
    return name, model, load_file(str(paths.parity / f"{name}_goldens.safetensors"))


all_variants = pytest.mark.parametrize("variant", list(VARIANTS), indirect=True)


def unet_out(model, g, **knobs):
    unet = model.model.diffusion_model
    with torch.no_grad(), unet.motion_knobs_applied(MotionKnobs(**knobs)):
        return unet(g["unet.x"], timesteps=g["unet.t"], context=g["unet.context"], y=g["unet.y"],
                    cond_view=g["unet.cond_view"], cond_motion=g["unet.cond_motion"], num_video_frames=6,
                    image_only_indicator=g["unet.image_only_indicator"])


def cameras(fixture_json, name):
    j = fixture_json[name]
    return (torch.tensor(j["polar_rad_float64"], dtype=torch.float64),
            torch.tensor(j["azimuth_rad_float64"], dtype=torch.float64))


@all_variants
def test_unet_matches_upstream(variant):
    name, model, g = variant
    assert (unet_out(model, g) - g["unet.out"]).abs().max() <= SINGLE


@all_variants
def test_unet_ignores_image_only_indicator_and_cond_motion(variant):
    _, model, g = variant
    g0 = {**g, "unet.image_only_indicator": torch.zeros(2, 6), "unet.cond_motion": torch.zeros_like(g["unet.cond_motion"])}
    assert torch.equal(unet_out(model, g0), unet_out(model, g))


@all_variants
def test_conditioner_and_denoiser_match_upstream(variant, fixture_json):
    name, model, g = variant
    batch = sv4d.conditioner_batch(g["cond.cond_motion"], g["cond.cond_view"], *cameras(fixture_json, name))
    with torch.no_grad():
        c, uc = sv4d.condition(model, batch, torch.Generator().manual_seed(77))
    assert sorted(c) == sorted(KEYS) and sorted(uc) == sorted(KEYS)
    for key in KEYS:
        assert c[key].shape == g[f"cond.c.{key}"].shape
        assert (c[key] - g[f"cond.c.{key}"]).abs().max() <= SINGLE, key
        assert (uc[key] - g[f"cond.uc.{key}"]).abs().max() <= SINGLE, key
    x = g["denoiser.x"]
    cond = {k: torch.cat((g[f"cond.uc.{k}"], g[f"cond.c.{k}"])) for k in KEYS}
    with torch.no_grad():
        out = model.denoiser(model.model, torch.cat([x] * 2), torch.full((12,), 3.0), cond,
                             num_video_frames=6, image_only_indicator=torch.ones(2, 6))
    assert (out - g["denoiser.out"]).abs().max() <= SINGLE


@all_variants
def test_cameras_match_the_scripts(variant, fixture_json):
    name, _, _ = variant
    j = fixture_json[name]["cameras"]
    views = [2, 4, 6] if name == "sv4d" else [1, 2, 3]
    polar, azimuth = sv4d.orbit_cameras(j["elevations_deg"], j["azimuths_deg"], 2, views, relative_to_first=name != "sv4d")
    want_polar, want_azimuth = cameras(fixture_json, name)
    assert torch.allclose(polar, want_polar, rtol=0, atol=1e-12)
    assert torch.allclose(azimuth, want_azimuth, rtol=0, atol=1e-12)


@all_variants
def test_sampled_chunks_match_upstream(variant, fixture_json):
    """run_img2vid -> do_sample, 3 steps: c/uc, the initial latent, z, decoded x and samples."""
    name, model, g = variant
    for s, info in fixture_json[name]["samples"].items():
        gen = torch.Generator().manual_seed(info["seed"])
        batch = sv4d.conditioner_batch(g[f"{s}.cond_motion"], g[f"{s}.cond_view"], *cameras(fixture_json, name))
        with torch.no_grad():
            c, uc = sv4d.condition(model, batch, gen, zero_cond_view=info["image_only_indicator"] == 0.0)
        for key in KEYS:
            assert (c[key] - g[f"{s}.c.{key}"]).abs().max() <= SINGLE, (s, key)
            assert (uc[key] - g[f"{s}.uc.{key}"]).abs().max() <= SINGLE, (s, key)
        noise = torch.randn((6, 4, 16, 16), generator=gen)
        assert torch.equal(noise, g[f"{s}.randn"])
        sampler = sv4d.four_d_sampler(name, 3, 2, 3)
        resolved = fixture_json[name]["sampler"]
        assert sampler.guider.scale.flatten().tolist() == pytest.approx(resolved["guider"]["scale_per_frame"], abs=1e-6)
        z = sv4d.sample_chunk(model, sampler, c, uc, noise, generator=gen)
        x, samples = sv4d.decode(model, z, 4)
        assert (z - g[f"{s}.z"]).abs().max() <= SAMPLE, s
        assert (x - g[f"{s}.x"]).abs().max() <= SAMPLE, s
        assert (samples - g[f"{s}.samples"]).abs().max() <= SAMPLE, s


@pytest.mark.parametrize("variant", ["sv4d"], indirect=True)
def test_dense_loop_matches_upstream(variant, fixture_json):
    """simple_video_sample_4d.py's per-step loop for one chunk (sv4d.dense_chunk): the latent
    matrix and the matrix after every step (steps alternate the two conditionings, so each is
    checked through the steps that use it)."""
    name, model, g = variant
    polar, azimuth = cameras(fixture_json, name)
    run = sv4d.FourDRun(model, name, 2, 3, g["dense.video"], polar, azimuth, num_steps=3, decoding_t=4,
                        generator=torch.Generator().manual_seed(78))
    seen = []
    sampler = sv4d.four_d_sampler(name, 3, 2, 3)
    final = sv4d.dense_chunk(run, sampler, g["dense.video"], g["dense.views_t0"], g["dense.views_t1"], (4, 16, 16),
                             on_step=lambda step, matrix: seen.append(matrix.clone()))
    assert len(seen) == 3 and torch.equal(seen[-1], final)
    untouched = torch.randn((2, 4, 4, 16, 16), generator=torch.Generator().manual_seed(78))[:, 0]
    assert torch.equal(final[:, 0], untouched) and torch.equal(untouched, g["dense.latent_matrix_in"][:, 0])
    for step, matrix in enumerate(seen):
        want = g[f"dense.latent_matrix_step{step}"]
        bound = 1e-5 * want.abs().max() if step == 0 else SAMPLE
        assert (matrix - want).abs().max() <= bound, step


@all_variants
def test_knobs_change_sv4d_and_defaults_are_exact(variant):
    _, model, g = variant
    base = unet_out(model, g)
    assert torch.equal(unet_out(model, g, temporal_attn_scale=1.0, view_attn_scale=1.0), base)
    for knobs in ({"temporal_attn_scale": 3.0}, {"temporal_attn_k_scale": 0.5}, {"view_attn_scale": 3.0},
                  {"position_embedding_frames": 5}, {"attn_window_size": 1},
                  {"temporal_attn_scale": 3.0, "temporal_attn_scale_stages": ["output"]}):
        assert (unet_out(model, g, **knobs) - base).abs().max() > 1e-3, knobs
    assert torch.equal(unet_out(model, g), base)  # the with-block left the model as it was
    only_output = unet_out(model, g, temporal_attn_scale=3.0, temporal_attn_scale_stages=["output"])
    assert (only_output - unet_out(model, g, temporal_attn_scale=3.0)).abs().max() > 1e-3


@pytest.mark.parametrize("variant", ["sv4d2"], indirect=True)
def test_xformers_attention_modes_run_without_xformers(variant, paths):
    """The released configs name softmax-xformers / vanilla-xformers (upstream's view and motion
    blocks need xformers); here the same weights give the same output on the CPU's SDPA."""
    name, model, g = variant
    cfg = OmegaConf.load(paths.parity / f"tiny_{name}.yaml")
    cfg.model.params.network_config.params.spatial_transformer_attn_type = "softmax-xformers"
    unet = instantiate_from_config(cfg.model.params.network_config).eval()
    unet.load_state_dict(model.model.diffusion_model.state_dict())
    with torch.no_grad():
        out = unet(g["unet.x"], timesteps=g["unet.t"], context=g["unet.context"], y=g["unet.y"],
                   cond_view=g["unet.cond_view"], num_video_frames=6)
    assert (out - g["unet.out"]).abs().max() <= SINGLE


def test_view_attn_scale_is_refused_by_svd(tiny_model):
    with pytest.raises(ValueError, match="view_attn_scale"):
        tiny_model.model.diffusion_model.set_motion_knobs(view_attn_scale=2.0)
    assert tiny_model.model.diffusion_model.motion_knobs.view_attn_scale == 1.0


def test_spatiotemporal_guider_scales():
    g = SpatiotemporalPredictionGuider(max_scale=2.0, num_frames=6, num_views=3, min_scale=1.0)
    assert g.scale.flatten().tolist() == [1.0, 1.5, 1.0, 1.5, 2.0, 1.5]
    g = SpatiotemporalPredictionGuider(max_scale=2.5, num_frames=6, num_views=3, min_scale=1.5)
    assert g.scale.flatten().tolist() == [1.5, 2.0, 1.5, 2.0, 2.5, 2.0]
    with pytest.raises(ValueError):
        SpatiotemporalPredictionGuider(max_scale=2.0, num_frames=7, num_views=3)


def test_trapezoid_guider_scales():
    g = TrapezoidPredictionGuider(max_scale=3.0, num_frames=10, min_scale=1.0, edge_perc=0.3)
    assert g.scale.flatten().tolist() == [1.0, 2.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 2.0, 1.0]
    assert TrapezoidPredictionGuider(max_scale=2.0, num_frames=4, edge_perc=0.0).scale.flatten().tolist() == [2.0] * 4
