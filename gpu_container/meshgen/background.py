"""Background removal: kept as the generator's import path; the code is in :mod:`.segmentation`."""

from .segmentation import (
    ENV_REMBG_MODEL,
    BackgroundRemover,
    Segmentation,
    classical_mask,
    fill_holes,
    fit_backdrop,
    keep_main_object,
)

__all__ = [
    "ENV_REMBG_MODEL",
    "BackgroundRemover",
    "Segmentation",
    "classical_mask",
    "fill_holes",
    "fit_backdrop",
    "keep_main_object",
]
