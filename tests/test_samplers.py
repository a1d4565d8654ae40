"""Every upstream sampler against its golden (tests/fixtures/upstream_parity/samplers_*): 4 steps
on the tiny model with the conditioning of `sample.z`, built from the case's own config.

Bound (fixtures README): max |diff| <= 1e-4 * max |out.<case>|; the noise the loop draws comes
from a torch.Generator seeded with the case's seed, which gives exactly the draws upstream took
from the global generator after manual_seed (checked against `noise.<case>`).
"""
import json

import pytest
import torch
from safetensors.torch import load_file

from sgm.util import instantiate_from_config

RELATIVE = 1e-4
FRAMES = 5


@pytest.fixture(scope="module")
def cases(paths):
    return json.loads((paths.fixtures / "upstream_parity" / "samplers_cases.json").read_text())


@pytest.fixture(scope="module")
def goldens(paths):
    return load_file(str(paths.fixtures / "upstream_parity" / "samplers_goldens.safetensors"))


def sampler_of(config):
    """The case's sampler: its config as stored, "inf" read as float("inf")."""
    def read(value):
        if isinstance(value, dict):
            return {k: read(v) for k, v in value.items()}
        return float("inf") if value == "inf" else value

    return instantiate_from_config(read(config))


def split(goldens, prefix):
    return {k[len(prefix):]: v for k, v in goldens.items() if k.startswith(prefix)}



@pytest.mark.parametrize("case", [
    "euler_edm", "euler_edm_churn", "euler_edm_churn_window", "heun_edm", "heun_edm_churn", "euler_ancestral",
    "euler_ancestral_eta07", "dpmpp2s_ancestral", "dpmpp2s_ancestral_eta07", "dpmpp2m", "lms_order4", "lms_order2",
    "euler_edm_ddpm", "dpmpp2m_ddpm", "euler_ancestral_ddpm", "euler_edm_vanillacfg", "heun_edm_churn_vanillacfg",
])
def test_sampler_matches_upstream(case, cases, goldens, tiny_model):
    spec = cases[case]
    sampler = sampler_of(spec["sampler_config"])
    assert torch.allclose(sampler.discretization(spec["num_steps"]), goldens[f"sigmas.{case}"], rtol=1e-6, atol=0)
    calls = []

    def denoiser(x, sigma, cond):
        calls.append(float(sigma[0]))
        return tiny_model.denoiser(tiny_model.model, x, sigma, cond, image_only_indicator=torch.zeros(2, FRAMES),
                                   num_video_frames=FRAMES)

    generator = torch.Generator().manual_seed(spec["seed"])
    randn = goldens["randn"].clone()
    with torch.no_grad():
        out = sampler(denoiser, randn, cond=split(goldens, "c."), uc=split(goldens, "uc."), generator=generator)
    assert torch.equal(randn, goldens["randn"]), "the sampler must not modify its input noise"
    assert len(calls) == spec["denoiser_calls"]
    draws = goldens.get(f"noise.{case}")
    replay = torch.Generator().manual_seed(spec["seed"])
    expected_state = replay.get_state()
    if draws is not None:  # the loop took exactly these draws from its generator, no more
        assert torch.equal(torch.stack([torch.randn(draws.shape[1:], generator=replay) for _ in draws]), draws)
        expected_state = replay.get_state()
    assert torch.equal(generator.get_state(), expected_state), "the loop drew another number of tensors"
    bound = RELATIVE * goldens[f"out.{case}"].abs().max().item()
    err = (out - goldens[f"out.{case}"]).abs().max().item()
    assert err <= bound, f"{case}: max abs error {err:.3g} > {bound:.3g}"


def test_lms_coefficients_are_upstreams(cases):
    """The integrals of the Lagrange basis over each step, newest derivative first, as stored."""
    from sgm.modules.diffusionmodules.sampling_utils import linear_multistep_coeff

    spec = cases["lms_order4"]
    sigmas = torch.tensor(spec["sigmas"])
    for i, stored in enumerate(spec["lms_coeffs"]):
        ours = [linear_multistep_coeff(min(i + 1, 4), sigmas, i, j) for j in range(min(i + 1, 4))]
        assert ours == pytest.approx(stored, rel=1e-5, abs=1e-12)
