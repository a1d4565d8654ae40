"""Adapters from the denoiser's (x, t, cond) call to the network's keyword arguments."""
import torch
from torch import nn

OPENAIUNETWRAPPER = "sgm.modules.diffusionmodules.wrappers.OpenAIWrapper"


class IdentityWrapper(nn.Module):
    def __init__(self, diffusion_model: nn.Module, compile_model: bool = False):
        super().__init__()
        self.diffusion_model = torch.compile(diffusion_model) if compile_model else diffusion_model

    def forward(self, *args, **kwargs):
        return self.diffusion_model(*args, **kwargs)


class OpenAIWrapper(IdentityWrapper):
    """cond["concat"] is stacked onto x's channels; crossattn -> context, vector -> y; SV4D's
    cond_view and cond_motion are passed on by name."""

    def forward(self, x: torch.Tensor, t: torch.Tensor, c: dict, **kwargs) -> torch.Tensor:
        if "concat" in c:
            x = torch.cat((x, c["concat"]), dim=1)
        if "cond_view" in c:
            kwargs.update(cond_view=c["cond_view"], cond_motion=c.get("cond_motion"))
        return self.diffusion_model(x, timesteps=t, context=c.get("crossattn"), y=c.get("vector"), **kwargs)
