"""The settings of one sampling call, validated before anything expensive runs.

ModelDefaults is what a call falls back on (the version table and the config's knobs; no model
needed), and ModelDefaults.settings(...) turns a call's keyword arguments into a CallSettings or
raises InputError. Setting names are the YAML keys (sgm.modules.motion.ALL_KNOB_NAMES) plus the
call parameters and the SV3D camera path.
"""
import logging
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from omegaconf import DictConfig, ListConfig, OmegaConf

from ..modules.motion import ALL_KNOB_NAMES, KNOB_NAMES, SAMPLING_KNOB_NAMES, MotionKnobs, SamplingKnobs, bucket_motion_score
from .checks import InputError, as_float, as_int, as_seed
from .versions import COND_AUG, SV3D_COND_AUG, VERSION_DEFAULTS, is_sv3d, sv3d_angles

logger = logging.getLogger(__name__)

CALL_PARAMS = ("num_frames", "num_steps", "fps_id", "motion_bucket_id", "cond_aug", "seed", "decoding_t")
CAMERA_PARAMS = ("elevations_deg", "azimuths_deg")
SETTING_NAMES = CALL_PARAMS + ALL_KNOB_NAMES + CAMERA_PARAMS


@dataclass(frozen=True)
class CallSettings:
    """Everything one call samples with (besides the image and the model)."""

    num_frames: int
    num_steps: int
    fps_id: int
    motion_bucket_id: int
    cond_aug: float
    seed: int
    decoding_t: int
    motion_knobs: MotionKnobs
    sampling_knobs: SamplingKnobs
    sv3d_angles: Optional[Dict[str, List[float]]] = None

    @property
    def first_window(self) -> Optional[tuple]:
        """(w, r) of the network's window at step 0 (an auto window sized by the bucket), or None."""
        knobs = self.motion_knobs.resolved(bucket_motion_score(self.motion_bucket_id))
        return None if knobs.attn_window_size is None else (knobs.attn_window_size, knobs.window_stride)

    def as_dict(self) -> Dict[str, Any]:
        out = {name: getattr(self, name) for name in CALL_PARAMS}
        return {**out, "motion_knobs": self.motion_knobs.as_dict(), "sampling_knobs": self.sampling_knobs.as_dict(),
                "sv3d_angles": self.sv3d_angles}


def _plain(value: Any) -> Any:
    return OmegaConf.to_container(value) if isinstance(value, (DictConfig, ListConfig)) else value


def _knob_values(section: DictConfig, names) -> Dict[str, Any]:
    params = section.get("params") or {}
    return {name: _plain(params[name]) for name in names if name in params}


def _has_view_attention(cfg: DictConfig) -> bool:
    """Whether the config's network attends over views (SV4D's SpatialUNetModelWithTime)."""
    return str(cfg.model.params.network_config.get("target", "")).endswith(".SpatialUNetModelWithTime")


def _reads_camera(cfg: DictConfig) -> bool:
    """Whether the config's conditioner reads SV3D's camera (polars_rad)."""
    embedders = ((cfg.model.params.get("conditioner_config") or {}).get("params") or {}).get("emb_models") or []
    return any(e.get("input_key") == "polars_rad" for e in embedders)


@dataclass(frozen=True)
class ModelDefaults:
    """What a call falls back on: frame and step counts, cond_aug, the config's knobs."""

    version: Optional[str]
    num_frames: int
    num_steps: int
    cond_aug: float
    motion_knobs: Dict[str, Any]
    sampling_knobs: Dict[str, Any]
    camera: bool
    views: bool = False

    @classmethod
    def of_config(cls, cfg: DictConfig, version: Optional[str] = None, where: str = "the config") -> "ModelDefaults":
        params = cfg.model.params
        sampler = params.sampler_config.get("params") or {}
        guider = (sampler.get("guider_config") or {}).get("params") or {}
        frames, steps = VERSION_DEFAULTS.get(version, (guider.get("num_frames", 14), sampler.get("num_steps") or 25))
        unknown = sorted(k for k in SAMPLING_KNOB_NAMES if k in (params.network_config.get("params") or {}))
        if unknown:
            raise InputError(f"{where}: {', '.join(unknown)} belong(s) under model.params.sampler_config.params now (docs/PATCHES.md)")
        defaults = cls(
            version, int(frames), int(steps), SV3D_COND_AUG if is_sv3d(version) else COND_AUG,
            _knob_values(params.network_config, KNOB_NAMES), _knob_values(params.sampler_config, SAMPLING_KNOB_NAMES),
            _reads_camera(cfg), _has_view_attention(cfg),
        )
        try:
            MotionKnobs(**defaults.motion_knobs)
            SamplingKnobs(**defaults.sampling_knobs)
        except (TypeError, ValueError) as err:
            raise InputError(f"{err} (in {where})") from None
        return defaults

    def settings(
        self,
        num_frames: Optional[int] = None,
        num_steps: Optional[int] = None,
        fps_id: int = 6,
        motion_bucket_id: int = 127,
        cond_aug: Optional[float] = None,
        seed: int = 23,
        decoding_t: int = 14,
        **knobs: Any,
    ) -> CallSettings:
        """The call's settings, validated (InputError names the first bad one)."""
        unknown = sorted(set(knobs) - set(ALL_KNOB_NAMES + CAMERA_PARAMS))
        if unknown:
            raise InputError(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(SETTING_NAMES)}")
        num_frames = as_int("num_frames", self.num_frames if num_frames is None else num_frames, minimum=1)
        camera = {k: knobs.pop(k) for k in CAMERA_PARAMS if k in knobs}
        if camera and not self.camera:
            raise InputError(f"{', '.join(camera)} only apply to models conditioned on the camera (sv3d_p)")
        try:
            motion = MotionKnobs(**{**self.motion_knobs, **{k: v for k, v in knobs.items() if k in KNOB_NAMES}})
            sampling = SamplingKnobs(**{**self.sampling_knobs, **{k: v for k, v in knobs.items() if k in SAMPLING_KNOB_NAMES}})
        except (TypeError, ValueError) as err:
            raise InputError(str(err)) from None
        if motion.view_attn_scale != 1.0 and not self.views:
            raise InputError("view_attn_scale acts on SV4D's attention over views; this model has none")
        out = CallSettings(
            num_frames=num_frames,
            num_steps=as_int("num_steps", self.num_steps if num_steps is None else num_steps, minimum=1),
            fps_id=as_int("fps_id", fps_id, minimum=0),
            motion_bucket_id=as_int("motion_bucket_id", motion_bucket_id, minimum=0),
            cond_aug=as_float("cond_aug", self.cond_aug if cond_aug is None else cond_aug, minimum=0.0),
            seed=as_seed(seed),
            decoding_t=as_int("decoding_t", decoding_t, minimum=1),
            motion_knobs=motion,
            sampling_knobs=sampling,
            sv3d_angles=sv3d_angles(num_frames, **camera) if self.camera else None,
        )
        if sampling.shuffle_windowed_noise and out.first_window is None:
            raise InputError("shuffle_windowed_noise needs attn_window_size (setting or config)")
        if out.motion_bucket_id > 255:
            logger.warning("motion_bucket_id %d is above 255, outside what the models were trained on", out.motion_bucket_id)
        if not is_sv3d(self.version) and not 5 <= out.fps_id <= 30:
            logger.warning("fps_id %d is outside the 5..30 the SVD models were trained on", out.fps_id)
        return out
