"""Our TripoSR against the reference implementation's own numbers (tests/fixtures/triposr_tiny)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from PIL import Image

from gpu_container.meshgen.models import TripoSR, TripoSRConfig, WeightsMismatchError, published
from gpu_container.meshgen.models.vit import BUILTIN_CONFIGS, ViTEmbeddings, resolve_vit_config

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "triposr_tiny"
RTOL = 1e-4


@pytest.fixture(scope="module")
def model() -> TripoSR:
    return TripoSR.from_pretrained(FIXTURE)


@pytest.fixture(scope="module")
def inputs() -> tuple[np.ndarray, np.ndarray]:
    image = np.asarray(Image.open(FIXTURE / "image.png").convert("RGB"))  # (72, 56, 3) uint8
    return image, np.load(FIXTURE / "points.npy")  # (400, 3) float32


def _assert_matches(density: np.ndarray, colour: np.ndarray) -> None:
    expected = np.load(FIXTURE / "expected.npz")
    np.testing.assert_allclose(density, expected["density"], rtol=RTOL, atol=0)
    np.testing.assert_allclose(colour, expected["color"], rtol=RTOL, atol=1e-6)


def test_density_and_colour_match_the_reference(model: TripoSR, inputs) -> None:
    density, colour = model.density_and_colour(*inputs)
    assert density.shape == (400,) and colour.shape == (400, 3)
    _assert_matches(density, colour)
    # The fixture is not flat: a wrong threshold or activation could not pass unnoticed.
    assert density.max() / density.min() > 1e4 and colour.min() < 0.01 and colour.max() > 0.99


def test_chunked_queries_give_the_same_numbers(model: TripoSR, inputs) -> None:
    model.chunk_size = 37
    try:
        density, colour = model.density_and_colour(*inputs)
    finally:
        model.chunk_size = 65_536
    _assert_matches(density, colour)


def test_fixture_needs_transformers_4_position_interpolation(
    model: TripoSR, inputs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fixture interpolates position embeddings (4 x 4 -> 6 x 6), and the form matters:
    5.x's ``size=`` interpolation gives numbers the reference never produced."""
    vit = model.image_tokenizer.model.config
    assert (vit.image_size // vit.patch_size, model.config.cond_image_size // vit.patch_size) == (
        4,
        6,
    )

    def size_form(self: ViTEmbeddings, height: int, width: int) -> torch.Tensor:
        pos = self.position_embeddings
        grid = pos[:, 1:].reshape(1, 4, 4, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, size=(height // 8, width // 8), mode="bicubic")
        return torch.cat((pos[:, :1], grid.flatten(2).transpose(1, 2)), dim=1)

    monkeypatch.setattr(ViTEmbeddings, "interpolate_pos_encoding", size_form)
    density, _ = model.density_and_colour(*inputs)
    expected = np.load(FIXTURE / "expected.npz")["density"]
    assert np.max(np.abs(density - expected) / expected) > 10 * RTOL


def _copy_fixture(tmp_path: Path) -> Path:
    root = tmp_path / "weights"
    shutil.copytree(FIXTURE, root)
    return root


def _edit_checkpoint(root: Path, edit) -> None:
    state = torch.load(root / "model.ckpt", weights_only=True)
    edit(state)
    torch.save(state, root / "model.ckpt")


def test_checkpoint_holds_the_unused_pooler_and_loads_strictly() -> None:
    state = torch.load(FIXTURE / "model.ckpt", weights_only=True)
    assert "image_tokenizer.model.pooler.dense.weight" in state
    model = TripoSR.build(FIXTURE)
    assert set(model.state_dict()) == set(state)


def test_missing_key_fails_loudly_naming_it(tmp_path: Path) -> None:
    root = _copy_fixture(tmp_path)
    _edit_checkpoint(root, lambda s: s.pop("decoder.layers.6.bias"))
    with pytest.raises(WeightsMismatchError, match=r"1 missing \(decoder\.layers\.6\.bias\)"):
        TripoSR.from_pretrained(root)


def test_unexpected_key_fails_loudly_naming_it(tmp_path: Path) -> None:
    root = _copy_fixture(tmp_path)
    _edit_checkpoint(root, lambda s: s.update({"renderer.extra": torch.zeros(2)}))
    with pytest.raises(WeightsMismatchError, match=r"1 unexpected \(renderer\.extra\)"):
        TripoSR.from_pretrained(root)


def test_wrong_shape_fails_loudly_naming_it(tmp_path: Path) -> None:
    root = _copy_fixture(tmp_path)
    key = "tokenizer.embeddings"
    _edit_checkpoint(root, lambda s: s.update({key: torch.zeros(3, 16, 5, 5)}))
    with pytest.raises(WeightsMismatchError, match=r"wrong shape \(tokenizer\.embeddings"):
        TripoSR.from_pretrained(root)


def test_missing_files_are_named(tmp_path: Path) -> None:
    root = _copy_fixture(tmp_path)
    (root / "model.ckpt").unlink()
    with pytest.raises(FileNotFoundError, match=r"model\.ckpt"):
        TripoSR.from_pretrained(root)
    shutil.rmtree(root / "tiny-dino-vit")
    with pytest.raises(FileNotFoundError, match="tiny-dino-vit"):
        TripoSR.build(root)


def test_pickled_code_in_a_checkpoint_is_refused(tmp_path: Path) -> None:
    root = _copy_fixture(tmp_path)
    torch.save({"decoder": Path("x")}, root / "model.ckpt")  # needs a non-tensor unpickler
    with pytest.raises(Exception, match=r"(?i)weights_only|unsupported|not a flat"):
        TripoSR.from_pretrained(root)


def test_published_architecture_has_the_published_tensors(tmp_path: Path) -> None:
    """The reconstructed config.yaml builds 549 tensors and 419,275,628 parameters (meta: no
    memory), with the checkpoint's transformers-4.x and diffusers-style names."""
    (tmp_path / "config.yaml").write_text(published.CONFIG_YAML)
    state = TripoSR.build(tmp_path).state_dict()
    assert len(state) == published.N_TENSORS
    assert sum(t.numel() for t in state.values()) == published.N_PARAMETERS
    for key, shape in {
        "image_tokenizer.model.embeddings.position_embeddings": (1, 197, 768),
        "image_tokenizer.model.encoder.layer.11.attention.attention.query.weight": (768, 768),
        "image_tokenizer.model.pooler.dense.weight": (768, 768),
        "tokenizer.embeddings": (3, 1024, 32, 32),
        "backbone.transformer_blocks.15.attn2.to_k.weight": (1024, 768),
        "backbone.transformer_blocks.15.ff.net.0.proj.weight": (8192, 1024),
        "backbone.transformer_blocks.15.ff.net.2.weight": (1024, 4096),
        "post_processor.upsample.weight": (1024, 40, 2, 2),
        "decoder.layers.18.weight": (4, 64),
    }.items():
        assert tuple(state[key].shape) == shape, key


def test_published_vit_needs_no_download() -> None:
    assert (
        resolve_vit_config("facebook/dino-vitb16", None) is BUILTIN_CONFIGS["facebook/dino-vitb16"]
    )
    with pytest.raises(FileNotFoundError, match="facebook/dino-vits8"):
        resolve_vit_config("facebook/dino-vits8", None)


def test_config_is_read_as_published_and_unknown_keys_refused() -> None:
    import yaml

    data = yaml.safe_load(published.CONFIG_YAML)
    config = TripoSRConfig.from_dict(data)
    assert config.backbone.in_channels == 1024  # ${tokenizer.num_channels}
    assert config.renderer.density_activation == "exp" and config.renderer.density_bias == -1.0
    with pytest.raises(ValueError, match="unknown keys in decoder"):
        TripoSRConfig.from_dict({**data, "decoder": {**data["decoder"], "n_layers": 3}})
    with pytest.raises(ValueError, match="only"):
        TripoSRConfig.from_dict({**data, "decoder_cls": "my.Decoder"})
