"""Learned reconstruction backends: TripoSR, loadable from its published checkpoint."""

from .config import TripoSRConfig
from .triposr import TripoSR, WeightsMismatchError, has_weights
from .vit import ViTConfig

__all__ = ["TripoSR", "TripoSRConfig", "ViTConfig", "WeightsMismatchError", "has_weights"]
