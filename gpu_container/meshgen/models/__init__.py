"""Learned reconstruction backends: TripoSR, loadable from its published checkpoint.

Names load lazily: :mod:`.published` (constants) is importable without importing torch, so the
weight-free priors path never pays for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import TripoSRConfig
    from .triposr import TripoSR, WeightsMismatchError, has_weights
    from .vit import ViTConfig

__all__ = ["TripoSR", "TripoSRConfig", "ViTConfig", "WeightsMismatchError", "has_weights"]

_HOMES = {
    "TripoSR": "triposr",
    "WeightsMismatchError": "triposr",
    "has_weights": "triposr",
    "TripoSRConfig": "config",
    "ViTConfig": "vit",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        from importlib import import_module

        return getattr(import_module(f".{_HOMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
