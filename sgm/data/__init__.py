"""Data: procedural motion clips for training and probing the video model."""
from .synthetic_motion import (
    SyntheticMotionClips,
    SyntheticMotionDataModule,
    collate_video,
    max_motion_for,
    motion_bucket,
    render_clip,
)
