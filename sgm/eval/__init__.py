"""Evaluation: motion and fidelity metrics on clips in [0, 1]."""
from .metrics import displacement, flow_fields, mean_abs_frame_difference, motion_metrics, psnr, temporal_smoothness
