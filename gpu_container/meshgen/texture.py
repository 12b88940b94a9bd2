"""Vertex colours from the photo: the front as seen, the back as a plausible mirror of it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

from .ndtools import nearest_indices

if TYPE_CHECKING:
    from .shape import BoxFit

#: How much of the back's colour is the object's mean colour rather than the mirrored front:
#: a label printed on the front rarely repeats on the back, but the body colour does.
BACK_MEAN_WEIGHT = 0.35
#: How far (grid pixels, as projected) inside its own face's image region a box vertex is
#: sampled: the photo's edge between two faces is blurred over a pixel or two, and the fitted
#: box sits within about a pixel of the true one.
FACE_MARGIN_PX = 2.0
#: Half-height (fraction of the object's height in the photo) of the band of rows whose median
#: colours a cap: a revolved object's top and bottom are seen edge-on, as one row of pixels.
CAP_BAND = 0.04
#: ``|n_y|`` from which a vertex counts as part of a cap (fully so from ``+ 0.25``).
CAP_START = 0.6


def snap_to_box_faces(
    vertices: np.ndarray, normals: np.ndarray, box: BoxFit
) -> tuple[np.ndarray, np.ndarray]:
    """Move each vertex inside the face of ``box`` it lies on, and give it that face's normal.

    A vertex near an edge projects next to the edge in the photo, where the neighbouring face's
    colour is a pixel away: sampling there saw-tooths the edge. Sampling a few projected pixels
    inside the vertex's own face keeps edges crisp.

    Parameters
    ----------
    vertices
        ``(n, 3)`` float, camera frame (grid pixels).
    normals
        ``(n, 3)`` float unit vertex normals, camera frame: they pick the face (a vertex a
        fraction of a pixel from an edge may be nearer the other face's plane).
    box
        The fitted box (centre, half extents, object-to-camera rotation).

    Returns
    -------
    points, normals
        ``(n, 3)`` float sample points and ``(n, 3)`` float face normals, camera frame.
    """
    rot = box.rotation  # (3, 3) object -> camera
    half = np.asarray(box.half, dtype=np.float64)  # (3,) float
    local = (vertices - box.centre) @ rot  # (n, 3) float, object frame
    n_obj = normals @ rot  # (n, 3) float, object frame
    face = np.argmax(np.abs(n_obj), axis=1)  # (n,) int: the face the vertex shades as
    # On face i, a step along its axis j moves the projection away from the edges running
    # along its other axis k by |p_j x p_k| / |p_k| grid pixels (p: projected unit axes).
    axes = rot[:2, :].T  # (3, 2) float
    limit = np.empty((3, 3))  # [face, axis] half extent of the sampled part of the face
    for i in range(3):
        for j in range(3):
            k = 3 - i - j
            if j == i:
                limit[i, j] = half[j]
                continue
            pj, pk = axes[j], axes[k]
            away = abs(pj[0] * pk[1] - pj[1] * pk[0]) / max(float(np.linalg.norm(pk)), 1e-6)
            margin = min(FACE_MARGIN_PX / max(away, 1e-3), 0.4 * half[j])
            limit[i, j] = half[j] - margin
    snapped = np.clip(local, -limit[face], limit[face])
    rows = np.arange(len(local))
    snapped[rows, face] = local[rows, face]  # stay on the face's plane
    normals = np.zeros_like(local)
    normals[rows, face] = np.where(n_obj[rows, face] < 0.0, -1.0, 1.0)
    return snapped @ rot.T + box.centre, normals @ rot.T


def band_medians(rgb: np.ndarray, inside: np.ndarray, rows: np.ndarray, half: int) -> np.ndarray:
    """Median colour of the object's pixels in the band of rows around each of ``rows``.

    Parameters
    ----------
    rgb
        ``(s, s, 3)`` photo.
    inside
        ``(s, s)`` bool object mask.
    rows
        ``(n,)`` int row indices.
    half
        Half-height of the band in rows.

    Returns
    -------
    numpy.ndarray
        ``(n, 3)`` float; the mean colour of the object where a band holds none of it.
    """
    out = np.empty((len(rows), 3), dtype=np.float32)
    fallback = rgb[inside].astype(np.float32).mean(axis=0) if inside.any() else rgb.mean((0, 1))
    for r in np.unique(rows):
        lo, hi = max(int(r) - half, 0), int(r) + half + 1
        pixels = rgb[lo:hi][inside[lo:hi]]  # (k, 3)
        out[rows == r] = np.median(pixels, axis=0) if len(pixels) else fallback
    return out


def fill_background(rgb: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Replace every pixel outside the object by the nearest pixel inside it.

    Vertices on the rim project onto the outline, where background would bleed in.

    Parameters
    ----------
    rgb
        ``(h, w, 3)`` uint8 photo.
    inside
        ``(h, w)`` bool object mask.
    """
    core = np.asarray(ndimage.binary_erosion(inside, iterations=1), dtype=bool)
    if not core.any():
        core = inside
    rows, cols = nearest_indices(~core)
    return rgb[rows, cols]


def _turn_away_side(
    vertices: np.ndarray, normals: np.ndarray, turn_axis: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Where vertices turned away from the camera sample, and which are never seen.

    A vertex whose normal points away takes its image under a half turn about the vertical
    axis; one pointing down along the axis is marked unseen.

    Returns
    -------
    tuple of numpy.ndarray
        ``(n, 3)`` float sampling positions and ``(n,)`` bool unseen flags.
    """
    point, up = turn_axis[0], turn_axis[1] / np.linalg.norm(turn_axis[1])
    rel = vertices - point  # (n, 3) float
    turned = point + 2.0 * (rel @ up)[:, None] * up[None, :] - rel
    away = normals[:, 2] < 0.0
    return np.where(away[:, None], turned, vertices), normals @ up < -0.5


def _blend_caps(
    front: np.ndarray, normals: np.ndarray, rgb: np.ndarray, inside: np.ndarray, rows: np.ndarray
) -> None:
    """Blend ``front`` (``(n, 3)`` float, in place) toward band medians where normals face up/down.

    A cap seen edge-on lands on a single photo row; the median of a band of rows around it
    keeps that row's streak out of the whole cap.
    """
    ny = np.abs(normals[:, 1])
    cap = ny > CAP_START
    if not cap.any():
        return
    object_rows = np.flatnonzero(inside.any(axis=1))
    band = max(1, int(np.rint(CAP_BAND * (object_rows[-1] - object_rows[0] + 1))))
    weight = np.clip((ny[cap] - CAP_START) / 0.25, 0.0, 1.0)[:, None]
    median = band_medians(rgb, inside, rows[cap], band)
    front[cap] = front[cap] * (1.0 - weight) + median * weight


def vertex_colours(
    vertices: np.ndarray,
    normals: np.ndarray,
    rgb: np.ndarray,
    inside: np.ndarray,
    grid: int,
    *,
    turn_axis: np.ndarray | None = None,
    box: BoxFit | None = None,
    caps: bool = False,
) -> np.ndarray:
    """Colour each vertex from the photo by orthographic projection along the view axis.

    Parameters
    ----------
    vertices
        ``(n, 3)`` float, grid-pixel coordinates (x = column, y = rows from the bottom).
    normals
        ``(n, 3)`` float unit vertex normals; ``z > 0`` faces the camera.
    rgb
        ``(s, s, 3)`` uint8 photo aligned with the grid (same square, any resolution).
    inside
        ``(s, s)`` bool object mask at the photo's resolution.
    grid
        Size of the square grid the vertex coordinates refer to.
    turn_axis
        ``(2, 3)`` float: a point on the object's vertical axis and its unit direction. Faces
        turned away take the colour of their image under a half turn about it (see
        :func:`_turn_away_side`); ``None``: the back mirrors the front through ``z = const``.
    box
        A box prior's fitted box: each vertex sampled in its face's image region.
    caps
        Colour caps seen edge-on from a band of rows (see :func:`_blend_caps`).

    Returns
    -------
    numpy.ndarray
        ``(n, 4)`` uint8 RGBA.
    """
    s = rgb.shape[0]
    filled = fill_background(rgb, inside).astype(np.float32)  # (s, s, 3)
    unseen = np.zeros(len(vertices), dtype=bool)
    if box is not None:
        vertices, normals = snap_to_box_faces(vertices, normals, box)
    if turn_axis is not None:
        vertices, unseen = _turn_away_side(vertices, normals, turn_axis)
    scale = s / grid
    cols = np.clip(np.rint((vertices[:, 0] + 0.5) * scale - 0.5), 0, s - 1).astype(int)
    rows = np.clip(np.rint((grid - 0.5 - vertices[:, 1] + 0.5) * scale - 0.5), 0, s - 1).astype(int)
    front = filled[rows, cols]  # (n, 3) float
    if caps and inside.any():
        _blend_caps(front, normals, rgb, inside, rows)
    mean = rgb[inside].astype(np.float32).mean(axis=0) if inside.any() else front.mean(axis=0)
    # Blend from the seen front to the guessed back as the normal turns away from the camera.
    facing = np.clip(normals[:, 2], -1.0, 1.0)  # (n,) float
    back_weight = BACK_MEAN_WEIGHT * np.clip(-facing * 2.0, 0.0, 1.0)[:, None]
    colour = front * (1.0 - back_weight) + mean[None, :] * back_weight
    colour[unseen] = mean
    alpha = np.full((len(vertices), 1), 255.0, dtype=np.float32)
    return np.clip(np.concatenate([colour, alpha], axis=1), 0, 255).astype(np.uint8)
