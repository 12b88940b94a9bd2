"""The generator, loaded once per process, and the version recorded for provenance."""

from __future__ import annotations

import logging
import time
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gpu_container.meshgen import Generator

log = logging.getLogger("meshdrop.entrypoint")


@cache
def load_generator(weights: Path | None) -> Generator:
    """The generator for ``weights``, built once per process."""
    from gpu_container.meshgen import Generator

    started = time.perf_counter()
    generator = Generator.from_pretrained(str(weights) if weights is not None else None)
    log.info("generator loaded in %.2fs", time.perf_counter() - started)
    return generator


def generator_version() -> str:
    """Version string recorded on every asset for provenance."""
    try:
        from gpu_container import meshgen

        version = getattr(meshgen, "__version__", None)
        if version:
            return str(version)
    except ImportError:  # pragma: no cover
        pass
    try:
        from importlib.metadata import version as dist_version

        return f"meshdrop-{dist_version('meshdrop')}"
    except Exception:
        return "unknown"
