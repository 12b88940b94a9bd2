"""Shaded faces: smooth parts of the object whose colour is also the background's.

A box on gravel turns one face away from the light. That face is dark olive, and so are the
gaps between the pebbles, so a colour model (the border histogram, GrabCut) calls it
background. What still tells it apart is texture: the face is smooth and the gravel is not,
the face is one region beside the object and the gravel repeats. This module adds back such
regions after the cut.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage

from ..ndtools import label

#: Gradient (8-bit levels per pixel, after a 1-pixel blur) below which a pixel is smooth: with
#: the desk scenes' sensor noise, three quarters of a flat face stay under 0.5, while gravel's
#: median is 3.5 (a brick's face is smooth too: see ``REPEATS``).
SMOOTH_GRADIENT = 1.5
#: Distance (pixels) within which a region counts as beside the object: the edge between two
#: faces is 2 to 4 pixels of non-smooth gradient at work resolution.
BESIDE = 4
#: Share of a region's outline that must lie beside the object.
MIN_BESIDE_SHARE = 0.25
#: Smallest region added, as a share of the object's area: smaller ones are specks.
MIN_AREA_SHARE = 0.02
#: Smallest smooth region at the border that counts as a plain background (a wall), as a
#: share of the photo; colours within ``SAME_COLOUR`` of one are background seen through.
PLAIN_BACKGROUND_SHARE = 0.02
#: CIELAB distance (8-bit OpenCV Lab units) below which two regions have the same colour.
SAME_COLOUR = 12.0
#: Same-coloured smooth regions elsewhere, at least half as large, that make a region part of
#: a repeating background (bricks) rather than a face of the object.
REPEATS = 2


def add_shaded_faces(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The object mask with the smooth regions beside it that are faces of the object.

    A region is added when it is smooth (gradient under ``SMOOTH_GRADIENT``), not on the
    photo's border, at least ``MIN_AREA_SHARE`` of the object, with at least
    ``MIN_BESIDE_SHARE`` of its outline beside the object, and when it is neither the colour of
    a plain background that reaches the border (a wall seen through a mug's handle) nor one of
    ``REPEATS`` or more same-coloured smooth regions away from the object (the bricks of a
    wall). Textured regions are never added, so a shadow on a carpet is not.

    Parameters
    ----------
    rgb : numpy.ndarray
        (h, w, 3) uint8 photo.
    mask : numpy.ndarray
        (h, w) bool object mask.

    Returns
    -------
    numpy.ndarray
        (h, w) bool, ``mask`` or a superset of it.
    """
    if not mask.any():
        return mask
    regions, count = label(_smooth(rgb) & ~mask)
    if count == 0:
        return mask
    area, on_border, beside, colour = _region_stats(rgb, mask, regions, count)
    h, w = mask.shape
    away = beside < MIN_BESIDE_SHARE  # (n,) bool
    candidate = ~on_border & ~away & (area >= MIN_AREA_SHARE * float(mask.sum()))
    if not candidate.any():
        return mask
    # Only regions at least half the smallest candidate's size can be its twins: a textured
    # background has thousands of specks, which this keeps out of the loop.
    big = np.nonzero(area >= 0.5 * area[candidate].min())[0]  # (b,) int
    plain = colour[on_border & (area >= PLAIN_BACKGROUND_SHARE * h * w)]  # (p, 3) float
    keep = np.zeros(count + 1, dtype=bool)
    for i in np.nonzero(candidate)[0]:
        if plain.size and np.linalg.norm(plain - colour[i], axis=1).min() < SAME_COLOUR:
            continue  # a plain background seen through the object (a mug's handle)
        twins = big[away[big] & (area[big] >= 0.5 * area[i]) & (big != i)]
        if (np.linalg.norm(colour[twins] - colour[i], axis=1) < SAME_COLOUR).sum() >= REPEATS:
            continue  # one of many alike: a repeating background (bricks)
        keep[i + 1] = True
    return mask | keep[regions]


def _smooth(rgb: np.ndarray) -> np.ndarray:
    """(h, w) bool: pixels whose blurred brightness changes by under ``SMOOTH_GRADIENT``."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    grey = cv2.GaussianBlur(grey, (0, 0), 1.0)
    # Sobel's 3x3 kernel gives 8 times the slope of a ramp: divide to levels per pixel.
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3) / 8.0
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    return np.hypot(gx, gy) < SMOOTH_GRADIENT


def _region_stats(
    rgb: np.ndarray, mask: np.ndarray, regions: np.ndarray, count: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per region: area (n,), on the border (n,) bool, share of its outline beside the
    object (n,) and mean CIELAB colour (n, 3)."""
    index = np.arange(1, count + 1)
    area = np.bincount(regions.ravel(), minlength=count + 1)[1:].astype(np.float64)
    frame = np.zeros(mask.shape, dtype=bool)
    frame[0], frame[-1], frame[:, 0], frame[:, -1] = True, True, True, True
    on_border = np.bincount(regions[frame], minlength=count + 1)[1:] > 0
    inner = cv2.erode((regions > 0).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    outline = (regions > 0) & ~inner
    near = cv2.dilate(mask.astype(np.uint8), np.ones((2 * BESIDE + 1,) * 2, np.uint8)) > 0
    outline_n = np.bincount(regions[outline], minlength=count + 1)[1:]
    beside_n = np.bincount(regions[outline & near], minlength=count + 1)[1:]
    beside = beside_n / np.maximum(outline_n, 1)
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float64)
    colour = np.stack([ndimage.mean(lab[..., k], regions, index) for k in range(3)], axis=1)
    return area, on_border, beside, colour
