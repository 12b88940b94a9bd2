"""Lambda packaging without Docker: what goes in, the platform, and a hash that ignores the venv."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from infra import lambda_code
from infra.lambda_code import (
    LocalLambdaBundling,
    copy_sources,
    lambda_requirements,
    source_hash,
)
from tests.infra.conftest import REPO_ROOT


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of just what the Lambda package is made from."""
    root = tmp_path / "repo"
    root.mkdir()
    shutil.copy(REPO_ROOT / "pyproject.toml", root / "pyproject.toml")
    for rel in ("lambdas", "meshdrop_contract"):
        shutil.copytree(REPO_ROOT / rel, root / rel, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def test_requirements_come_from_the_lambda_extra_without_boto3() -> None:
    reqs = lambda_requirements()
    assert any(r.startswith("pillow==") for r in reqs)
    assert any(r.startswith("aws-lambda-powertools[tracer,validation]==") for r in reqs)
    # The state function validates events with Powertools' validation utility (fastjsonschema).
    assert any(r.startswith("fastjsonschema==") for r in reqs)
    assert not any(r.startswith(("boto3", "botocore")) for r in reqs)


def test_hash_ignores_venv_node_modules_and_cdk_out(project: Path) -> None:
    before = source_hash(project, "arm64")
    for noise in (".venv/lib/x.py", "node_modules/a/index.js", "cdk.out/asset/x", "tests/t.py"):
        (project / noise).parent.mkdir(parents=True, exist_ok=True)
        (project / noise).write_text("noise")
    (project / "lambdas" / "__pycache__").mkdir(exist_ok=True)
    (project / "lambdas" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    assert source_hash(project, "arm64") == before


def test_hash_follows_code_pins_and_platform(project: Path) -> None:
    before = source_hash(project, "arm64")
    assert source_hash(project, "x86_64") != before
    contract = project / "meshdrop_contract" / "limits.py"
    contract.write_text(contract.read_text() + "\n# changed\n")
    changed = source_hash(project, "arm64")
    assert changed != before
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("pillow==12.3.0", "pillow==12.2.0"))
    assert source_hash(project, "arm64") != changed


def test_copy_sources_copies_handlers_and_contract_only(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    copied = copy_sources(project, out)
    rel = {p.relative_to(out).as_posix() for p in copied}
    assert not any(r.startswith("meshdrop/") for r in rel)
    assert "meshdrop_contract/keys.py" in rel
    assert any(r.startswith("meshdrop_contract/schemas/") for r in rel)
    assert any(r.startswith("lambdas/") for r in rel)
    assert not any(r.startswith(("meshdrop/local", "meshdrop/gallery", "tests")) for r in rel)
    assert not any("__pycache__" in r for r in rel)


def test_missing_sources_are_an_error(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname="x"\n[project.optional-dependencies]\nlambda=["pillow==1"]\n'
    )
    with pytest.raises(FileNotFoundError, match="lambdas"):
        source_hash(tmp_path, "arm64")


@pytest.mark.parametrize(
    ("architecture", "platform"),
    [("arm64", "aarch64"), ("x86_64", "x86_64")],
)
def test_pip_installs_binary_wheels_for_the_lambda_platform(
    architecture: str, platform: str
) -> None:
    command = LocalLambdaBundling(REPO_ROOT, architecture).pip_command("/out")
    platforms = [command[i + 1] for i, arg in enumerate(command) if arg == "--platform"]
    assert platforms == [f"manylinux_2_28_{platform}", f"manylinux2014_{platform}"]
    assert command[command.index("--python-version") + 1] == "3.12"
    assert command[command.index("--target") + 1] == "/out"
    assert "--only-binary=:all:" in command
    assert any(c.startswith("pillow==") for c in command)


def test_try_bundle_copies_then_installs(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []

    def fake_run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        calls.append(command)
        target = Path(command[command.index("--target") + 1])
        # What pip leaves for pillow + powertools[tracer]: botocore comes with aws-xray-sdk.
        for name in ("PIL", "botocore", "botocore-1.44.8.dist-info", "aws_xray_sdk", "wrapt"):
            (target / name).mkdir()
        (target / "six.py").write_text("")
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(lambda_code.subprocess, "run", fake_run)
    out = tmp_path / "bundle"
    out.mkdir()
    assert LocalLambdaBundling(project, "arm64").try_bundle(str(out), None) is True  # type: ignore[arg-type]
    assert (out / "meshdrop_contract" / "__init__.py").exists()
    (command,) = calls
    assert command[command.index("--target") + 1] == str(out)
    left = {p.name for p in out.iterdir()}
    # The runtime's own boto3/botocore pair must not be shadowed by a bundled botocore.
    assert not any(name.startswith("botocore") for name in left)
    assert {"PIL", "aws_xray_sdk", "wrapt", "six.py", "lambdas", "meshdrop_contract"} <= left
    assert "meshdrop" not in left


def test_try_bundle_fails_loudly_when_pip_fails(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fake_run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(command, 1, "", "No matching distribution")

    monkeypatch.setattr(lambda_code.subprocess, "run", fake_run)
    with pytest.raises(RuntimeError, match="No matching distribution"):
        LocalLambdaBundling(project, "x86_64").try_bundle(str(tmp_path), None)  # type: ignore[arg-type]


def code_key(root: Path, architecture: str = "arm64") -> str:
    """The S3 key CDK gives the code asset of a function built from ``root``."""
    from aws_cdk import App, Stack
    from aws_cdk import aws_lambda as lambda_
    from aws_cdk.assertions import Template

    stack = Stack(App(context={"aws:cdk:bundling-stacks": []}), "CodeOnly")
    lambda_.Function(
        stack,
        "Function",
        code=lambda_code.lambda_code(architecture, root),
        handler="lambdas.ingest.handler.lambda_handler",
        runtime=lambda_code.RUNTIME,
    )
    (fn,) = Template.from_stack(stack).find_resources("AWS::Lambda::Function").values()
    return str(fn["Properties"]["Code"]["S3Key"])


def test_asset_key_is_reproducible_and_follows_the_sources(project: Path) -> None:
    first = code_key(project)
    assert code_key(project) == first
    (project / ".venv").mkdir()
    (project / ".venv" / "noise.py").write_text("x = 1")
    assert code_key(project) == first
    handler = project / "lambdas" / "__init__.py"
    handler.write_text(handler.read_text() + "\n# changed\n")
    assert code_key(project) != first
    assert code_key(project, "x86_64") != code_key(project)


def test_all_functions_share_one_code_asset(template: Any) -> None:
    functions = template.find_resources("AWS::Lambda::Function")
    ours = [
        f["Properties"]
        for f in functions.values()
        if f["Properties"].get("Handler", "").startswith("lambdas.")
    ]
    assert len(ours) == 3  # ingest, state, reconcile
    keys = {str(f["Code"]["S3Key"]) for f in ours}
    (key,) = keys
    # (Not compared with code_key(REPO_ROOT): the sources may change while the session runs.)
    assert re.fullmatch(r"[0-9a-f]{64}\.zip", key), key
