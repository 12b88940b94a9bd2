"""meshgen: a single photo of an object to a textured 3D mesh. Knows nothing of AWS.

``Generator`` and ``GenerationResult`` load lazily so that ``meshgen.errors`` stays cheap to
import for callers that only map errors to exit codes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .generator import GenerationResult, Generator, Reconstruction

#: Recorded on every asset (provenance); bump when the geometry an upload gets changes.
__version__ = "meshgen-0.1.0"

__all__ = ["GenerationResult", "Generator", "Reconstruction", "__version__"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import generator

        return getattr(generator, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
