"""Reading a segmented object's outline: clean-up, symmetry axis, and which shape prior fits.

All image arrays here are indexed ``[row, col]`` with row 0 at the top of the photo.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import cv2
import numpy as np
from scipy import ndimage

from ..errors import BadInputError
from ..ndtools import fill_holes, label, sums

#: Resolution the outline is analysed at: enough for symmetry and corner tests, and fast.
ANALYSIS_SIZE = 128
#: In-plane tilts (degrees) tried for the symmetry axis; photos are rarely rolled further.
TILTS_DEG = tuple(float(a) for a in np.arange(-15.0, 15.01, 1.5))
#: An outline that fills at least this share of its convex hull may be a carved box (a toy
#: car, a shoe); below it (a hand, a plant) the hull says too little.
MIN_CARVED_SOLIDITY = 0.8
#: An outline this many times wider than tall and filling less than NOTCHED_SOLIDITY of its
#: hull is not revolved (see :func:`_flat_and_notched`).
WIDE_ASPECT = 1.6
NOTCHED_SOLIDITY = 0.9
#: Smallest object, as a fraction of the working square, worth reconstructing.
MIN_OBJECT_FRACTION = 0.005


class PriorKind(StrEnum):
    """Shape priors, in the order they are preferred."""

    REVOLUTION = "revolution"  # bottles, vases, cans, lamps, mugs (body; handle added apart)
    BOX = "box"  # flat-sided man-made objects
    INFLATION = "inflation"  # anything else: front/back mirror-symmetric rounded solid


@dataclass(frozen=True)
class OutlineAnalysis:
    """What the outline says about the object.

    Attributes
    ----------
    tilt_deg
        In-plane roll of the symmetry axis; the image is rotated by it so the axis is vertical.
    axis_col
        Column of the (de-tilted) symmetry axis, as a fraction of the width (0..1).
    symmetry_iou
        IoU of the de-tilted outline with its mirror image about the axis.
    core_fraction
        Share of the outline inside its mirror image (the revolvable body).
    handle_fraction
        Share of the outline in one clean part sticking out of the body on one side.
    polygon_vertices
        Corners of a polygon approximation of the outer contour (boxes have 4 to 6).
    solidity
        Area over convex hull area.
    kind
        The chosen prior.
    """

    tilt_deg: float
    axis_col: float
    symmetry_iou: float
    core_fraction: float
    handle_fraction: float
    polygon_vertices: int
    solidity: float
    kind: PriorKind


def clean_mask(mask: np.ndarray) -> np.ndarray:
    """Binary outline: largest connected part, pinholes filled, real holes (handles) kept.

    Parameters
    ----------
    mask
        ``(h, w)`` float in 0..1 (or bool).

    Returns
    -------
    numpy.ndarray
        ``(h, w)`` bool.

    Raises
    ------
    BadInputError
        If no object larger than :data:`MIN_OBJECT_FRACTION` of the image is present.
    """
    binary = np.asarray(mask, dtype=np.float32) > 0.5
    found = cv2.connectedComponentsWithStats(binary.astype(np.uint8), connectivity=8)
    count, labels, stats = found[0], found[1], found[2]
    if count <= 1:
        raise BadInputError("no object found in the photo (empty foreground mask)")
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    if stats[largest, cv2.CC_STAT_AREA] < MIN_OBJECT_FRACTION * binary.size:
        raise BadInputError("no object found in the photo (foreground too small)")
    keep = labels == largest
    # Holes under 0.3% of the object are segmentation noise; larger ones (a mug's handle) are real.
    holes = fill_holes(keep) & ~keep
    hole_labels, n_holes = label(holes)
    if n_holes:
        sizes = sums(holes, hole_labels, n_holes)
        small = np.isin(hole_labels, 1 + np.flatnonzero(sizes < 0.003 * keep.sum()))
        keep |= small
    return keep


def rotate(image: np.ndarray, angle_deg: float, *, nearest: bool = False) -> np.ndarray:
    """Rotate about the image centre, counter-clockwise by ``angle_deg``, keeping the size."""
    if angle_deg == 0.0:
        return image
    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), angle_deg, 1.0)
    flags = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    src = image.astype(np.uint8) if image.dtype == bool else image
    out = cv2.warpAffine(src, matrix, (w, h), flags=flags, borderMode=cv2.BORDER_CONSTANT)
    return out.astype(bool) if image.dtype == bool else out


def _best_mirror(binary: np.ndarray) -> tuple[float, float]:
    """Best vertical mirror axis of a binary image, by FFT auto-convolution of its rows.

    Returns ``(iou, axis)`` with ``axis`` in pixel columns (may be a half integer).
    """
    w = binary.shape[1]
    rows = binary.astype(np.float32)
    spec = np.fft.rfft(rows, n=2 * w, axis=1)
    # overlap[k] = sum over rows of sum_j m[j] * m[k - j]: the overlap of the image with its
    # mirror about column k / 2.
    overlap = np.fft.irfft(spec * spec, n=2 * w, axis=1).sum(axis=0)[: 2 * w - 1]
    area = float(rows.sum())
    iou = overlap / np.maximum(2.0 * area - overlap, 1e-6)
    k = int(np.argmax(iou))
    return float(iou[k]), k / 2.0


def mirror_about(binary: np.ndarray, axis: float) -> np.ndarray:
    """Mirror a binary image about the vertical line at column ``axis`` (integer or half)."""
    w = binary.shape[1]
    src = np.rint(2.0 * axis - np.arange(w)).astype(int)  # (w,) int
    valid = (src >= 0) & (src < w)
    out = np.zeros_like(binary)
    out[:, valid] = binary[:, src[valid]]
    return out


def _best_tilt(binary: np.ndarray) -> tuple[float, float]:
    """The tilt (degrees) that makes the outline most mirror-symmetric, and its axis column."""
    best = (-1.0, 0.0, 0.0)
    for tilt in TILTS_DEG:
        iou, axis = _best_mirror(rotate(binary, tilt, nearest=True))
        # Prefer no tilt unless a tilt is clearly better: rotation blurs a straight outline.
        score = iou - 0.002 * abs(tilt)
        if score > best[0]:
            best = (score, tilt, axis)
    return best[1], best[2]


def _polygon_facts(upright: np.ndarray) -> tuple[int, float]:
    """Corners of the outline's simplified polygon, and its solidity (area over hull area)."""
    contours, _ = cv2.findContours(
        upright.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE
    )
    contour = max(contours, key=cv2.contourArea)
    poly = cv2.approxPolyDP(contour, 0.012 * cv2.arcLength(contour, True), True)
    hull_area = float(cv2.contourArea(cv2.convexHull(contour)))
    return len(poly), float(cv2.contourArea(contour)) / max(hull_area, 1.0)


def analyse_outline(mask: np.ndarray, rgb: np.ndarray | None = None) -> OutlineAnalysis:
    """Find the symmetry axis and pick the shape prior for a segmented object.

    Parameters
    ----------
    mask
        ``(s, s)`` float 0..1 foreground mask of the segmented photo.
    rgb
        ``(s, s, 3)`` uint8 photo. With it, a flat-sided outline whose shading varies smoothly
        across its width (a can, a jar seen straight on) is revolved rather than boxed.
    """
    small = cv2.resize(
        np.asarray(mask, np.float32), (ANALYSIS_SIZE, ANALYSIS_SIZE), interpolation=cv2.INTER_AREA
    )
    binary = clean_mask(small)
    tilt, axis = _best_tilt(binary)
    upright = rotate(binary, tilt, nearest=True)
    sym_iou, _ = _best_mirror(upright)
    core = upright & mirror_about(upright, axis)
    area = float(upright.sum())
    core_fraction = float(core.sum()) / area
    handle_fraction = _handle_fraction(upright, core, axis)

    corners, solidity = _polygon_facts(upright)

    if corners <= 6 and solidity > 0.96:
        kind = PriorKind.BOX
        if rgb is not None and core_fraction >= 0.9:
            small_rgb = cv2.resize(
                rgb, (ANALYSIS_SIZE, ANALYSIS_SIZE), interpolation=cv2.INTER_AREA
            )
            if shading_is_curved(rotate(small_rgb, tilt), upright):
                kind = PriorKind.REVOLUTION
    elif core_fraction >= 0.9 or (core_fraction >= 0.7 and core_fraction + handle_fraction >= 0.95):
        kind = PriorKind.REVOLUTION
    else:
        kind = PriorKind.INFLATION
    if kind is PriorKind.REVOLUTION and _flat_and_notched(upright, solidity):
        kind = PriorKind.INFLATION
    if (kind is PriorKind.BOX and tilt != 0.0) or kind is PriorKind.INFLATION:
        kind, tilt = _upright_box(binary, kind, tilt, solidity)
    if kind is PriorKind.INFLATION and core_fraction < 0.7:
        tilt = 0.0  # no trustworthy axis: keep the photo as it is
    return OutlineAnalysis(
        tilt_deg=float(tilt),
        axis_col=(axis + 0.5) / ANALYSIS_SIZE,
        symmetry_iou=float(sym_iou),
        core_fraction=core_fraction,
        handle_fraction=handle_fraction,
        polygon_vertices=corners,
        solidity=solidity,
        kind=kind,
    )


def _flat_and_notched(upright: np.ndarray, solidity: float) -> bool:
    """An outline much wider than tall with notches (wheels, a cabin) is no turned profile.

    A toy car seen from the side or low is about mirror-symmetric, and revolving it would
    make a spindle as thick as the car is long. Wide bodies of revolution (bowls, plates,
    tins) have a convex outline; a car's wheels and cabin step cut into its hull.

    Parameters
    ----------
    upright
        ``(s, s)`` bool de-tilted outline.
    """
    rows = np.flatnonzero(upright.any(axis=1))
    cols = np.flatnonzero(upright.any(axis=0))
    aspect = (cols[-1] - cols[0] + 1) / max(rows[-1] - rows[0] + 1, 1)
    return aspect >= WIDE_ASPECT and solidity < NOTCHED_SOLIDITY


def _upright_box(
    binary: np.ndarray, kind: PriorKind, tilt: float, solidity: float
) -> tuple[PriorKind, float]:
    """Boxes stand upright: prefer a box seen from a raised three-quarter view to a roll.

    A box turned to the camera is no mirror image of itself, so the symmetry search may
    report a roll that only makes the outline more symmetric (a book at yaw 25 rolled by 15
    degrees). If the outline as photographed is a box seen from above and to one side - or,
    for an outline no other prior explains, its convex hull is (a toy car) - it is a box
    (carved by the outline when needed) with no roll.

    Parameters
    ----------
    binary
        ``(s, s)`` bool outline as photographed (not de-tilted).
    """
    from .boxfit import HULL_MIN_IOU, HULL_MIN_PITCH_DEG, HULL_MIN_YAW_DEG, convex_hull, fit_box

    mask = binary.astype(np.float32)
    if fit_box(mask).depth_observed:
        return PriorKind.BOX, 0.0
    if kind is PriorKind.INFLATION and solidity >= MIN_CARVED_SOLIDITY:
        hull = fit_box(convex_hull(mask), min_iou=HULL_MIN_IOU)
        raised = hull.pitch_deg >= HULL_MIN_PITCH_DEG and abs(hull.yaw_deg) >= HULL_MIN_YAW_DEG
        if hull.depth_observed and raised:
            return PriorKind.BOX, 0.0
    return kind, tilt


def _handle_fraction(upright: np.ndarray, core: np.ndarray, axis: float) -> float:
    """Share of the outline in parts outside the symmetric body, all on one side of the axis,
    that close a loop (a handle is a loop: the backdrop shows through it).

    Without the loop test a toy van's bonnet, sticking out of its symmetric box body on one
    side, read as a mug's handle.
    """
    residual = upright & ~core
    residual = ndimage.binary_opening(residual, iterations=1)
    labels, n = label(residual)
    if n == 0:
        return 0.0
    sizes = sums(residual, labels, n)
    big = 1 + np.flatnonzero(sizes >= 0.01 * upright.sum())
    if big.size == 0:
        return 0.0
    parts = np.isin(labels, big)
    holes = fill_holes(upright) & ~upright
    near = np.asarray(ndimage.binary_dilation(parts, iterations=2), dtype=bool)
    if not (holes & near).any():
        return 0.0
    cols = np.nonzero(parts)[1]
    sides = np.sign(cols - axis)
    if np.all(sides > 0) or np.all(sides < 0):
        return float(sizes[big - 1].sum()) / float(upright.sum())
    return 0.0


def shading_is_curved(rgb: np.ndarray, inside: np.ndarray) -> bool:
    """Whether brightness across the object changes smoothly (a curved side) rather than in
    at most one step (one or two flat faces of a box).

    Parameters
    ----------
    rgb
        ``(s, s, 3)`` uint8 photo, upright.
    inside
        ``(s, s)`` bool object mask, same frame.
    """
    lum = rgb.astype(np.float32).mean(axis=2)  # (s, s) float
    rows = np.flatnonzero(inside.any(axis=1))
    band = slice(rows[0] + len(rows) // 5, rows[-1] - len(rows) // 5 + 1)
    core = ndimage.binary_erosion(inside, iterations=2)[band]
    cols = np.flatnonzero(core.all(axis=0))
    if cols.size < 12:
        return False
    profile = np.median(lum[band][:, cols], axis=0)  # (k,) float, left to right
    spread = float(profile.std())
    if spread < 4.0:  # evenly lit: a flat face towards the camera
        return False
    # Best fit by two constant pieces (one edge between two faces).
    csum, csq = np.cumsum(profile), np.cumsum(profile**2)
    n = np.arange(1, len(profile))
    left_var = csq[:-1] - csum[:-1] ** 2 / n
    right_n = len(profile) - n
    right_var = (csq[-1] - csq[:-1]) - (csum[-1] - csum[:-1]) ** 2 / right_n
    step_residual = float(np.sqrt(np.min(left_var + right_var) / len(profile)))
    return step_residual > 0.3 * spread
