"""How much memory a sampling run needs, estimated from the model config before anything is built.

All sizes are bytes. A run holds the weights and, one after the other, the activations of three
stages; the estimate is weights + the largest stage. The image is H x W pixels, T frames, dt =
min(decoding_t, T) frames decoded at once, the latent H/f x W/f (f: the first stage's
downsampling), e the bytes of an activation element (4 in float32, 2 in float16 / bfloat16, which
have their own block constants: norms and autocast keep float32 copies).

weights   W * (4 in float32, else 2), W the element count (checkpoint header, or counted from the
          config exactly as the modules are built); under CUDA autocast over float32 weights (the
          default there) the denoise stage also holds float16 copies of the UNet's weights.
encode    the conditioner on the (1, 3, H, W) image: IMAGE_COPIES * 3HW * 4 plus the larger of
          CLIP's resize (CLIP_RESIZE * 3HW * 4) and the VAE encoder pass.
denoise   one guided UNet pass on N = 2T latents plus SAMPLER_COPIES latent buffers.
decode    the VAE decoder pass on dt latents plus OUTPUT_COPIES * T * 3HW * 4 of frames.
Each stage adds RUNTIME (a first call's kernels, primitive caches and Python objects).

A pass (UNet, VAE encoder, VAE decoder) is walked layer by layer as the modules run: alive while a
layer runs is what the forward still references (the UNet's skips, an output block's concatenated
input and the previous h, the layer's input) plus the layer's working set, in elements per pixel
of the level (c_in, c_out its channels; the constants are BlockCosts' fields, in COSTS):
  UNet ResBlock + temporal ResBlock + mix    unet_res: a c_in + b c_out (+ g c_out when c_out > c_in)
  SpatialVideoTransformer                    transformer c (the GEGLU feed-forward alone holds
                                             8c + 4c + 4c) + 2 copies of the temporal context
                                             (2 videos x context_dim per pixel)
  VAE ResnetBlock, decoder VideoResBlock     vae_res, video_res: a c_in + b c_out
  Upsample, Downsample                       upsample c per output pixel, downsample c per input pixel
  VAE AttnBlock, output norm + SiLU          attn c, norm_out c
Attention holds no (N x N) matrix: torch's SDPA runs a fused kernel on CPU (flash; float32,
float16 and bfloat16 without a mask, measured) and on CUDA, and no mask is passed here.
On the CPU the resident set exceeds the live tensors: glibc serves blocks below its mmap threshold
(at most HEAP_LIMIT) from the heap, where freed holes stay resident, so a layer whose dominant
tensors are that small counts HEAP_FACTOR times (falling to 1 at 4 x HEAP_LIMIT, see heap_factor).
The constants were measured on CPU, block by block and on whole runs
(scripts/benchmarks/memory_estimate.py, docs/memory_estimate_cpu.csv: estimate / measured within
1 to 2). On CUDA the same constants are used, unmeasured here; its kernels hold no oneDNN
reorder or vol2col buffers, so there the estimate should err on the safe side.
"""
import logging
import math
import os
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from omegaconf import DictConfig, OmegaConf

from ..checkpoint import DROPPABLE_KEYS
from ..modules.encoders.clip_vision import vision_arch
from .checks import InputError

logger = logging.getLogger(__name__)

GIB, MIB = 2**30, 2**20
IMAGE_COPIES = 6  # the image, its noised copy, the noise, the unconditional batch's clones, CLIP's input
CLIP_RESIZE = 4  # kornia's antialiased resize to 224 holds about four copies of the image
OUTPUT_COPIES = 3  # decoded frames, (decoded + 1) / 2, the clamped frames
SAMPLER_COPIES = 8  # latent buffers of the sampler and denoiser (x, guided batch, scaled input, concat, output)
RUNTIME = 64 * MIB  # a first call's kernels, primitive caches and Python objects (40 to 50 MiB measured on CPU)
HEAP_LIMIT = 32 * MIB  # glibc's mmap threshold grows up to this: smaller blocks come from the heap
HEAP_FACTOR = 1.7  # resident over live bytes when the tensors are below HEAP_LIMIT (measured 1.4 to 1.9)


@dataclass(frozen=True)
class BlockCosts:
    """Working set of each block kind in activation elements per pixel (see the module docstring)."""

    unet_res: Tuple[float, float, float]  # a, b, g
    transformer: float
    vae_res: Tuple[float, float]
    video_res: Tuple[float, float]
    upsample: float
    downsample: float
    attn: float
    norm_out: float


COSTS = {
    "float32": BlockCosts(unet_res=(1, 8, 2), transformer=27, vae_res=(1, 5), video_res=(1, 9), upsample=3,
                          downsample=2.5, attn=7, norm_out=3),
    "half": BlockCosts(unet_res=(4, 11, 3), transformer=31, vae_res=(2, 9), video_res=(2, 11), upsample=4,
                       downsample=3, attn=10, norm_out=3),
}


@dataclass(frozen=True)
class MemoryEstimate:
    """`weights`: bytes of the weights on the device; `stages`: peak activation bytes of "encode"
    (conditioning image through the VAE encoder and the image embedder), "denoise" (one guided UNet
    call, batch 2T) and "decode" (VAE decode of decoding_t frames)."""

    weights: int
    stages: Dict[str, int]

    @property
    def activations(self) -> int:
        return max(self.stages.values())

    @property
    def total(self) -> int:
        return self.weights + self.activations


# --------------------------------------------------------------------------------------------------
# Element counts of the weights, from a checkpoint or from the config


def weight_count(ckpt_path: Optional[str]) -> Optional[int]:
    """Weight elements in a checkpoint without loading it: exact from a .safetensors header
    (less the OpenCLIP text-side keys sgm.checkpoint drops); for other formats file size / 4
    (float32 assumed); None when there is no path."""
    if ckpt_path is None:
        return None
    path = os.fspath(ckpt_path)
    if not path.lower().endswith(".safetensors"):
        return os.path.getsize(path) // 4
    from safetensors import safe_open

    with safe_open(path, framework="pt") as handle:
        return sum(math.prod(handle.get_slice(key).get_shape()) for key in handle.keys() if not DROPPABLE_KEYS.search(key))


def _conv(c_in: int, c_out: int, kernel: int = 9, bias: bool = True) -> int:
    """Elements of a convolution (or linear layer) whose kernel has `kernel` taps."""
    return c_in * c_out * kernel + (c_out if bias else 0)


def _taps(kernel_size: Any, dims: int) -> int:
    """Taps of a kernel given as an int (the same on each of `dims` axes) or a list."""
    return kernel_size**dims if isinstance(kernel_size, int) else math.prod(kernel_size)


def _resblock_params(c_in: int, c_out: int, emb: int, taps: int, scale_shift: bool = False) -> int:
    """openaimodel.ResBlock: norm, conv, embedding projection (none when emb is 0), norm, conv, skip."""
    n = 2 * c_in + _conv(c_in, c_out, taps) + 2 * c_out + _conv(c_out, c_out, taps)
    if emb:
        n += _conv(emb, 2 * c_out if scale_shift else c_out, 1)
    return n + (0 if c_in == c_out else _conv(c_in, c_out, 1))


def _attention_params(dim: int, context: int) -> int:
    """CrossAttention: bias-free q, k, v (k, v from `context` features) and the output projection."""
    return dim * dim + 2 * context * dim + _conv(dim, dim, 1)


def _feed_forward_params(dim: int, dim_out: int) -> int:
    """GEGLU feed-forward: dim -> 2 * 4dim, then 4dim -> dim_out."""
    return _conv(dim, 8 * dim, 1) + _conv(4 * dim, dim_out, 1)


def _video_transformer_params(c: int, heads: int, d_head: int, depth: int, p: Dict[str, Any]) -> int:
    """SpatialVideoTransformer: spatial blocks, temporal blocks, frame-position MLP and mixer."""
    inner, context = heads * d_head, p["context_dim"]
    time_context = context if p.get("use_spatial_context") else p.get("time_context_dim")
    feed_forward = _feed_forward_params(inner, inner)
    spatial = _attention_params(inner, inner) + _attention_params(inner, context) + feed_forward + 6 * inner
    temporal = 2 * feed_forward + _attention_params(inner, inner) + 6 * inner  # ff_in and ff, 3 norms
    if not p.get("disable_temporal_crossattention"):
        temporal += _attention_params(inner, time_context or inner) + 2 * inner
    projections = 2 * c + _conv(c, inner, 1) + _conv(inner, c, 1) + _conv(c, 4 * c, 1) + _conv(4 * c, c, 1) + 1
    return projections + depth * (spatial + temporal)


@dataclass(frozen=True)
class Layer:
    """One layer of a network as it runs: `kind`, channels in and out, `level` (resolution index)."""

    kind: str
    c_in: int
    c_out: int
    level: int


def _unet_blocks(p: Dict[str, Any]) -> List[Tuple[str, List[Layer]]]:
    """The VideoUNet's blocks in run order, ("input" | "middle" | "output", layers), as its constructor builds them."""
    mc, mult = p["model_channels"], list(p.get("channel_mult", (1, 2, 4, 8)))
    attn_res, nrb = list(p["attention_resolutions"]), p["num_res_blocks"]
    blocks = [("input", [Layer("conv_in", p["in_channels"], mc, 0)])]
    skips, ch, ds = [mc], mc, 1
    for level, m in enumerate(mult):
        for _ in range(nrb):
            layers = [Layer("res", ch, m * mc, level)]
            ch = m * mc
            if ds in attn_res:
                layers.append(Layer("attn", ch, ch, level))
            blocks.append(("input", layers))
            skips.append(ch)
        if level != len(mult) - 1:
            blocks.append(("input", [Layer("down", ch, ch, level)]))
            skips.append(ch)
            ds *= 2
    last = len(mult) - 1
    blocks.append(("middle", [Layer("res", ch, ch, last), Layer("attn_middle", ch, ch, last), Layer("res", ch, ch, last)]))
    for level, m in list(enumerate(mult))[::-1]:
        for i in range(nrb + 1):
            layers = [Layer("res", ch + skips.pop(), m * mc, level)]
            ch = m * mc
            if ds in attn_res:
                layers.append(Layer("attn", ch, ch, level))
            if level and i == nrb:
                layers.append(Layer("up", ch, ch, level))
                ds //= 2
            blocks.append(("output", layers))
    return blocks


def _heads(c: int, p: Dict[str, Any]) -> Tuple[int, int]:
    """(heads, channels per head) of a transformer on c channels."""
    if p.get("num_head_channels", -1) == -1:
        return p["num_heads"], c // p["num_heads"]
    return c // p["num_head_channels"], p["num_head_channels"]


def _depths(p: Dict[str, Any]) -> Tuple[List[int], int]:
    """Transformer depth per level and in the middle block."""
    depth = p.get("transformer_depth", 1)
    depths = [depth] * len(p.get("channel_mult", (1, 2, 4, 8))) if isinstance(depth, int) else list(depth)
    middle = p.get("transformer_depth_middle")
    return depths, depths[-1] if middle is None else middle


def _unet_params(p: Dict[str, Any]) -> int:
    """Elements of a VideoUNet with constructor arguments `p`."""
    mc, emb = p["model_channels"], 4 * p["model_channels"]
    taps = _taps(p.get("video_kernel_size", 3), 3)
    scale_shift, updown = p.get("use_scale_shift_norm", False), p.get("resblock_updown", False)
    depths, middle_depth = _depths(p)
    n = _conv(mc, emb, 1) + _conv(emb, emb, 1)
    classes = p.get("num_classes")
    if classes == "sequential":
        n += _conv(p["adm_in_channels"], emb, 1) + _conv(emb, emb, 1)
    elif classes == "continuous":
        n += _conv(1, emb, 1)
    elif isinstance(classes, int):
        n += classes * emb
    for _, layers in _unet_blocks(p):
        for layer in layers:
            c_in, c = layer.c_in, layer.c_out
            if layer.kind == "conv_in":
                n += _conv(c_in, c)
            elif layer.kind == "res" or layer.kind in ("up", "down") and updown:
                n += _resblock_params(c_in, c, emb, 9, scale_shift) + _resblock_params(c, c, emb, taps) + 1
            elif layer.kind in ("up", "down"):
                n += _conv(c, c) if p.get("conv_resample", True) else 0
            else:
                depth = middle_depth if layer.kind == "attn_middle" else depths[layer.level]
                n += _video_transformer_params(c, *_heads(c, p), depth, p)
    return n + 2 * mc + _conv(mc, p["out_channels"])


def _vae_layers(p: Dict[str, Any], decoder: bool) -> List[Layer]:
    """The VAE encoder's or decoder's layers in run order (levels count from full resolution, 0)."""
    ch, mult, nrb = p["ch"], list(p.get("ch_mult", (1, 2, 4, 8))), p["num_res_blocks"]
    attn_res, last = list(p["attn_resolutions"]), len(mult) - 1
    use_attn = p.get("attn_type", "vanilla") != "none"
    if not decoder:
        layers, c, res = [Layer("conv_in", p["in_channels"], ch, 0)], ch, p["resolution"]
        for level, m in enumerate(mult):
            for _ in range(nrb):
                layers.append(Layer("res", c, ch * m, level))
                c = ch * m
                if res in attn_res and use_attn:
                    layers.append(Layer("attn", c, c, level))
            if level != last:
                layers.append(Layer("down", c, c, level))
                res //= 2
        z = 2 * p["z_channels"] if p.get("double_z", True) else p["z_channels"]
        middle = [Layer("res", c, c, last)] + ([Layer("attn", c, c, last)] if use_attn else []) + [Layer("res", c, c, last)]
        return layers + middle + [Layer("norm_out", c, c, last), Layer("conv_out", c, z, last)]
    c, res = ch * mult[-1], p["resolution"] // 2**last
    layers = [Layer("conv_in", p["z_channels"], c, last), Layer("res", c, c, last)]
    layers += ([Layer("attn", c, c, last)] if use_attn else []) + [Layer("res", c, c, last)]
    for level in reversed(range(len(mult))):
        for _ in range(nrb + 1):
            layers.append(Layer("res", c, ch * mult[level], level))
            c = ch * mult[level]
            if res in attn_res and use_attn:
                layers.append(Layer("attn", c, c, level))
        if level:
            layers.append(Layer("up", c, c, level))
            res *= 2
    return layers + [Layer("norm_out", c, c, 0), Layer("conv_out", c, p["out_ch"], 0)]


def _vae_params(p: Dict[str, Any], decoder: bool, video_taps: Optional[int] = None) -> int:
    """Elements of model.Encoder / model.Decoder (`video_taps`: temporal_ae.VideoDecoder's kernel)."""
    n = 0
    for layer in _vae_layers(p, decoder):
        c_in, c = layer.c_in, layer.c_out
        if layer.kind == "res":
            n += _resblock_params(c_in, c, 0, 9)
            if video_taps:
                n += _resblock_params(c, c, 0, video_taps) + 1
        elif layer.kind == "attn":
            n += 2 * c + 4 * _conv(c, c, 1)
        elif layer.kind in ("up", "down"):
            n += _conv(c, c) if p.get("resamp_with_conv", True) else 0
        elif layer.kind == "norm_out":
            n += 2 * c
        else:
            n += _conv(c_in, c)
            if video_taps and layer.kind == "conv_out":
                n += _conv(c, c, video_taps)
    return n


def _target(node: Any) -> str:
    return node.get("target", "") if isinstance(node, dict) else ""


def _params_of(node: Dict[str, Any]) -> Dict[str, Any]:
    return node.get("params") or {}


def _clip_params(p: Dict[str, Any]) -> int:
    """Elements of the OpenCLIP-layout image tower of arch p["arch"]."""
    a = vision_arch(p.get("arch", "ViT-H-14"))
    w, hidden, tokens = a.width, int(a.width * a.mlp_ratio), (a.image_size // a.patch_size) ** 2 + 1
    block = 4 * w + _conv(w, 3 * w, 1) + _conv(w, w, 1) + _conv(w, hidden, 1) + _conv(hidden, w, 1)
    return 3 * w * a.patch_size**2 + w + tokens * w + 4 * w + a.layers * block + w * a.embed_dim


def _legacy_params(p: Dict[str, Any]) -> int:
    """AutoencodingEngineLegacy (AutoencoderKL...): encoder and decoder of one ddconfig, quant convs."""
    dd, e = p["ddconfig"], p["embed_dim"]
    moments = 2 if dd.get("double_z", True) else 1
    quant_convs = _conv(moments * dd["z_channels"], moments * e, 1) + _conv(e, dd["z_channels"], 1)
    return _vae_params(dd, False) + _vae_params(dd, True) + quant_convs


def _video_decoder_params(p: Dict[str, Any]) -> int:
    return _vae_params(p, True, _taps(p.get("video_kernel_size", 3), 3))


def _patch_params(p: Dict[str, Any], decoder: bool) -> int:
    pixels = (p.get("out_channels" if decoder else "in_channels", 3)) * p.get("patch_size", 4) ** 2
    latent = p.get("latent_channels", 8)
    return _conv(latent, pixels, 1) if decoder else _conv(pixels, latent, 1)


def _conditioner_params(p: Dict[str, Any]) -> int:
    return sum(count_config_weights(e) for e in p.get("emb_models", []))


def _engine_params(p: Dict[str, Any]) -> int:
    """DiffusionEngine: network, conditioner, first stage (and an EMA copy of the network)."""
    network = count_config_weights(p["network_config"])
    ema = network + 2 if p.get("use_ema") else 0
    return network + ema + count_config_weights(p.get("conditioner_config")) + count_config_weights(p["first_stage_config"])


PARAM_COUNTS: Dict[str, Callable[[Dict[str, Any]], int]] = {
    "sgm.models.diffusion.DiffusionEngine": _engine_params,
    "sgm.modules.diffusionmodules.video_model.VideoUNet": _unet_params,
    "sgm.modules.GeneralConditioner": _conditioner_params,
    "sgm.modules.encoders.modules.GeneralConditioner": _conditioner_params,
    "sgm.modules.encoders.modules.FrozenOpenCLIPImagePredictionEmbedder":
        lambda p: count_config_weights(p["open_clip_embedding_config"]),
    "sgm.modules.encoders.modules.FrozenOpenCLIPImageEmbedder": _clip_params,
    "sgm.modules.encoders.modules.ConcatTimestepEmbedderND": lambda p: 0,
    "sgm.modules.encoders.modules.VideoPredictionEmbedderWithEncoder": lambda p: count_config_weights(p["encoder_config"]),
    "sgm.models.autoencoder.AutoencodingEngine":
        lambda p: count_config_weights(p["encoder_config"]) + count_config_weights(p["decoder_config"]),
    "sgm.models.autoencoder.AutoencodingEngineLegacy": _legacy_params,
    "sgm.models.autoencoder.AutoencoderKL": _legacy_params,
    "sgm.models.autoencoder.AutoencoderKLModeOnly": _legacy_params,
    "sgm.modules.diffusionmodules.model.Encoder": lambda p: _vae_params(p, False),
    "sgm.modules.diffusionmodules.model.Decoder": lambda p: _vae_params(p, True),
    "sgm.modules.autoencoding.temporal_ae.VideoDecoder": _video_decoder_params,
    "sgm.modules.autoencoding.patch_projection.PatchProjectionEncoder": lambda p: _patch_params(p, False),
    "sgm.modules.autoencoding.patch_projection.PatchProjectionDecoder": lambda p: _patch_params(p, True),
    "torch.nn.Identity": lambda p: 0,
}


def count_config_weights(node: Any) -> int:
    """Weight elements (parameters and persistent buffers) of the module a config node (target,
    params) builds; a target not known here counts 0 (logged)."""
    if isinstance(node, DictConfig):
        node = OmegaConf.to_container(node, resolve=True)
    if node is None:
        return 0
    count = PARAM_COUNTS.get(_target(node))
    if count is None:
        logger.warning("memory estimate: the weights of %s are not counted", _target(node) or "a config node without target")
        return 0
    return count(_params_of(node))


# --------------------------------------------------------------------------------------------------
# Activations of the three stages


def _halve(size: Tuple[int, int], times: int, ceil: bool) -> Tuple[int, int]:
    """(h, w) halved `times` times, rounding up (UNet's padded stride-2 conv) or down (the VAE's)."""
    h, w = size
    for _ in range(times):
        h, w = ((h + 1) // 2, (w + 1) // 2) if ceil else (h // 2, w // 2)
    return h, w


def _pixels(size: Tuple[int, int]) -> int:
    return size[0] * size[1]


@dataclass(frozen=True)
class Pass:
    """How a network pass allocates: bytes per activation element, its block constants, and
    whether it runs on the CPU heap."""

    element: int
    costs: BlockCosts
    cpu: bool

    def bytes(self, elements: float, unit: float) -> float:
        """Bytes of `elements` activation elements alive together, `unit` elements being the size
        of the tensors that dominate them (see heap_factor)."""
        return (heap_factor(unit * self.element) if self.cpu else 1.0) * elements * self.element


def heap_factor(tensor_bytes: float) -> float:
    """Resident over live bytes on the CPU when the largest tensors hold `tensor_bytes` each:
    HEAP_FACTOR up to HEAP_LIMIT (glibc serves them from its heap, where freed holes stay
    resident), falling log-linearly to 1 at 4 x HEAP_LIMIT (mmapped blocks return on free)."""
    position = min(max(math.log(max(tensor_bytes, 1) / HEAP_LIMIT, 4), 0.0), 1.0)
    return HEAP_FACTOR - (HEAP_FACTOR - 1.0) * position


def _unet_peak(p: Dict[str, Any], latent: Tuple[int, int], frames: int, run: Pass) -> float:
    """Peak activation bytes of one VideoUNet call on 2 * frames latents of size `latent` (h, w)."""
    n, costs = 2 * frames, run.costs
    a, b, g = costs.unet_res
    context = 2 * 2 * p["context_dim"] if p.get("use_spatial_context") else 0  # 2 copies of (2 videos, P, context_dim)

    def size(channels: int, level: int) -> float:
        return channels * _pixels(_halve(latent, level, ceil=True)) * n

    def working_set(layer: Layer) -> float:
        c_in, c, pixels = layer.c_in, layer.c_out, _pixels(_halve(latent, layer.level, ceil=True))
        if layer.kind == "res":
            return n * pixels * (a * c_in + b * c + (g * c if c > c_in else 0))
        if layer.kind.startswith("attn"):
            return n * pixels * costs.transformer * c + context * pixels
        if layer.kind == "up":
            return n * _pixels(_halve(latent, layer.level - 1, ceil=True)) * costs.upsample * c
        if layer.kind == "down":
            return n * pixels * costs.downsample * c
        return n * pixels * 2 * c  # conv_in: output and a reordered copy

    skips: List[float] = []  # outputs of the input blocks, held until an output block concatenates them
    peak, h = 0.0, 0.0  # h: the UNet's running `h` outside the input blocks (there it is the last skip)
    for stage, layers in _unet_blocks(p):
        held = sum(skips)
        if stage == "output":
            skips.pop()  # freed once concatenated: the concatenation is the block's input
            held = sum(skips) + h + size(layers[0].c_in, layers[0].level)
        x = 0.0  # the previous layer's output inside the block
        for layer in layers:
            out = size(layer.c_out, layer.level - (layer.kind == "up"))
            dominant = 4 * out if layer.kind.startswith("attn") else out  # the feed-forward's 4c and 8c tensors
            peak = max(peak, run.bytes(held + x + working_set(layer), dominant))
            x = out
        h = x
        if stage == "input":
            skips.append(x)
    out = size(p["model_channels"], 0)
    latents = size(p["in_channels"], 0)
    return max(peak, run.bytes(h + 3 * out, out)) + run.bytes(SAMPLER_COPIES * latents, latents)


def _vae_peak(p: Dict[str, Any], decoder: bool, full: Tuple[int, int], frames: int, run: Pass, video: bool) -> float:
    """Peak activation bytes of the VAE encoder (on `frames` images of `full` (H, W) pixels) or
    decoder (on `frames` latents decoding to `full`)."""
    costs = run.costs
    res = costs.video_res if video else costs.vae_res
    peak = 0.0
    for layer in _vae_layers(p, decoder):
        pixels = frames * _pixels(_halve(full, layer.level, ceil=False))
        c_in, c = layer.c_in, layer.c_out
        if layer.kind == "res":
            work = res[0] * c_in + res[1] * c
        elif layer.kind == "attn":
            work = costs.attn * c
        elif layer.kind == "up":
            work = costs.upsample * c * 4  # at the output resolution (4 pixels per input pixel)
        elif layer.kind == "down":
            work = costs.downsample * c
        elif layer.kind == "norm_out":
            work = costs.norm_out * c
        else:
            work = 2 * c + (c_in if layer.kind == "conv_out" else 0)
        dominant = pixels * c * (4 if layer.kind == "up" else 1)
        peak = max(peak, run.bytes(pixels * (c_in + work), dominant))
    return peak


def _first_stage_peak(node: Any, full: Tuple[int, int], frames: int, run: Pass, decoder: bool) -> float:
    """Peak activation bytes of a first stage's encode (decoder False) or decode of `frames` images."""
    target, p = _target(node), _params_of(node) if isinstance(node, dict) else {}
    if target.endswith("AutoencodingEngine"):
        return _first_stage_peak(p["decoder_config" if decoder else "encoder_config"], full, frames, run, decoder)
    if "ddconfig" in p:
        return _vae_peak(p["ddconfig"], decoder, full, frames, run, video=False)
    if target.endswith("temporal_ae.VideoDecoder"):
        return _vae_peak(p, True, full, frames, run, video=True)
    if target.endswith("model.Decoder") or target.endswith("model.Encoder"):
        return _vae_peak(p, decoder, full, frames, run, video=False)
    if target.endswith("PatchProjectionEncoder") or target.endswith("PatchProjectionDecoder"):
        pixels = 3 * frames * _pixels(full)
        return run.bytes(2 * pixels, pixels)  # the pixel (un)shuffle copy and the projection
    return 0.0


def _downsampling(first_stage: Dict[str, Any]) -> int:
    """Pixels per latent pixel along a side (the VAE's 2^(levels-1), or the patch size)."""
    p = _params_of(first_stage)
    if "ddconfig" in p:
        return 2 ** (len(p["ddconfig"]["ch_mult"]) - 1)
    dp = _params_of(p.get("decoder_config", first_stage))
    if "patch_size" in dp:
        return dp["patch_size"]
    return 2 ** (len(dp.get("ch_mult", (1, 2, 4, 4))) - 1)


def _encode_peak(params: Dict[str, Any], full: Tuple[int, int], run: Pass, images: Pass) -> float:
    """Peak activation bytes of the conditioner on the (1, 3, H, W) conditioning image (float32 in
    `images`, the VAE encoder in `run`)."""
    image = 3 * _pixels(full)
    peaks = [images.bytes(CLIP_RESIZE * image, image)]
    concat = False
    for embedder in _params_of(params.get("conditioner_config") or {}).get("emb_models", []):
        if "encoder_config" in _params_of(embedder):
            concat = True
            peaks.append(_first_stage_peak(_params_of(embedder)["encoder_config"], full, 1, run, False))
    if not concat:  # the pipeline encodes a blank image to find the latent shape
        peaks.append(_first_stage_peak(params["first_stage_config"], full, 1, run, False))
    return images.bytes(IMAGE_COPIES * image, image) + max(peaks)


# --------------------------------------------------------------------------------------------------
# Precision, estimate, what is available, the check


@dataclass(frozen=True)
class Precision:
    """Bytes per element of the weights and of each stage's activations, and whether CUDA autocast
    caches half copies of the UNet's float32 weights."""

    weights: int
    denoise: int
    encode: int
    decode: int
    cached_half_weights: bool


def _precision(params: Dict[str, Any], dtype: Optional[torch.dtype], device: torch.device) -> Precision:
    weights = 4 if dtype in (None, torch.float32) else 2
    autocast = weights == 2 or (dtype is None and device.type == "cuda")
    encoder_off = any(_params_of(e).get("disable_encoder_autocast", False)
                      for e in _params_of(params.get("conditioner_config") or {}).get("emb_models", []))

    def stage(autocast_disabled: bool) -> int:
        return 2 if weights == 2 or (autocast and not (autocast_disabled and device.type == "cuda")) else 4

    return Precision(weights, 2 if autocast else 4, stage(encoder_off),
                     stage(bool(params.get("disable_first_stage_autocast", False))), dtype is None and device.type == "cuda")


def _model_node(cfg: Any) -> Dict[str, Any]:
    """cfg.model ({"target", "params"}) as plain containers."""
    model = cfg.model if isinstance(cfg, DictConfig) else cfg["model"]
    return OmegaConf.to_container(model, resolve=True) if isinstance(model, DictConfig) else dict(model)


def _pass(element: int, device: torch.device) -> Pass:
    return Pass(element, COSTS["half" if element == 2 else "float32"], device.type == "cpu")


def estimate_memory(cfg: Any, width: int, height: int, num_frames: int, decoding_t: int, dtype: Optional[torch.dtype],
                    device: torch.device, weights: Optional[int] = None) -> MemoryEstimate:
    """Memory of sampling `num_frames` frames from a `width` x `height` image (multiples of 64) with
    the model of `cfg` (sgm schema, cfg.model.params...), decoding `decoding_t` frames at once.
    dtype None is upstream's default (float32 on CPU; float32 weights with float16 autocast on
    CUDA); `weights` the element count (weight_count), None counts it from the config."""
    node, device = _model_node(cfg), torch.device(device)
    params = node["params"]
    precision = _precision(params, dtype, device)
    weights = count_config_weights(node) if weights is None else weights
    f, full = _downsampling(params["first_stage_config"]), (height, width)
    unet = params["network_config"]["params"]
    denoise = _unet_peak(unet, (height // f, width // f), num_frames, _pass(precision.denoise, device))
    if precision.cached_half_weights:
        denoise += 2 * _unet_params(unet)
    images = _pass(4, device)
    frames = 3 * num_frames * _pixels(full)
    chunk = min(decoding_t, num_frames)
    decoder = _first_stage_peak(params["first_stage_config"], full, chunk, _pass(precision.decode, device), decoder=True)
    decode = decoder + images.bytes(OUTPUT_COPIES * frames, frames)
    encode = _encode_peak(params, full, _pass(precision.encode, device), images)
    stages = {"encode": encode, "denoise": denoise, "decode": decode}
    return MemoryEstimate(int(weights) * precision.weights, {k: int(v + RUNTIME) for k, v in stages.items()})


def _cgroup_room() -> Optional[int]:
    """Bytes the memory cgroup of this process (v2 or v1, and its parents) still allows; None when unlimited."""
    try:
        with open("/proc/self/cgroup") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    room = None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            root, limit_file, usage_file = "/sys/fs/cgroup", "memory.max", "memory.current"
        elif "memory" in controllers.split(","):
            root, limit_file, usage_file = "/sys/fs/cgroup/memory", "memory.limit_in_bytes", "memory.usage_in_bytes"
        else:
            continue
        parts = [p for p in path.split("/") if p]
        for depth in range(len(parts), -1, -1):
            found = _cgroup_level(os.path.join(root, *parts[:depth]), limit_file, usage_file)
            if found is not None:
                room = found if room is None else min(room, found)
    return room


def _cgroup_level(folder: str, limit_file: str, usage_file: str) -> Optional[int]:
    """limit - (usage - inactive file cache) of one cgroup folder; None when unlimited or absent."""
    try:
        with open(os.path.join(folder, limit_file)) as handle:
            limit = handle.read().strip()
        with open(os.path.join(folder, usage_file)) as handle:
            usage = int(handle.read().strip())
    except (OSError, ValueError):
        return None
    if limit == "max" or int(limit) >= 2**60:
        return None
    inactive = 0
    try:
        with open(os.path.join(folder, "memory.stat")) as handle:
            stats = dict(line.split() for line in handle if line.count(" ") == 1)
        inactive = int(stats.get("total_inactive_file", stats.get("inactive_file", 0)))
    except (OSError, ValueError):
        pass
    return max(int(limit) - (usage - inactive), 0)


def available_memory(device: torch.device) -> Optional[int]:
    """Bytes that can be allocated now on `device`: CUDA free memory plus what torch's allocator
    holds unused; CPU MemAvailable (/proc/meminfo) capped by the memory cgroup; None when unknown."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    if device.type != "cpu":
        return None
    try:
        with open("/proc/meminfo") as handle:
            info = dict(line.split(":", 1) for line in handle)
        available = int(info["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return None
    room = _cgroup_room()
    return available if room is None else min(available, room)


def format_bytes(n: float) -> str:
    """GiB with one decimal, or whole MiB below 1 GiB."""
    return f"{n / GIB:.1f} GiB" if n >= GIB else f"{max(n, 0) / MIB:.0f} MiB"


def check_fits(cfg: Any, width: int, height: int, num_frames: int, decoding_t: int, dtype: Optional[torch.dtype],
               device: torch.device, weights: Optional[int] = None, weights_loaded: bool = False,
               native_size: Optional[Tuple[int, int]] = None, available: Optional[int] = None) -> MemoryEstimate:
    """The estimate (see estimate_memory), or InputError (one line) when it exceeds `available`
    bytes (default available_memory(device); no check when unknown). `weights_loaded`: the weights
    are on the device already, so only the activations must fit. The message names what to lower
    and what each alternative needs."""
    device, plain = torch.device(device), {"model": _model_node(cfg)}
    weights = count_config_weights(plain["model"]) if weights is None else weights

    def need(w: int, h: int, t: int, dt: int) -> int:
        est = estimate_memory(plain, w, h, t, dt, dtype, device, weights)
        return est.activations if weights_loaded else est.total

    estimate = estimate_memory(plain, width, height, num_frames, decoding_t, dtype, device, weights)
    needed = estimate.activations if weights_loaded else estimate.total
    available = available_memory(device) if available is None else available
    if available is None or needed <= available:
        return estimate
    stage = max(estimate.stages, key=estimate.stages.get)
    parts = f"{stage} {format_bytes(estimate.stages[stage])}"
    what = (f"about {format_bytes(needed)} more than the loaded weights ({parts})" if weights_loaded
            else f"about {format_bytes(needed)} (weights {format_bytes(estimate.weights)}, {parts})")
    message = (f"sampling {num_frames} frames at {width}x{height} on {device.type} needs {what} "
               f"but {format_bytes(available)} is available")
    if not weights_loaded and estimate.weights > available:
        raise InputError(f"{message}; the weights alone need {format_bytes(estimate.weights)}")
    alternatives = _alternatives(need, width, height, num_frames, decoding_t, native_size, available, needed)
    raise InputError(message + ("; lower " + _join(alternatives) if alternatives else ""))


Need = Callable[[int, int, int, int], int]  # (width, height, num_frames, decoding_t) -> bytes needed


def _largest_fitting(values: List[Any], cost: Callable[[Any], int], available: int) -> Tuple[Any, int]:
    """The first of `values` (largest first) whose cost fits, else the last one, with its cost."""
    for value in values:
        c = cost(value)
        if c <= available:
            return value, c
    return values[-1], cost(values[-1])


def _image_alternative(need: Need, width: int, height: int, num_frames: int, decoding_t: int,
                       native_size: Optional[Tuple[int, int]], available: int) -> Optional[Tuple[int, str]]:
    """(bytes, text) of a smaller image: the model's native size when that is smaller, else the
    largest smaller size (aspect kept) that fits; None when there is none."""
    if native_size is not None and native_size[0] * native_size[1] < width * height:
        c = need(native_size[0], native_size[1], num_frames, decoding_t)
        native = f"{native_size[0]}x{native_size[1]}"
        return c, f"the image size (at the model's native {native}: {format_bytes(c)}, --resize_to_native)"
    sizes = _smaller_sizes(width, height)
    if not sizes:
        return None
    (w, h), c = _largest_fitting(sizes, lambda s: need(s[0], s[1], num_frames, decoding_t), available)
    return c, f"the image size ({w}x{h}: {format_bytes(c)})"


def _alternatives(need: Need, width: int, height: int, num_frames: int, decoding_t: int,
                  native_size: Optional[Tuple[int, int]], available: int, needed: int) -> List[str]:
    """What to lower, as "knob (value: bytes[, how])": for each knob the largest value that fits
    (else the least there is), only where lowering it lowers the need; only those that fit when any does."""
    found = [_image_alternative(need, width, height, num_frames, decoding_t, native_size, available)]
    if min(decoding_t, num_frames) > 1:
        dt, c = _largest_fitting(list(range(min(decoding_t, num_frames) - 1, 0, -1)),
                                 lambda d: need(width, height, num_frames, d), available)
        found.append((c, f"decoding_t ({dt}: {format_bytes(c)})"))
    if num_frames > 1:
        t, c = _largest_fitting(list(range(num_frames - 1, 0, -1)), lambda n: need(width, height, n, decoding_t), available)
        found.append((c, f"num_frames ({t}: {format_bytes(c)})"))
    useful = [(c, text) for c, text in filter(None, found) if c < needed]
    return [text for c, text in useful if c <= available] or [text for _, text in useful]


def _smaller_sizes(width: int, height: int, step: int = 64) -> List[Tuple[int, int]]:
    """Sizes below width x height with the aspect kept (sides multiples of `step`), largest first."""
    sizes, longer = [], max(width, height)
    for side in range(longer - step, step - 1, -step):
        scale = side / longer
        w, h = max(step, int(width * scale) // step * step), max(step, int(height * scale) // step * step)
        if (w, h) != (width, height) and (w, h) not in sizes:
            sizes.append((w, h))
    return sizes


def _join(items: List[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]
