"""The Generator end to end: conventions of the asset, formats, presets, quality gate."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import trimesh
from PIL import Image

from gpu_container.meshgen import GenerationResult, Generator
from gpu_container.meshgen.errors import BadInputError, QualityError
from gpu_container.meshgen.mesh import TARGET_SIZE_M
from gpu_container.meshgen.scenes import SyntheticSegmentation, scenes, view_rotation
from meshdrop_contract import AssetFormat, JobOptions, Preset, Stage
from tests.helpers.gltf import assert_valid_gltf, glb_accessor, glb_json
from tests.helpers.photos import make_photo
from tests.helpers.shapes import rendered


@pytest.fixture(scope="module")
def generator() -> Generator:
    return Generator(Generator.Config())


@pytest.fixture(scope="module")
def bottle_glb(generator: Generator) -> GenerationResult:
    return generator.generate_from_segmentation(rendered("bottle"), JobOptions(preset=Preset.FAST))


def _load(result: GenerationResult) -> trimesh.Trimesh:
    loaded = trimesh.load(io.BytesIO(result.data), file_type=result.format.value, process=False)
    if isinstance(loaded, trimesh.Scene):
        loaded = loaded.to_geometry()
    return loaded


def test_glb_is_valid_and_follows_gltf_conventions(bottle_glb: GenerationResult) -> None:
    assert bottle_glb.format is AssetFormat.GLB
    assert_valid_gltf(bottle_glb.data)
    mesh = _load(bottle_glb)
    lo, hi = mesh.bounds
    assert lo[1] == pytest.approx(0.0, abs=1e-6)  # stands on the ground
    assert (lo[0] + hi[0]) / 2 == pytest.approx(0.0, abs=1e-4)  # centred in x and z
    assert (lo[2] + hi[2]) / 2 == pytest.approx(0.0, abs=1e-4)
    assert (hi - lo).max() == pytest.approx(TARGET_SIZE_M, rel=1e-4)
    assert (hi - lo).argmax() == 1  # a bottle is tallest along Y (up)
    assert mesh.is_watertight
    assert len(mesh.faces) == bottle_glb.faces


def test_metrics_and_timings(bottle_glb: GenerationResult) -> None:
    m = bottle_glb.metrics
    assert m["watertight"] is True
    assert m["shape_prior"] == "revolution"
    assert m["iou"] > 0.93
    assert m["background_method"] == "true-mask"
    assert len(m["bbox"]) == 3 and max(m["bbox"]) == pytest.approx(0.3, rel=1e-3)
    assert set(bottle_glb.timings) == {"reconstruct", "export"}
    assert all(t >= 0 for t in bottle_glb.timings.values())
    json.dumps(m)  # the job record stores them


def test_texture_colours_the_front_from_the_photo(bottle_glb: GenerationResult) -> None:
    doc = glb_json(bottle_glb.data)
    prim = doc["meshes"][0]["primitives"][0]
    assert "COLOR_0" in prim["attributes"]
    material = doc["materials"][prim["material"]]
    assert material["pbrMetallicRoughness"]["metallicFactor"] == 0.0
    colours = glb_accessor(bottle_glb.data, prim["attributes"]["COLOR_0"])[:, :3].astype(float)
    assert len(colours) == bottle_glb.vertices
    # The rendered bottle is green (40, 120, 60) shaded: green dominates everywhere.
    assert (colours[:, 1] > colours[:, 0]).mean() > 0.95
    assert (colours[:, 1] > colours[:, 2]).mean() > 0.95


def test_texture_off_is_a_plain_material(generator: Generator) -> None:
    result = generator.generate_from_segmentation(
        rendered("bottle"), JobOptions(preset=Preset.FAST, texture=False)
    )
    assert_valid_gltf(result.data)
    prim = glb_json(result.data)["meshes"][0]["primitives"][0]
    assert "COLOR_0" not in prim["attributes"]
    assert "material" in prim


@pytest.mark.parametrize("fmt", [AssetFormat.OBJ, AssetFormat.STL, AssetFormat.PLY])
def test_every_format_exports_and_reloads(generator: Generator, fmt: AssetFormat) -> None:
    result = generator.generate_from_segmentation(
        rendered("sphere", size=192), JobOptions(preset=Preset.FAST, format=fmt)
    )
    assert result.format is fmt
    mesh = _load(result)
    if fmt is not AssetFormat.OBJ:  # OBJ splits vertices by normal; the others keep them
        assert len(mesh.faces) == result.faces
    mesh.merge_vertices()
    assert mesh.is_watertight
    assert mesh.extents.max() == pytest.approx(TARGET_SIZE_M, rel=1e-3)
    # A sphere: every point about the same distance from the centre.
    r = np.linalg.norm(mesh.vertices - mesh.bounds.mean(axis=0), axis=1)
    assert r.std() / r.mean() < 0.02
    if fmt is AssetFormat.PLY:
        assert mesh.visual.kind == "vertex"


@pytest.mark.slow
def test_presets_change_face_counts_within_budget(generator: Generator) -> None:
    seg = rendered("sphere")
    fast = generator.generate_from_segmentation(seg, JobOptions(preset=Preset.FAST))
    balanced = generator.generate_from_segmentation(seg, JobOptions(preset=Preset.BALANCED))
    assert fast.faces <= 20_000
    assert balanced.faces <= 60_000
    assert balanced.faces > 1.5 * fast.faces
    assert fast.metrics["grid"] == 128 and balanced.metrics["grid"] == 256


def test_quality_gate_trips_with_the_reason() -> None:
    strict = Generator(Generator.Config(min_iou=0.999, thumbnail=False))
    with pytest.raises(QualityError, match="IoU") as err:
        strict.generate_from_segmentation(rendered("box"), JobOptions(preset=Preset.FAST))
    assert err.value.metrics["iou"] < 0.999
    assert err.value.metrics["faces"] > 0


def test_quality_gate_trips_when_half_the_foreground_is_left_out() -> None:
    """Two objects side by side: one mesh cannot stand for both, and the gate says so."""
    seg = rendered("sphere", size=64)  # one ball filling most of a 64 x 64 square
    rgb = np.full((128, 128, 3), 245, np.uint8)
    mask = np.zeros((128, 128), np.float32)
    for left in (0, 64):  # two balls side by side, not touching
        rgb[32:96, left : left + 64] = seg.rgb
        mask[32:96, left : left + 64] = seg.mask
    both = SyntheticSegmentation(rgb, mask)
    with pytest.raises(QualityError, match="IoU") as err:
        Generator().generate_from_segmentation(both, JobOptions(preset=Preset.FAST))
    assert err.value.metrics["iou"] < 0.6


def test_generate_from_photo_bytes_reports_stages(generator: Generator) -> None:
    photo = make_photo("bottle", background="gradient", shadow=True, jpeg_quality=88)
    stages: list[tuple[Stage, float]] = []
    result = generator.generate(
        photo.data, JobOptions(preset=Preset.FAST), on_stage=lambda s, f: stages.append((s, f))
    )
    assert [s for s, _ in stages] == [Stage.BACKGROUND, Stage.RECONSTRUCT, Stage.EXPORT]
    assert [f for _, f in stages] == sorted(f for _, f in stages)
    assert set(result.timings) == {"background", "reconstruct", "export"}
    assert result.metrics["shape_prior"] == "revolution"
    assert result.metrics["background_method"] in {"classical", "rembg", "alpha"}
    assert 0.5 <= result.metrics["segmentation_confidence"] <= 1.0  # sure enough to go on
    assert_valid_gltf(result.data)
    thumb = Image.open(io.BytesIO(result.thumbnail_png))
    assert thumb.format == "PNG" and thumb.size == (256, 256)


def test_undecodable_bytes_are_bad_input(generator: Generator) -> None:
    with pytest.raises(BadInputError):
        generator.generate(b"definitely not an image", JobOptions())


def test_backend_choices() -> None:
    assert Generator.from_pretrained().backend == "priors"
    with pytest.raises(ValueError, match="backend"):
        Generator.Config(backend="nerf")
    with pytest.raises(ValueError, match="weights"):
        Generator(Generator.Config(backend="triposr"))


def test_missing_model_directory(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        Generator.from_pretrained(tmp_path / "nope")


def _shade(scene: str, normal: np.ndarray, yaw: float, elevation: float) -> np.ndarray:
    """Colour the ray-marcher gives a face with world ``normal`` (see ``scenes.render``)."""
    light = np.array([0.4, 0.7, 0.6])
    light /= np.linalg.norm(light)
    lit = float(np.clip((view_rotation(yaw, elevation) @ normal) @ light, 0.0, 1.0))
    return np.asarray(scenes()[scene].colour, dtype=float) * (0.3 + 0.7 * lit)


def test_box_edges_are_crisp_every_top_vertex_has_the_top_colour(generator: Generator) -> None:
    # Seen from above and to the side, the top face borders the two front faces in the photo:
    # a top vertex by an edge must not take the front face's darker colour (saw-toothed edges).
    yaw, elevation = 30.0, 20.0
    recon = generator.reconstruct(
        rendered("box", 256, yaw, elevation), JobOptions(preset=Preset.FAST).preset_spec
    )
    assert recon.metrics["shape_prior"] == "box"
    colours = np.asarray(recon.mesh.visual.vertex_colors)[:, :3].astype(float)
    top = recon.mesh.vertex_normals[:, 1] > 0.95  # upright asset: Y is up
    assert top.sum() > 100
    expected = _shade("box", np.array([0.0, 1.0, 0.0]), yaw, elevation)
    off = np.abs(colours[top] - expected).max(axis=1)  # (k,) float
    assert (off > 15.0).mean() < 0.01
    # The front faces keep their own, darker colours up to the same edge.
    front = recon.mesh.vertex_normals[:, 2] > 0.95
    expected_front = _shade("box", np.array([0.0, 0.0, 1.0]), yaw, elevation)
    assert (np.abs(colours[front] - expected_front).max(axis=1) > 15.0).mean() < 0.01


def test_revolved_caps_are_one_colour_not_streaks_of_the_top_row(generator: Generator) -> None:
    # Seen from the side, a can's lid is one row of the photo whose colour changes across
    # it with the light on the curved wall; the lid must not be striped by it.
    recon = generator.reconstruct(rendered("can"), JobOptions(preset=Preset.FAST).preset_spec)
    assert recon.metrics["shape_prior"] == "revolution"
    mesh = recon.mesh
    colours = np.asarray(mesh.visual.vertex_colors)[:, :3].astype(float)
    lid = (mesh.vertex_normals[:, 1] > 0.9) & (mesh.vertices[:, 1] > 0.9 * mesh.bounds[1, 1])
    assert lid.sum() > 50
    spread = np.percentile(colours[lid], 95, axis=0) - np.percentile(colours[lid], 5, axis=0)
    assert spread.max() < 10.0
    # Its colour is the can's red, as seen on the wall below it.
    red = np.median(colours[lid], axis=0)
    assert red[0] > 2.5 * red[1] and red[0] > 2.5 * red[2]


@pytest.mark.slow
def test_box_preview_is_the_asset_decimated_not_a_coarser_remesh(generator: Generator) -> None:
    # The thumbnail must show the asset itself: its vertices lie on the delivered surface. A box
    # turned 30° used to stall decimation and fall back to re-meshing a coarse field (stair steps).
    recon = generator.reconstruct(
        rendered("box", 256, 30.0, 20.0), JobOptions(preset=Preset.BALANCED).preset_spec
    )
    assert recon.metrics["shape_prior"] == "box"
    assert len(recon.preview.faces) < len(recon.mesh.faces)
    # Same size, and the flat lid stays flat (a re-meshed coarse field has stair steps there).
    np.testing.assert_allclose(recon.preview.bounds, recon.mesh.bounds, atol=2e-3)
    preview = recon.preview
    top = preview.vertex_normals[:, 1] > 0.99
    assert top.sum() > 20
    lid = preview.vertices[top, 1]  # (k,) float
    assert lid.max() - lid.min() < 1e-3 * max(recon.mesh.extents)
    assert preview.visual.kind == "vertex"
