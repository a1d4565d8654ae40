"""Denoiser scalings, loss weightings and the discrete denoiser at upstream's paths and names:
each weighting gives its scaling unit effective weight (lambda(sigma) c_out(sigma)^2 = 1), each
scaling recovers the clean latent from its own training target, and DiscreteDenoiser moves sigma
to the nearest trained level."""
import pytest
import torch

from sgm.util import instantiate_from_config

SIGMAS = torch.tensor([0.002, 0.3, 1.0, 2.0, 14.6, 700.0], dtype=torch.float64)
PATH = "sgm.modules.diffusionmodules."


@pytest.mark.parametrize("scaling, weighting", [
    ("denoiser_scaling.EDMScaling", "denoiser_weighting.EDMWeighting"),
    ("denoiser_scaling.EpsScaling", "denoiser_weighting.EpsWeighting"),
    ("denoiser_scaling.VScaling", "denoiser_weighting.VWeighting"),
    ("denoiser_scaling.VScalingWithEDMcNoise", "loss_weighting.VWeighting"),
])
def test_weighting_gives_unit_effective_weight(scaling, weighting):
    _, c_out, _, _ = instantiate_from_config({"target": PATH + scaling})(SIGMAS)
    weight = instantiate_from_config({"target": PATH + weighting})(SIGMAS)
    assert torch.allclose(weight * c_out**2, torch.ones_like(SIGMAS), rtol=1e-12)


def test_scalings_recover_the_clean_latent_from_their_targets():
    """D(x0 + s n) = c_skip (x0 + s n) + c_out F is x0 when F is the scaling's target: the noise n
    (eps), -(s x0 - n) / sqrt(s^2 + 1) (v, unit data std), (x0 - c_skip x) / c_out (EDM)."""
    g = torch.Generator().manual_seed(0)
    x0, n = torch.randn(2, 6, generator=g, dtype=torch.float64)
    for name in ("EDMScaling", "EpsScaling", "VScaling"):
        scaling = instantiate_from_config({"target": PATH + "denoiser_scaling." + name})
        for sigma in SIGMAS:
            c_skip, c_out, c_in, _ = scaling(sigma)
            noisy = x0 + sigma * n
            target = {"EDMScaling": (x0 - c_skip * noisy) / c_out, "EpsScaling": n,
                      "VScaling": (sigma * x0 - n) / (sigma**2 + 1) ** 0.5 * -1.0}[name]
            assert torch.allclose(c_skip * noisy + c_out * target, x0, atol=1e-9 * float(1 + sigma)), (name, float(sigma))
            assert torch.allclose(c_in, 1 / (sigma**2 + (0.25 if name == "EDMScaling" else 1.0)) ** 0.5)
    _, _, _, c_noise = instantiate_from_config({"target": PATH + "denoiser_scaling.EDMScaling"})(SIGMAS)
    assert torch.allclose(c_noise, 0.25 * SIGMAS.log())


def test_discrete_denoiser_quantizes_sigma_to_the_nearest_level():
    denoiser = instantiate_from_config({"target": PATH + "denoiser.DiscreteDenoiser", "params": {
        "num_idx": 1000, "scaling_config": {"target": PATH + "denoiser_scaling.EpsScaling"},
        "discretization_config": {"target": PATH + "discretizer.LegacyDDPMDiscretization"}}})
    levels = denoiser.sigmas
    assert levels.shape == (1000,) and bool((levels[1:] > levels[:-1]).all())  # smallest first (flip)
    between = torch.stack([0.4 * levels[10] + 0.6 * levels[11], 0.9 * levels[500] + 0.1 * levels[501]])
    assert denoiser.sigma_to_idx(between).tolist() == [11, 500]
    assert torch.equal(denoiser.possibly_quantize_sigma(between), levels[[11, 500]])
    seen = {}

    def network(x, c_noise, cond):
        seen["c_noise"] = c_noise
        return torch.zeros_like(x)

    out = denoiser(network, torch.ones(2, 3), between.float(), {})
    assert seen["c_noise"].tolist() == [11, 500]  # EpsScaling's c_noise = sigma, quantized to its index
    assert torch.equal(out, torch.ones(2, 3))  # c_skip = 1 and a zero network output
