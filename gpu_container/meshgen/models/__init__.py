"""Learned reconstruction backends."""

from .triplane import TriplaneModel

__all__ = ["TriplaneModel"]
