"""Errors the generator raises; the container entrypoint maps them to exit codes."""

from __future__ import annotations


class GenerationError(Exception):
    """Base class: generation could not produce an asset."""


class BadInputError(GenerationError):
    """The photo can never give an asset (undecodable, empty, no object found). Not retried."""


class QualityError(GenerationError):
    """The asset was made but failed the quality gate; ``metrics`` says by how much."""

    def __init__(self, message: str, metrics: dict | None = None) -> None:
        super().__init__(message)
        self.metrics = dict(metrics or {})
