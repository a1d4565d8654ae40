"""sgm-motion: Stability AI's `sgm` layout for Stable Video Diffusion, plus temporal motion controls."""
from .util import instantiate_from_config, get_obj_from_str

__version__ = "0.1.0"
