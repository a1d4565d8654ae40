"""Autoencoders of the first stage and of the conditioner's image encoder."""
from typing import Optional

import pytorch_lightning as pl
import torch
from torch import nn

from ..checkpoint import load_checkpoint
from ..util import instantiate_from_config


class AutoencodingEngine(pl.LightningModule):
    """encoder -> regularization -> latent; decoder -> image. Sampling only needs encode/decode."""

    def __init__(
        self,
        encoder_config,
        decoder_config,
        loss_config,
        regularizer_config,
        input_key: str = "jpg",
        ckpt_path: Optional[str] = None,
        **training_only,
    ):
        """`training_only`: upstream's autoencoder-training keys (optimizer_config, lr_g_factor,
        monitor, ema_decay, ...), accepted so its configs load, and unused."""
        super().__init__()
        self.input_key = input_key
        self.encoder = instantiate_from_config(encoder_config)
        self.decoder = instantiate_from_config(decoder_config)
        self.loss = instantiate_from_config(loss_config)
        self.regularization = instantiate_from_config(regularizer_config)
        if ckpt_path is not None:
            load_checkpoint(self, ckpt_path)

    def encode(self, x: torch.Tensor, return_reg_log: bool = False, unregularized: bool = False):
        z = self.encoder(x)
        if unregularized:
            return z, {}
        z, reg_log = self.regularization(z)
        return (z, reg_log) if return_reg_log else z

    def decode(self, z: torch.Tensor, **kwargs) -> torch.Tensor:
        return self.decoder(z, **kwargs)

    def forward(self, x: torch.Tensor, **decoder_kwargs):
        z, reg_log = self.encode(x, return_reg_log=True)
        return z, self.decode(z, **decoder_kwargs), reg_log




class AutoencodingEngineLegacy(AutoencodingEngine):
    """LDM-style autoencoder from one `ddconfig`, with 1x1 quant_conv / post_quant_conv around the latent."""

    def __init__(self, embed_dim: int, **kwargs):
        self.max_batch_size = kwargs.pop("max_batch_size", None)
        ddconfig = kwargs.pop("ddconfig")
        kwargs.pop("ckpt_path", None)
        kwargs.pop("ckpt_engine", None)
        super().__init__(
            encoder_config={"target": "sgm.modules.diffusionmodules.model.Encoder", "params": ddconfig},
            decoder_config={"target": "sgm.modules.diffusionmodules.model.Decoder", "params": ddconfig},
            **kwargs,
        )
        moments = 2 if ddconfig["double_z"] else 1
        self.quant_conv = nn.Conv2d(moments * ddconfig["z_channels"], moments * embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(embed_dim, ddconfig["z_channels"], 1)
        self.embed_dim = embed_dim

    def _chunks(self, x):
        step = self.max_batch_size or x.shape[0]
        return [x[i : i + step] for i in range(0, x.shape[0], step)] if x.shape[0] else [x]

    def encode(self, x: torch.Tensor, return_reg_log: bool = False):
        z = torch.cat([self.quant_conv(self.encoder(part)) for part in self._chunks(x)])
        z, reg_log = self.regularization(z)
        return (z, reg_log) if return_reg_log else z

    def decode(self, z: torch.Tensor, **decoder_kwargs) -> torch.Tensor:
        return torch.cat([self.decoder(self.post_quant_conv(part), **decoder_kwargs) for part in self._chunks(z)])


class AutoencoderKL(AutoencodingEngineLegacy):
    """KL autoencoder; encode samples the posterior."""

    def __init__(self, **kwargs):
        if "lossconfig" in kwargs:
            kwargs["loss_config"] = kwargs.pop("lossconfig")
        super().__init__(
            regularizer_config={"target": "sgm.modules.autoencoding.regularizers.DiagonalGaussianRegularizer"},
            **kwargs,
        )


class AutoencoderKLModeOnly(AutoencodingEngineLegacy):
    """KL autoencoder whose encode returns the posterior mean (SVD's conditioning-frame encoder)."""

    def __init__(self, **kwargs):
        if "lossconfig" in kwargs:
            kwargs["loss_config"] = kwargs.pop("lossconfig")
        super().__init__(
            regularizer_config={
                "target": "sgm.modules.autoencoding.regularizers.DiagonalGaussianRegularizer",
                "params": {"sample": False},
            },
            **kwargs,
        )
