"""DiffusionEngine: network + denoiser + conditioner + first stage + sampler, assembled from a config."""
import math
from contextlib import nullcontext
from typing import Dict, List, Optional, Union

import pytorch_lightning as pl
import torch
from omegaconf import ListConfig, OmegaConf

from ..checkpoint import load_into, read_state_dict
from ..modules import UNCONDITIONAL_CONFIG
from ..modules.ema import LitEma
from ..modules.autoencoding.temporal_ae import VideoDecoder
from ..modules.diffusionmodules.wrappers import OPENAIUNETWRAPPER
from ..util import default, get_obj_from_str, instantiate_from_config


class DiffusionEngine(pl.LightningModule):
    """Latent diffusion model. Latents are first-stage latents times `scale_factor`."""

    def __init__(
        self,
        network_config,
        denoiser_config,
        first_stage_config,
        conditioner_config: Union[None, Dict, ListConfig, OmegaConf] = None,
        sampler_config: Union[None, Dict, ListConfig, OmegaConf] = None,
        optimizer_config: Union[None, Dict, ListConfig, OmegaConf] = None,
        scheduler_config: Union[None, Dict, ListConfig, OmegaConf] = None,
        loss_fn_config: Union[None, Dict, ListConfig, OmegaConf] = None,
        network_wrapper: Union[None, str] = None,
        ckpt_path: Union[None, str] = None,
        use_ema: bool = False,
        ema_decay_rate: float = 0.9999,
        scale_factor: float = 1.0,
        disable_first_stage_autocast: bool = False,
        input_key: str = "jpg",
        log_keys: Union[List, None] = None,
        no_cond_log: bool = False,
        compile_model: bool = False,
        en_and_decode_n_samples_a_time: Optional[int] = None,
    ):
        super().__init__()
        self.learning_rate = 1e-4  # main.py sets it from the config's base_learning_rate
        self.log_keys = log_keys
        self.input_key = input_key
        self.optimizer_config = default(optimizer_config, {"target": "torch.optim.AdamW"})
        network = instantiate_from_config(network_config)
        self.model = get_obj_from_str(default(network_wrapper, OPENAIUNETWRAPPER))(network, compile_model=compile_model)
        self.denoiser = instantiate_from_config(denoiser_config)
        self.sampler = instantiate_from_config(sampler_config) if sampler_config is not None else None
        self.conditioner = instantiate_from_config(default(conditioner_config, UNCONDITIONAL_CONFIG))
        self.scheduler_config = scheduler_config
        self._init_first_stage(first_stage_config)
        self.loss_fn = instantiate_from_config(loss_fn_config) if loss_fn_config is not None else None
        self.use_ema = use_ema
        if use_ema:
            self.model_ema = LitEma(self.model, decay=ema_decay_rate)
        self.scale_factor = scale_factor
        self.disable_first_stage_autocast = disable_first_stage_autocast
        self.no_cond_log = no_cond_log
        self.en_and_decode_n_samples_a_time = en_and_decode_n_samples_a_time
        if ckpt_path is not None:
            self.init_from_ckpt(ckpt_path)

    def init_from_ckpt(self, path: str) -> None:
        """Load `path` strictly. An inference export (weights without the model_ema buffers) into a
        model with EMA starts the averages from the loaded weights, so training can continue from it."""
        sd = read_state_dict(path)
        if self.use_ema and not any(key.startswith("model_ema.") for key in sd):
            shadows = {f"model_ema.{buffer}": sd[f"model.{name}"] for name, buffer in self.model_ema.names.items()
                       if f"model.{name}" in sd}
            sd = {**sd, **shadows, "model_ema.num_updates": torch.zeros((), dtype=torch.long)}
        load_into(self, sd, path)

    def _init_first_stage(self, config):
        model = instantiate_from_config(config).eval()
        for param in model.parameters():
            param.requires_grad = False
        self.first_stage_model = model

    def train(self, mode: bool = True):
        """The first stage stays frozen in eval mode."""
        super().train(mode)
        self.first_stage_model.eval()
        return self

    def _first_stage_autocast(self, tensor: torch.Tensor):
        if tensor.is_cuda:
            return torch.autocast("cuda", enabled=not self.disable_first_stage_autocast)
        return nullcontext()

    @torch.no_grad()
    def decode_first_stage(self, z: torch.Tensor, n_samples_a_time: Optional[int] = None) -> torch.Tensor:
        """Latents (N, C, h, w) -> images (N, 3, H, W) in about [-1, 1], `n_samples_a_time` at once
        (default `en_and_decode_n_samples_a_time`, else all).

        A temporal decoder sees each chunk as one clip (timesteps = chunk length). z is cast to the
        first stage's dtype (a no-op in float32).
        """
        z = (1.0 / self.scale_factor * z).to(next(self.first_stage_model.parameters()).dtype)
        step = n_samples_a_time or default(self.en_and_decode_n_samples_a_time, z.shape[0])
        video = isinstance(self.first_stage_model.decoder, VideoDecoder)
        out = []
        with self._first_stage_autocast(z):
            for n in range(math.ceil(z.shape[0] / step)):
                chunk = z[n * step : (n + 1) * step]
                kwargs = {"timesteps": len(chunk)} if video else {}
                out.append(self.first_stage_model.decode(chunk, **kwargs))
        return torch.cat(out, dim=0)

    @torch.no_grad()
    def encode_first_stage(self, x: torch.Tensor) -> torch.Tensor:
        step = default(self.en_and_decode_n_samples_a_time, x.shape[0])
        with self._first_stage_autocast(x):
            z = torch.cat([self.first_stage_model.encode(x[i : i + step]) for i in range(0, x.shape[0], step)])
        return self.scale_factor * z

    def forward(self, x: torch.Tensor, batch: Dict):
        """Training loss for latents x (N, C, h, w) of batch: (mean loss, log dict)."""
        loss = self.loss_fn(self.model, self.denoiser, self.conditioner, x, batch).mean()
        return loss, {"loss": loss.detach()}

    def shared_step(self, batch: Dict):
        return self(self.encode_first_stage(batch[self.input_key]), batch)

    def training_step(self, batch, batch_idx):
        loss, log = self.shared_step(batch)
        n = batch[self.input_key].shape[0]
        self.log("train/loss", loss, prog_bar=True, on_step=True, batch_size=n)
        self.log("lr", self.trainer.optimizers[0].param_groups[0]["lr"], prog_bar=False, on_step=True, batch_size=n)
        return loss

    def on_train_batch_end(self, *args, **kwargs):
        if self.use_ema:
            self.model_ema(self.model)

    def validation_step(self, batch, batch_idx):
        loss, _ = self.shared_step(batch)
        self.log("val/loss", loss, prog_bar=True, batch_size=batch[self.input_key].shape[0])
        return loss

    def configure_optimizers(self):
        params = list(self.model.parameters())
        for embedder in self.conditioner.embedders:
            if embedder.is_trainable:
                params += list(embedder.parameters())
        optimizer_cls = get_obj_from_str(self.optimizer_config["target"])
        optimizer = optimizer_cls(params, lr=self.learning_rate, **(self.optimizer_config.get("params") or {}))
        if self.scheduler_config is None:
            return optimizer
        schedule = instantiate_from_config(self.scheduler_config)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda=schedule)
        return [optimizer], [{"scheduler": scheduler, "interval": "step", "frequency": 1}]

    def export_state_dict(self) -> Dict[str, torch.Tensor]:
        """Weights for inference: the EMA weights in place of the network's when EMA is on, no EMA buffers."""
        state = {k: v for k, v in self.state_dict().items() if not k.startswith("model_ema.")}
        if self.use_ema:
            shadows = dict(self.model_ema.named_buffers())
            for name, buffer in self.model_ema.names.items():
                state["model." + name] = shadows[buffer].clone()
        return state
