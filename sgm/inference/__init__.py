"""sgm.inference: sample videos from Python (VideoPipeline; SV4D / SV4D 2.0: FourDPipeline), write them (outputs, record) and the
command-line contract the scripts share (cli)."""
from .checks import InputError
from .four_d import FourDOutput, FourDPipeline
from .images import ConditioningImage, conditioning_image
from .pipeline import VideoOutput, VideoPipeline, sample_video
from .settings import CallSettings, ModelDefaults
from .versions import VERSION_DEFAULTS

__all__ = ["InputError", "FourDOutput", "FourDPipeline", "ConditioningImage", "conditioning_image", "VideoOutput", "VideoPipeline", "sample_video",
           "CallSettings", "ModelDefaults", "VERSION_DEFAULTS"]
