"""The box prior: an upright rounded box fitted with the camera's yaw and pitch.

Frames as in :mod:`.field`.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .boxfit import BOX_DEPTH_RATIO, HULL_MIN_IOU, BoxFit, convex_hull, fit_box
from .field import Volume, lattice, signed_distance_2d
from .profile import Profile, fit_profile, profile_values
from .silhouette import PriorKind

#: A box whose projected outline covers the photo's outline worse than this (IoU) is not the
#: object's shape, only its bounding box (a toy car, a shoe, a stapler): it is fitted to the
#: outline's convex hull and then carved by the outline (see :func:`box_field`).
CARVE_BELOW_IOU = 0.95


def box_field(
    mask: np.ndarray, depth_ratio: float = BOX_DEPTH_RATIO, *, max_faces: int | None = None
) -> Volume:
    """Upright rounded box fitted to the outline with the camera's yaw and pitch.

    The box's analytic distance field is sampled in the camera frame, so the mesh lines up
    with the photo (texture, self-check IoU); ``to_object`` turns it upright afterwards. Its
    faces are exact planes: flat top and sides, true right angles.

    An outline the box explains poorly (fit IoU under :data:`CARVE_BELOW_IOU`: a toy car's
    wheels and cabin, a shoe) gets the box of its convex hull - length, width, height and the
    camera's angles from the object's extremes - intersected with the outline swept along the
    view direction (the visual hull of the one view): the object as seen, with a depth that
    comes from the fitted box instead of a balloon.

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
    carve = fit.iou < CARVE_BELOW_IOU
    extent = fit.half
    profile: Profile | None = None
    if carve:
        hull_fit = fit_box(convex_hull(mask), depth_ratio, min_iou=HULL_MIN_IOU)
        fit, profile = fit_profile(mask, hull_fit)
        extent = fit.half * [1.0, max(1.0, float(profile.heights.max()) / float(fit.half[1])), 1.0]
    rot = fit.rotation  # (3, 3) object -> camera
    xs, ys, zs, origin, spacing = _samples(mask, fit, extent, max_faces)
    if profile is not None:
        values = profile_values(fit, xs, ys, zs, profile)
    else:
        values = rounded_box_values(fit, xs, ys, zs)
    if carve:
        rows, cols = np.meshgrid(g - 1 - ys, xs, indexing="xy")  # (nx, ny) each
        swept = ndimage.map_coordinates(signed_distance_2d(mask), [rows, cols], order=1)
        np.minimum(values, swept[:, :, None], out=values)
    return Volume(
        values.astype(np.float32),
        origin,
        g,
        PriorKind.BOX.value,
        _details(fit, carve),
        spacing=spacing,
        to_object=rot.T,
        # A box is symmetric under a half turn about its vertical axis: its unseen faces are
        # textured like the seen faces opposite them.
        turn_axis=np.stack([fit.centre, rot[:, 1]]),
        # Carved, the faces are no longer the box's: texture by normals, not by box face.
        box=None if carve else fit,
    )


def _details(fit: BoxFit, carve: bool) -> dict[str, float]:
    """What the job's metrics record about the fitted box."""
    return {
        "depth_ratio": float(fit.half[2] / fit.half[0]),
        "half_depth_px": float(fit.half[2]),
        "yaw_deg": fit.yaw_deg,
        "pitch_deg": fit.pitch_deg,
        "fit_iou": fit.iou,
        "depth_observed": float(fit.depth_observed),
        "carved": float(carve),
    }


def _samples(
    mask: np.ndarray, fit: BoxFit, extent: np.ndarray, max_faces: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """Sample positions ``xs, ys, zs``, their ``origin`` and ``spacing`` for a fitted box.

    ``extent`` is the box's half size with room for a carved body's tallest slice.
    """
    corners = (
        np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]) * extent
    ) @ fit.rotation.T  # (8, 3) float, camera frame relative to the centre
    xs, ys, zs, origin = lattice(mask >= 0.5, float(np.abs(corners[:, 2]).max()))
    spacing = _spacing(extent, max_faces)
    if spacing > 1.0:
        xs = np.arange(xs[0], xs[-1] + spacing, spacing)
        ys = np.arange(ys[0], ys[-1] + spacing, spacing)
        zs = np.arange(zs[0], zs[-1] + spacing, spacing)
        origin = np.array([xs[0], ys[0], zs[0]], dtype=np.float64)
    return xs, ys, zs, origin, spacing


def _spacing(half: np.ndarray, max_faces: int | None) -> float:
    """Sampling step (grid pixels) whose marching-cubes mesh is about twice ``max_faces``."""
    if max_faces is None:
        return 1.0
    a, b, c = half
    area = 8.0 * (a * b + b * c + c * a)  # squared grid pixels
    # Marching cubes makes about 2 faces per crossed cell, ~1.4 cells per unit area on
    # faces skewed to the grid.
    return max(1.0, float(np.sqrt(2.8 * area / (2.0 * max_faces))))


def rounded_box_values(fit: BoxFit, xs: np.ndarray, ys: np.ndarray, zs: np.ndarray) -> np.ndarray:
    """``(nx, ny, nz)`` float32 field of the fitted box (corner radius 5 % of its least half).

    Parameters
    ----------
    xs, ys, zs
        Camera-frame sample positions (grid pixels).
    """
    rot, half = fit.rotation, fit.half
    rad = 0.05 * float(half.min())
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
    return (np.float32(rad) - outside - inner).astype(np.float32)
