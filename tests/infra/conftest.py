"""One synthesized meshdrop app per test session, shared by every infra test.

Synth runs jsii and takes tens of seconds, so it happens once; the tests then read the result.
Context comes from cdk.json, as `cdk synth` would pass it, with bundling skipped (CDK's own
switch for that) so no test downloads Lambda dependencies.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def cdk_context(**overrides: Any) -> dict[str, Any]:
    """The context of cdk.json, bundling switched off, plus ``meshdrop:`` overrides."""
    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    context["aws:cdk:bundling-stacks"] = []
    context.update({f"meshdrop:{k}": v for k, v in overrides.items()})
    return context


@dataclass
class Synthesized:
    """What a synth of the whole app left behind."""

    app: Any
    stack: Any
    outdir: Path
    error: str | None
    violations: list[dict[str, Any]] = field(default_factory=list)

    @property
    def template_path(self) -> Path:
        return self.outdir / f"{self.stack.stack_name}.template.json"

    @property
    def template_json(self) -> dict[str, Any]:
        return json.loads(self.template_path.read_text())


def synthesize(outdir: Path, **overrides: Any) -> Synthesized:
    import aws_cdk as cdk

    from infra.app import build

    app = cdk.App(context=cdk_context(**overrides), outdir=str(outdir))
    stack = build(app)
    error = None
    violations: list[dict[str, Any]] = []
    try:
        app.synth()
    except RuntimeError as err:  # jsii surfaces ValidationFailed as RuntimeError
        error = str(err)
        report = outdir / "validation-report.json"
        if report.exists():
            for plugin in json.loads(report.read_text())["pluginReports"]:
                for violation in plugin["violations"]:
                    for where in violation["violatingConstructs"]:
                        violations.append(
                            {"rule": violation["ruleName"], "path": where["constructPath"]}
                        )
    return Synthesized(app=app, stack=stack, outdir=outdir, error=error, violations=violations)


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(tmp_path_factory.mktemp("cdk-out"))


@pytest.fixture(scope="session")
def template(synthesized: Synthesized) -> Iterator[Any]:
    from aws_cdk.assertions import Template

    if synthesized.error and not synthesized.template_path.exists():
        pytest.fail(f"synth failed: {synthesized.error}")
    yield Template.from_stack(synthesized.stack)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Under `pytest -n 2 --dist loadgroup` keep every infra test on one worker, so the
    # expensive synth happens once rather than once per worker.
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.xdist_group("infra-synth"))
