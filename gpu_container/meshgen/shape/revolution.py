"""Surfaces of revolution: bottles, vases, cans, and mugs (hollow, with a handle).

Frames as in :mod:`.field`.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..ndtools import distance, label, sums
from .boxfit import box_rotation
from .field import Volume, bottom_up, lattice, row_extents, signed_distance_2d
from .silhouette import PriorKind

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
    left, right = row_extents(mask, axis)
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
    left, right = row_extents(mask, axis)
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
    left, right = row_extents(mask, axis)
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
    xs, ys, zs, origin = lattice(mask >= 0.5, float(radius.max()))
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
        _add_handle(values, details, mask, radius, axis, (xs, ys, zs))
    volume = Volume(values.astype(np.float32), origin, g, PriorKind.REVOLUTION.value, details)
    if pitch > 0.0:
        _place_pitched(volume, axis, centre_y, pitch)
    return volume


def _add_handle(
    values: np.ndarray,
    details: dict[str, float],
    mask: np.ndarray,
    radius: np.ndarray,
    axis: float,
    samples: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    """Add the handle (if the outline has one) to ``values`` in place, and hollow the body.

    Parameters
    ----------
    values
        ``(nx, ny, nz)`` float field of the revolved body.
    radius
        ``(g,)`` float body radius per height (index = y from the bottom).
    samples
        ``xs, ys, zs`` sample positions of ``values``.
    """
    g = mask.shape[0]
    xs, ys, zs = samples
    radius_tb = radius[::-1]
    core = np.abs(np.arange(g)[None, :] - axis) <= radius_tb[:, None]  # (g, g) bool
    handle = _handle_field(mask >= 0.5, core, g)
    if handle is None:
        return
    h2d, depth = handle  # (g, g) rows top-to-bottom
    dz = zs.astype(np.float32)[None, None, :]
    h3d = bottom_up(h2d, xs, ys)[:, :, None] - np.abs(dz)  # (nx, ny, nz)
    np.maximum(values, h3d, out=values)
    details["handle_depth_px"] = depth
    # A handle says "mug": open it at the top so it reads as one from above.
    cavity = _cavity_field(radius, xs, ys, zs, axis)
    if cavity is not None:
        np.minimum(values, -cavity, out=values)
        details["wall_px"] = float(WALL_FRACTION * radius.max())


def _place_pitched(volume: Volume, axis: float, centre_y: float, pitch: float) -> None:
    """Built upright, tilted as the camera saw it for texturing and the self-check, and
    delivered upright again."""
    rot = box_rotation(0.0, pitch)  # (3, 3) object -> camera
    centre = np.array([axis, centre_y, 0.0])
    placement = np.eye(4)
    placement[:3, :3] = rot
    placement[:3, 3] = centre - rot @ centre
    volume.placement = placement
    volume.to_object = rot.T
    volume.details.update(pitch_deg=pitch, yaw_deg=0.0)


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
    labels, n = label(residual)
    if n == 0:
        return None
    sizes = sums(residual, labels, n)
    keep = np.isin(labels, 1 + np.flatnonzero(sizes >= 0.01 * inside.sum()))
    if not keep.any():
        return None
    depth_in = distance(keep | core)  # (g, g) float, grows into body
    cap = float(np.percentile(depth_in[keep], 90))
    outside = signed_distance_2d(keep.astype(np.float32))
    half = np.where(keep, np.minimum(depth_in, cap), outside)
    return half.astype(np.float32), cap
