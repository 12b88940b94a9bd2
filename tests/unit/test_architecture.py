"""The layer rules in pyproject.toml hold today, and each one fails when its rule is broken.

`make lint` runs import-linter on the tree; these tests copy the packages into a scratch folder,
add one forbidden import at a time and check that exactly the contract guarding that rule
reports it. A contract that could never fail would protect nothing.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("meshdrop", "meshdrop_contract", "lambdas", "gpu_container", "infra")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

#: contract id -> (module file to add, the import it makes)
VIOLATIONS: dict[str, tuple[str, str]] = {
    "layers": ("lambdas/ingest/upward.py", "import meshdrop.gallery"),
    "contract-stdlib": ("meshdrop_contract/heavy.py", "import numpy"),
    "lambdas-light": ("lambdas/common/heavy.py", "import torch"),
    "generator-knows-no-aws": ("gpu_container/meshgen/aws.py", "import boto3"),
    "infra-by-path": ("infra/handler_import.py", "import lambdas.ingest.handler"),
}

pytestmark = pytest.mark.slow


def _contract_ids() -> set[str]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {c["id"] for c in config["contracts"]}


def _lint(root: Path, *contracts: str) -> subprocess.CompletedProcess[str]:
    command = [str(LINT_IMPORTS), "--no-cache", "--no-logo", "--config", "pyproject.toml"]
    for contract in contracts:
        command += ["--contract", contract]
    return subprocess.run(
        command,
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("layers")
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.json", "*.html", "*.onnx")
    for package in PACKAGES:
        shutil.copytree(REPO / package, root / package, ignore=ignore)
    return root


def test_every_contract_has_a_violation_to_prove_it() -> None:
    assert set(VIOLATIONS) == _contract_ids()


def test_the_tree_keeps_every_contract(tree: Path) -> None:
    result = _lint(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(VIOLATIONS)} kept, 0 broken" in result.stdout


@pytest.mark.parametrize("contract", sorted(VIOLATIONS))
def test_a_forbidden_import_breaks_its_contract(tree: Path, contract: str) -> None:
    relative, statement = VIOLATIONS[contract]
    module = tree / relative
    module.write_text(f"{statement}\n")
    try:
        result = _lint(tree, contract)
    finally:
        module.unlink()
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 broken" in result.stdout
    imported = statement.split()[-1]
    assert imported in result.stdout
