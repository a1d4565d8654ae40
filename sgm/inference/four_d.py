"""SV4D / SV4D 2.0 from Python (FourDPipeline) and the 4D sampling scripts' behaviour
(scripts/sampling/simple_video_sample_4d.py for SV4D and simple_video_sample_4d2.py for SV4D 2.0):
read the input video, check everything, sample it a chunk of T frames x V views at a time with
sgm.inference.sv4d, write the outputs.

    pipe = FourDPipeline.from_config("my_sv4d2.yaml", device="cuda")   # loaded once
    out = pipe("clip.gif", seed=7, temporal_attn_scale=2.0)            # knobs for this call only
    out.views   # (N, V, 3, H, W) in [0, 1];  out.record: version, config, seed, cameras, knobs ...

FourDPipeline.sample is the one sampling path: the API's calls, the scripts (FourDPlan.run) and
4D sweeps (sgm.inference.four_d_sweep) all go through it.

`plan_four_d(...)` makes every check that needs no model (flags, knobs, cameras, config and
checkpoint files, the input video, the output folder) and raises InputError (one line) on bad
input; `FourDPlan.run()` loads the model(s), samples and writes. Nothing is written before the
first chunk is decoded, and nothing is overwritten.

Chunk loops (sgm.inference.sv4d.sample_sv4d_video and sample_sv4d2_video, upstream's scripts' loops):
- SV4D: the reference views of every chunk are views of frame 0 made by the SV3D stage (an image
  to K-view pipeline, sgm.inference.VideoPipeline); its output is put in upstream's order (input
  view first: the last frame moved to the front) and V views picked at the fixed, evenly spread
  indices round(j K / (V + 1)), j = 1..V (for K 21 and V 8 upstream's [2, 5, 7, 9, 12, 14, 16,
  19]). Then, as upstream: the anchor frames T-1, 2(T-1), ... are sampled T at a time, and every
  run of T frames between anchors is sampled densely, one step at a time, alternating forward and
  backward conditioning.
- SV4D 2.0: chunk k covers frames [k (T - 1), k (T - 1) + T): each chunk starts at the previous
  chunk's last frame, and the novel views sampled for that frame are its reference views (as
  upstream); the first chunk has zeroed reference views. A frame shared by two chunks keeps the
  views of the earlier chunk (the ones the later chunk was conditioned on).
The video is read from its first frame, n_frames frames, padded with its last frame when short.

Outputs, NNNNNN the next free number: NNNNNN_view<k>.mp4 per novel view k, NNNNNN.mp4 (the input
frame and the V views side by side), NNNNNN_frames/t<TTT>_v<K>.png, and NNNNNN.json last.
"""
import datetime
import logging
import os
import shutil
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
from omegaconf import DictConfig
from PIL import Image, ImageSequence

from ..modules.motion import SAMPLING_KNOB_NAMES, MotionKnobs
from .checks import InputError, as_float, as_int, as_number_list, as_seed, one_line, resolve_device
from .images import IMAGE_SUFFIXES, frames_to_uint8, to_rgb
from .outputs import check_output_folder, plain_json, reserve_number, write_json, write_mp4, write_pngs
from .sv4d import FOUR_D_VERSIONS, FourDRun, latent_shape, orbit_cameras, sample_sv4d2_video, sample_sv4d_video

logger = logging.getLogger(__name__)

GIF_SUFFIXES = (".gif",)
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".webm", ".mkv")
VIDEO_FPS = 10
SIDE_MULTIPLE = 64


# --------------------------------------------------------------------------------------------------
# Input video


def _frame_to_rgb(image: Image.Image) -> Image.Image:
    """RGB of a video frame; transparent pixels become white (an object on a plain background)."""
    if image.mode in ("RGBA", "LA", "P", "PA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return to_rgb(image)


def read_video_frames(input_path: Any, n_frames: int) -> Tuple[List[Image.Image], Dict[str, Any]]:
    """The first `n_frames` frames of a video file (.mp4 and other ffmpeg formats, .gif) or of a
    folder's .png/.jpg/.jpeg images (sorted by name), as RGB images, padded with the last frame;
    and facts for the record. InputError for a missing path, an unreadable file, no frames."""
    if input_path is None or isinstance(input_path, bool) or str(input_path) == "":
        raise InputError("input_path is required")
    path = str(input_path)
    frames: List[Image.Image] = []
    if os.path.isdir(path):
        names = sorted(n for n in os.listdir(path) if n.lower().endswith(IMAGE_SUFFIXES) and os.path.isfile(os.path.join(path, n)))
        if not names:
            raise InputError(f"no {'/'.join(IMAGE_SUFFIXES)} frames in folder {path}")
        for name in names[:n_frames]:
            try:
                with Image.open(os.path.join(path, name)) as opened:
                    opened.load()
                    frames.append(_frame_to_rgb(opened))
            except Exception as err:  # PIL raises many types for undecodable files
                raise InputError(f"cannot read frame {os.path.join(path, name)}: {one_line(err)}") from None
        available = len(names)
    elif os.path.isfile(path):
        suffix = os.path.splitext(path)[1].lower()
        if suffix in GIF_SUFFIXES:
            try:
                with Image.open(path) as opened:
                    for frame in ImageSequence.Iterator(opened):
                        if len(frames) < n_frames:
                            frames.append(_frame_to_rgb(frame.copy()))
                    available = getattr(opened, "n_frames", len(frames))
            except Exception as err:
                raise InputError(f"cannot read video {path}: {one_line(err)}") from None
        elif suffix in VIDEO_SUFFIXES:
            frames, available = _read_ffmpeg(path, n_frames)
        else:
            raise InputError(f"input_path must be a video ({', '.join(VIDEO_SUFFIXES + GIF_SUFFIXES)}) or a folder of "
                             f"{'/'.join(IMAGE_SUFFIXES)} frames, got {path}")
        if not frames:
            raise InputError(f"video {path} has no frames")
    elif os.path.exists(path):
        raise InputError(f"input path is neither a file nor a folder: {path}")
    else:
        raise InputError(f"input path not found: {path}")
    facts = {"path": os.path.abspath(path), "frames_available": int(available), "frames_read": len(frames),
             "original_size": list(frames[0].size), "padded_frames": max(0, n_frames - len(frames))}
    frames += [frames[-1]] * (n_frames - len(frames))
    return frames, facts


def _read_ffmpeg(path: str, n_frames: int) -> Tuple[List[Image.Image], int]:
    import imageio

    frames: List[Image.Image] = []
    try:
        reader = imageio.get_reader(path, format="FFMPEG")
        try:
            for frame in reader:
                frames.append(_frame_to_rgb(Image.fromarray(np.asarray(frame))))
                if len(frames) >= n_frames:
                    break
            try:
                available = int(reader.count_frames())
            except Exception:  # not every container knows its frame count
                available = len(frames)
        finally:
            reader.close()
    except InputError:
        raise
    except Exception as err:  # imageio / ffmpeg raise many types for broken files
        raise InputError(f"cannot read video {path}: {one_line(err)}") from None
    return frames, available


def square_frames(frames: List[Image.Image], size: int) -> torch.Tensor:
    """(N, 3, size, size) in [-1, 1]: each frame cut to its centred square, resized to `size`."""
    out = []
    for frame in frames:
        w, h = frame.size
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        square = frame.crop((left, top, left + side, top + side))
        if side != size:
            square = square.resize((size, size), Image.BICUBIC)
        out.append(torch.from_numpy(np.asarray(square, dtype=np.uint8).copy()).permute(2, 0, 1))
    return torch.stack(out).float().div(255.0).mul(2.0).sub(1.0)


# --------------------------------------------------------------------------------------------------
# Model facts from the config


def _embedders(cfg: DictConfig) -> List[DictConfig]:
    return list(((cfg.model.params.get("conditioner_config") or {}).get("params") or {}).get("emb_models") or [])


def chunk_shape(cfg: DictConfig, where: str) -> Tuple[int, int]:
    """(T, V) of a 4D config: the cond_motion / cond_view embedders' n_cond_frames, else the
    config's top-level N_TIME / N_VIEW. InputError for a config that is not a 4D model."""
    if not str(cfg.model.params.network_config.get("target", "")).endswith(".SpatialUNetModelWithTime"):
        raise InputError(f"{where} is not an SV4D model (its network is not SpatialUNetModelWithTime)")
    found = {}
    for embedder in _embedders(cfg):
        key = embedder.get("input_key")
        if key in ("cond_motion", "cond_view"):
            found[key] = (embedder.get("params") or {}).get("n_cond_frames")
    t = found.get("cond_motion") or cfg.get("N_TIME")
    v = found.get("cond_view") or cfg.get("N_VIEW")
    if "cond_view" not in found or "cond_motion" not in found or t is None or v is None:
        raise InputError(f"{where} is not an SV4D model (its conditioner lacks cond_view / cond_motion frame counts)")
    return int(t), int(v)


def four_d2_version(cfg: DictConfig) -> str:
    """sv4d2 (3D view attention) or sv4d2_8views (attention over the views), by the config."""
    return "sv4d2" if bool(cfg.model.params.network_config.params.get("use_3d_attention", False)) else "sv4d2_8views"


# --------------------------------------------------------------------------------------------------
# Checks


def check_size(value: Any) -> int:
    size = as_int("img_size", value, minimum=SIDE_MULTIPLE)
    if size % SIDE_MULTIPLE:
        raise InputError(f"img_size must be a multiple of {SIDE_MULTIPLE}, got {size}")
    return size


def camera_list(name: str, value: Any, count: int, default: List[float]) -> List[float]:
    """`count` angles in degrees: the default, one number for all, or a list of exactly `count`."""
    if value is None:
        return list(default)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [as_float(name, value)] * count
    values = as_number_list(name, value)
    if len(values) != count:
        raise InputError(f"{name} needs {count} values (one per orbit entry), got {len(values)}")
    return values


def motion_knobs(plan, knobs: Dict[str, Any]) -> MotionKnobs:
    """The knobs given as flags over the config's, validated; the SVD loop's sampling knobs and an
    auto window (which needs that loop) are refused."""
    sampling = sorted(k for k in knobs if k in SAMPLING_KNOB_NAMES)
    if sampling:
        raise InputError(f"{', '.join(sampling)} act(s) on the SVD sampling loop, not on the 4D chunk sampler")
    resolved = plan.settings(**knobs).motion_knobs
    if resolved.adaptive_window:
        raise InputError("attn_window_size auto follows the SVD loop's motion score; give a window size for the 4D scripts")
    return resolved


def even_indices(k: int, v: int) -> List[int]:
    """V of K views (index 0 the input view excluded), spread evenly: round(j K / (V + 1))."""
    return [int(j * k / (v + 1) + 0.5) for j in range(1, v + 1)]


# --------------------------------------------------------------------------------------------------
# The Python API: FourDPipeline


def four_d_version(cfg: DictConfig) -> str:
    """The 4D version a config is: SV4D 2.0 (sv4d2 or sv4d2_8views) when its UNet takes the camera
    embedding from its own embedding (use_camera_emb, as both SV4D 2.0 configs), else SV4D."""
    if bool(cfg.model.params.network_config.params.get("use_camera_emb", False)):
        return four_d2_version(cfg)
    return "sv4d"


@dataclass(frozen=True)
class FourDSettings:
    """One 4D call's settings, validated: seed, steps, decoding chunk, knobs (MotionKnobs over the
    config's; `knobs_given` as passed), the orbit in degrees and the orbit entries of the V novel
    views (`camera_views`); SV4D also `reference` (the SV3D stage's CallSettings)."""

    seed: int
    num_steps: int
    decoding_t: int
    knobs: MotionKnobs
    knobs_given: Dict[str, Any]
    elevations_deg: List[float]
    azimuths_deg: List[float]
    camera_views: List[int]
    reference: Any = None

    def as_dict(self) -> Dict[str, Any]:
        return {"seed": self.seed, "num_steps": self.num_steps, "decoding_t": self.decoding_t,
                "motion_knobs": self.knobs.as_dict(), "knobs_given": plain_json(self.knobs_given),
                "elevations_deg": self.elevations_deg, "azimuths_deg": self.azimuths_deg}


@dataclass
class FourDOutput:
    """One sampled video: `views` (N, V, 3, H, W) and `inputs` (N, 3, H, W), float in [0, 1] on the
    CPU; `record` the JSON-serialisable record of what determines them."""

    views: torch.Tensor
    inputs: torch.Tensor
    record: Dict[str, Any]


REFERENCE_OPTIONS = {"fps_id": 1, "motion_bucket_id": 300, "cond_aug": None}  # the SV4D script's SV3D-stage defaults


def load_video(video: Any, n_frames: int = 21, img_size: int = 576) -> Tuple[torch.Tensor, Dict[str, Any]]:
    """(frames (N, 3, S, S) in [-1, 1], facts for the record) of a path (read as the 4D scripts read
    it: n_frames frames cut to their centred square of side img_size) or of a tensor (N, 3, H, W)
    in [-1, 1] with sides multiples of 64, taken as it is. InputError for anything else."""
    if isinstance(video, torch.Tensor):
        if video.dim() != 4 or video.shape[1] != 3 or video.shape[0] < 1:
            raise InputError(f"a video tensor must be (N, 3, H, W), got shape {tuple(video.shape)}")
        if video.shape[-1] % SIDE_MULTIPLE or video.shape[-2] % SIDE_MULTIPLE:
            raise InputError(f"a video tensor's height and width must be multiples of {SIDE_MULTIPLE}, got {tuple(video.shape[-2:])}")
        video = video.detach().float().cpu()
        if not torch.isfinite(video).all() or video.min() < -1.0 - 1e-4 or video.max() > 1.0 + 1e-4:
            raise InputError("a video tensor's values must be finite and in [-1, 1]")
        n = int(video.shape[0])
        return video.clamp(-1.0, 1.0), {"path": None, "frames_available": n, "frames_read": n,
                                        "original_size": [int(video.shape[-1]), int(video.shape[-2])], "padded_frames": 0,
                                        "size": [int(video.shape[-1]), int(video.shape[-2])]}
    n_frames = as_int("n_frames", n_frames, minimum=1)
    size = check_size(img_size)
    frames, facts = read_video_frames(video, n_frames)
    facts["size"] = [size, size]
    return square_frames(frames, size), facts


def sv3d_reference_views(stage, frame0: torch.Tensor, settings, views: int) -> Tuple[torch.Tensor, Dict[str, Any]]:
    """SV4D's reference views: (V, 3, H, W) in [-1, 1] of frame 0 (1, 3, H, W) from the loaded SV3D
    stage `stage` (a VideoPipeline) called with `settings`, and its record. Its K views are put in
    upstream's order (input view first) and V picked at even_indices(K, V)."""
    output = stage.sample(frame0, settings)
    ordered = torch.roll(output.frames, 1, 0) * 2.0 - 1.0  # input view first, as upstream
    k = int(ordered.shape[0])
    picked = even_indices(k, views)
    record = {"config": stage.config_path, "ckpt_path": stage.ckpt_path, "version": stage.version,
              "num_frames": k, "picked_views": picked, "settings": settings.as_dict()}
    return ordered[picked].clamp(-1.0, 1.0), record


class FourDPipeline:
    """An SV4D / SV4D 2.0 model and what its calls fall back on; load once, sample many videos.

        pipe = FourDPipeline.from_config("tests/fixtures/upstream_parity/tiny_sv4d2.yaml",
                                         "tests/fixtures/upstream_parity/sv4d2_weights.safetensors", device="cpu")
        out = pipe("clip.gif", n_frames=3, img_size=64, num_steps=2, temporal_attn_scale=2.0)
        out.views  # (N, V, 3, H, W) in [0, 1]

    SV4D needs the reference views of frame 0: give `reference` (a VideoPipeline of an SV3D-like
    image-to-K-views model, loaded or planned; a planned one is loaded for each call that uses it
    and let go after, as the script does) or pass `reference_views` to the call. A call's knobs
    are in effect for that call only; every draw comes from the call's own seeded generator."""

    def __init__(self, pipe, version: str, frames: int, views: int, reference=None,
                 reference_options: Optional[Dict[str, Any]] = None, progress: bool = False):
        self.pipe = pipe  # VideoPipeline of the 4D model (planned: model None)
        self.version = version
        self.frames = frames
        self.views = views
        self.reference = reference
        self.reference_options = {**REFERENCE_OPTIONS, **(reference_options or {})}
        self.progress = bool(progress)  # bars over a call's chunks

    @classmethod
    def plan(cls, config, ckpt_path=None, device=None, reference=None, progress: bool = False,
             version: Optional[str] = None, reference_options: Optional[Dict[str, Any]] = None) -> "FourDPipeline":
        """Every check that needs no model (config, checkpoint file, the reference stage's frame
        count): a planned pipeline; load() builds it. `version` (sv4d, sv4d2, sv4d2_8views) must
        match the config's (four_d_version) when given."""
        from .pipeline import VideoPipeline

        if config is None:
            raise InputError("give a 4D model config")
        pipe = VideoPipeline.plan(None, config, ckpt_path, device, progress=progress, check_memory=False)
        t, v = chunk_shape(pipe.config, pipe.config_path or "the config")
        found = four_d_version(pipe.config)
        if version is not None and str(version) != found:
            raise InputError(f"{pipe.config_path or 'the config'} is an {found} model, not {version}")
        planned = cls(pipe, found, t, v, None, reference_options, progress)
        return planned if reference is None else planned.with_reference(reference)

    def with_reference(self, reference) -> "FourDPipeline":
        """This pipeline with `reference` (a VideoPipeline of an image-to-K-views model, loaded or
        planned) as its SV4D reference stage; InputError when it cannot serve."""
        from .pipeline import VideoPipeline

        if not isinstance(reference, VideoPipeline):
            raise InputError("reference must be a VideoPipeline of the SV3D stage (sgm.inference.VideoPipeline)")
        if not self.needs_reference:
            raise InputError(f"{self.version} makes its own reference views; a reference stage applies to SV4D only")
        if reference.defaults.num_frames < self.views + 1:
            raise InputError(f"the reference-view model makes {reference.defaults.num_frames} views; SV4D needs at least "
                             f"{self.views + 1} (the input view and {self.views} views)")
        return FourDPipeline(self.pipe, self.version, self.frames, self.views, reference, self.reference_options, self.progress)

    def load(self) -> "FourDPipeline":
        """This pipeline with its 4D model built (the reference stage kept as it is)."""
        logger.info("loading model %s (%s) on %s", self.version, self.pipe.ckpt_path or "no checkpoint", self.device)
        return FourDPipeline(self.pipe.load(), self.version, self.frames, self.views, self.reference, self.reference_options,
                             self.progress)

    @classmethod
    def from_config(cls, config, ckpt_path=None, device=None, reference=None, progress: bool = False,
                    version: Optional[str] = None, reference_options: Optional[Dict[str, Any]] = None) -> "FourDPipeline":
        """A 4D model config (YAML path, DictConfig or dict) and its checkpoint (or `ckpt_path`),
        built on `device`; the version (sv4d, sv4d2 or sv4d2_8views) is read from the config."""
        return cls.plan(config, ckpt_path, device, reference, progress, version, reference_options).load()

    @property
    def model(self):
        return self.pipe.model

    @property
    def device(self) -> torch.device:
        return self.pipe.device

    @property
    def config_path(self) -> Optional[str]:
        return self.pipe.config_path

    @property
    def ckpt_path(self) -> Optional[str]:
        return self.pipe.ckpt_path

    @property
    def needs_reference(self) -> bool:
        return self.version == "sv4d"

    def settings(self, num_steps=None, decoding_t=4, seed=23, elevations_deg=None, azimuths_deg=None, **knobs) -> FourDSettings:
        """A call's settings, validated (InputError names the first bad one); see __call__."""
        spec = FOUR_D_VERSIONS[self.version]
        num_steps = as_int("num_steps", spec.num_steps if num_steps is None else num_steps, minimum=1)
        decoding_t = as_int("decoding_t", decoding_t, minimum=1)
        seed = as_seed(seed)
        resolved = motion_knobs(self.pipe, knobs)
        v = self.views
        if self.needs_reference:
            entries, camera_views = v, list(range(v))
            k = self.reference.defaults.num_frames if self.reference is not None else v + 1
            default_azimuths = [float(360.0 * i / k) for i in even_indices(k, v)]
        else:
            entries, camera_views = v + 1, list(range(1, v + 1))
            default_azimuths = [float(360.0 * i / entries) for i in range(entries)]
        elevations = camera_list("elevations_deg", elevations_deg, entries, [0.0] * entries)
        azimuths = camera_list("azimuths_deg", azimuths_deg, entries, default_azimuths)
        reference = None
        if self.needs_reference and self.reference is not None:
            ref_kwargs = dict(num_steps=num_steps, seed=seed, decoding_t=decoding_t,
                              fps_id=as_int("fps_id", self.reference_options["fps_id"], minimum=0),
                              motion_bucket_id=as_int("motion_bucket_id", self.reference_options["motion_bucket_id"], minimum=0),
                              cond_aug=self.reference_options["cond_aug"])
            if self.reference.defaults.camera:
                ref_kwargs["elevations_deg"] = float(np.mean(elevations))
            reference = self.reference.settings(**ref_kwargs)
        return FourDSettings(seed, num_steps, decoding_t, resolved, dict(knobs), elevations, azimuths, camera_views, reference)

    def reference_views(self, video: torch.Tensor, settings: FourDSettings, stage=None) -> Tuple[torch.Tensor, Dict[str, Any]]:
        """SV4D: the V reference views (V, 3, H, W) in [-1, 1] of frame 0 of `video` and their record,
        made by `stage` (a loaded SV3D-stage VideoPipeline) or this pipeline's reference stage
        (loaded for this call when planned)."""
        if not self.needs_reference:
            raise InputError(f"{self.version} makes its own reference views")
        if settings.reference is None:
            raise InputError("SV4D needs the reference views of frame 0: give the pipeline a reference stage "
                             "(FourDPipeline.from_config(..., reference=VideoPipeline...)) or pass reference_views (V, 3, H, W)")
        if stage is None:
            stage = self.reference
            if stage.model is None:
                logger.info("loading the reference-view model (%s) on %s", stage.config_path, stage.device)
                stage = stage.load()
        return sv3d_reference_views(stage, video[:1], settings.reference, self.views)

    def _check_reference_views(self, views: Any, video: torch.Tensor) -> torch.Tensor:
        if not self.needs_reference:
            raise InputError(f"reference_views apply to SV4D; {self.version} makes its own")
        shape = (self.views, 3, *video.shape[-2:])
        if not isinstance(views, torch.Tensor) or tuple(views.shape) != shape:
            got = tuple(views.shape) if isinstance(views, torch.Tensor) else type(views).__name__
            raise InputError(f"reference_views must be a tensor {shape} in [-1, 1] (V views of frame 0), got {got}")
        views = views.detach().float().cpu()
        if not torch.isfinite(views).all() or views.min() < -1.0 - 1e-4 or views.max() > 1.0 + 1e-4:
            raise InputError("reference_views must be finite and in [-1, 1]")
        return views.clamp(-1.0, 1.0)

    def __call__(self, video, seed=23, num_steps=None, decoding_t=4, elevations_deg=None, azimuths_deg=None,
                 reference_views=None, n_frames=21, img_size=576, **knobs) -> FourDOutput:
        """Novel views of every frame of `video`: a path (a video file, GIF or folder of frames, its
        first `n_frames` frames cut to squares of side `img_size`, as the scripts read it) or a
        tensor (N, 3, H, W) in [-1, 1]. num_steps defaults to the version's (SV4D 20, SV4D 2.0 50).
        elevations_deg / azimuths_deg: the orbit as the scripts take it. `knobs`: any motion knob
        (sgm.modules.motion.KNOB_NAMES), validated, in effect for this call only. SV4D:
        `reference_views` (V, 3, H, W) in [-1, 1], else the reference stage makes them."""
        if self.model is None:
            raise RuntimeError("this pipeline is planned, not loaded: call load() first")
        call = self.settings(num_steps, decoding_t, seed, elevations_deg, azimuths_deg, **knobs)
        frames, facts = load_video(video, n_frames, img_size)
        reference, record = None, None
        if reference_views is not None:
            reference, record = self._check_reference_views(reference_views, frames), {"given": True}
        elif self.needs_reference:
            reference, record = self.reference_views(frames, call)
        return self.sample(frames, call, reference, record, facts, progress=self.progress)

    def _precision(self):
        return torch.autocast("cuda") if self.device.type == "cuda" else nullcontext()

    def sample(self, video: torch.Tensor, settings: FourDSettings, reference_views: Optional[torch.Tensor] = None,
               reference_record: Optional[Dict[str, Any]] = None, facts: Optional[Dict[str, Any]] = None,
               progress: bool = False) -> FourDOutput:
        """Sample `video` (N, 3, H, W) in [-1, 1] with validated `settings` (and, SV4D, its reference
        views): the one sampling path of the API, the scripts and the sweep."""
        if self.model is None:
            raise RuntimeError("this pipeline is planned, not loaded: call load() first")
        if self.needs_reference and reference_views is None:
            raise InputError("SV4D needs the reference views of frame 0 (reference_views or a reference stage)")
        device, model = self.device, self.model
        spec = FOUR_D_VERSIONS[self.version]
        polar, azimuth = orbit_cameras(settings.elevations_deg, settings.azimuths_deg, self.frames, settings.camera_views,
                                       spec.input_view_first)
        run = FourDRun(model, self.version, self.frames, self.views, video.to(device), polar.to(device), azimuth.to(device),
                       settings.num_steps, settings.decoding_t, torch.Generator(device).manual_seed(settings.seed),
                       settings.knobs, None if reference_views is None else reference_views.to(device), verbose=progress)
        latent = latent_shape(model, video[:1].to(device))
        loop = sample_sv4d_video if self.needs_reference else sample_sv4d2_video
        with torch.no_grad(), self._precision():
            novel = ((loop(run, latent) + 1.0) / 2.0).float().cpu()  # (n, V, 3, H, W) in [0, 1]
        inputs = (video.float().cpu() + 1.0) / 2.0
        return FourDOutput(novel, inputs, self.record(settings, tuple(novel.shape), reference_record, facts))

    def record(self, settings: FourDSettings, shape, reference_record, facts) -> Dict[str, Any]:
        spec = FOUR_D_VERSIONS[self.version]
        polar, azimuth = orbit_cameras(settings.elevations_deg, settings.azimuths_deg, 1, settings.camera_views,
                                       spec.input_view_first)
        return {
            "version": self.version,
            "config": self.config_path,
            "ckpt_path": self.ckpt_path,
            "device": str(self.device),
            "frames_per_chunk": self.frames,
            "views": self.views,
            "n_frames": int(shape[0]),
            "output_shape": list(shape),
            "seed": settings.seed,
            "num_steps": settings.num_steps,
            "decoding_t": settings.decoding_t,
            "sampler": {"guider": spec.guider, "min_cfg": spec.min_cfg, "max_cfg": spec.max_cfg},
            "cameras": {"elevations_deg": settings.elevations_deg, "azimuths_deg": settings.azimuths_deg,
                        "camera_views": settings.camera_views, "relative_to_first": spec.input_view_first,
                        "polar_rad": [float(p) for p in polar], "azimuth_rad": [float(a) for a in azimuth]},
            "motion_knobs": settings.knobs.as_dict(),
            "knobs_given": plain_json(settings.knobs_given),
            "reference_stage": reference_record,
            "input": facts,
        }


# --------------------------------------------------------------------------------------------------
# Output arrays


def views_uint8(output: FourDOutput) -> np.ndarray:
    """The novel views as uint8 (N, V, H, W, 3) (scaled by 255 and truncated, as upstream)."""
    n, v = output.views.shape[:2]
    return frames_to_uint8(output.views.flatten(0, 1)).reshape(n, v, *output.views.shape[-2:], 3)


def grid_frames(output: FourDOutput, per_view: Optional[np.ndarray] = None) -> np.ndarray:
    """uint8 (N, H, (1 + V) W, 3): each input frame and its V views side by side (the grid video)."""
    per_view = views_uint8(output) if per_view is None else per_view
    grid = np.concatenate([frames_to_uint8(output.inputs)[:, None], per_view], axis=1)  # (n, 1 + V, H, W, 3)
    return np.concatenate(list(grid.transpose(1, 0, 2, 3, 4)), axis=2)


# --------------------------------------------------------------------------------------------------
# The scripts' plan and run


@dataclass
class FourDPlan:
    """A checked 4D script run; run() loads, samples (FourDPipeline.sample) and writes."""

    script: str
    pipeline: FourDPipeline  # planned
    call: FourDSettings
    video: torch.Tensor  # (n_frames, 3, S, S) in [-1, 1]
    video_facts: Dict[str, Any]
    output_folder: str
    settings: Dict[str, Any]  # every flag as resolved, for the record and the command
    command: str

    @property
    def version(self) -> str:
        return self.pipeline.version

    @property
    def n_frames(self) -> int:
        return int(self.video.shape[0])

    def run(self) -> Dict[str, Any]:
        reference, reference_record = None, None
        if self.pipeline.needs_reference:
            reference, reference_record = self.pipeline.reference_views(self.video, self.call)
        output = self.pipeline.load().sample(self.video, self.call, reference, reference_record, self.video_facts,
                                             progress=True)
        return self.write(output)

    def write(self, output: FourDOutput) -> Dict[str, Any]:
        os.makedirs(self.output_folder, exist_ok=True)
        v = output.views.shape[1]
        number, json_path = reserve_number(self.output_folder, lambda stem: {"status": "writing"})
        stem = f"{number:06d}"
        base = os.path.join(self.output_folder, stem)
        per_view = views_uint8(output)
        grid = grid_frames(output, per_view)
        files = {"grid": stem + ".mp4", "view_videos": [f"{stem}_view{k}.mp4" for k in range(v)], "frames": stem + "_frames"}
        written: List[str] = []
        try:
            for k in range(v):
                path = os.path.join(self.output_folder, files["view_videos"][k])
                write_mp4(per_view[:, k], path, VIDEO_FPS)
                written.append(path)
            write_mp4(grid, base + ".mp4", VIDEO_FPS)
            written.append(base + ".mp4")
            write_view_pngs(per_view, base + "_frames")
            written.append(base + "_frames")
            record = {**files, "video_fps": VIDEO_FPS, "script": self.script, **output.record, "settings": self.settings,
                      "command": self.command,
                      "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
            write_json(record, json_path, overwrite=True)
        except BaseException:
            for path in written:
                shutil.rmtree(path) if os.path.isdir(path) else os.unlink(path)
            os.unlink(json_path)
            raise
        return record


def write_view_pngs(frames: np.ndarray, folder: str) -> None:
    """Folder `folder` of t<TTT>_v<K>.png for uint8 frames (n, V, H, W, 3), created whole or not at all."""
    write_pngs(((f"t{t:03d}_v{k}.png", frame) for t, row in enumerate(frames) for k, frame in enumerate(row)), folder)


def plan_reference(flags: Dict[str, Any], device, progress: bool = False):
    """SV4D's planned SV3D stage from the flags sv3d_version, sv3d_config, sv3d_ckpt_path."""
    from .pipeline import VideoPipeline

    sv3d_version = str(flags["sv3d_version"])
    if sv3d_version not in ("sv3d_u", "sv3d_p"):
        raise InputError(f"sv3d_version must be sv3d_u or sv3d_p, got {sv3d_version!r}")
    ref_version = sv3d_version if flags["sv3d_config"] is None else None
    return VideoPipeline.plan(ref_version, flags["sv3d_config"], flags["sv3d_ckpt_path"], device, progress=progress,
                              check_memory=False)


def plan_four_d(script: str, flags: Dict[str, Any], knobs: Dict[str, Any], command_for) -> FourDPlan:
    """Check a 4D run (flags already parsed by sgm.inference.cli.parse_value; `knobs` the knob
    flags given). `script` is "4d" (SV4D) or "4d2" (SV4D 2.0); `command_for(resolved)` returns the
    command line that reproduces the run from the resolved flags."""
    if flags.get("remove_bg"):
        raise InputError("remove_bg: background removal is out of scope for sgm-motion; give frames with a plain background")
    if flags.get("image_frame_ratio") is not None:
        raise InputError("image_frame_ratio belongs to background removal and re-framing, which sgm-motion leaves out; "
                         "frame the object in the video yourself")
    as_int("num_steps", flags["num_steps"], minimum=1)
    size = check_size(flags["img_size"])
    n_frames = as_int("n_frames", flags["n_frames"], minimum=1)
    as_seed(flags["seed"])
    as_int("decoding_t", flags["decoding_t"], minimum=1)
    encoding_t = as_int("encoding_t", flags["encoding_t"], minimum=1)
    device = resolve_device(flags["device"])
    verbose = bool(flags.get("verbose"))
    sv4d = script == "4d"

    config = flags["config"]
    if config is None:
        from .loading import resolve_config_path

        config = resolve_config_path("sv4d" if sv4d else "sv4d2")
    pipeline = FourDPipeline.plan(config, flags["ckpt_path"], device, progress=verbose)
    found = pipeline.version
    if sv4d != (found == "sv4d"):
        other = "simple_video_sample_4d.py" if found == "sv4d" else "simple_video_sample_4d2.py"
        raise InputError(f"{pipeline.config_path or 'the config'} is an {found} model: sample it with {other}")
    if sv4d:
        pipeline.reference_options = {"fps_id": flags["fps_id"], "motion_bucket_id": flags["motion_bucket_id"],
                                      "cond_aug": flags["cond_aug"]}
        pipeline = pipeline.with_reference(plan_reference(flags, device, verbose))
    call = pipeline.settings(flags["num_steps"], flags["decoding_t"], flags["seed"], flags["elevations_deg"],
                             flags["azimuths_deg"], **knobs)
    video, facts = load_video(flags["input_path"], n_frames, size)
    folder = str(flags["output_folder"] or os.path.join("outputs", f"simple_video_sample_{script}", found))
    check_output_folder(folder)

    resolved = {**flags, "num_steps": call.num_steps, "img_size": size, "n_frames": n_frames, "seed": call.seed,
                "decoding_t": call.decoding_t, "encoding_t": encoding_t, "device": str(device), "output_folder": folder,
                "elevations_deg": call.elevations_deg, "azimuths_deg": call.azimuths_deg}
    settings = {k: val for k, val in resolved.items() if k not in knobs}
    return FourDPlan(script=script, pipeline=pipeline, call=call, video=video, video_facts=facts,
                     output_folder=folder, settings=settings, command=command_for({**resolved, **knobs}))
