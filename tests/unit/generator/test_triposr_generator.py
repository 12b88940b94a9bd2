"""The TripoSR backend end to end: photo -> reference preprocessing -> field -> GLB."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh

from gpu_container.meshgen import Generator, device
from gpu_container.meshgen.errors import BadInputError
from gpu_container.meshgen.export import srgb_to_linear
from gpu_container.meshgen.models import TripoSR, meshing
from gpu_container.meshgen.models.triposr import file_sha256
from meshdrop_contract import Backend, JobOptions, Preset
from meshdrop_contract.provenance import ENV_MODEL_ID, ENV_MODEL_REVISION, ENV_MODEL_SHA256
from tests.helpers.gltf import assert_valid_gltf, glb_accessor, glb_json
from tests.helpers.photos import make_photo
from tests.unit.generator.triposr_ball import write_ball_weights

CPU = Generator.Config(backend="triposr", device="cpu")


@pytest.fixture(scope="module")
def ball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_ball_weights(tmp_path_factory.mktemp("weights") / "triposr")


@pytest.fixture
def no_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device, "cuda_available", lambda: False)


@pytest.mark.slow
def test_photo_becomes_a_valid_coloured_glb(
    ball: Path, monkeypatch: pytest.MonkeyPatch, no_cuda: None
) -> None:
    monkeypatch.setenv(ENV_MODEL_ID, "test/ball")
    monkeypatch.setenv(ENV_MODEL_REVISION, "r1")
    loads = []
    original = TripoSR.from_pretrained.__func__  # type: ignore[attr-defined]
    monkeypatch.setattr(
        TripoSR,
        "from_pretrained",
        classmethod(lambda c, *a, **k: loads.append(1) or original(c, *a, **k)),
    )
    generator = Generator.from_pretrained(ball, config=CPU)
    photo = make_photo("disc").data
    options = JobOptions(preset=Preset.FAST, backend=Backend.TRIPOSR)
    result = generator.generate(photo, options)
    again = generator.generate(photo, JobOptions(preset=Preset.FAST))  # auto -> config: triposr
    assert len(loads) == 1, "the model loads once per process"
    assert_valid_gltf(result.data)
    m = result.metrics
    assert m["backend"] == "triposr" and m["watertight"] and m["device"] == "cpu"
    # The ball seen through the reference camera covers the disc's outline.
    assert m["iou"] > 0.85, m
    mesh = trimesh.load(io.BytesIO(result.data), file_type="glb", force="mesh")
    extents = mesh.bounds[1] - mesh.bounds[0]
    np.testing.assert_allclose(extents, 0.3, rtol=0.03)  # a ball, 0.3 m across
    # The colour head's (0.8, 0.3, 0.2) is image (sRGB) colour; glTF stores it linear.
    prim = glb_json(result.data)["meshes"][0]["primitives"][0]
    colours = glb_accessor(result.data, prim["attributes"]["COLOR_0"])
    expected = srgb_to_linear(np.array([[204, 77, 51, 255]]))[0]
    np.testing.assert_allclose(np.median(colours, axis=0), expected, atol=2)
    assert result.faces <= options.preset_spec.max_faces
    prov = result.provenance
    assert (prov.backend, prov.model_id, prov.revision, prov.device) == (
        "triposr",
        "test/ball",
        "r1",
        "cpu",
    )
    assert prov.sha256 == file_sha256(ball / "model.ckpt")
    assert again.provenance == prov and again.metrics["backend"] == "triposr"


@pytest.mark.slow
def test_priors_option_bypasses_the_model(ball: Path, no_cuda: None) -> None:
    generator = Generator.from_pretrained(ball, config=CPU)
    result = generator.generate(
        make_photo("disc").data, JobOptions(preset=Preset.FAST, backend=Backend.PRIORS)
    )
    assert result.metrics["backend"] == "priors" and result.provenance.backend == "priors"
    assert result.provenance.sha256 is None


def test_auto_is_triposr_only_with_weights_and_cuda(
    ball: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    auto = Generator.Config()
    monkeypatch.setattr(device, "cuda_available", lambda: False)
    assert Generator(auto, weights=ball).backend_for(Backend.AUTO) is Backend.PRIORS
    assert Generator(auto, weights=ball).backend_for(Backend.TRIPOSR) is Backend.TRIPOSR
    monkeypatch.setattr(device, "cuda_available", lambda: True)
    assert Generator(auto, weights=ball).backend_for(Backend.AUTO) is Backend.TRIPOSR
    assert Generator(auto).backend_for(Backend.AUTO) is Backend.PRIORS
    with pytest.raises(BadInputError, match="no TripoSR weights"):
        Generator(auto).backend_for(Backend.TRIPOSR)
    # A deployment pinned to the priors never picks the model, whatever the hardware.
    pinned = Generator(Generator.Config(backend="priors"), weights=ball)
    assert pinned.backend_for(Backend.AUTO) is Backend.PRIORS


def test_a_checkpoint_other_than_the_pinned_one_is_refused(
    ball: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_MODEL_SHA256, "0" * 64)
    with pytest.raises(ValueError, match="SHA-256"):
        Generator.from_pretrained(ball, config=CPU)


def test_reference_preprocessing_fills_085_of_a_grey_frame() -> None:
    rgb = np.zeros((100, 200, 3), np.uint8)
    rgb[..., 0] = 255
    mask = np.zeros((100, 200), np.float32)
    mask[20:60, 50:150] = 1.0  # 40 x 100 object
    prepared = meshing.reference_input(rgb, mask)
    side = prepared.image.shape[0]
    assert prepared.image.shape == (side, side, 3) and side == int(100 / 0.85)
    ys, xs = np.nonzero(prepared.mask > 0.5)
    assert xs.max() - xs.min() + 1 == 100 and ys.max() - ys.min() + 1 == 40
    assert abs((xs.min() + xs.max()) / 2 - (side - 1) / 2) <= 1  # centred
    np.testing.assert_allclose(prepared.image[0, 0], 0.5)  # backdrop grey
    np.testing.assert_allclose(prepared.image[side // 2, side // 2], [1.0, 0.0, 0.0])


def test_projection_puts_the_origin_at_the_centre_and_right_on_plus_y() -> None:
    px = meshing.project(np.array([[0.0, 0.0, 0.0], [0.0, 0.3, 0.0], [0.0, 0.0, 0.3]]), 512)
    np.testing.assert_allclose(px[0], [255.5, 255.5])
    assert px[1, 0] > 255.5 and px[1, 1] == pytest.approx(255.5)  # +y: to the right
    assert px[2, 1] < 255.5  # +z: up


@pytest.mark.parametrize(
    ("cuda", "requested", "precision", "expected"),
    [
        (True, "auto", "fp32", ("cuda", torch.float32)),
        (True, "auto", "fp16", ("cuda", torch.float16)),
        (True, "cuda:0", "bf16", ("cuda", torch.bfloat16)),
        (False, "auto", "fp16", ("cpu", torch.float32)),  # half precision is CUDA only
        (True, "cpu", "fp32", ("cpu", torch.float32)),
    ],
)
def test_device_selection_with_cuda_mocked(
    monkeypatch: pytest.MonkeyPatch, cuda: bool, requested: str, precision: str, expected
) -> None:
    monkeypatch.setattr(device, "cuda_available", lambda: cuda)
    placement = device.select_device(requested, precision)
    assert (placement.kind, placement.dtype) == expected


def test_device_selection_refuses_what_cannot_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device, "cuda_available", lambda: False)
    with pytest.raises(ValueError, match="no CUDA"):
        device.select_device("cuda")
    with pytest.raises(ValueError, match="precision"):
        device.select_device("auto", "fp8")
    with pytest.raises(ValueError, match="device"):
        device.select_device("mps")
