"""The toy model's linear first stage: PCA basis in, projection out."""
import torch

from sgm.modules.autoencoding.patch_projection import PatchProjectionDecoder, PatchProjectionEncoder


def make(k, patch=2):
    enc, dec = PatchProjectionEncoder(patch, 3, k), PatchProjectionDecoder(patch, 3, k)
    basis, _ = torch.linalg.qr(torch.randn(3 * patch * patch, 3 * patch * patch))
    mean = torch.randn(3 * patch * patch)
    dec.set_basis(enc, basis.T[:k].contiguous(), mean)
    return enc, dec


def test_full_basis_is_lossless():
    enc, dec = make(12)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        z = enc(x)
        assert z.shape == (2, 12, 4, 4)
        assert torch.allclose(dec(z), x, atol=1e-5)


def test_partial_basis_is_an_affine_projection():
    enc, dec = make(5)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        once = dec(enc(x))
        assert not torch.allclose(once, x, atol=1e-3)
        assert torch.allclose(dec(enc(once)), once, atol=1e-5)
