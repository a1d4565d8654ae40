"""Conditioning: the GeneralConditioner and the embedders SVD and SV3D use.

The conditioner turns a batch dict into {"vector": (N, D), "crossattn": (N, L, D), "concat": (N, C, h, w)},
concatenating embedders of the same kind along their feature dim.
"""
from contextlib import nullcontext
from typing import Dict, List, Optional

import kornia
import torch
from einops import rearrange, repeat
from torch import nn

from ...util import append_dims, instantiate_from_config
from ..diffusionmodules.util import timestep_embedding
from .clip_vision import CLIPImageTower


class AbstractEmbModel(nn.Module):
    """An embedder; the conditioner sets is_trainable, ucg_rate and input_key from the config."""

    def __init__(self):
        super().__init__()
        self.is_trainable = False
        self.ucg_rate = 0.0
        self.input_key = None
        self.legacy_ucg_val = None


class GeneralConditioner(nn.Module):
    OUTPUT_DIM2KEYS = {2: "vector", 3: "crossattn", 4: "concat", 5: "concat"}
    KEY2CATDIM = {"vector": 1, "crossattn": 2, "concat": 1}
    OWN_KEYS = ("cond_view", "cond_motion")  # SV4D: these embedders' outputs keep their input key

    def __init__(self, emb_models):
        super().__init__()
        embedders = []
        for n, cfg in enumerate(emb_models):
            embedder = instantiate_from_config(cfg)
            if not isinstance(embedder, AbstractEmbModel):
                raise TypeError(f"embedder {n} ({embedder.__class__.__name__}) is not an AbstractEmbModel")
            embedder.is_trainable = cfg.get("is_trainable", False)
            embedder.ucg_rate = cfg.get("ucg_rate", 0.0)
            if not embedder.is_trainable:
                for param in embedder.parameters():
                    param.requires_grad = False
                embedder.eval()
            if "input_key" in cfg:
                embedder.input_key = cfg["input_key"]
            elif "input_keys" in cfg:
                embedder.input_keys = list(cfg["input_keys"])
            else:
                raise KeyError(f"embedder {n} ({embedder.__class__.__name__}) needs input_key or input_keys")
            embedder.legacy_ucg_val = cfg.get("legacy_ucg_value", None)
            embedders.append(embedder)
        self.embedders = nn.ModuleList(embedders)

    def train(self, mode: bool = True):
        """Frozen (non-trainable) embedders stay in eval mode."""
        super().train(mode)
        for embedder in self.embedders:
            if not embedder.is_trainable:
                embedder.eval()
        return self

    def possibly_get_ucg_val(self, embedder: AbstractEmbModel, batch: Dict) -> Dict:
        if embedder.legacy_ucg_val is None:
            raise ValueError("possibly_get_ucg_val needs legacy_ucg_val")
        p = embedder.ucg_rate
        val = embedder.legacy_ucg_val
        for i in range(len(batch[embedder.input_key])):
            if torch.rand(()) < p:
                batch[embedder.input_key][i] = val
        return batch

    def forward(self, batch: Dict, force_zero_embeddings: Optional[List] = None, generator: Optional[torch.Generator] = None) -> Dict:
        """Embeddings by output key; `generator` feeds the embedders that draw noise (SV4D's encoders)."""
        output = {}
        force_zero_embeddings = force_zero_embeddings or []
        for embedder in self.embedders:
            context = nullcontext if embedder.is_trainable else torch.no_grad
            with context():
                if getattr(embedder, "input_key", None) is not None:
                    if embedder.legacy_ucg_val is not None:
                        batch = self.possibly_get_ucg_val(embedder, batch)
                    extra = {"generator": generator} if getattr(embedder, "takes_generator", False) else {}
                    emb_out = embedder(batch[embedder.input_key], **extra)
                else:
                    emb_out = embedder(*[batch[k] for k in embedder.input_keys])
            if not isinstance(emb_out, (list, tuple)):
                emb_out = [emb_out]
            for emb in emb_out:
                out_key = embedder.input_key if embedder.input_key in self.OWN_KEYS else self.OUTPUT_DIM2KEYS[emb.dim()]
                if embedder.ucg_rate > 0.0 and embedder.legacy_ucg_val is None:
                    keep = torch.bernoulli((1.0 - embedder.ucg_rate) * torch.ones(emb.shape[0], device=emb.device))
                    emb = append_dims(keep, emb.ndim) * emb
                if embedder.input_key is not None and embedder.input_key in force_zero_embeddings:
                    emb = torch.zeros_like(emb)
                if out_key in output:
                    output[out_key] = torch.cat((output[out_key], emb), self.KEY2CATDIM[out_key])
                else:
                    output[out_key] = emb
        return output

    def get_unconditional_conditioning(self, batch_c, batch_uc=None, force_uc_zero_embeddings=None, force_cond_zero_embeddings=None, generator=None):
        """(c, uc): both without random conditioning dropout; uc zeroes the embedders named."""
        rates = [e.ucg_rate for e in self.embedders]
        for e in self.embedders:
            e.ucg_rate = 0.0
        try:
            c = self(batch_c, force_cond_zero_embeddings, generator)
            uc = self(batch_c if batch_uc is None else batch_uc, force_uc_zero_embeddings, generator)
        finally:
            for e, rate in zip(self.embedders, rates):
                e.ucg_rate = rate
        return c, uc


class FrozenOpenCLIPImageEmbedder(AbstractEmbModel):
    """Image in [-1, 1], (B, 3, H, W) -> CLIP image embedding (B, embed_dim).

    Resized to 224 with kornia (bicubic, antialias), mapped to [0, 1], normalised with CLIP's
    mean/std, encoded by the OpenCLIP-layout ViT. `version` is recorded only: weights come from
    the model checkpoint, nothing is ever downloaded.
    """

    def __init__(
        self,
        arch="ViT-H-14",
        version=None,
        device="cuda",
        max_length=77,
        freeze=True,
        antialias=True,
        ucg_rate=0.0,
        unsqueeze_dim=False,
        repeat_to_max_len=False,
        num_image_crops=0,
        output_tokens=False,
        init_device=None,
    ):
        super().__init__()
        if num_image_crops or output_tokens:
            raise ValueError("FrozenOpenCLIPImageEmbedder: num_image_crops and output_tokens are not supported")
        self.model = CLIPImageTower(arch)
        self.version = version
        self.max_length = max_length
        self.antialias = antialias
        self.ucg_rate = ucg_rate
        self.unsqueeze_dim = unsqueeze_dim
        self.repeat_to_max_len = repeat_to_max_len
        self.register_buffer("mean", torch.Tensor([0.48145466, 0.4578275, 0.40821073]), persistent=False)
        self.register_buffer("std", torch.Tensor([0.26862954, 0.26130258, 0.27577711]), persistent=False)
        if freeze:
            self.freeze()

    def freeze(self):
        self.model = self.model.eval()
        for param in self.parameters():
            param.requires_grad = False

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        x = kornia.geometry.resize(x, (224, 224), interpolation="bicubic", align_corners=True, antialias=self.antialias)
        x = (x + 1.0) / 2.0
        return kornia.enhance.normalize(x, self.mean, self.std)

    def forward(self, image: torch.Tensor, no_dropout: bool = False) -> torch.Tensor:
        z = self.model.visual(self.preprocess(image)).to(image.dtype)
        if self.ucg_rate > 0.0 and not no_dropout:
            keep = torch.bernoulli((1.0 - self.ucg_rate) * torch.ones(z.shape[0], device=z.device))
            z = keep[:, None] * z
        if self.unsqueeze_dim:
            z = z[:, None, :]
        if self.repeat_to_max_len:
            z = repeat(z[:, None] if z.ndim == 2 else z, "b 1 d -> b n d", n=self.max_length)
        return z


class FrozenOpenCLIPImagePredictionEmbedder(AbstractEmbModel):
    """Conditioning frames (B*n_cond_frames, 3, H, W) -> tokens (B*n_copies, n_cond_frames, D)."""

    def __init__(self, open_clip_embedding_config: Dict, n_cond_frames: int, n_copies: int):
        super().__init__()
        self.n_cond_frames = n_cond_frames
        self.n_copies = n_copies
        self.open_clip = instantiate_from_config(open_clip_embedding_config)

    def forward(self, vid: torch.Tensor) -> torch.Tensor:
        vid = rearrange(self.open_clip(vid), "(b t) d -> b t d", t=self.n_cond_frames)
        return repeat(vid, "b t d -> (b s) t d", s=self.n_copies)


class Timestep(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return timestep_embedding(t, self.dim)


class ConcatTimestepEmbedderND(AbstractEmbModel):
    """Scalars (B,) or (B, d) -> sinusoidal embeddings concatenated, (B, d * outdim)."""

    def __init__(self, outdim: int):
        super().__init__()
        self.timestep = Timestep(outdim)
        self.outdim = outdim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 1:
            x = x[:, None]
        if x.ndim != 2:
            raise ValueError(f"ConcatTimestepEmbedderND expects (B,) or (B, d) input, got {tuple(x.shape)}")
        b, dims = x.shape
        emb = self.timestep(rearrange(x, "b d -> (b d)"))
        return rearrange(emb, "(b d) d2 -> b (d d2)", b=b, d=dims, d2=self.outdim)


class VideoPredictionEmbedderWithEncoder(AbstractEmbModel):
    """Conditioning frames (B*n_cond_frames, 3, H, W) -> VAE latents.

    One conditioning frame (SVD, SV3D): (B*n_copies, C, h, w), the frame repeated n_copies times.
    Several (SV4D: a frame per clip frame or view): (B*n_cond_frames, C, h, w), one latent per frame,
    n_copies unused. The optional sigma embedding has one row per output row.
    """

    def __init__(
        self,
        n_cond_frames: int,
        n_copies: int,
        encoder_config: Dict,
        sigma_sampler_config: Optional[Dict] = None,
        sigma_cond_config: Optional[Dict] = None,
        is_ae: bool = False,
        scale_factor: float = 1.0,
        disable_encoder_autocast: bool = False,
        en_and_decode_n_samples_a_time: Optional[int] = None,
    ):
        super().__init__()
        self.n_cond_frames = n_cond_frames
        self.n_copies = n_copies
        self.encoder = instantiate_from_config(encoder_config)
        self.sigma_sampler = instantiate_from_config(sigma_sampler_config) if sigma_sampler_config is not None else None
        self.sigma_cond = instantiate_from_config(sigma_cond_config) if sigma_cond_config is not None else None
        self.is_ae = is_ae
        self.scale_factor = scale_factor
        self.disable_encoder_autocast = disable_encoder_autocast
        self.en_and_decode_n_samples_a_time = en_and_decode_n_samples_a_time

    takes_generator = True

    def forward(self, vid: torch.Tensor, generator: Optional[torch.Generator] = None):
        """`generator` draws the sigma sampler's normals and the noise (on its device and on the frames'
        device; None: torch's global generators)."""
        sigma_cond = None
        if self.sigma_sampler is not None:
            b = vid.shape[0] // self.n_cond_frames
            normals = torch.randn((b,), generator=generator, device=None if generator is None else generator.device)
            sigmas = self.sigma_sampler(b, rand=normals).to(vid.device)
            if self.sigma_cond is not None:
                rows = self.n_copies if self.n_cond_frames == 1 else self.n_cond_frames
                sigma_cond = repeat(self.sigma_cond(sigmas), "b d -> (b t) d", t=rows)
            sigmas = repeat(sigmas, "b -> (b t)", t=self.n_cond_frames)
            noise = torch.randn(vid.shape, generator=generator, device=vid.device, dtype=vid.dtype)
            vid = vid + append_dims(sigmas, vid.ndim) * noise
        step = self.en_and_decode_n_samples_a_time or vid.shape[0]
        autocast = torch.autocast("cuda", enabled=not self.disable_encoder_autocast) if vid.is_cuda else nullcontext()
        with autocast:
            encode = self.encoder.encode if self.is_ae else self.encoder
            out = torch.cat([encode(vid[i : i + step]) for i in range(0, vid.shape[0], step)], dim=0)
        out = out * self.scale_factor
        if self.n_cond_frames == 1:
            out = repeat(out, "b c h w -> (b t) c h w", t=self.n_copies)
        return (out, sigma_cond) if self.sigma_cond is not None else out
