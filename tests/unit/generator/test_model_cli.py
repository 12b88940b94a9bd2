"""``meshdrop model probe`` and ``check`` against the reference fixture (typer CliRunner)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from meshdrop.cli import app

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "triposr_tiny"
runner = CliRunner()


def _probe(tmp_path: Path, weights: Path = FIXTURE, points: Path | None = None, image=None):
    out = tmp_path / "out.npz"
    args = [
        "model",
        "probe",
        str(weights),
        str(image or FIXTURE / "image.png"),
        str(points or FIXTURE / "points.npy"),
        "-o",
        str(out),
    ]
    return runner.invoke(app, args), out


@pytest.mark.slow
def test_probe_reproduces_the_reference(tmp_path: Path) -> None:
    result, out = _probe(tmp_path)
    assert result.exit_code == 0, result.output
    got, expected = np.load(out), np.load(FIXTURE / "expected.npz")
    assert set(got.files) == {"density", "color"}
    assert got["density"].shape == (400,) and got["color"].shape == (400, 3)
    np.testing.assert_allclose(got["density"], expected["density"], rtol=1e-4)
    np.testing.assert_allclose(got["color"], expected["color"], rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_probe_reads_images_as_8_bit_rgb(tmp_path: Path) -> None:
    """An alpha channel is dropped (no compositing, no background removal)."""
    from PIL import Image

    rgba = Image.open(FIXTURE / "image.png").convert("RGBA")
    rgba.putalpha(128)  # alpha is dropped, not composited
    rgba.save(tmp_path / "rgba.png")
    result, out = _probe(tmp_path, image=tmp_path / "rgba.png")
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(
        np.load(out)["density"], np.load(FIXTURE / "expected.npz")["density"], rtol=1e-4
    )


def _remove_checkpoint(weights: Path) -> None:
    (weights / "model.ckpt").unlink()


def _swap_keys(weights: Path) -> None:
    state = torch.load(weights / "model.ckpt", weights_only=True)
    state = {k: v for k, v in state.items() if not k.startswith("decoder.layers.6")}
    torch.save({**state, "extra.weight": torch.zeros(1)}, weights / "model.ckpt")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_remove_checkpoint, "model.ckpt does not exist"),
        (
            _swap_keys,
            "2 missing (decoder.layers.6.weight, decoder.layers.6.bias); "
            "1 unexpected (extra.weight)",
        ),
    ],
    ids=["missing-file", "key-mismatch"],
)
def test_probe_errors_are_one_clear_line(tmp_path: Path, make, message: str) -> None:
    weights = tmp_path / "weights"
    shutil.copytree(FIXTURE, weights)
    make(weights)
    result, out = _probe(tmp_path, weights=weights)
    assert result.exit_code == 1 and not out.exists()
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines


def test_probe_refuses_points_of_the_wrong_shape(tmp_path: Path) -> None:
    np.save(tmp_path / "flat.npy", np.zeros((5, 2), np.float32))
    result, _ = _probe(tmp_path, points=tmp_path / "flat.npy")
    assert result.exit_code == 1
    assert (
        result.output.strip()
        == f"error: points must have shape (n, 3), {tmp_path}/flat.npy has (5, 2)"
    )


def test_check_reports_parameters_sha256_and_config() -> None:
    result = runner.invoke(app, ["model", "check", str(FIXTURE), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    state = torch.load(FIXTURE / "model.ckpt", weights_only=True)
    assert report["tensors"] == len(state) == 97
    assert report["parameters"] == sum(t.numel() for t in state.values())
    import hashlib

    assert report["sha256"] == hashlib.sha256((FIXTURE / "model.ckpt").read_bytes()).hexdigest()
    assert report["config"]["cond_image_size"] == 48 and report["vit"]["native_image"] == 32
