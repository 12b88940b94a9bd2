"""Elongated objects seen from a raised three-quarter view: a height profile over a footprint.

A toy car, a shoe, a stapler or a loaf is, to a first approximation, a height field over a
rectangular footprint that changes along the object's length and hardly across it (bonnet,
cabin, boot). With the footprint and the camera's yaw and pitch from a box fitted to the
outline's convex hull (:func:`.boxfit.fit_box`), the height of each slice across the length
is the tallest one whose top edge, projected, still lies inside the outline: the outline's
own upper edge, read in the object's frame. The body is then that stack of slices, carved by
the outline swept along the view (the single view's visual hull).

Frames as in :mod:`.field`; ``fit.rotation`` maps the object frame to the camera frame.
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy import ndimage

from .boxfit import BoxFit

#: Footprint length-to-width ratios tried: the hull fixes the footprint's projected width,
#: not how it splits between length and width (a car's wheels and cabin hide the corners
#: that would tell).
FOOTPRINT_RATIOS = (0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0)
#: Turns (degrees) about the vertical tried around the hull's yaw: the hull's corners are
#: the wheels' and the cabin's, not the footprint's.
YAW_OFFSETS_DEG = (-8.0, 0.0, 8.0)

#: Samples across the width when testing a slice's top edge against the outline.
WIDTH_SAMPLES = 9
#: Height step (grid pixels) of the search, and the tallest slice as a multiple of the box.
HEIGHT_STEP = 1.0
MAX_HEIGHT_FACTOR = 3.0
#: Coverage of the soft outline that counts as inside (a little below 0.5: the slice's top
#: edge runs along the outline, and its projection grazes the anti-aliased border).
INSIDE_LEVEL = 0.35


def slice_heights(mask: np.ndarray, fit: BoxFit) -> tuple[np.ndarray, np.ndarray]:
    """Height above the footprint's floor of each slice along the object's length.

    Parameters
    ----------
    mask
        ``(g, g)`` float 0..1 outline, rows top to bottom.
    fit
        Box fitted to the outline's hull: footprint ``2 half[0]`` x ``2 half[2]``, floor at
        ``-half[1]``, camera angles.

    Returns
    -------
    xs, heights
        ``(n,)`` float positions along the length (object x, grid pixels from the centre)
        and ``(n,)`` float slice heights above the floor.
    """
    g = mask.shape[0]
    a, b, c = (float(v) for v in fit.half)
    xs = np.arange(-a, a + 0.5, 1.0)  # (n,) float
    hs = np.arange(0.0, MAX_HEIGHT_FACTOR * 2.0 * b, HEIGHT_STEP)  # (m,) float
    zs = np.linspace(-c, c, WIDTH_SAMPLES)  # (k,) float
    x, h, z = np.meshgrid(xs, hs, zs, indexing="ij")  # (n, m, k) each
    obj = np.stack([x, h - b, z], axis=-1)  # (n, m, k, 3) float, object frame
    cam = obj @ fit.rotation.T + fit.centre  # (n, m, k, 3) float, camera frame
    rows, cols = g - 1 - cam[..., 1], cam[..., 0]
    cover = ndimage.map_coordinates(mask.astype(np.float32), [rows, cols], order=1, cval=0.0)
    inside: np.ndarray = np.all(cover >= INSIDE_LEVEL, axis=2)  # (n, m) bool: top edge inside
    # The slice is as tall as its highest top edge inside the outline. Not the run from the
    # floor up: between a car's wheels the floor's edge shows the gap under the body.
    steps = len(hs)
    highest = steps - 1 - np.argmax(inside[:, ::-1], axis=1)  # (n,) int
    top = np.where(inside.any(axis=1), highest, -1)
    heights = np.maximum(top, 0) * HEIGHT_STEP
    return xs, ndimage.gaussian_filter1d(heights.astype(np.float64), 1.0)


def profile_values(
    fit: BoxFit, xs: np.ndarray, ys: np.ndarray, zs: np.ndarray, profile: tuple[np.ndarray, ...]
) -> np.ndarray:
    """``(nx, ny, nz)`` float32 field of the sliced body, sampled in the camera frame.

    Parameters
    ----------
    xs, ys, zs
        Camera-frame sample positions (grid pixels).
    profile
        ``(slice positions, slice heights)`` from :func:`slice_heights`.
    """
    rot = fit.rotation.astype(np.float32)
    a, b, c = (np.float32(v) for v in fit.half)
    dx = (xs - fit.centre[0]).astype(np.float32)[:, None, None]
    dy = (ys - fit.centre[1]).astype(np.float32)[None, :, None]
    dz = zs.astype(np.float32)[None, None, :]

    def axis(i: int) -> np.ndarray:
        # Object coordinate i of every sample: p_obj = rot.T @ p_cam.
        return dx * rot[0, i] + dy * rot[1, i] + dz * rot[2, i]

    xo, yo, zo = axis(0), axis(1), axis(2)
    top = np.interp(xo, profile[0], profile[1], left=0.0, right=0.0).astype(np.float32) - b
    values = np.minimum(a - np.abs(xo), c - np.abs(zo))
    np.minimum(values, yo + b, out=values)
    np.minimum(values, top - yo, out=values)
    return values.astype(np.float32)


def slice_outline(g: int, fit: BoxFit, xs: np.ndarray, heights: np.ndarray) -> np.ndarray:
    """``(g, g)`` bool projected outline of the sliced body (one quad per slice).

    Parameters
    ----------
    xs, heights
        Slice positions and heights from :func:`slice_heights`.
    """
    import cv2

    _, b, c = (float(v) for v in fit.half)
    out = np.zeros((g, g), dtype=np.uint8)
    rot = fit.rotation
    for x, h in zip(xs, heights, strict=True):
        if h <= 0.0:
            continue
        quad = np.array([[x, -b, -c], [x, -b, c], [x, h - b, c], [x, h - b, -c]])
        cam = quad @ rot.T + fit.centre  # (4, 3) float
        pts = np.stack([cam[:, 0], g - 1 - cam[:, 1]], axis=1)  # (4, 2) (col, row)
        cv2.fillConvexPoly(out, np.rint(pts * 4).astype(np.int32), 1, cv2.LINE_8, 2)
    return out.astype(bool)


def fit_profile(mask: np.ndarray, fit: BoxFit) -> tuple[BoxFit, tuple[np.ndarray, np.ndarray]]:
    """The footprint (of :data:`FOOTPRINT_RATIOS`) and slice heights that best explain the
    outline.

    Parameters
    ----------
    mask
        ``(g, g)`` float 0..1 outline, rows top to bottom.
    fit
        Box fitted to the outline's convex hull (camera angles, centre, floor, width).

    Returns
    -------
    fit, profile
        The box with the chosen footprint, and ``(slice positions, heights)``.
    """
    g = mask.shape[0]
    inside = mask >= 0.5
    yaw = np.radians(fit.yaw_deg)
    half_width = fit.half[0] * abs(np.cos(yaw)) + fit.half[2] * abs(np.sin(yaw))
    best: tuple[float, BoxFit, tuple[np.ndarray, np.ndarray]] | None = None
    for ratio, turn in itertools.product(FOOTPRINT_RATIOS, YAW_OFFSETS_DEG):
        c = half_width / (ratio * abs(np.cos(yaw)) + abs(np.sin(yaw)))
        half = np.array([ratio * c, fit.half[1], c])
        trial = BoxFit(half, fit.yaw_deg + turn, fit.pitch_deg, fit.centre, fit.iou, True)
        xs, heights = slice_heights(mask, trial)
        seen = slice_outline(g, trial, xs, heights)
        score = float((seen & inside).sum()) / max(float((seen | inside).sum()), 1.0)
        if best is None or score > best[0]:
            best = (score, trial, (xs, heights))
    assert best is not None
    return best[1], best[2]
