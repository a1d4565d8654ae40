import torch

from ...util import append_dims


def to_d(x: torch.Tensor, sigma: torch.Tensor, denoised: torch.Tensor) -> torch.Tensor:
    """ODE derivative dx/dsigma = (x - D(x; sigma)) / sigma."""
    return (x - denoised) / append_dims(sigma, x.ndim)


def ancestral_step(sigma_from: float, sigma_to: float, eta: float = 1.0) -> tuple:
    """(sigma_down, sigma_up) of an ancestral step: the deterministic target and the noise to add,
    sigma_up = min(sigma_to, eta sqrt(sigma_to^2 (sigma_from^2 - sigma_to^2) / sigma_from^2)),
    sigma_down = sqrt(sigma_to^2 - sigma_up^2)."""
    if eta == 0.0:
        return sigma_to, 0.0
    sigma_up = min(sigma_to, eta * (sigma_to**2 * (sigma_from**2 - sigma_to**2) / sigma_from**2) ** 0.5)
    return (sigma_to**2 - sigma_up**2) ** 0.5, sigma_up


def linear_multistep_coeff(order: int, sigmas, i: int, j: int) -> float:
    """Integral over [sigmas[i], sigmas[i+1]] of the Lagrange basis polynomial of node sigmas[i-j]
    among the nodes sigmas[i], ..., sigmas[i-order+1] (exact: the polynomial is integrated)."""
    import numpy as np

    nodes = [float(sigmas[i - k]) for k in range(order)]
    basis = np.polynomial.Polynomial([1.0])
    for k, node in enumerate(nodes):
        if k != j:
            basis = basis * np.polynomial.Polynomial([-node, 1.0]) / (nodes[j] - node)
    integral = basis.integ()
    return float(integral(float(sigmas[i + 1])) - integral(float(sigmas[i])))
