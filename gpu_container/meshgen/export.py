"""Write a finished mesh in the format the uploader asked for (trimesh does the writing)."""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np
import trimesh
from trimesh.visual import ColorVisuals, TextureVisuals
from trimesh.visual.material import PBRMaterial

from meshdrop_contract import AssetFormat

#: Plain material when texture is off: light grey, dielectric, a little rough.
PLAIN_RGBA = (200, 200, 200, 255)
ROUGHNESS = 0.8

_GLB_MAGIC = b"glTF"
_CHUNK_JSON = 0x4E4F534A


def export_mesh(mesh: trimesh.Trimesh, fmt: AssetFormat, *, texture: bool) -> bytes:
    """Serialise ``mesh`` (metres, Y-up) as ``fmt``.

    Parameters
    ----------
    mesh
        The final mesh; with ``texture`` it must carry per-vertex colours.
    fmt
        glb, obj, stl or ply.
    texture
        Vertex colours on; off writes a plain grey material (glb) or geometry only.
    """
    mesh = mesh.copy()
    colours = vertex_rgba(mesh)
    if texture:
        if colours is None:
            raise ValueError("texture=True needs a mesh with vertex colours")
        if fmt is AssetFormat.GLB:
            mesh.visual = ColorVisuals(mesh, vertex_colors=srgb_to_linear(colours))
    else:
        material = PBRMaterial(
            baseColorFactor=PLAIN_RGBA, metallicFactor=0.0, roughnessFactor=ROUGHNESS
        )
        mesh.visual = TextureVisuals(material=material)
    if fmt is AssetFormat.GLB:
        data = _bytes(mesh.export(file_type="glb", include_normals=True))
        # Without a material glTF viewers treat the colours as fully metallic (almost black).
        return _with_dielectric_default(data) if texture else data
    if fmt is AssetFormat.OBJ:
        return _bytes(mesh.export(file_type="obj", include_normals=True, include_color=texture))
    if fmt is AssetFormat.STL:
        return _bytes(mesh.export(file_type="stl"))
    if fmt is AssetFormat.PLY:
        return _bytes(mesh.export(file_type="ply", encoding="binary"))
    raise ValueError(f"unsupported format {fmt!r}")


def vertex_rgba(mesh: trimesh.Trimesh) -> np.ndarray | None:
    """``(n, 4)`` uint8 per-vertex colours of ``mesh``, or ``None`` when it has none."""
    visual = mesh.visual
    if isinstance(visual, ColorVisuals) and visual.kind == "vertex":
        return np.asarray(visual.vertex_colors)
    return None


def _bytes(exported: Any) -> bytes:
    # trimesh returns str for text formats and bytes for binary ones.
    if isinstance(exported, str):
        return exported.encode()
    if isinstance(exported, bytes):
        return exported
    raise TypeError(f"unexpected export result {type(exported).__name__}")


def srgb_to_linear(rgba: np.ndarray) -> np.ndarray:
    """Convert colours sampled from a photo (sRGB) to linear RGB, alpha unchanged.

    glTF defines ``COLOR_0`` as linear; storing sRGB values there makes every viewer show the
    asset washed out. OBJ and PLY have no such rule and keep the photo's sRGB values.

    Parameters
    ----------
    rgba
        ``(n, 4)`` uint8 sRGB colours.

    Returns
    -------
    numpy.ndarray
        ``(n, 4)`` uint8 linear colours.
    """
    rgba = np.asarray(rgba, dtype=np.uint8)
    srgb = rgba[:, :3].astype(np.float64) / 255.0  # (n, 3) float
    linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    out = rgba.copy()
    out[:, :3] = np.round(linear * 255.0).astype(np.uint8)
    return out


def _with_dielectric_default(glb: bytes) -> bytes:
    """Give every primitive without a material a white, non-metallic one (colours show true)."""
    magic, version, _ = struct.unpack_from("<4sII", glb, 0)
    json_len, json_type = struct.unpack_from("<II", glb, 12)
    if magic != _GLB_MAGIC or json_type != _CHUNK_JSON:
        raise ValueError("not a GLB with a JSON chunk first")
    doc = json.loads(glb[20 : 20 + json_len])
    rest = glb[20 + json_len :]
    materials = doc.setdefault("materials", [])
    index = len(materials)
    materials.append(
        {
            "name": "vertex_colour",
            "pbrMetallicRoughness": {
                "baseColorFactor": [1.0, 1.0, 1.0, 1.0],
                "metallicFactor": 0.0,
                "roughnessFactor": ROUGHNESS,
            },
        }
    )
    for mesh in doc.get("meshes", []):
        for prim in mesh["primitives"]:
            prim.setdefault("material", index)
    blob = json.dumps(doc, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 4)  # chunks are 4-byte aligned, JSON padded with spaces
    total = 12 + 8 + len(blob) + len(rest)
    return (
        struct.pack("<4sII", magic, version, total)
        + struct.pack("<II", len(blob), _CHUNK_JSON)
        + blob
        + rest
    )


def plain_colour() -> np.ndarray:
    """``(4,)`` uint8 RGBA of the plain material (thumbnails of untextured assets use it)."""
    return np.array(PLAIN_RGBA, dtype=np.uint8)
