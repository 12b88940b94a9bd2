"""Weight-free shape priors chosen from the object's outline."""

from .boxfit import BoxFit, fit_box
from .priors import (
    BOX_DEPTH_RATIO,
    INFLATION_DEPTH,
    Volume,
    box_field,
    inflation_field,
    revolution_field,
)
from .silhouette import OutlineAnalysis, PriorKind, analyse_outline, clean_mask, rotate

__all__ = [
    "BOX_DEPTH_RATIO",
    "INFLATION_DEPTH",
    "BoxFit",
    "OutlineAnalysis",
    "PriorKind",
    "Volume",
    "analyse_outline",
    "box_field",
    "clean_mask",
    "fit_box",
    "inflation_field",
    "revolution_field",
    "rotate",
]
