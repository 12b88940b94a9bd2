"""Headless CPU preview: a shaded three-quarter view of the asset, as PNG bytes."""

from __future__ import annotations

import cv2
import numpy as np
import trimesh

#: Faces drawn; a preview needs the outline and shading, not every triangle.
PREVIEW_FACES = 12000
SUPERSAMPLE = 2
BACKGROUND = (245, 245, 245)


def _view_matrix(yaw_deg: float, pitch_deg: float) -> np.ndarray:
    """``(3, 3)`` float rotation from world (Y-up) to view space (camera looks along -z)."""
    yaw, pitch = np.radians(yaw_deg), np.radians(pitch_deg)
    ry = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
    rx = np.array(
        [[1, 0, 0], [0, np.cos(pitch), -np.sin(pitch)], [0, np.sin(pitch), np.cos(pitch)]]
    )
    return rx @ ry


def _preview(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """``mesh`` decimated to :data:`PREVIEW_FACES`, keeping its vertex colours."""
    if len(mesh.faces) <= PREVIEW_FACES:
        return mesh
    small = mesh.simplify_quadric_decimation(face_count=PREVIEW_FACES)
    if mesh.visual.kind == "vertex":
        # Decimation drops colours: take each new vertex's colour from the nearest old one.
        _, nearest = mesh.kdtree.query(small.vertices)
        small.visual = trimesh.visual.ColorVisuals(
            small, vertex_colors=mesh.visual.vertex_colors[nearest]
        )
    return small


def _shaded_faces(
    mesh: trimesh.Trimesh, tris: np.ndarray, colour: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Flat Lambert colour of every face and which faces look at the camera.

    Returns
    -------
    shaded : (m, 3) float
        RGB of each face, 0-255.
    visible : (m,) bool
        Faces whose outward normal points at the camera.
    """
    normals = np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0])  # (m, 3)
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    if mesh.visual.kind == "vertex":
        base = mesh.visual.vertex_colors[mesh.faces][:, :, :3].mean(axis=1)  # (m, 3) float
    else:
        rgba = colour if colour is not None else np.array([200, 200, 200, 255])
        base = np.tile(np.asarray(rgba[:3], dtype=np.float64), (len(mesh.faces), 1))
    light = np.array([0.35, 0.6, 0.72])
    light /= np.linalg.norm(light)
    shade = 0.35 + 0.65 * np.clip(normals @ light, 0.0, 1.0)  # (m,) float
    return np.clip(base * shade[:, None], 0, 255), normals[:, 2] > 0


def _to_pixels(verts: np.ndarray, big: int) -> np.ndarray:
    """``(n, 2)`` int32 fixed-point (4 fractional bits) pixel positions, object centred."""
    lo, hi = verts[:, :2].min(axis=0), verts[:, :2].max(axis=0)
    scale = 0.85 * big / max(float((hi - lo).max()), 1e-9)
    px = (verts[:, :2] - (lo + hi) / 2.0) * scale
    px[:, 1] = -px[:, 1]  # image rows grow downwards
    px += big / 2.0
    return np.rint(px * 16).astype(np.int32)


def render_thumbnail(
    mesh: trimesh.Trimesh,
    *,
    size: int = 256,
    yaw_deg: float = -30.0,
    pitch_deg: float = 20.0,
    colour: np.ndarray | None = None,
) -> bytes:
    """Render ``mesh`` with flat Lambert shading by the painter's algorithm; return PNG bytes.

    Parameters
    ----------
    mesh
        Any triangle mesh; vertex colours are used when present.
    size
        Width and height of the PNG in pixels.
    yaw_deg, pitch_deg
        View direction: turned about Y, then tilted down.
    colour
        ``(4,)`` uint8 RGBA used when the mesh has no vertex colours.
    """
    mesh = _preview(mesh)
    verts = mesh.vertices @ _view_matrix(yaw_deg, pitch_deg).T  # (n, 3) float, view space
    tris = verts[mesh.faces]  # (m, 3, 3)
    shaded, visible = _shaded_faces(mesh, tris, colour)
    big = size * SUPERSAMPLE
    pts = _to_pixels(verts, big)[mesh.faces]  # (m, 3, 2)
    image = np.empty((big, big, 3), dtype=np.uint8)
    image[:] = BACKGROUND
    order = np.flatnonzero(visible)
    order = order[np.argsort(tris[order, :, 2].mean(axis=1))]  # far to near
    for face in order:
        c = shaded[face]
        cv2.fillConvexPoly(image, pts[face], (int(c[0]), int(c[1]), int(c[2])), cv2.LINE_8, 4)
    image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    ok, png = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return png.tobytes()
