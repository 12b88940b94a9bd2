"""Typed wrappers of the few ``scipy.ndimage`` calls whose stubs return unions.

scipy's stubs say ``label`` may return a bare int and ``binary_fill_holes`` or
``distance_transform_edt`` may return ``None`` (the ``output=`` forms); the calls made here
never do. One place to say so keeps the call sites plain.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
from scipy import ndimage


def label(mask: np.ndarray, structure: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """Connected components: ``(labels (h, w) int, count)``; 0 is the background."""
    labels, count = cast(tuple[np.ndarray, int], ndimage.label(mask, structure=structure))
    return labels, int(count)


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """(h, w) bool with every enclosed hole filled."""
    return np.asarray(ndimage.binary_fill_holes(mask), dtype=bool)


def distance(mask: np.ndarray) -> np.ndarray:
    """(h, w) float Euclidean distance of each True pixel to the nearest False one."""
    return np.asarray(ndimage.distance_transform_edt(mask), dtype=np.float64)


def nearest_indices(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of the nearest False pixel for every pixel: two (h, w) int arrays."""
    result = cast(Any, ndimage.distance_transform_edt(mask, return_indices=True))
    indices = np.asarray(result[1])
    return indices[0], indices[1]


def sums(values: np.ndarray, labels: np.ndarray, count: int) -> np.ndarray:
    """(count,) float sum of ``values`` over each label 1..count."""
    return np.asarray(ndimage.sum(values, labels, index=np.arange(1, count + 1)), dtype=float)
