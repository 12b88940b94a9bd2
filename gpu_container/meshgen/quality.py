"""Self-checks on a finished mesh: the numbers the quality gate and the job record use."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import trimesh

from .mesh import signed_volume


def silhouette(vertices_xy: np.ndarray, faces: np.ndarray, size: int) -> np.ndarray:
    """Orthographic silhouette of a mesh, rasterised on a ``size`` x ``size`` image.

    Parameters
    ----------
    vertices_xy
        ``(n, 2)`` float: column and row (row 0 at the top) in pixels of that image.
    faces
        ``(m, 3)`` int.

    Returns
    -------
    numpy.ndarray
        ``(size, size)`` bool.
    """
    shift = 4  # cv2 fixed-point sub-pixel bits
    pts = np.rint((vertices_xy[faces] + 0.5) * (1 << shift) - 0.5).astype(np.int32)  # (m, 3, 2)
    image = np.zeros((size, size), dtype=np.uint8)
    cv2.fillPoly(image, list(pts), 1, lineType=cv2.LINE_8, shift=shift)
    # Long thin faces (decimated walls seen edge-on, a vessel's inside) can miss the pixel
    # centres between them: pinholes in the rasterisation, not in the mesh.
    image = cv2.morphologyEx(image, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
    return image.astype(bool)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks of one shape."""
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


def front_view_iou(mesh_px: trimesh.Trimesh, inside: np.ndarray) -> float:
    """IoU of the mesh seen from the photo's camera with the object mask it was built from.

    ``mesh_px`` is in grid pixels (x = column, y = rows from the bottom) of ``inside``'s size.
    """
    g = inside.shape[0]
    xy = np.stack([mesh_px.vertices[:, 0], g - 1 - mesh_px.vertices[:, 1]], axis=1)  # (n, 2)
    # On a closed mesh the faces turned towards the camera cover the whole silhouette.
    front = mesh_px.faces[mesh_px.face_normals[:, 2] >= 0]
    return iou(silhouette(xy, front, g), inside)


def mesh_metrics(mesh: trimesh.Trimesh) -> dict[str, Any]:
    """Faces, vertices, watertightness and bounding-box extents (metres) of a final mesh."""
    extents = mesh.bounds[1] - mesh.bounds[0]
    return {
        "faces": len(mesh.faces),
        "vertices": len(mesh.vertices),
        "watertight": bool(mesh.is_watertight),
        "winding_consistent": bool(mesh.is_winding_consistent),
        "bbox": [round(float(e), 5) for e in extents],
        "volume_m3": round(signed_volume(mesh), 8) if mesh.is_watertight else None,
    }
