"""The released model versions: default frame and step counts, SV3D specifics and camera paths."""
from typing import Any, Dict, List, Tuple

import numpy as np

from .checks import InputError, as_float, as_number_list

# version -> (default num_frames, default num_steps)
VERSION_DEFAULTS: Dict[str, Tuple[int, int]] = {
    "svd": (14, 25),
    "svd_xt": (25, 30),
    "svd_xt_1_1": (25, 30),
    "svd_image_decoder": (14, 25),
    "svd_xt_image_decoder": (25, 30),
    "sv3d_u": (21, 50),
    "sv3d_p": (21, 50),
    "toy_svd": (8, 16),  # the small model trained here on synthetic clips; ships with the package
}
# version -> (width, height) in pixels the model was trained at
NATIVE_SIZE: Dict[str, Tuple[int, int]] = {
    **{v: (1024, 576) for v in ("svd", "svd_xt", "svd_xt_1_1", "svd_image_decoder", "svd_xt_image_decoder")},
    "sv3d_u": (576, 576),
    "sv3d_p": (576, 576),
    "toy_svd": (64, 64),
}
# version -> the Hugging Face model that publishes its weights (never downloaded here)
RELEASED_WEIGHTS: Dict[str, str] = {
    "svd": "stabilityai/stable-video-diffusion-img2vid",
    "svd_image_decoder": "stabilityai/stable-video-diffusion-img2vid",
    "svd_xt": "stabilityai/stable-video-diffusion-img2vid-xt",
    "svd_xt_image_decoder": "stabilityai/stable-video-diffusion-img2vid-xt",
    "svd_xt_1_1": "stabilityai/stable-video-diffusion-img2vid-xt-1-1",
    "sv3d_u": "stabilityai/sv3d",
    "sv3d_p": "stabilityai/sv3d",
    "sv4d": "stabilityai/sv4d",
    "sv4d2": "stabilityai/sv4d2.0",
    "sv4d2_8views": "stabilityai/sv4d2.0",
}
COND_AUG = 0.02
SV3D_COND_AUG = 1e-5


def check_version(version: Any) -> str:
    version = str(version)
    if version not in VERSION_DEFAULTS:
        raise InputError(f"unknown version {version!r}; choose one of: {', '.join(VERSION_DEFAULTS)}")
    return version


def is_sv3d(version: Any) -> bool:
    return isinstance(version, str) and version.startswith("sv3d")


def sv3d_angles(num_frames: int, elevations_deg: Any = 10.0, azimuths_deg: Any = None) -> Dict[str, List[float]]:
    """Camera of every frame for sv3d_p: elevations/azimuths in degrees and the model's polars/azimuths in radians.

    A single elevation applies to every frame. Azimuths default to an even orbit ending at 0 degrees;
    they are taken relative to the last frame's azimuth (the input view). The frame order is kept as given.
    """
    if isinstance(elevations_deg, (int, float)) and not isinstance(elevations_deg, bool):
        elevations = [as_float("elevations_deg", elevations_deg)] * num_frames
    else:
        elevations = as_number_list("elevations_deg", elevations_deg)
    if len(elevations) != num_frames:
        raise InputError(f"elevations_deg has {len(elevations)} values but num_frames is {num_frames}")
    if azimuths_deg is None:
        azimuths = [float(a) for a in np.linspace(0, 360, num_frames + 1)[1:] % 360]
    else:
        azimuths = as_number_list("azimuths_deg", azimuths_deg)
    if len(azimuths) != num_frames:
        raise InputError(f"azimuths_deg has {len(azimuths)} values but num_frames is {num_frames}")
    polars_rad = [float(np.deg2rad(90 - e)) for e in elevations]
    # Upstream's script calls .sort() on a slice of this Python list, which sorts a copy and leaves
    # the list as it was; the frames therefore keep the given order there, and here.
    azimuths_rad = [float(np.deg2rad((a - azimuths[-1]) % 360)) for a in azimuths]
    return {"elevations_deg": elevations, "azimuths_deg": azimuths, "polars_rad": polars_rad, "azimuths_rad": azimuths_rad}
