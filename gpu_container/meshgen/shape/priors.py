"""Weight-free shape priors: an implicit field (positive inside) built from the outline.

One module per prior (:mod:`.revolution`, :mod:`.box`, :mod:`.inflation`) over the shared
:mod:`.field`; this module keeps the names the rest of the generator imports.
"""

from .box import box_field
from .boxfit import BOX_DEPTH_RATIO
from .field import (
    OUTLINE_SMOOTHING,
    PAD,
    Volume,
    bottom_up,
    lattice,
    row_extents,
    signed_distance_2d,
)
from .inflation import INFLATION_DEPTH, inflation_field
from .revolution import (
    MIN_RIM_PITCH_DEG,
    PROFILE_SMOOTHING,
    RIM_BAND,
    WALL_FRACTION,
    revolution_field,
    rim_pitch,
    unpitched,
)

__all__ = [
    "BOX_DEPTH_RATIO",
    "INFLATION_DEPTH",
    "MIN_RIM_PITCH_DEG",
    "OUTLINE_SMOOTHING",
    "PAD",
    "PROFILE_SMOOTHING",
    "RIM_BAND",
    "WALL_FRACTION",
    "Volume",
    "bottom_up",
    "box_field",
    "inflation_field",
    "lattice",
    "revolution_field",
    "rim_pitch",
    "row_extents",
    "signed_distance_2d",
    "unpitched",
]
