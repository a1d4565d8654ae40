"""Exponential moving average of a module's parameters, kept as buffers so it is checkpointed."""
import torch
from torch import nn


class LitEma(nn.Module):
    """shadow <- shadow - (1 - d) (shadow - param), with d = min(decay, (1 + n) / (10 + n)) after n updates."""

    def __init__(self, model: nn.Module, decay: float = 0.9999, use_num_updates: bool = True):
        super().__init__()
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay!r}")
        self.decay = decay
        self.register_buffer("num_updates", torch.tensor(0 if use_num_updates else -1, dtype=torch.long))
        self.names = {}  # parameter name -> buffer name (buffers may not contain dots)
        for name, param in model.named_parameters():
            if param.requires_grad:
                buffer = name.replace(".", "_")
                self.names[name] = buffer
                self.register_buffer(buffer, param.detach().clone())

    @torch.no_grad()
    def forward(self, model: nn.Module) -> None:
        decay = self.decay
        if self.num_updates >= 0:
            self.num_updates += 1
            n = int(self.num_updates)
            decay = min(decay, (1 + n) / (10 + n))
        shadows = dict(self.named_buffers())
        for name, param in model.named_parameters():
            if name in self.names:
                shadow = shadows[self.names[name]]
                shadow.sub_((1.0 - decay) * (shadow - param))

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Overwrite the model's parameters with the averages."""
        shadows = dict(self.named_buffers())
        for name, param in model.named_parameters():
            if name in self.names:
                param.copy_(shadows[self.names[name]])
