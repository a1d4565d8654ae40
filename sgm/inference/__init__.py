"""sgm.inference: sample videos from Python (VideoPipeline), write them (outputs, record) and the
command-line contract the scripts share (cli)."""
from .checks import InputError
from .images import ConditioningImage, conditioning_image
from .pipeline import VideoOutput, VideoPipeline, sample_video
from .settings import CallSettings, ModelDefaults
from .versions import VERSION_DEFAULTS

__all__ = ["InputError", "ConditioningImage", "conditioning_image", "VideoOutput", "VideoPipeline", "sample_video",
           "CallSettings", "ModelDefaults", "VERSION_DEFAULTS"]
