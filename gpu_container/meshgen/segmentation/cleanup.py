"""Mask clean-up shared by every path: the main object, its holes, morphology, edge contact."""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage

from ..ndtools import distance, label
from ..ndtools import fill_holes as fill_holes_nd

#: A hole whose cleanest fifth is this close (delta-E) to the backdrop is an opening.
T_MATCH = 3.0


def keep_main_object(
    mask: np.ndarray, *, gap: int = 3, weights: np.ndarray | None = None
) -> np.ndarray:
    """Keep the main component and the components within ``gap`` pixels of it.

    Parameters
    ----------
    mask : numpy.ndarray
        (h, w) bool.
    gap : int
        Largest distance, in pixels, from the main component at which another component still
        counts as attached. Components smaller than 0.1 % of the main one are specks and go.
    weights : numpy.ndarray, optional
        (h, w) float per-pixel weight; the main component has the largest weighted area
        (a centre prior makes it the object nearest the middle). ``None``: the largest.

    Returns
    -------
    numpy.ndarray
        (h, w) bool; all False when ``mask`` is empty.
    """
    labels, count = label(mask, structure=np.ones((3, 3), dtype=bool))
    if count <= 1:
        return labels > 0
    areas = np.bincount(labels.ravel())[1:]  # (count,) int
    score = areas if weights is None else np.bincount(labels.ravel(), weights.ravel())[1:]
    main = int(np.argmax(score)) + 1
    dist = distance(labels != main)  # (h, w) float, 0 on the main one
    index = np.arange(1, count + 1)
    near = np.asarray(ndimage.minimum(dist, labels, index)) <= gap
    big = areas >= max(4, 0.001 * areas[main - 1])
    keep = np.zeros(count + 1, dtype=bool)
    keep[1:] = near & big
    keep[main] = True
    return keep[labels]


def fill_holes(mask: np.ndarray, delta_e: np.ndarray, noise: float = 1.0) -> np.ndarray:
    """Fill the object's holes except real openings.

    The rule: an enclosed background region stays open only when it is BOTH

    * large: at least 0.2 % of the object's area (and 16 pixels) - smaller holes are JPEG
      blocks, specular glints or cracks in the mask, and
    * the backdrop itself: the 20th percentile of its CIELAB distance to the fitted backdrop
      at that position is at most ``max(3, 2 * noise)`` delta-E - as when the backdrop shows
      through a mug's handle (the percentile, not the median, because the object's colour
      bleeds into the rim of a narrow opening).

    A white label on a white backdrop is close to, but not exactly, the backdrop's colour
    (different material and lighting), so it misses the second test and is filled. A label of
    exactly the backdrop's colour cannot be told from an opening and stays open.

    Parameters
    ----------
    mask : numpy.ndarray
        (h, w) bool object mask.
    delta_e : numpy.ndarray
        (h, w) float, CIELAB distance of each pixel to the backdrop.
    noise : float
        Robust standard deviation of the backdrop's delta-E.

    Returns
    -------
    numpy.ndarray
        (h, w) bool.
    """
    filled, labels, count = _holes(mask)
    if count == 0:
        return filled
    index = np.arange(1, count + 1)
    areas = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    # The cleanest fifth of the hole: near its rim the object's colour bleeds in (JPEG chroma
    # subsampling, lens blur), while a label is off by the same amount everywhere.
    clean = ndimage.labeled_comprehension(
        delta_e, labels, index, lambda v: np.percentile(v, 20), float, np.inf
    )
    big = areas >= max(16.0, 0.002 * float(mask.sum()))
    opening = big & (np.asarray(clean) <= max(T_MATCH, 2.0 * noise))
    reopen = np.zeros(count + 1, dtype=bool)
    reopen[1:] = opening
    return filled & ~reopen[labels]


def _holes(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """The mask with every hole filled, the holes' labels (``(h, w)`` int) and their count."""
    filled = fill_holes_nd(mask)
    labels, count = label(filled & ~mask)
    return filled, labels, int(count)


def fill_small_holes(mask: np.ndarray, fraction: float = 0.002) -> np.ndarray:
    """Fill holes under ``fraction`` of the object's area (and 16 pixels); keep larger ones.

    For masks whose path already decided, pixel by pixel, what is background (GrabCut): a
    large hole it left is an opening (a handle), a small one is a glint or a crack.

    Parameters
    ----------
    mask : numpy.ndarray
        (h, w) bool.

    Returns
    -------
    numpy.ndarray
        (h, w) bool.
    """
    filled, labels, count = _holes(mask)
    if count == 0:
        return filled
    areas = np.bincount(labels.ravel(), minlength=count + 1)
    small = areas < max(16.0, fraction * float(mask.sum()))
    small[0] = False
    return mask | small[labels]


def sides_touched(mask: np.ndarray, min_share: float = 0.05, band: float = 0.015) -> list[str]:
    """The photo's sides the object runs into: ``["bottom", "left", ...]``.

    A side counts when the object covers at least ``min_share`` of the pixels along it within
    ``band`` (share of the short side, at least one pixel) of the edge: the GrabCut path
    seeds the outermost pixels as background, so an object running off the photo stops a
    pixel or two short of it.

    Parameters
    ----------
    mask : numpy.ndarray
        (h, w) bool object mask in the photo's frame.
    """
    b = max(1, round(band * min(mask.shape)))
    strips = {
        "top": mask[:b].any(axis=0),
        "bottom": mask[-b:].any(axis=0),
        "left": mask[:, :b].any(axis=1),
        "right": mask[:, -b:].any(axis=1),
    }
    return [name for name, strip in strips.items() if strip.mean() >= min_share]


def disk(radius: int) -> np.ndarray:
    """(2r+1, 2r+1) uint8 round structuring element."""
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """(h, w) bool grown by ``radius`` pixels."""
    return cv2.dilate(mask.astype(np.uint8), disk(radius)).astype(bool)


def open_mask(mask: np.ndarray) -> np.ndarray:
    """Remove one-pixel JPEG halos and speckle along edges without eating thin parts."""
    return cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, disk(1)).astype(bool)


def close_mask(mask: np.ndarray) -> np.ndarray:
    """Close one-pixel cracks."""
    return cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_CLOSE, disk(1)).astype(bool)
