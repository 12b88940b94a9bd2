"""Segmentation: the object's mask in a photo, from alpha, rembg or weight-free methods.

:class:`BackgroundRemover` runs the chain (see :mod:`.remover`); the pieces:

* :mod:`.result` - the :class:`Segmentation` and the square crop;
* :mod:`.rembg_model` - the optional local rembg model;
* :mod:`.backdrop` - plain or graded backdrops, contact shadows;
* :mod:`.clutter` - busy backgrounds: GrabCut from a border-colour and centre prior;
* :mod:`.cleanup` - main object, holes, morphology;
* :mod:`.confidence` - how sure, and the refusal in words.
"""

from meshdrop_contract.jobs import ENV_REMBG_MODEL

from .backdrop import Backdrop, classical_mask, fit_backdrop
from .cleanup import fill_holes, keep_main_object
from .confidence import MIN_CONFIDENCE, Verdict, assess
from .remover import BackgroundRemover
from .result import Segmentation

__all__ = [
    "ENV_REMBG_MODEL",
    "MIN_CONFIDENCE",
    "Backdrop",
    "BackgroundRemover",
    "Segmentation",
    "Verdict",
    "assess",
    "classical_mask",
    "fill_holes",
    "fit_backdrop",
    "keep_main_object",
]
