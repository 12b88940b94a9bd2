"""The inflation prior: a rounded solid, front/back mirror-symmetric, for anything else."""

from __future__ import annotations

import numpy as np

from .field import Volume, bottom_up, lattice, signed_distance_2d
from .silhouette import PriorKind

#: Thickest half-depth of an inflated outline, as a fraction of its thickest half-width.
INFLATION_DEPTH = 0.75


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
    xs, ys, zs, origin = lattice(inside, depth * dmax)
    values = bottom_up(half, xs, ys)[:, :, None] - np.abs(zs)[None, None, :]  # (nx, ny, nz)
    return Volume(values, origin, g, PriorKind.INFLATION.value, {"depth": float(depth)})
