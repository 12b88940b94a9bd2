"""image_build="codebuild": the image is built in AWS by a project the stack owns."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from infra.image_codebuild import build_commands, image_tag
from tests.infra.conftest import Synthesized, synthesize
from tests.infra.helpers import logical_ref, single


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(tmp_path_factory.mktemp("codebuild"), image_build="codebuild")


@pytest.fixture(scope="module")
def template(built: Synthesized) -> Template:
    assert built.error is None, built.error
    return Template.from_stack(built.stack)


def test_no_local_docker_build_is_needed(built: Synthesized) -> None:
    manifest = json.loads(next(built.outdir.glob("*.assets.json")).read_text())
    assert manifest.get("dockerImages", {}) == {}
    # The build context travels as a small file asset instead.
    contexts = [f for f in manifest["files"].values() if f["source"].get("packaging") == "zip"]
    assert contexts


def test_repository_keeps_only_the_newest_images(template: Template) -> None:
    _, repo = single(template.find_resources("AWS::ECR::Repository"))
    props = repo["Properties"]
    assert props["ImageTagMutability"] == "IMMUTABLE"
    assert props["ImageScanningConfiguration"] == {"ScanOnPush": True}
    policy = json.loads(props["LifecyclePolicy"]["LifecyclePolicyText"])
    (rule,) = policy["rules"]
    assert rule["selection"]["countType"] == "imageCountMoreThan"
    assert rule["selection"]["countNumber"] == 5  # meshdrop:ecr_keep_images


def test_project_builds_the_gpu_target_with_docker(template: Template) -> None:
    _, project = single(template.find_resources("AWS::CodeBuild::Project"))
    props = project["Properties"]
    assert props["Environment"]["PrivilegedMode"] is True
    assert props["Source"]["Type"] == "S3"
    variables = {v["Name"]: v["Value"] for v in props["Environment"]["EnvironmentVariables"]}
    assert variables["BAKE_WEIGHTS"] == "1"
    assert variables["IMAGE_TAG"].startswith("gpu-")
    build, push = json.loads(props["Source"]["BuildSpec"])["phases"]["build"]["commands"]
    assert "--target gpu" in build
    assert '--build-arg MESHDROP_MODEL_SHA256="$MESHDROP_MODEL_SHA256"' in build
    assert push == 'docker push "$REPOSITORY_URI:$IMAGE_TAG"'
    assert props["TimeoutInMinutes"] == 120


def test_jobs_wait_for_the_build_and_use_its_tag(built: Synthesized, template: Template) -> None:
    build_id, build = single(template.find_resources("AWS::CloudFormation::CustomResource"))
    tag = build["Properties"]["ImageTag"]
    definition_id, definition = single(template.find_resources("AWS::Batch::JobDefinition"))
    image = json.dumps(definition["Properties"]["ContainerProperties"]["Image"])
    assert tag in image
    assert "ImageBuildRepository" in image
    raw: dict[str, Any] = built.template_json["Resources"][definition_id]
    assert build_id in raw.get("DependsOn", [])
    assert logical_ref(build["Properties"]["ServiceToken"]).startswith("ImageBuildProvider")


def test_tag_changes_with_context_target_or_arguments() -> None:
    base = image_tag("abc", "gpu", {"BAKE_WEIGHTS": "1"})
    assert image_tag("abc", "gpu", {"BAKE_WEIGHTS": "1"}) == base
    assert image_tag("abd", "gpu", {"BAKE_WEIGHTS": "1"}) != base
    assert image_tag("abc", "cpu", {"BAKE_WEIGHTS": "1"}) != base
    assert image_tag("abc", "gpu", {"BAKE_WEIGHTS": "0"}) != base
    (build, push) = build_commands("cpu", {"BAKE_WEIGHTS": "0"})
    assert build.startswith("docker build -f gpu_container/Dockerfile --target cpu")
    assert push == 'docker push "$REPOSITORY_URI:$IMAGE_TAG"'


def test_nag_clean_and_cfn_lint_clean(built: Synthesized) -> None:
    assert [v for v in built.violations if not v["rule"].startswith("Annotation::")] == []
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "cfn-lint"),
            "--format",
            "json",
            str(built.template_path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    errors = [f for f in json.loads(result.stdout or "[]") if f["Level"] == "Error"]
    assert errors == []
