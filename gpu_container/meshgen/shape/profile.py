"""Elongated objects seen from a raised three-quarter view: a height profile over a footprint.

A toy car, a shoe, a stapler or a loaf is, to a first approximation, a height field over a
rectangular footprint that changes along the object's length and hardly across it (bonnet,
cabin, boot). The camera's pitch starts from a box fitted to the outline's convex hull
(:func:`.boxfit.fit_box`). When the object stands on wheels (legs), the footprint comes from
the ground: the line under the near wheels gives the length axis' yaw
(:func:`ground_line_yaw`), the bend of the bottom edge at the near corner its length-to-width
ratio (:func:`ground_corner_ratio`). Otherwise footprints around the hull's are tried. The
height of each slice across the length is the tallest one whose top edge, projected, still
lies inside the outline: the outline's own upper edge, read in the object's frame. The body
is then that stack of slices, with the wheels reaching down to the ground along its sides,
carved by the outline swept along the view (the single view's visual hull).

Frames as in :mod:`.field`; ``fit.rotation`` maps the object frame to the camera frame.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import cv2
import numpy as np
from scipy import ndimage

from .boxfit import BoxFit


class Profile(NamedTuple):
    """A carved body's slices along its length, and its wheels."""

    xs: np.ndarray  # (n,) float slice positions along the length (object x, grid pixels)
    heights: np.ndarray  # (n,) float slice heights above the floor
    #: How far the wheels reach below the floor (object frame, grid pixels): along both
    #: sides, :data:`WHEEL_BAND` of the half width wide, the body reaches down that far (the
    #: swept outline then leaves only what the photo shows of the wheels).
    drop: float = 0.0


#: Footprint length-to-width ratios tried: the hull fixes the footprint's projected width,
#: not how it splits between length and width (a car's wheels and cabin hide the corners
#: that would tell).
FOOTPRINT_RATIOS = (0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0)
#: Turns (degrees) about the vertical tried around the hull's yaw: the hull's corners are
#: the wheels' and the cabin's, not the footprint's.
YAW_OFFSETS_DEG = (-8.0, 0.0, 8.0)

#: Footprint length-to-width ratios tried when the wheels tell which axis is the length.
LONG_RATIOS = (1.5, 2.0, 2.5, 3.0)
#: Pitches (degrees) tried around the hull's when reading the wheels and the bottom corner:
#: a car's hull (its cabin) misleads the hull fit's pitch by several degrees.
PITCH_OFFSETS_DEG = (-8.0, -4.0, 0.0, 4.0, 8.0)
#: A gap under the object (between two wheels, two legs) counts when the outline's lower
#: hull edge spans at least this share of the outline's width and the gap is at least this
#: share of its height deep.
GAP_MIN_SPAN = 0.2
GAP_MIN_DEPTH = 0.03

#: Share of the half width, along each side, where the wheels reach below the floor.
WHEEL_BAND = 0.35

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
    fit: BoxFit, xs: np.ndarray, ys: np.ndarray, zs: np.ndarray, profile: Profile
) -> np.ndarray:
    """``(nx, ny, nz)`` float32 field of the sliced body, sampled in the camera frame.

    Parameters
    ----------
    xs, ys, zs
        Camera-frame sample positions (grid pixels).
    profile
        Slices (from :func:`slice_heights`) and wheels.
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
    floor = yo + b  # (nx, ny, nz) float: the body's floor; the wheels' bands reach lower
    if profile.drop > 0.0:
        band = np.abs(zo) - np.float32((1.0 - WHEEL_BAND) * c)
        np.maximum(floor, np.minimum(floor + np.float32(profile.drop), band), out=floor)
    np.minimum(values, floor, out=values)
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


def ground_line_yaw(mask: np.ndarray, pitch_deg: float) -> float | None:
    """Yaw (degrees) of the object's length axis, read from the line under its near wheels.

    A car's (a table's, a stool's) near wheels stand on the ground: the lower edge of the
    outline's convex hull that bridges the gap between them runs along the length axis on
    the ground plane, so its slope is ``tan(yaw) sin(pitch)`` (y up). Of the lower hull's
    edges over a gap (a convexity defect below the edge), the one with the largest span
    times depth is taken.

    Parameters
    ----------
    mask
        ``(g, g)`` float 0..1 outline, rows top to bottom.
    pitch_deg
        Camera pitch from the hull's box fit.

    Returns
    -------
    float or None
        Yaw in (-90, 90) of the length axis (object x) in the convention of
        :func:`.boxfit.box_rotation`; ``None`` when no gap under the object shows.
    """
    inside = (mask >= 0.5).astype(np.uint8)
    contours, _ = cv2.findContours(inside, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    sin_p = float(np.sin(np.radians(pitch_deg)))
    if not contours or sin_p < 0.05:
        return None
    contour = max(contours, key=cv2.contourArea)  # (k, 1, 2) int (col, row)
    defects = cv2.convexityDefects(contour, cv2.convexHull(contour, returnPoints=False))
    if defects is None:
        return None
    _, top, width, height = cv2.boundingRect(contour)
    points = contour[:, 0].astype(np.float64)  # (k, 2) float (col, row)
    best: tuple[float, float] | None = None
    for start, end, far, depth in defects.reshape(-1, 4).astype(np.int64):
        p0, p1 = points[int(start)], points[int(end)]
        span, mid_row = abs(p1[0] - p0[0]), (p0[1] + p1[1]) / 2.0
        lower = mid_row > top + height / 2.0 and points[int(far)][1] <= mid_row  # gap above edge
        if not lower or span < GAP_MIN_SPAN * width or depth / 256.0 < GAP_MIN_DEPTH * height:
            continue
        slope = -(p1[1] - p0[1]) / (p1[0] - p0[0])  # y up
        if best is None or span * float(depth) > best[0]:
            best = (span * float(depth), slope)
    if best is None:
        return None
    return float(np.degrees(np.arctan(best[1] / sin_p)))


def ground_corner_ratio(
    mask: np.ndarray, yaw_deg: float, pitch_deg: float
) -> tuple[float, float] | None:
    """Length-to-width ratio of the footprint, from where the outline's lower edge bends.

    With the length axis' yaw known, the body's bottom edges along the length and along the
    width have known slopes in the photo (``tan(yaw) sin(pitch)`` and
    ``-sin(pitch) / tan(yaw)``, y up) and meet at the near bottom corner. The corner is put
    where that bent line, slid up or down, runs along most of the outline's lowest pixels
    (wheels and legs only reach below it), and its column splits the outline's width into the
    length's and the width's shares.

    Parameters
    ----------
    mask
        ``(g, g)`` float 0..1 outline, rows top to bottom.
    yaw_deg, pitch_deg
        Yaw of the length axis (:func:`ground_line_yaw`) and the camera pitch.

    Returns
    -------
    tuple of float, or None
        The ratio and the share of the outline's columns whose lowest pixel lies on the bent
        line (within 1.5 px); ``None`` when the view is too near side-on or end-on to tell.
    """
    yaw = np.radians(yaw_deg)
    if not 0.15 < abs(np.sin(yaw)) < 0.99:
        return None
    inside = mask >= 0.5
    cols = np.nonzero(inside.any(axis=0))[0]  # (w,) int columns of the object
    x = cols.astype(np.float64)
    y = np.argmax(inside[::-1, cols], axis=0).astype(np.float64)  # (w,) lowest pixel, y up
    sin_p = np.sin(np.radians(pitch_deg))
    along, across = np.tan(yaw) * sin_p, -sin_p / np.tan(yaw)
    corners = np.arange(x[0] + 2.0, x[-1] - 1.0)  # (n,) float candidate corner columns
    # The width's edge lies on the left of the corner when the length's edge rises to the
    # right (yaw > 0), else on its right.
    on_width = x[None, :] < corners[:, None] if yaw > 0 else x[None, :] > corners[:, None]
    line = np.where(on_width, across, along) * (x[None, :] - corners[:, None])  # (n, w)
    residual = y[None, :] - line
    level = np.percentile(residual, 80, axis=1)[:, None]  # wheels only reach below the body
    fits = (np.abs(residual - level) <= 1.5).mean(axis=1)  # (n,) float
    best = int(np.argmax(fits))
    corner = float(corners[best])
    width_share = (corner - x[0] if yaw > 0 else x[-1] - corner) / (x[-1] - x[0] + 1.0)
    if width_share <= 0.0:
        return None
    ratio = float(np.clip(abs(np.tan(yaw)) * (1.0 / width_share - 1.0), 1.0, 4.0))
    return ratio, float(fits[best])


def footprint_trials(fit: BoxFit, mask: np.ndarray) -> list[tuple[float, float, float]]:
    """``(length-to-width ratio, yaw, pitch)`` (degrees) that :func:`fit_profile` tries.

    With a gap under the object (:func:`ground_line_yaw`): of the pitches around the hull's,
    the one whose bent bottom edge (:func:`ground_corner_ratio`) runs along most of the
    outline gives the length axis' yaw and the footprint's ratio (the longer-than-wide
    :data:`LONG_RATIOS` when the corner cannot be told). The slices run along the box's x
    axis, so x stays the length even when it is turned more than 45 degrees from the camera
    (the hull fit would name that axis z). Without a gap: every ratio of
    :data:`FOOTPRINT_RATIOS` around the hull's yaw.
    """
    found: tuple[float, float | None, float, float] | None = None  # fit, ratio, yaw, pitch
    for pitch in (fit.pitch_deg + np.asarray(PITCH_OFFSETS_DEG)).tolist():
        yaw = ground_line_yaw(mask, pitch)
        if yaw is None:
            continue
        corner = ground_corner_ratio(mask, yaw, pitch)
        score, ratio = (-1.0, None) if corner is None else (corner[1], corner[0])
        if found is None or score > found[0]:
            found = (score, ratio, yaw, pitch)
    if found is None:
        return [
            (r, fit.yaw_deg + t, fit.pitch_deg)
            for r, t in itertools.product(FOOTPRINT_RATIOS, YAW_OFFSETS_DEG)
        ]
    _, ratio, yaw, pitch = found
    return [(r, yaw, pitch) for r in (LONG_RATIOS if ratio is None else (ratio,))]


def wheel_drop(fit: BoxFit, mask: np.ndarray) -> float:
    """How far (object frame, grid pixels) the outline reaches below the box's floor.

    The hull fit's floor runs along the body's bottom edge; wheels (legs, feet) reach further
    down to the ground. The drop is what brings the floor's projected lower edge down to the
    outline's lowest pixel in every column (its 98th percentile over the columns).

    Parameters
    ----------
    fit
        The chosen footprint of :func:`fit_profile`.
    mask
        ``(g, g)`` float 0..1 outline, rows top to bottom.
    """
    inside = mask >= 0.5
    cols = np.nonzero(inside.any(axis=0))[0]  # (w,) int
    lowest = np.argmax(inside[::-1, cols], axis=0).astype(np.float64)  # (w,) y up
    a, b, c = (float(v) for v in fit.half)
    corners = np.array([[sx * a, -b, sz * c] for sx in (-1, 1) for sz in (-1, 1)])  # (4, 3)
    seen = (corners @ fit.rotation.T + fit.centre)[:, :2]  # (4, 2) float x, y up
    # The floor's lower edge under each column: the lowest of the footprint's four edges.
    ends = seen[[0, 1, 3, 2]], seen[[1, 3, 2, 0]]  # the rectangle's edges, corner to corner
    floor = np.full(len(cols), np.inf)
    for (x0, y0), (x1, y1) in zip(*ends, strict=True):
        lo, hi = min(x0, x1), max(x0, x1)
        t = np.clip((cols - x0) / (x1 - x0 if x1 != x0 else 1e-9), 0.0, 1.0)
        on = (cols >= lo) & (cols <= hi)
        floor = np.where(on, np.minimum(floor, y0 + t * (y1 - y0)), floor)
    gaps = (floor - lowest)[np.isfinite(floor)]
    if gaps.size == 0:
        return 0.0
    # The object's vertical projects to (0, cos pitch) in the photo.
    return max(0.0, float(np.percentile(gaps, 98))) / max(float(fit.rotation[1, 1]), 1e-3)


def fit_profile(mask: np.ndarray, fit: BoxFit) -> tuple[BoxFit, Profile]:
    """The footprint (of :func:`footprint_trials`) and slice heights that best explain the
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
        The box with the chosen footprint, and its slices and wheels.
    """
    g = mask.shape[0]
    inside = mask >= 0.5
    # Every footprint spans the outline's columns exactly, at the trial's own yaw: the hull
    # fit's box, a compromise over the whole hull, can fall a few pixels short of its ends.
    cols = np.nonzero(inside.any(axis=0))[0]
    half_width = (cols[-1] - cols[0] + 1) / 2.0
    centre = np.array([(cols[0] + cols[-1]) / 2.0, fit.centre[1], 0.0])
    best: tuple[float, BoxFit, tuple[np.ndarray, np.ndarray]] | None = None
    for ratio, yaw_deg, pitch_deg in footprint_trials(fit, mask):
        turned = np.radians(yaw_deg)
        c = half_width / (ratio * abs(np.cos(turned)) + abs(np.sin(turned)))
        half = np.array([ratio * c, fit.half[1], c])
        trial = BoxFit(half, yaw_deg, pitch_deg, centre, fit.iou, True)
        xs, heights = slice_heights(mask, trial)
        seen = slice_outline(g, trial, xs, heights)
        score = float((seen & inside).sum()) / max(float((seen | inside).sum()), 1.0)
        if best is None or score > best[0]:
            best = (score, trial, (xs, heights))
    assert best is not None
    return best[1], Profile(*best[2], wheel_drop(best[1], mask))
