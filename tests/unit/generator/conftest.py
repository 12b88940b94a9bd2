"""Fixtures for the generator's image and background tests: tiny ONNX nets and rembg isolation."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from gpu_container.meshgen import background
from gpu_container.meshgen.segmentation import rembg_model, remover

# rembg's U2-Net sessions feed (1, 3, 320, 320) and read output[0][:, 0].
_SIDE = 320


def _model(nodes: list, initializers: list) -> bytes:
    graph = helper.make_graph(
        nodes,
        "tiny-segmenter",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, _SIDE, _SIDE])],
        [helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, 1, _SIDE, _SIDE])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by every onnxruntime the project allows
    onnx.checker.check_model(model)
    return model.SerializeToString()


def distance_model() -> bytes:
    """A net whose saliency is each pixel's colour distance to the top-left pixel."""
    ints = TensorProto.INT64
    inits = [
        helper.make_tensor("starts", ints, [2], [0, 0]),
        helper.make_tensor("ends", ints, [2], [1, 1]),
        helper.make_tensor("axes", ints, [2], [2, 3]),
        helper.make_tensor("channels", ints, [1], [1]),
    ]
    nodes = [
        helper.make_node("Slice", ["input.1", "starts", "ends", "axes"], ["corner"]),
        helper.make_node("Sub", ["input.1", "corner"], ["diff"]),
        helper.make_node("Mul", ["diff", "diff"], ["sq"]),
        helper.make_node("ReduceSum", ["sq", "channels"], ["sum"], keepdims=1),
        helper.make_node("Sqrt", ["sum"], ["mask"]),
    ]
    return _model(nodes, inits)


def square_model(box: tuple[int, int, int, int]) -> bytes:
    """A net that ignores the photo and always reports ``box`` (l, t, r, b of 320x320)."""
    left, top, right, bottom = box
    fixed = np.zeros((1, 1, _SIDE, _SIDE), dtype=np.float32)
    fixed[:, :, top:bottom, left:right] = 1.0
    inits = [
        numpy_helper.from_array(fixed, "fixed"),
        numpy_helper.from_array(np.zeros((1, 1, 1, 1), dtype=np.float32), "zero"),
    ]
    nodes = [
        # The input must feed the output, or onnxruntime prunes it and rembg's feed fails.
        helper.make_node("ReduceMean", ["input.1"], ["mean"], keepdims=1),
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
        helper.make_node("Add", ["fixed", "nothing"], ["mask"]),
    ]
    return _model(nodes, inits)


@pytest.fixture(autouse=True)
def isolated_rembg(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """No test sees a developer's rembg models or another test's sessions."""
    home = tmp_path_factory.mktemp("u2net_home")
    monkeypatch.setenv("U2NET_HOME", str(home))
    monkeypatch.delenv("REMBG_HOME", raising=False)
    monkeypatch.delenv(background.ENV_REMBG_MODEL, raising=False)
    monkeypatch.setattr(rembg_model, "SESSIONS", {})
    monkeypatch.setattr(remover, "_SHARED", {})
    return home


@pytest.fixture
def u2net_home(isolated_rembg: Path) -> Path:
    """The empty directory $U2NET_HOME points at."""
    return isolated_rembg


@pytest.fixture
def no_downloads(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail the test if rembg tries to fetch a model."""
    import pooch

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"rembg tried to download a model: {args!r}")

    monkeypatch.setattr(pooch, "retrieve", refuse)
    yield


@pytest.fixture
def write_model() -> Callable[[Path, bytes], Path]:
    def write(path: Path, data: bytes) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    return write


@pytest.fixture(scope="session")
def distance_onnx() -> bytes:
    """Bytes of :func:`distance_model`."""
    return distance_model()


@pytest.fixture(scope="session")
def square_onnx() -> Callable[[tuple[int, int, int, int]], bytes]:
    """:func:`square_model`, as a fixture."""
    return square_model
