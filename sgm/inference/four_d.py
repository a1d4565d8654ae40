"""The 4D sampling scripts' behaviour (scripts/sampling/simple_video_sample_4d.py for SV4D and
simple_video_sample_4d2.py for SV4D 2.0): read the input video, check everything, sample it a
chunk of T frames x V views at a time with sgm.inference.sv4d, write the outputs.

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
import tempfile
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Dict, List, Tuple

import numpy as np
import torch
from omegaconf import DictConfig
from PIL import Image, ImageSequence

from ..modules.motion import SAMPLING_KNOB_NAMES, MotionKnobs
from .checks import InputError, as_float, as_int, as_number_list, as_seed, one_line, resolve_device
from .images import IMAGE_SUFFIXES, to_rgb
from .outputs import check_output_folder, reserve_number, write_json, write_mp4
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


def _frames_uint8(images: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) in [0, 1] -> (N, H, W, 3) uint8 (scaled by 255 and truncated, as upstream)."""
    return (images.permute(0, 2, 3, 1).float() * 255).cpu().numpy().astype(np.uint8)


# --------------------------------------------------------------------------------------------------
# The plan and the run


@dataclass
class FourDPlan:
    """A checked 4D run; run() loads, samples and writes."""

    script: str
    version: str
    pipe: Any  # planned VideoPipeline of the 4D model
    frames: int  # T per chunk
    views: int  # V novel views
    video: torch.Tensor  # (n_frames, 3, S, S) in [-1, 1]
    video_facts: Dict[str, Any]
    knobs: MotionKnobs
    knobs_given: Dict[str, Any]
    num_steps: int
    seed: int
    decoding_t: int
    encoding_t: int
    elevations_deg: List[float]
    azimuths_deg: List[float]
    camera_views: List[int]
    output_folder: str
    settings: Dict[str, Any]  # every flag as resolved, for the record and the command
    command: str
    verbose: bool = False
    reference: Any = None  # SV4D: (planned VideoPipeline, CallSettings) of the SV3D stage
    extra: Dict[str, Any] = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        return int(self.video.shape[0])

    def _precision(self, device: torch.device):
        return torch.autocast("cuda") if device.type == "cuda" else nullcontext()

    def reference_views(self, device: torch.device) -> Tuple[torch.Tensor, Dict[str, Any]]:
        """SV4D: the V reference views of frame 0 (V, 3, H, W) in [-1, 1] from the SV3D stage."""
        planned, settings = self.reference
        logger.info("loading the reference-view model (%s) on %s", planned.config_path, device)
        stage = planned.load()
        output = stage.sample(self.video[:1], settings)
        del stage
        views = torch.roll(output.frames, 1, 0) * 2.0 - 1.0  # input view first, as upstream
        k = int(views.shape[0])
        picked = even_indices(k, self.views)
        record = {"config": planned.config_path, "ckpt_path": planned.ckpt_path, "version": planned.version,
                  "num_frames": k, "picked_views": picked, "settings": settings.as_dict()}
        return views[picked].clamp(-1.0, 1.0), record

    def run(self) -> Dict[str, Any]:
        device = self.pipe.device
        reference_record = None
        reference = None
        if self.reference is not None:
            reference, reference_record = self.reference_views(device)
        logger.info("loading model %s (%s) on %s", self.version, self.pipe.ckpt_path or "no checkpoint", device)
        model = self.pipe.load().model
        spec = FOUR_D_VERSIONS[self.version]
        polar, azimuth = orbit_cameras(self.elevations_deg, self.azimuths_deg, self.frames, self.camera_views,
                                       spec.input_view_first)
        run = FourDRun(model, self.version, self.frames, self.views, self.video.to(device), polar.to(device),
                       azimuth.to(device), self.num_steps, self.decoding_t, torch.Generator(device).manual_seed(self.seed),
                       self.knobs, None if reference is None else reference.to(device), verbose=True)
        latent = latent_shape(model, self.video[:1].to(device))
        loop = sample_sv4d_video if reference is not None else sample_sv4d2_video
        with torch.no_grad(), self._precision(device):
            novel = (loop(run, latent) + 1.0) / 2.0  # (n, V, 3, H, W) in [0, 1]
        inputs = (self.video + 1.0) / 2.0
        return self.write(novel, inputs, reference_record)

    def write(self, novel: torch.Tensor, inputs: torch.Tensor, reference_record) -> Dict[str, Any]:
        os.makedirs(self.output_folder, exist_ok=True)
        n, v = novel.shape[:2]
        number, json_path = reserve_number(self.output_folder, lambda stem: {"status": "writing"})
        stem = f"{number:06d}"
        base = os.path.join(self.output_folder, stem)
        per_view = _frames_uint8(novel.flatten(0, 1)).reshape(n, v, *novel.shape[-2:], 3)
        grid = np.concatenate([_frames_uint8(inputs)[:, None], per_view], axis=1)  # (n, 1 + V, H, W, 3)
        grid = np.concatenate(list(grid.transpose(1, 0, 2, 3, 4)), axis=2)  # tiles side by side
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
            record = self.record(files, reference_record, (n, v, *novel.shape[-2:]))
            write_json(record, json_path, overwrite=True)
        except BaseException:
            for path in written:
                shutil.rmtree(path) if os.path.isdir(path) else os.unlink(path)
            os.unlink(json_path)
            raise
        return record

    def record(self, files, reference_record, shape) -> Dict[str, Any]:
        spec = FOUR_D_VERSIONS[self.version]
        polar, azimuth = orbit_cameras(self.elevations_deg, self.azimuths_deg, 1, self.camera_views, spec.input_view_first)
        return {
            **files,
            "video_fps": VIDEO_FPS,
            "script": self.script,
            "version": self.version,
            "config": self.pipe.config_path,
            "ckpt_path": self.pipe.ckpt_path,
            "device": str(self.pipe.device),
            "frames_per_chunk": self.frames,
            "views": self.views,
            "n_frames": self.n_frames,
            "output_shape": list(shape),
            "seed": self.seed,
            "num_steps": self.num_steps,
            "sampler": {"guider": spec.guider, "min_cfg": spec.min_cfg, "max_cfg": spec.max_cfg},
            "cameras": {"elevations_deg": self.elevations_deg, "azimuths_deg": self.azimuths_deg,
                        "camera_views": self.camera_views, "relative_to_first": spec.input_view_first,
                        "polar_rad": [float(p) for p in polar], "azimuth_rad": [float(a) for a in azimuth]},
            "motion_knobs": self.knobs.as_dict(),
            "knobs_given": self.knobs_given,
            "settings": self.settings,
            "input": self.video_facts,
            "reference_stage": reference_record,
            **self.extra,
            "command": self.command,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }


def write_view_pngs(frames: np.ndarray, folder: str) -> None:
    """Folder `folder` of t<TTT>_v<K>.png for uint8 frames (n, V, H, W, 3), created whole or not at all."""
    tmp = tempfile.mkdtemp(prefix=".partial-", dir=os.path.dirname(folder) or ".")
    try:
        for t, row in enumerate(frames):
            for k, frame in enumerate(row):
                Image.fromarray(frame).save(os.path.join(tmp, f"t{t:03d}_v{k}.png"), format="PNG")
        os.rename(tmp, folder)  # fails if `folder` exists and is not empty
    except OSError:
        if os.path.lexists(folder):
            raise OSError(f"refusing to overwrite {folder}") from None
        raise
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp)


def plan_four_d(script: str, flags: Dict[str, Any], knobs: Dict[str, Any], command_for) -> FourDPlan:
    """Check a 4D run (flags already parsed by sgm.inference.cli.parse_value; `knobs` the knob
    flags given). `script` is "4d" (SV4D) or "4d2" (SV4D 2.0); `command_for(resolved)` returns the
    command line that reproduces the run from the resolved flags."""
    from .pipeline import VideoPipeline

    if flags.get("remove_bg"):
        raise InputError("remove_bg: background removal is out of scope for sgm-motion; give frames with a plain background")
    if flags.get("image_frame_ratio") is not None:
        raise InputError("image_frame_ratio belongs to background removal and re-framing, which sgm-motion leaves out; "
                         "frame the object in the video yourself")
    num_steps = as_int("num_steps", flags["num_steps"], minimum=1)
    size = check_size(flags["img_size"])
    n_frames = as_int("n_frames", flags["n_frames"], minimum=1)
    seed = as_seed(flags["seed"])
    decoding_t = as_int("decoding_t", flags["decoding_t"], minimum=1)
    encoding_t = as_int("encoding_t", flags["encoding_t"], minimum=1)
    device = resolve_device(flags["device"])
    verbose = bool(flags.get("verbose"))
    sv4d = script == "4d"

    default_config = "sv4d" if sv4d else "sv4d2"
    config = flags["config"]
    if config is None:
        from .loading import resolve_config_path

        config = resolve_config_path(default_config)
    pipe = VideoPipeline.plan(None, config, flags["ckpt_path"], device, progress=verbose, check_memory=False)
    t, v = chunk_shape(pipe.config, pipe.config_path or "the config")
    version = "sv4d" if sv4d else four_d2_version(pipe.config)
    resolved_knobs = motion_knobs(pipe, knobs)

    if sv4d:
        entries, camera_views = v, list(range(v))
    else:
        entries, camera_views = v + 1, list(range(1, v + 1))
    reference = None
    if sv4d:
        sv3d_version = str(flags["sv3d_version"])
        if sv3d_version not in ("sv3d_u", "sv3d_p"):
            raise InputError(f"sv3d_version must be sv3d_u or sv3d_p, got {sv3d_version!r}")
        ref_version = sv3d_version if flags["sv3d_config"] is None else None
        ref = VideoPipeline.plan(ref_version, flags["sv3d_config"], flags["sv3d_ckpt_path"], device, progress=verbose,
                                 check_memory=False)
        k = ref.defaults.num_frames
        if k < v + 1:
            raise InputError(f"the reference-view model makes {k} views; SV4D needs at least {v + 1} (the input view and {v} views)")
        picked = even_indices(k, v)
        default_azimuths = [float(360.0 * i / k) for i in picked]
        elevations = camera_list("elevations_deg", flags["elevations_deg"], entries, [0.0] * entries)
        azimuths = camera_list("azimuths_deg", flags["azimuths_deg"], entries, default_azimuths)
        ref_kwargs = dict(num_steps=num_steps, fps_id=as_int("fps_id", flags["fps_id"], minimum=0),
                          motion_bucket_id=as_int("motion_bucket_id", flags["motion_bucket_id"], minimum=0),
                          cond_aug=flags["cond_aug"], seed=seed, decoding_t=decoding_t)
        if ref.defaults.camera:
            ref_kwargs["elevations_deg"] = float(np.mean(elevations))
        reference = (ref, ref.settings(**ref_kwargs))
    else:
        default_azimuths = [float(360.0 * i / entries) for i in range(entries)]
        elevations = camera_list("elevations_deg", flags["elevations_deg"], entries, [0.0] * entries)
        azimuths = camera_list("azimuths_deg", flags["azimuths_deg"], entries, default_azimuths)

    frames, facts = read_video_frames(flags["input_path"], n_frames)
    video = square_frames(frames, size)
    facts["size"] = [size, size]
    folder = str(flags["output_folder"] or os.path.join("outputs", f"simple_video_sample_{script}", version))
    check_output_folder(folder)

    resolved = {**flags, "num_steps": num_steps, "img_size": size, "n_frames": n_frames, "seed": seed,
                "decoding_t": decoding_t, "encoding_t": encoding_t, "device": str(device), "output_folder": folder,
                "elevations_deg": elevations, "azimuths_deg": azimuths}
    settings = {k: val for k, val in resolved.items() if k not in knobs}
    return FourDPlan(script=script, version=version, pipe=pipe, frames=t, views=v, video=video, video_facts=facts,
                     knobs=resolved_knobs, knobs_given=dict(knobs), num_steps=num_steps, seed=seed, decoding_t=decoding_t,
                     encoding_t=encoding_t, elevations_deg=elevations, azimuths_deg=azimuths, camera_views=camera_views,
                     output_folder=folder, settings=settings, command=command_for({**resolved, **knobs}), verbose=verbose,
                     reference=reference)
