"""Training loss of the (small) autoencoders trained with this package."""
from typing import Dict, Tuple

import torch
from torch import nn


class ReconstructionKLLoss(nn.Module):
    """l1_weight |x - x_rec| + l2_weight (x - x_rec)^2 (pixel means) + kl_weight KL(q(z|x) || N(0, I))."""

    def __init__(self, l1_weight: float = 1.0, l2_weight: float = 0.0, kl_weight: float = 1e-6):
        super().__init__()
        self.l1_weight = l1_weight
        self.l2_weight = l2_weight
        self.kl_weight = kl_weight

    def forward(self, x: torch.Tensor, x_rec: torch.Tensor, reg_log: Dict) -> Tuple[torch.Tensor, Dict]:
        diff = x_rec - x
        l1 = diff.abs().mean()
        l2 = diff.pow(2).mean()
        kl = reg_log.get("kl_loss", torch.zeros((), device=x.device))
        loss = self.l1_weight * l1 + self.l2_weight * l2 + self.kl_weight * kl
        return loss, {"loss": loss.detach(), "l1": l1.detach(), "l2": l2.detach(), "kl": kl.detach()}
