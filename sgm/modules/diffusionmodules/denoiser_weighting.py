"""Per-sigma loss weights at upstream's older module path; the classes live in loss_weighting."""
from .loss_weighting import EDMWeighting, EpsWeighting, UnitWeighting, VWeighting

__all__ = ["UnitWeighting", "EDMWeighting", "VWeighting", "EpsWeighting"]
