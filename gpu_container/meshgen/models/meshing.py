"""TripoSR's photo -> mesh steps around the network: its preprocessing, grid, camera and frame.

* Input: the object cut out (alpha or our background chain), its bounding square scaled to
  :data:`~.published.FOREGROUND_RATIO` of the frame, composited on grey 0.5 (the reference's
  ``run.py``); the network resizes it to ``cond_image_size`` itself.
* Field: the activated density on a ``resolution``^3 grid spanning ``[-radius, radius]^3``,
  meshed where it equals :data:`~.published.MESH_THRESHOLD` (the reference's
  ``extract_mesh``), here with scikit-image's marching cubes through :mod:`..mesh`.
* Frame: TripoSR's world is z-up with the input camera on +x (1.9 away, 40 degree vertical
  field of view); right in the image is +y. Assets are y-up facing +z, so x_asset = y,
  y_asset = z, z_asset = x.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import trimesh

from ..quality import iou, silhouette
from ..shape.priors import Volume
from .published import BACKDROP_GREY, FOREGROUND_RATIO, MESH_THRESHOLD
from .triposr import TripoSR

#: The input view's camera in the reference (``get_spherical_cameras`` defaults, azimuth 0).
CAMERA_DISTANCE = 1.9
FOVY_DEG = 40.0
#: ``(3, 3)`` rotation from TripoSR's world frame to the asset frame (y up, front towards +z).
WORLD_TO_ASSET = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
#: Alpha above this counts as object for the bounding box (an 8-bit alpha > 0).
_ALPHA_MIN = 0.5 / 255.0


@dataclass(frozen=True)
class ModelInput:
    """The square image the network sees and the object's alpha in the same frame."""

    image: np.ndarray  # (s, s, 3) float32 in [0, 1], object composited on grey
    mask: np.ndarray  # (s, s) float32 in [0, 1]


def reference_input(
    rgb: np.ndarray, mask: np.ndarray, ratio: float = FOREGROUND_RATIO, grey: float = BACKDROP_GREY
) -> ModelInput:
    """Crop to the object, pad square, pad so it fills ``ratio`` of the side, composite.

    Parameters
    ----------
    rgb
        ``(h, w, 3)`` uint8 photo (or the segmented square).
    mask
        ``(h, w)`` float alpha in ``[0, 1]``.
    """
    ys, xs = np.nonzero(mask > _ALPHA_MIN)
    if len(ys) == 0:
        raise ValueError("the mask holds no object")
    fg_rgb = rgb[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].astype(np.float32) / 255.0
    fg_a = mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].astype(np.float32)
    side = max(fg_a.shape)
    total = max(side, int(side / ratio))
    top = (total - fg_a.shape[0]) // 2
    left = (total - fg_a.shape[1]) // 2
    image = np.zeros((total, total, 3), np.float32)  # (s, s, 3) float
    alpha = np.zeros((total, total), np.float32)  # (s, s) float
    image[top : top + fg_a.shape[0], left : left + fg_a.shape[1]] = fg_rgb
    alpha[top : top + fg_a.shape[0], left : left + fg_a.shape[1]] = fg_a
    image = image * alpha[..., None] + (1.0 - alpha[..., None]) * grey
    return ModelInput(image=image, mask=alpha)


def grid_axis(model: TripoSR, resolution: int) -> np.ndarray:
    """``(resolution,)`` float32 sample positions along each axis, ``[-radius, radius]``."""
    r = model.config.renderer.radius
    return np.linspace(-r, r, resolution, dtype=np.float32)


def density_volume(
    model: TripoSR, planes: torch.Tensor, resolution: int, threshold: float = MESH_THRESHOLD
) -> Volume:
    """The activated density minus ``threshold`` on the grid, as a :class:`Volume`.

    Queried in x-slabs so that no more than about ``model.chunk_size`` points are built at
    once (a 384^3 grid is 57 M points). Coordinates are TripoSR's world units.
    """
    axis = grid_axis(model, resolution)
    values = np.empty((resolution,) * 3, np.float32)  # (x, y, z) float
    yz = np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1).reshape(-1, 2)  # (r^2, 2)
    slab = max(1, model.chunk_size // len(yz))
    with torch.no_grad():
        for x0 in range(0, resolution, slab):
            xs = axis[x0 : x0 + slab]
            points = np.concatenate(
                [np.repeat(xs, len(yz))[:, None], np.tile(yz, (len(xs), 1))], axis=1
            )  # (slab * r^2, 3) float
            density, _ = model.query(planes, torch.from_numpy(points))
            values[x0 : x0 + len(xs)] = (
                density.float().cpu().numpy().reshape(len(xs), resolution, -1)
            )
    values -= threshold
    spacing = float(axis[1] - axis[0])
    origin = np.full(3, float(axis[0]))
    return Volume(values, origin, resolution, "triposr", {"threshold": threshold}, spacing)


def vertex_colours(model: TripoSR, planes: torch.Tensor, vertices: np.ndarray) -> np.ndarray:
    """RGBA uint8 ``(n, 4)`` from the colour head at world ``vertices`` ``(n, 3)``."""
    with torch.no_grad():
        _, colour = model.query(planes, torch.from_numpy(np.asarray(vertices, np.float32)))
    rgb = np.clip(colour.float().cpu().numpy() * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return np.concatenate([rgb, np.full((len(rgb), 1), 255, np.uint8)], axis=1)


def project(vertices: np.ndarray, size: int) -> np.ndarray:
    """World ``(n, 3)`` -> ``(n, 2)`` column, row (pixel centres at integers) of the input view."""
    focal = 0.5 * size / math.tan(math.radians(FOVY_DEG) / 2.0)
    depth = CAMERA_DISTANCE - vertices[:, 0]  # the camera sits on +x looking at the origin
    col = size / 2.0 + focal * vertices[:, 1] / depth - 0.5
    row = size / 2.0 - focal * vertices[:, 2] / depth - 0.5
    return np.stack([col, row], axis=1)


def front_view_iou(mesh_world: trimesh.Trimesh, mask: np.ndarray, size: int = 256) -> float:
    """IoU of the mesh seen through the input camera with the object's alpha in that frame."""
    inside = cv2.resize(mask.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA) >= 0.5
    drawn = silhouette(project(np.asarray(mesh_world.vertices), size), mesh_world.faces, size)
    return iou(drawn, inside)
