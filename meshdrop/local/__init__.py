"""meshdrop on an embedded AWS (moto): the real handlers and generator, no AWS account.

Imports moto and boto3 lazily through its submodules; import what you need from them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .pipeline import JobReport, LocalPipeline, RunSummary, run_local

__all__ = ["JobReport", "LocalPipeline", "RunSummary", "run_local"]


def __getattr__(name: str) -> object:
    # Keep ``import meshdrop.local`` cheap: the CLI's --help must not start moto.
    if name in __all__:
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(name)
