"""Validate glTF/GLB assets with the Khronos glTF Validator (the npm ``gltf-validator`` package).

Used by every test that writes a GLB: an asset a viewer might reject is a failed asset.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = REPO_ROOT / "node_modules"
_SCRIPT = Path(__file__).with_name("gltf_validate.mjs")


class GltfValidatorUnavailableError(RuntimeError):
    """node or the gltf-validator package is missing (run ``make install``)."""


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        raise GltfValidatorUnavailableError("node is not on PATH")
    if not (NODE_MODULES / "gltf-validator").is_dir():
        raise GltfValidatorUnavailableError(f"no gltf-validator under {NODE_MODULES}")
    return node


def validate_gltf(asset: bytes | str | os.PathLike[str]) -> dict[str, Any]:
    """Run the Khronos glTF Validator on a GLB/glTF file or its bytes.

    Returns
    -------
    dict
        The validator's report; ``report["issues"]["numErrors"]`` counts errors and
        ``report["issues"]["messages"]`` lists each issue with code, message and pointer.

    Raises
    ------
    ValueError
        When the validator cannot even recognise the input as glTF.
    GltfValidatorUnavailableError
        When node or the validator package is not installed.
    """
    data = bytes(asset) if isinstance(asset, bytes | bytearray) else Path(asset).read_bytes()
    proc = subprocess.run(
        [_node(), str(_SCRIPT), str(NODE_MODULES)],
        input=data,
        capture_output=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        raise ValueError(
            f"glTF validator rejected the input: {proc.stderr.decode(errors='replace')}"
        )
    return json.loads(proc.stdout)


def assert_valid_gltf(asset: bytes | str | os.PathLike[str]) -> dict[str, Any]:
    """Assert the asset has zero validator errors (the message lists them); return the report."""
    report = validate_gltf(asset)
    issues = report["issues"]
    if issues["numErrors"]:
        errors = [m for m in issues["messages"] if m["severity"] == 0]
        lines = [f"{m['code']} at {m.get('pointer', '?')}: {m['message']}" for m in errors]
        raise AssertionError(f"{issues['numErrors']} glTF validator error(s):\n" + "\n".join(lines))
    return report


def glb_json(data: bytes) -> dict:
    """The JSON chunk of a GLB."""
    length = struct.unpack_from("<I", data, 12)[0]
    return json.loads(data[20 : 20 + length])


def glb_accessor(data: bytes, index: int) -> np.ndarray:
    """An accessor's elements straight from the GLB's binary chunk (no loader in between)."""
    doc = glb_json(data)
    json_len = struct.unpack_from("<I", data, 12)[0]
    bin_start = 20 + json_len + 8
    acc = doc["accessors"][index]
    view = doc["bufferViews"][acc["bufferView"]]
    dtype = {5121: np.uint8, 5123: np.uint16, 5125: np.uint32, 5126: np.float32}
    width = {"SCALAR": 1, "VEC3": 3, "VEC4": 4}[acc["type"]]
    offset = bin_start + view.get("byteOffset", 0) + acc.get("byteOffset", 0)
    values = np.frombuffer(
        data, dtype=dtype[acc["componentType"]], count=acc["count"] * width, offset=offset
    )
    return values.reshape(acc["count"], width)
