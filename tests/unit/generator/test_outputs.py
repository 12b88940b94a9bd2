"""Thumbnail, glTF validator helper, evaluation metrics and the benchmark's command line."""

from __future__ import annotations

import io
import json
import struct

import numpy as np
import pytest
import trimesh
from PIL import Image

from gpu_container.meshgen import Generator
from gpu_container.meshgen.evaluation import run_case, silhouette_iou, surface_scores, true_mesh
from gpu_container.meshgen.export import export_mesh, srgb_to_linear
from gpu_container.meshgen.scenes import render, scenes
from gpu_container.meshgen.thumbnail import render_thumbnail
from meshdrop_contract import AssetFormat, Preset
from tests.helpers.gltf import assert_valid_gltf, glb_accessor, glb_json, validate_gltf


def _coloured_sphere() -> trimesh.Trimesh:
    mesh = trimesh.creation.icosphere(subdivisions=5, radius=0.15)  # 20480 faces
    colours = np.tile(np.array([[220, 30, 30, 255]], np.uint8), (len(mesh.vertices), 1))
    mesh.visual = trimesh.visual.ColorVisuals(mesh, vertex_colors=colours)
    return mesh


def test_thumbnail_is_a_shaded_png_in_the_mesh_colour() -> None:
    mesh = _coloured_sphere()
    png = render_thumbnail(mesh, size=128)
    image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    assert image.shape == (128, 128, 3)
    object_px = np.abs(image - 245).sum(axis=2) > 30
    assert 0.3 < object_px.mean() < 0.8  # a sphere filling ~85% of the width
    red = image[object_px]
    assert (red[:, 0] > red[:, 1] + 40).mean() > 0.95
    assert red[:, 0].std() > 10  # shaded, not a flat disc


def test_validator_reports_a_broken_glb() -> None:
    mesh = trimesh.creation.box(extents=(0.1, 0.2, 0.3))
    good = mesh.export(file_type="glb")
    assert_valid_gltf(good)
    length = struct.unpack_from("<I", good, 12)[0]
    doc = json.loads(good[20 : 20 + length])
    doc["accessors"][0]["count"] += 1000  # indices now run past their buffer view
    blob = json.dumps(doc).encode()
    blob += b" " * (-len(blob) % 4)
    rest = good[20 + length :]
    bad = (
        struct.pack("<4sII", b"glTF", 2, 20 + len(blob) + len(rest))
        + struct.pack("<II", len(blob), 0x4E4F534A)
        + blob
        + rest
    )
    assert validate_gltf(bad)["issues"]["numErrors"] > 0
    with pytest.raises(AssertionError, match="error"):
        assert_valid_gltf(bad)


def test_exported_textured_glb_validates() -> None:
    data = export_mesh(_coloured_sphere(), AssetFormat.GLB, texture=True)
    report = assert_valid_gltf(data)
    assert report["info"]["materialCount"] == 1
    assert report["info"]["maxAttributes"] == 3  # POSITION, NORMAL, COLOR_0


def test_glb_vertex_colours_are_linear_as_gltf_requires() -> None:
    """sRGB photo colours stored as-is would look washed out in every glTF viewer."""
    mesh = _coloured_sphere()  # sRGB (220, 30, 30)
    data = export_mesh(mesh, AssetFormat.GLB, texture=True)
    prim = glb_json(data)["meshes"][0]["primitives"][0]
    colours = glb_accessor(data, prim["attributes"]["COLOR_0"])
    assert {tuple(c[:3]) for c in colours} == {(183, 3, 3)}  # linear of sRGB 220 and 30
    ply = trimesh.load(io.BytesIO(export_mesh(mesh, AssetFormat.PLY, texture=True)), "ply")
    assert tuple(ply.visual.vertex_colors[0, :3]) == (220, 30, 30)  # PLY keeps sRGB
    assert tuple(srgb_to_linear(np.array([[255, 128, 0, 7]], np.uint8))[0]) == (255, 55, 0, 7)


@pytest.mark.slow
def test_surface_scores_tell_shapes_apart() -> None:
    sphere, box = true_mesh(scenes()["sphere"], 48), true_mesh(scenes()["box"], 48)
    f2, f5, chamfer = surface_scores(sphere.copy(), sphere)
    assert f2 > 0.97 and chamfer < 0.01
    f2, f5, chamfer = surface_scores(sphere.copy(), box)
    assert f5 < 0.7 and chamfer > 0.03


def test_silhouette_iou_of_the_true_shape_is_high() -> None:
    scene = scenes()["bottle"]
    _, mask = render(scene, size=128)
    assert silhouette_iou(true_mesh(scene, 64), mask) > 0.95
    assert silhouette_iou(true_mesh(scenes()["box"], 48), mask) < 0.6


@pytest.mark.slow
def test_one_evaluation_case_end_to_end() -> None:
    generator = Generator(Generator.Config(thumbnail=False))
    result = run_case(generator, "bottle", 0.0, 10.0, "gradient", preset=Preset.FAST, size=192)
    assert result.prior == "revolution"
    assert result.iou > 0.9
    assert result.f_5 > 0.9


def test_mesh_within_budget_stays_closed_on_a_bumpy_field() -> None:
    """A field with many small bumps (like a learned model's) still gives a closed mesh."""
    from scipy import ndimage

    from gpu_container.meshgen.mesh import mesh_within_budget
    from gpu_container.meshgen.shape.priors import Volume

    rng = np.random.default_rng(3)
    idx = np.indices((48, 48, 48)).astype(np.float32) - 23.5
    ball = 18.0 - np.sqrt((idx**2).sum(axis=0))  # (48, 48, 48) float
    bumps = ndimage.gaussian_filter(rng.normal(size=ball.shape), 1.5) * 12.0
    volume = Volume((ball + bumps).astype(np.float32), np.zeros(3), 48, "test")
    for budget in (3000, 800):
        mesh = mesh_within_budget(volume, budget)
        assert len(mesh.faces) <= budget
        assert mesh.is_watertight
        assert mesh.volume > 0
