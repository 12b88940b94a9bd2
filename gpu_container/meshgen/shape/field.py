"""Shared pieces of the shape priors: the sampled field, its lattice, outline distances.

Coordinates are in grid pixels of the square working image: ``x`` = column, ``y`` = rows
counted from the bottom (so y is up), ``z`` towards the camera with ``z = 0`` through the
object's middle. The camera looks along ``-z`` with an orthographic projection.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from scipy.spatial import KDTree
from skimage.measure import find_contours

from .boxfit import BoxFit

#: Margin (grid pixels) kept around the object in every field.
PAD = 2
#: Gaussian smoothing (in outline samples, about a pixel apart) of traced outlines. A soft
#: mask's edge still jitters by a few tenths of a pixel from row to row (sensor noise, JPEG),
#: which a surface of revolution turns into rings that flat shading shows as bands.
OUTLINE_SMOOTHING = 2.0


@dataclass
class Volume:
    """A sampled implicit field.

    Attributes
    ----------
    values
        ``(nx, ny, nz)`` float32, positive inside the object, in grid pixels.
    origin
        ``(3,)`` float: grid-pixel coordinates (x, y, z) of ``values[0, 0, 0]``.
    grid
        Size of the square working image the coordinates refer to.
    prior
        Name of the shape prior that built it.
    details
        Prior-specific numbers worth reporting (axis, depth ratio, ...).
    spacing
        Grid pixels between neighbouring samples.
    to_object
        ``(3, 3)`` float rotation from the camera frame to the object's upright frame (a box
        fitted with the camera's yaw and pitch is built as seen, then turned upright);
        ``None`` when the field is upright already.
    turn_axis
        ``(2, 3)`` float point and direction of the object's vertical axis in the camera
        frame, for texturing the unseen back by a half turn about it (see
        :func:`..texture.vertex_colours`); ``None``: the back mirrors the front.
    placement
        ``(4, 4)`` float transform from the field's frame to the camera frame, applied to the
        mesh before texturing and the self-check (a vessel seen from above is built upright,
        then tilted as the camera saw it); ``None``: the field is in the camera frame.
    box
        The fitted box of a box prior, so texturing can sample each face inside its own image
        region (crisp edges); ``None`` for other priors.
    """

    values: np.ndarray
    origin: np.ndarray
    grid: int
    prior: str
    details: dict[str, float] = field(default_factory=dict)
    spacing: float = 1.0
    to_object: np.ndarray | None = None
    turn_axis: np.ndarray | None = None
    placement: np.ndarray | None = None
    box: BoxFit | None = None


def row_extents(mask: np.ndarray, axis: float) -> tuple[np.ndarray, np.ndarray]:
    """Sub-pixel left/right edges of the run through column ``axis`` in every row.

    Parameters
    ----------
    mask
        ``(g, g)`` float 0..1, rows top to bottom.
    axis
        Column of the axis.

    Returns
    -------
    left, right
        ``(g,)`` float each; ``left == right == axis`` where the row misses the axis.
    """
    g = mask.shape[0]
    inside = mask >= 0.5  # (g, g) bool
    left = np.full(g, axis, dtype=np.float64)
    right = np.full(g, axis, dtype=np.float64)
    a = int(np.clip(np.rint(axis), 0, g - 1))
    for row in np.flatnonzero(inside[:, a]):
        line = mask[row]
        outside = ~inside[row]
        right_out = np.flatnonzero(outside[a:])
        j = a + (int(right_out[0]) if right_out.size else g - a)
        right[row] = _edge(line, j - 1, j) if j < g else g - 0.5
        left_out = np.flatnonzero(outside[: a + 1][::-1])
        j = a - (int(left_out[0]) if left_out.size else a + 1)
        left[row] = _edge(line, j + 1, j) if j >= 0 else -0.5
    return left, right


def _edge(line: np.ndarray, inner: int, outer: int) -> float:
    """Where the coverage crosses 0.5 between pixel centres ``inner`` (in) and ``outer`` (out)."""
    vi, vo = float(line[inner]), float(line[outer])
    t = (vi - 0.5) / max(vi - vo, 1e-6)
    return inner + (outer - inner) * min(max(t, 0.0), 1.0)


def signed_distance_2d(mask: np.ndarray, smoothing: float = OUTLINE_SMOOTHING) -> np.ndarray:
    """Sub-pixel signed distance to the 0.5 level of a soft mask, positive inside.

    The outline is traced with marching squares, so anti-aliased edges give a smooth field
    (a distance transform of the binary mask would leave pixel steps on every surface), and
    smoothed along its length.

    Parameters
    ----------
    mask
        ``(h, w)`` float 0..1.
    smoothing
        Gaussian sigma along the outline, in samples; 0 keeps it as traced.

    Returns
    -------
    numpy.ndarray
        ``(h, w)`` float32, in pixels.
    """
    padded = np.pad(mask.astype(np.float64), 1)  # closes contours touching the border
    contours = find_contours(padded, 0.5)
    inside = mask >= 0.5
    if not contours:
        return np.where(inside, 1.0, -1.0).astype(np.float32) * max(mask.shape)
    dense = []
    for c in contours:
        closed = len(c) > 3 and np.allclose(c[0], c[-1])
        if smoothing > 0 and closed:
            c = ndimage.gaussian_filter1d(c[:-1], smoothing, axis=0, mode="wrap")
            c = np.concatenate([c, c[:1]])
        seg = np.diff(c, axis=0)
        steps = np.maximum(np.ceil(np.hypot(seg[:, 0], seg[:, 1]) / 0.25), 1).astype(int)
        t = np.concatenate([np.arange(n) / n for n in steps])
        start = np.repeat(c[:-1], steps, axis=0)
        dense.append(start + np.repeat(seg, steps, axis=0) * t[:, None])
    points = np.concatenate(dense) - 1.0  # (k, 2) float, (row, col)
    rows, cols = np.indices(mask.shape)
    dist, _ = KDTree(points).query(np.stack([rows.ravel(), cols.ravel()], axis=1))
    return np.where(inside.ravel(), dist, -dist).reshape(mask.shape).astype(np.float32)


def lattice(
    inside: np.ndarray, z_half: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sample positions covering the object's box (plus :data:`PAD`), not the whole square.

    Parameters
    ----------
    inside
        ``(g, g)`` bool outline, rows top to bottom.
    z_half
        Largest half-depth of the object in grid pixels.

    Returns
    -------
    xs, ys, zs
        Integer sample positions: columns, rows from the bottom, depths.
    origin
        ``(3,)`` float coordinates of the first sample.
    """
    g = inside.shape[0]
    rows = np.flatnonzero(inside.any(axis=1))
    cols = np.flatnonzero(inside.any(axis=0))
    xs = np.arange(max(cols[0] - PAD, 0), min(cols[-1] + PAD + 1, g))
    y_lo, y_hi = g - 1 - rows[-1], g - 1 - rows[0]
    ys = np.arange(max(y_lo - PAD, 0), min(y_hi + PAD + 1, g))
    zmax = int(np.ceil(z_half)) + PAD
    zs = np.arange(-zmax, zmax + 1)
    return xs, ys, zs, np.array([xs[0], ys[0], zs[0]], dtype=np.float64)


def bottom_up(image: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """``(nx, ny)`` samples of a rows-top-to-bottom ``(g, g)`` map at columns xs, heights ys."""
    g = image.shape[0]
    return image[np.ix_(g - 1 - ys, xs)].T
