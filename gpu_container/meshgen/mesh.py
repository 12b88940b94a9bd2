"""From an implicit field to a clean, watertight, right-sized mesh."""

from __future__ import annotations

import numpy as np
import trimesh
from scipy import ndimage
from skimage.measure import marching_cubes

from .errors import BadInputError, GenerationError
from .ndtools import label, sums
from .shape.priors import Volume

#: Longest side of every asset, in metres. One photo carries no scale; 0.3 m is the size of
#: the typical product shot (bottle, mug, shoe box) and keeps viewers' default cameras useful.
TARGET_SIZE_M = 0.3


def mesh_from_volume(volume: Volume, level: float = 0.0) -> trimesh.Trimesh:
    """Marching cubes on the largest inside region of ``volume``, in grid-pixel coordinates.

    Parameters
    ----------
    volume
        Field positive inside.
    level
        Iso-level of the surface.

    Returns
    -------
    trimesh.Trimesh
        Closed surface with outward normals; vertices ``(n, 3)`` float in grid pixels.

    Raises
    ------
    BadInputError
        If the field has no inside.
    """
    values = volume.values
    inside = values > level
    labels, n = label(inside)
    if n == 0:
        raise BadInputError("the reconstruction is empty (nothing inside the shape field)")
    if n > 1:
        sizes = sums(inside, labels, n)
        keep = labels == 1 + int(np.argmax(sizes))
        # Stray islands become just-outside so marching cubes closes only the main part.
        values = np.where(keep | ~inside, values, level - 1e-3)
    # A border of outside cells guarantees a closed surface even where the object touches it.
    padded = np.pad(values, 1, mode="constant", constant_values=level - 1.0)
    verts, faces, _, _ = marching_cubes(padded, level=level, allow_degenerate=False)
    verts = (verts - 1.0) * volume.spacing + volume.origin  # (n, 3) float, grid pixels
    # Lewiner's marching cubes shares vertices along cell edges already: no merging needed.
    mesh = trimesh.Trimesh(verts, faces, process=False)
    if signed_volume(mesh) < 0:
        mesh.invert()
    return mesh


def signed_volume(mesh: trimesh.Trimesh) -> float:
    """Volume by the divergence theorem; negative when the faces wind inwards.

    Cheaper than ``mesh.volume``, which computes the full inertia tensor.
    """
    tri = mesh.vertices[mesh.faces]  # (m, 3, 3) float
    return float(np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6.0)


def downsampled(volume: Volume, stride: int) -> Volume:
    """Every ``stride``-th sample of a field (for previews), in the same coordinates."""
    if stride <= 1:
        return volume
    # Box-average before striding: plain striding aliases thin or curved parts into nubs.
    # A margin of outside samples first, so striding never steps over the object's edge.
    pad = stride * volume.spacing
    values = np.pad(volume.values, stride, mode="constant", constant_values=-pad)
    values = ndimage.uniform_filter(values, size=stride, mode="nearest")
    values = values[::stride, ::stride, ::stride]
    origin = volume.origin - pad
    return Volume(values, origin, volume.grid, volume.prior, volume.details, pad)


def clean_mesh(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """Main component only, no degenerate faces, consistent outward winding."""
    mesh = mesh.copy()
    nondegenerate = mesh.nondegenerate_faces()
    if not nondegenerate.all():
        mesh.update_faces(nondegenerate)
        mesh.remove_unreferenced_vertices()
    if mesh.body_count > 1:
        parts = mesh.split(only_watertight=False)
        mesh = max(parts, key=lambda m: len(m.faces))
    # Marching cubes and quadric decimation both keep a consistent winding; only the overall
    # sign can be off, and the signed volume tells.
    if signed_volume(mesh) < 0:
        mesh.invert()
    return mesh


def decimate(mesh: trimesh.Trimesh, max_faces: int) -> trimesh.Trimesh:
    """Quadric decimation (fast-simplification) down to ``max_faces``, keeping it watertight.

    If a decimation pass opens the surface, slightly lower targets are tried.

    Raises
    ------
    GenerationError
        If no pass gives a closed mesh within the budget (see :func:`mesh_within_budget`).
    """
    if len(mesh.faces) <= max_faces:
        return mesh
    for target in (max_faces, int(max_faces * 0.9), int(max_faces * 0.75)):
        out = mesh.simplify_quadric_decimation(face_count=target)
        out = clean_mesh(out)
        if out.is_watertight and len(out.faces) <= max_faces:
            return out
    raise GenerationError(f"could not decimate to {max_faces} faces and keep the mesh closed")


def to_metres(mesh: trimesh.Trimesh, size_m: float = TARGET_SIZE_M) -> np.ndarray:
    """Scale so the longest side is ``size_m``, stand on ``y = 0``, centre x and z (glTF).

    Changes ``mesh`` in place; returns the ``(4, 4)`` float transform applied.
    """
    lo, hi = mesh.bounds  # (3,) float each
    extent = float((hi - lo).max())
    if extent <= 0:
        raise BadInputError("the reconstruction is flat (zero size)")
    scale = size_m / extent
    centre = (lo + hi) / 2.0
    matrix = np.eye(4)
    matrix[:3, :3] *= scale
    matrix[:3, 3] = -scale * np.array([centre[0], lo[1], centre[2]])
    mesh.apply_transform(matrix)
    return matrix


#: Marching cubes may give at most this many times the face budget before decimation: quadric
#: decimation from much further away is slow and can stall above the target (seen on flat,
#: grid-skewed faces), so denser fields are meshed at a coarser sampling first.
MAX_DECIMATION_RATIO = 4.0


def estimated_faces(volume: Volume, level: float = 0.0) -> int:
    """Faces marching cubes would make: about two per sign change between neighbouring samples.

    Parameters
    ----------
    volume
        Field positive inside.
    level
        Iso-level of the surface.
    """
    inside = volume.values > level  # (nx, ny, nz) bool
    changes = sum(int(np.count_nonzero(np.diff(inside, axis=axis))) for axis in range(inside.ndim))
    return 2 * changes


def mesh_within_budget(volume: Volume, max_faces: int) -> trimesh.Trimesh:
    """Closed mesh of ``volume`` with at most ``max_faces`` faces.

    The field is meshed at the finest sampling whose marching-cubes mesh is within
    :data:`MAX_DECIMATION_RATIO` of the budget, then decimated. Where decimation cannot keep
    a surface closed (fine, noisy detail, as a learned field can have), the field is meshed
    again at coarser sampling, which marching cubes always closes, and decimated from there.
    """
    estimate = estimated_faces(volume)
    first = 1
    while first < 8 and estimate / first**2 > MAX_DECIMATION_RATIO * max_faces:
        first += 1
    for stride in sorted({first, 2 * first, 3 * first, 4 * first, 6 * first, 8 * first}):
        coarse = clean_mesh(mesh_from_volume(downsampled(volume, stride)))
        if len(coarse.faces) <= max_faces and coarse.is_watertight:
            return coarse
        try:
            return decimate(coarse, max_faces)
        except GenerationError:
            continue
    raise GenerationError(f"could not make a closed mesh within {max_faces} faces")
