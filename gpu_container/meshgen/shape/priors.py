"""Weight-free shape priors: an implicit field (positive inside) built from the outline.

Coordinates are in grid pixels of the square working image: ``x`` = column, ``y`` = rows
counted from the bottom (so y is up), ``z`` towards the camera with ``z = 0`` through the
object's middle. The camera looks along ``-z`` with an orthographic projection.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree
from skimage.measure import find_contours

from .silhouette import PriorKind

#: Depth of a box seen face-on, as a fraction of its width. A single photo cannot tell; this
#: is the median of packaging boxes (cereal, shoes, electronics) and is documented.
BOX_DEPTH_RATIO = 0.6
#: Thickest half-depth of an inflated outline, as a fraction of its thickest half-width.
INFLATION_DEPTH = 0.75
#: Margin (grid pixels) kept around the object in every field.
PAD = 2


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
    """

    values: np.ndarray
    origin: np.ndarray
    grid: int
    prior: str
    details: dict[str, float] = field(default_factory=dict)
    spacing: float = 1.0


def _row_extents(mask: np.ndarray, axis: float) -> tuple[np.ndarray, np.ndarray]:
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


def signed_distance_2d(mask: np.ndarray) -> np.ndarray:
    """Sub-pixel signed distance to the 0.5 level of a soft mask, positive inside.

    The outline is traced with marching squares, so anti-aliased edges give a smooth field
    (a distance transform of the binary mask would leave pixel steps on every surface).

    Parameters
    ----------
    mask
        ``(h, w)`` float 0..1.

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
        seg = np.diff(c, axis=0)
        steps = np.maximum(np.ceil(np.hypot(seg[:, 0], seg[:, 1]) / 0.25), 1).astype(int)
        t = np.concatenate([np.arange(n) / n for n in steps])
        start = np.repeat(c[:-1], steps, axis=0)
        dense.append(start + np.repeat(seg, steps, axis=0) * t[:, None])
    points = np.concatenate(dense) - 1.0  # (k, 2) float, (row, col)
    rows, cols = np.indices(mask.shape)
    dist, _ = cKDTree(points).query(np.stack([rows.ravel(), cols.ravel()], axis=1))
    return np.where(inside.ravel(), dist, -dist).reshape(mask.shape).astype(np.float32)


def _lattice(
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


def _bottom_up(image: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """``(nx, ny)`` samples of a rows-top-to-bottom ``(g, g)`` map at columns xs, heights ys."""
    g = image.shape[0]
    return image[np.ix_(g - 1 - ys, xs)].T


def revolution_field(mask: np.ndarray, axis: float, *, with_handle: bool) -> Volume:
    """Surface of revolution of the outline about a vertical axis, plus an optional handle.

    Parameters
    ----------
    mask
        ``(g, g)`` float 0..1 de-tilted outline, rows top to bottom.
    axis
        Column of the symmetry axis.
    with_handle
        Add the part of the outline that sticks out of the revolved body on one side as a
        rounded part whose depth equals its width in the photo (a mug handle's cross-section
        is about round).

    Returns
    -------
    Volume
        Field ``r(y) - hypot(x - axis, z)``; ``r`` is the radius of the symmetric core.
    """
    g = mask.shape[0]
    left, right = _row_extents(mask, axis)
    radius_tb = np.minimum(right - axis, axis - left)  # (g,) float, rows top to bottom
    radius_tb = ndimage.median_filter(np.clip(radius_tb, 0.0, None), size=3, mode="nearest")
    radius = radius_tb[::-1].astype(np.float32)  # rows from the bottom: index = y
    # The body is the part of the outline inside its own mirror image: revolve its profile.
    cols = np.arange(g, dtype=np.float64)
    mirror = ndimage.map_coordinates(
        mask, np.meshgrid(cols, 2.0 * axis - cols, indexing="ij"), order=1, cval=0.0
    )
    profile = signed_distance_2d(np.minimum(mask, mirror))  # (g, g) float, rows top to bottom
    xs, ys, zs, origin = _lattice(mask >= 0.5, float(radius.max()))
    dx = (xs - axis).astype(np.float32)[:, None, None]
    dz = zs.astype(np.float32)[None, None, :]
    # Linear interpolation of the profile along columns, shared by every height: gather two
    # columns per (x, z) instead of a generic 3-D interpolation.
    col = axis + np.sqrt(dx[:, 0, :] ** 2 + dz[:, 0, :] ** 2)  # (nx, nz) float
    c0 = np.floor(col).astype(np.intp)
    w = (col - c0).astype(np.float32)
    beyond = c0 >= g - 1
    c0 = np.clip(c0, 0, g - 2)
    rows = profile[g - 1 - ys]  # (ny, g) float32
    values = rows[:, c0] * (1.0 - w) + rows[:, c0 + 1] * w  # (ny, nx, nz)
    values[:, beyond] = -float(g)
    values = np.ascontiguousarray(values.transpose(1, 0, 2))  # (nx, ny, nz)
    details = {"axis_col": float(axis), "max_radius_px": float(radius.max())}
    if with_handle:
        core = np.abs(np.arange(g)[None, :] - axis) <= radius_tb[:, None]  # (g, g) bool
        handle = _handle_field(mask >= 0.5, core, g)
        if handle is not None:
            h2d, depth = handle  # (g, g) rows top-to-bottom
            h3d = _bottom_up(h2d, xs, ys)[:, :, None] - np.abs(dz)  # (nx, ny, nz)
            np.maximum(values, h3d, out=values)
            details["handle_depth_px"] = depth
    return Volume(values.astype(np.float32), origin, g, PriorKind.REVOLUTION.value, details)


def _handle_field(inside: np.ndarray, core: np.ndarray, g: int) -> tuple[np.ndarray, float] | None:
    """Half-depth map of the parts outside the revolved core (``None`` if there are none)."""
    residual = ndimage.binary_opening(inside & ~core, iterations=2)
    labels, n = ndimage.label(residual)
    if n == 0:
        return None
    sizes = ndimage.sum(residual, labels, index=np.arange(1, n + 1))
    keep = np.isin(labels, 1 + np.flatnonzero(sizes >= 0.01 * inside.sum()))
    if not keep.any():
        return None
    depth_in = ndimage.distance_transform_edt(keep | core)  # (g, g) float, grows into body
    cap = float(np.percentile(depth_in[keep], 90))
    outside = signed_distance_2d(keep.astype(np.float32))
    half = np.where(keep, np.minimum(depth_in, cap), outside)
    return half.astype(np.float32), cap


def box_field(mask: np.ndarray, depth_ratio: float = BOX_DEPTH_RATIO) -> Volume:
    """Rounded box: the outline's typical width, its full height, a constant depth.

    Rows are not followed one by one: a box photographed from a little above shows its top
    face as a slanted band, which is depth, not a narrowing of the box.

    Parameters
    ----------
    mask
        ``(g, g)`` float 0..1 de-tilted outline, rows top to bottom.
    depth_ratio
        Depth over width of the box.
    """
    g = mask.shape[0]
    inside = mask >= 0.5
    coverage = mask.sum(axis=1)  # (g,) float: sub-pixel width of each row
    rows = np.flatnonzero(inside.any(axis=1))
    half_w = 0.5 * float(np.median(coverage[rows]))
    weights = mask[rows].sum(axis=0)  # (g,) float
    centre = float((weights * np.arange(g)).sum() / weights.sum())
    half_d = depth_ratio * half_w
    # Top and bottom edges at sub-pixel precision from the coverage of the rows' centres.
    col = mask[:, int(np.clip(np.rint(centre), 0, g - 1))]
    top_row = rows[0] - (float(col[rows[0]]) - 0.5)
    bottom_row = rows[-1] + (float(col[rows[-1]]) - 0.5)
    half_h = 0.5 * (bottom_row - top_row)
    centre_y = g - 1 - 0.5 * (bottom_row + top_row)
    rad = 0.08 * min(half_w, half_d, half_h)
    xs, ys, zs, origin = _lattice(inside, half_d)
    q = [
        np.abs(xs - centre)[:, None, None] - (half_w - rad),
        np.abs(ys - centre_y)[None, :, None] - (half_h - rad),
        np.abs(zs)[None, None, :] - (half_d - rad),
    ]
    outside = np.sqrt(sum(np.maximum(a, 0.0) ** 2 for a in q))
    inner = np.minimum(np.maximum(np.maximum(q[0], q[1]), q[2]), 0.0)
    values = -(outside + inner - rad)  # (nx, ny, nz) float
    # Carve by the outline: nothing may stick out of what the camera saw. On a box shot from
    # above, this bevels the top edge the photo shows slanting instead of adding a wedge.
    outline = _bottom_up(signed_distance_2d(mask), xs, ys)  # (nx, ny) float
    values = np.minimum(values, outline[:, :, None])
    details = {"depth_ratio": float(depth_ratio), "half_depth_px": float(half_d)}
    return Volume(values.astype(np.float32), origin, g, PriorKind.BOX.value, details)


def inflation_field(mask: np.ndarray, depth: float = INFLATION_DEPTH) -> Volume:
    """Front/back mirror-symmetric rounded solid: half-depth grows like a circle from the rim.

    Parameters
    ----------
    mask
        ``(g, g)`` float 0..1 outline, rows top to bottom.
    depth
        Thickest half-depth as a fraction of the thickest half-width.
    """
    g = mask.shape[0]
    inside = mask >= 0.5
    sdf = signed_distance_2d(mask)  # (g, g) float
    dist = np.clip(sdf, 0.0, None)
    dmax = float(dist.max())
    half = depth * np.sqrt(dist * (2.0 * dmax - dist))
    half = np.where(sdf > 0, half, sdf).astype(np.float32)
    xs, ys, zs, origin = _lattice(inside, depth * dmax)
    values = _bottom_up(half, xs, ys)[:, :, None] - np.abs(zs)[None, None, :]  # (nx, ny, nz)
    return Volume(values, origin, g, PriorKind.INFLATION.value, {"depth": float(depth)})
