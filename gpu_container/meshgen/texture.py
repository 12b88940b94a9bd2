"""Vertex colours from the photo: the front as seen, the back as a plausible mirror of it."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

#: How much of the back's colour is the object's mean colour rather than the mirrored front:
#: a label printed on the front rarely repeats on the back, but the body colour does.
BACK_MEAN_WEIGHT = 0.35


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
    core = ndimage.binary_erosion(inside, iterations=1)
    if not core.any():
        core = inside
    _, (rows, cols) = ndimage.distance_transform_edt(~core, return_indices=True)
    return rgb[rows, cols]


def vertex_colours(
    vertices: np.ndarray,
    normals: np.ndarray,
    rgb: np.ndarray,
    inside: np.ndarray,
    grid: int,
    *,
    turn_axis: np.ndarray | None = None,
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
        ``(2, 3)`` float: a point on the object's vertical axis and its unit direction, in
        the vertex frame. Vertices turned away from the camera then take the colour of their
        image under a half turn about that axis (a box's back-left face looks like its
        front-right face), and faces pointing down along it (never seen) the mean colour.
        ``None``: the back mirrors the front through the plane ``z = const``.

    Returns
    -------
    numpy.ndarray
        ``(n, 4)`` uint8 RGBA.
    """
    s = rgb.shape[0]
    filled = fill_background(rgb, inside).astype(np.float32)  # (s, s, 3)
    unseen = np.zeros(len(vertices), dtype=bool)
    if turn_axis is not None:
        point, up = turn_axis[0], turn_axis[1] / np.linalg.norm(turn_axis[1])
        rel = vertices - point  # (n, 3) float
        turned = point + 2.0 * (rel @ up)[:, None] * up[None, :] - rel
        away = normals[:, 2] < 0.0
        vertices = np.where(away[:, None], turned, vertices)
        unseen = normals @ up < -0.5
    scale = s / grid
    cols = np.clip(np.rint((vertices[:, 0] + 0.5) * scale - 0.5), 0, s - 1).astype(int)
    rows = np.clip(np.rint((grid - 0.5 - vertices[:, 1] + 0.5) * scale - 0.5), 0, s - 1).astype(int)
    front = filled[rows, cols]  # (n, 3) float
    mean = rgb[inside].astype(np.float32).mean(axis=0) if inside.any() else front.mean(axis=0)
    # Blend from the seen front to the guessed back as the normal turns away from the camera.
    facing = np.clip(normals[:, 2], -1.0, 1.0)  # (n,) float
    back_weight = BACK_MEAN_WEIGHT * np.clip(-facing * 2.0, 0.0, 1.0)[:, None]
    colour = front * (1.0 - back_weight) + mean[None, :] * back_weight
    colour[unseen] = mean
    alpha = np.full((len(vertices), 1), 255.0, dtype=np.float32)
    return np.clip(np.concatenate([colour, alpha], axis=1), 0, 255).astype(np.uint8)
