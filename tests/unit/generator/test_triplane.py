"""The learned backend: a tiny random TriplaneModel, saved, loaded and run through export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from gpu_container.meshgen import Generator
from gpu_container.meshgen.models import TriplaneModel
from meshdrop_contract import JobOptions, Preset
from tests.helpers.gltf import assert_valid_gltf
from tests.helpers.shapes import rendered

TINY = TriplaneModel.Config(
    image_size=32,
    patch_size=8,
    encoder_dim=32,
    encoder_layers=1,
    encoder_heads=2,
    plane_tokens=4,
    plane_channels=8,
    plane_upsample=1,
    decoder_hidden=16,
    decoder_layers=2,
)


@pytest.fixture(scope="module")
def model() -> TriplaneModel:
    torch.manual_seed(0)
    return TriplaneModel(TINY).eval()


def _image(seed: int = 0) -> torch.Tensor:
    return torch.rand(2, 4, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_shapes(model: TriplaneModel) -> None:
    with torch.no_grad():
        planes = model.encode(_image())
        assert planes.shape == (2, 3, 8, 8, 8)  # (b, planes, c, r, r): 4 tokens upsampled x2
        density, rgb = model.decode(planes, torch.rand(2, 50, 3) * 2 - 1)
    assert density.shape == (2, 50) and rgb.shape == (2, 50, 3)
    assert (density >= 0).all() and ((rgb >= 0) & (rgb <= 1)).all()


def test_wrong_input_size_is_refused(model: TriplaneModel) -> None:
    with pytest.raises(ValueError, match="expected"):
        model.encode(torch.rand(1, 3, 32, 32))


def test_deterministic_and_image_dependent(model: TriplaneModel) -> None:
    points = torch.rand(1, 64, 3) * 2 - 1
    with torch.no_grad():
        a = model(_image(1)[:1], points)[0]
        b = model(_image(1)[:1], points)[0]
        c = model(_image(2)[:1], points)[0]
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_save_and_load_round_trip(model: TriplaneModel, tmp_path: Path) -> None:
    model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["encoder_dim"] == 32
    loaded = TriplaneModel.from_pretrained(tmp_path)
    assert not loaded.training
    seg = rendered("bottle", size=64)
    np.testing.assert_array_equal(
        model.density_grid(seg.rgb, seg.mask, 12), loaded.density_grid(seg.rgb, seg.mask, 12)
    )


def test_unknown_config_keys_and_missing_weights(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"encoder_dim": 32, "typo": 1}))
    (tmp_path / "model.pt").write_bytes(b"")
    with pytest.raises(ValueError, match="typo"):
        TriplaneModel.from_pretrained(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert not TriplaneModel.has_weights(empty)
    with pytest.raises(FileNotFoundError):
        TriplaneModel.from_pretrained(empty)


def test_generator_uses_the_learned_backend_when_weights_exist(
    model: TriplaneModel, tmp_path: Path
) -> None:
    seg = rendered("bottle", size=64)
    # Random weights put the surface anywhere: set the iso-level to a quantile of this
    # photo's own density so that a surface exists and the whole export path runs.
    density = model.density_grid(seg.rgb, seg.mask, 32)
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["density_threshold"] = float(np.quantile(density, 0.97))
    (tmp_path / "config.json").write_text(json.dumps(config))

    generator = Generator.from_pretrained(tmp_path, config=Generator.Config(min_iou=0.0))
    assert generator.backend == "triplane"
    result = generator.generate_from_segmentation(seg, JobOptions(preset=Preset.FAST))
    assert result.metrics["backend"] == "triplane"
    assert result.metrics["shape_prior"] == "triplane"
    assert result.metrics["watertight"] is True
    assert 0 < result.faces <= 20_000
    assert_valid_gltf(result.data)

    priors = Generator.from_pretrained(tmp_path, config=Generator.Config(backend="priors"))
    assert priors.backend == "priors"
