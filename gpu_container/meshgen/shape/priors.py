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

from .boxfit import BOX_DEPTH_RATIO, BoxFit, box_rotation, fit_box
from .silhouette import PriorKind

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


#: Gaussian smoothing (in outline samples, about a pixel apart) of traced outlines. A soft
#: mask's edge still jitters by a few tenths of a pixel from row to row (sensor noise, JPEG),
#: which a surface of revolution turns into rings that flat shading shows as bands.
OUTLINE_SMOOTHING = 2.0
#: Gaussian sigma (grid pixels) on a surface of revolution's profile distance field.
PROFILE_SMOOTHING = 1.5
#: Wall thickness of a hollowed vessel (mug) as a fraction of its largest radius: a ceramic
#: mug's 5 mm wall on a 40 mm radius. Its floor is 1.5 times as thick.
WALL_FRACTION = 0.1
#: A vessel's rim ellipse is taken as the camera looking down only from this pitch: below it
#: the rounded lip alone bulges the outline's top by a pixel or two.
MIN_RIM_PITCH_DEG = 4.0
#: Part of the outline's height, below the top and above the bottom, whose width is the rim's
#: (or the foot's) major axis.
RIM_BAND = (0.08, 0.3)


def rim_pitch(mask: np.ndarray, axis: float) -> float:
    """Camera pitch (degrees, looking down) from the ellipse of a vessel's rim in its outline.

    Seen from above, a circular rim of radius ``a`` projects to an ellipse with semi-axes
    ``a`` and ``a sin(pitch)``: the outline's top is its upper half. The top edge above each
    column ``x`` (from the axis) is fitted by ``y0 + b sqrt(1 - (x / a)^2)``; ``b / a`` is the
    sine of the pitch.

    Parameters
    ----------
    mask
        ``(g, g)`` float 0..1 de-tilted outline, rows top to bottom.
    axis
        Column of the symmetry axis.

    Returns
    -------
    float
        Pitch in degrees, 0 when no rim ellipse is seen.
    """
    g = mask.shape[0]
    inside = mask >= 0.5
    rows = np.flatnonzero(inside.any(axis=1))
    if rows.size < 10:
        return 0.0
    top_row, height = int(rows[0]), int(rows[-1] - rows[0] + 1)
    left, right = _row_extents(mask, axis)
    radius = np.minimum(right - axis, axis - left)  # (g,) float, rows top to bottom
    lo, hi = top_row + int(RIM_BAND[0] * height), top_row + max(int(RIM_BAND[1] * height), 2)
    a = float(np.median(radius[lo:hi]))
    if a < 4.0:
        return 0.0
    cols = np.arange(int(np.ceil(axis - 0.9 * a)), int(np.floor(axis + 0.9 * a)) + 1)
    cols = cols[(cols >= 0) & (cols < g)]
    covered = inside[:, cols]  # (g, k) bool
    has = covered.any(axis=0)
    if has.sum() < 5:
        return 0.0
    top_y = (g - 1 - np.argmax(covered, axis=0))[has].astype(np.float64)  # (k,) float
    x = (cols[has] - axis) / a
    basis = np.stack([np.ones_like(x), np.sqrt(np.clip(1.0 - x**2, 0.0, 1.0))], axis=1)
    (_, b), *_ = np.linalg.lstsq(basis, top_y, rcond=None)
    if b <= 0.0:
        return 0.0
    return float(np.degrees(np.arcsin(min(b / a, 0.95))))


def unpitched(mask: np.ndarray, axis: float, pitch_deg: float) -> tuple[np.ndarray, float]:
    """The outline a vessel seen from ``pitch_deg`` above would have seen from the side.

    The rim's and the foot's ellipses add ``r sin(pitch)`` above and below the walls, and the
    walls are shortened by ``cos(pitch)``: both are undone, so revolving the result gives the
    vessel's true height and a flat rim instead of a dome.

    Parameters
    ----------
    mask
        ``(g, g)`` float 0..1 de-tilted outline, rows top to bottom.
    axis
        Column of the symmetry axis.
    pitch_deg
        Camera pitch (looking down).

    Returns
    -------
    mask, centre_y
        ``(g, g)`` float 0..1 side-on outline and the height (y up) it was stretched about.
    """
    g = mask.shape[0]
    s, c = np.sin(np.radians(pitch_deg)), np.cos(np.radians(pitch_deg))
    rows = np.flatnonzero((mask >= 0.5).any(axis=1))
    top_row, bottom_row = int(rows[0]), int(rows[-1])
    height = bottom_row - top_row + 1
    left, right = _row_extents(mask, axis)
    radius = np.minimum(right - axis, axis - left)  # (g,) float, rows top to bottom
    top_r = float(
        np.median(
            radius[top_row + int(RIM_BAND[0] * height) : top_row + int(RIM_BAND[1] * height) + 1]
        )
    )
    foot = radius[
        bottom_row - int(RIM_BAND[1] * height) : bottom_row - int(RIM_BAND[0] * height) + 1
    ]
    foot_r = float(np.median(foot)) if foot.size else top_r
    y_top = (g - 1 - top_row + 0.5) - top_r * s  # rim ellipse's centre, y up
    y_bottom = (g - 1 - bottom_row - 0.5) + foot_r * s
    centre = 0.5 * (y_top + y_bottom)
    half = 0.5 * (y_top - y_bottom) / c  # half-height of the walls seen side-on
    y_obj = g - 1 - np.arange(g, dtype=np.float64)  # (g,) float
    y_img = centre + (y_obj - centre) * c
    src_rows = g - 1 - y_img
    rr, cc = np.meshgrid(src_rows, np.arange(g, dtype=np.float64), indexing="ij")
    side = ndimage.map_coordinates(mask.astype(np.float64), [rr, cc], order=1, cval=0.0)
    within = np.clip(half - np.abs(y_obj - centre) + 0.5, 0.0, 1.0)  # (g,) float
    return np.minimum(side, within[:, None]).astype(np.float32), float(centre)


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
    pitch = rim_pitch(mask, axis) if with_handle else 0.0
    centre_y = 0.0
    if pitch >= MIN_RIM_PITCH_DEG:
        mask, centre_y = unpitched(mask, axis, pitch)
    else:
        pitch = 0.0
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
    # Where the two sides' edges cross, the minimum has a crease: smoothed away with the rest
    # of the row-to-row jitter, so the revolved wall has no rings.
    profile = ndimage.gaussian_filter(profile, PROFILE_SMOOTHING)
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
            # A handle says "mug": open it at the top so it reads as one from above.
            cavity = _cavity_field(radius, xs, ys, zs, axis)
            if cavity is not None:
                np.minimum(values, -cavity, out=values)
                details["wall_px"] = float(WALL_FRACTION * radius.max())
    volume = Volume(values.astype(np.float32), origin, g, PriorKind.REVOLUTION.value, details)
    if pitch > 0.0:
        # Built upright, tilted as the camera saw it for texturing and the self-check, and
        # delivered upright again.
        rot = box_rotation(0.0, pitch)  # (3, 3) object -> camera
        centre = np.array([axis, centre_y, 0.0])
        placement = np.eye(4)
        placement[:3, :3] = rot
        placement[:3, 3] = centre - rot @ centre
        volume.placement = placement
        volume.to_object = rot.T
        details.update(pitch_deg=pitch, yaw_deg=0.0)
    return volume


def _cavity_field(
    radius: np.ndarray, xs: np.ndarray, ys: np.ndarray, zs: np.ndarray, axis: float
) -> np.ndarray | None:
    """Open-topped cavity of a vessel: positive inside the hollow, in grid pixels.

    Parameters
    ----------
    radius
        ``(g,)`` float radius of the revolved body per height (index = y from the bottom).
    xs, ys, zs
        Sample positions of the field.
    axis
        Column of the axis.

    Returns
    -------
    numpy.ndarray or None
        ``(nx, ny, nz)`` float, ``min(inner radius - rho, y - floor)``; the inner radius
        continues above the rim so the top is open. ``None`` if the body is too small.
    """
    rows = np.flatnonzero(radius > 0.5)
    if rows.size < 8:
        return None
    wall = max(WALL_FRACTION * float(radius.max()), 1.5)
    smooth = ndimage.gaussian_filter1d(radius.astype(np.float64), 2.0)  # (g,) float
    bottom, top = int(rows[0]), int(rows[-1])
    # Below the rounded rim the wall follows the body; above it the rim's radius carries on.
    rim = top - max(3, (top - bottom) // 20)
    inner = smooth - wall
    inner[rim:] = inner[rim]
    floor = bottom + 1.5 * wall
    if inner[rim] < 2.0 * wall or rim - floor < 2.0 * wall:
        return None
    y_idx = np.clip(ys, 0, len(radius) - 1).astype(np.intp)
    inner_y = inner[y_idx].astype(np.float32)  # (ny,) float
    rho = np.hypot((xs - axis)[:, None].astype(np.float32), zs[None, :].astype(np.float32))
    side = inner_y[None, :, None] - rho[:, None, :]  # (nx, ny, nz)
    return np.minimum(side, (ys - floor).astype(np.float32)[None, :, None])


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


def box_field(
    mask: np.ndarray, depth_ratio: float = BOX_DEPTH_RATIO, *, max_faces: int | None = None
) -> Volume:
    """Upright rounded box fitted to the outline with the camera's yaw and pitch.

    The box's analytic distance field is sampled in the camera frame, so the mesh lines up
    with the photo (texture, self-check IoU); ``to_object`` turns it upright afterwards. Its
    faces are exact planes: flat top and sides, nothing trimmed to the outline.

    Parameters
    ----------
    mask
        ``(g, g)`` float 0..1 de-tilted outline, rows top to bottom.
    depth_ratio
        Depth over width when the outline cannot tell (a box seen face-on).
    max_faces
        Face budget of the final mesh. Flat faces need no fine sampling, so the exact field
        is sampled only as densely as makes marching cubes give about twice the budget
        (decimation then reaches it quickly); ``None``: every grid pixel.
    """
    g = mask.shape[0]
    fit: BoxFit = fit_box(mask, depth_ratio)
    rot = fit.rotation  # (3, 3) object -> camera
    half = fit.half
    rad = 0.05 * float(half.min())
    corners = (
        np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]) * half
    ) @ rot.T  # (8, 3) float, camera frame relative to the centre
    z_half = float(np.abs(corners[:, 2]).max())
    xs, ys, zs, origin = _lattice(mask >= 0.5, z_half)
    spacing = 1.0
    if max_faces is not None:
        a, b, c = half
        area = 8.0 * (a * b + b * c + c * a)  # squared grid pixels
        # Marching cubes makes about 2 faces per crossed cell, ~1.4 cells per unit area on
        # faces skewed to the grid.
        spacing = max(1.0, float(np.sqrt(2.8 * area / (2.0 * max_faces))))
    if spacing > 1.0:
        xs = np.arange(xs[0], xs[-1] + spacing, spacing)
        ys = np.arange(ys[0], ys[-1] + spacing, spacing)
        zs = np.arange(zs[0], zs[-1] + spacing, spacing)
        origin = np.array([xs[0], ys[0], zs[0]], dtype=np.float64)
    # Camera-frame samples relative to the box centre, turned into the object frame
    # (rows of rot are the camera axes in object coordinates: p_obj = rot.T @ p_cam).
    dx = (xs - fit.centre[0]).astype(np.float32)
    dy = (ys - fit.centre[1]).astype(np.float32)
    dz = zs.astype(np.float32)
    r = rot.astype(np.float32)
    # Per object axis, |coordinate| - (half - rad): the rounded box's distance, one axis at a
    # time, so no (nx, ny, nz, 3) array is ever held.
    q = [
        np.abs(
            dx[:, None, None] * r[0, i] + dy[None, :, None] * r[1, i] + dz[None, None, :] * r[2, i]
        )
        - np.float32(half[i] - rad)
        for i in range(3)
    ]  # 3 x (nx, ny, nz) float
    outside = np.sqrt(sum(np.maximum(a, 0.0) ** 2 for a in q))
    inner = np.minimum(np.maximum(np.maximum(q[0], q[1]), q[2]), 0.0)
    values = np.float32(rad) - outside - inner  # (nx, ny, nz) float
    details = {
        "depth_ratio": float(half[2] / half[0]),
        "half_depth_px": float(half[2]),
        "yaw_deg": fit.yaw_deg,
        "pitch_deg": fit.pitch_deg,
        "fit_iou": fit.iou,
        "depth_observed": float(fit.depth_observed),
    }
    return Volume(
        values.astype(np.float32),
        origin,
        g,
        PriorKind.BOX.value,
        details,
        spacing=spacing,
        to_object=rot.T,
        # A box is symmetric under a half turn about its vertical axis: its unseen faces are
        # textured like the seen faces opposite them.
        turn_axis=np.stack([fit.centre, rot[:, 1]]),
        box=fit,
    )


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
