"""Non-default settings: weights from S3, no Spot, e-mails, destroy on delete, fixed env."""

from __future__ import annotations

from pathlib import Path

import pytest
from aws_cdk.assertions import Template

from infra.settings import MeshdropSettings
from infra.stack import BAKED_WEIGHTS_DIR, weights_location
from meshdrop_contract import jobs
from tests.infra.conftest import cdk_context
from tests.infra.helpers import as_list, role_statements, single

VARIANT = {
    "spot": False,
    "weights_s3_uri": "s3://model-bucket/meshdrop/v1/",
    "alarm_email": "ops@example.com",
    "notification_email": "team@example.com",
    "removal_policy": "destroy",
    "account": "123456789012",
    "region": "eu-west-1",
    "stack_name": "meshdrop-dev",
    "lambda_architecture": "x86_64",
}


@pytest.fixture(scope="module")
def variant() -> Template:
    from aws_cdk import App

    from infra.app import build

    app = App(context=cdk_context(**VARIANT))
    stack = build(app)
    assert stack.stack_name == "meshdrop-dev"
    return Template.from_stack(stack)


def test_without_spot_only_on_demand_serves_the_queue(variant: Template) -> None:
    (env,) = variant.find_resources("AWS::Batch::ComputeEnvironment").values()
    assert env["Properties"]["ComputeResources"]["Type"] == "EC2"
    assert env["Properties"]["ComputeResources"]["MinvCpus"] == 0


def test_weights_from_s3_reach_the_job_and_only_that_prefix_is_readable(
    variant: Template,
) -> None:
    _, definition = single(variant.find_resources("AWS::Batch::JobDefinition"))
    container = definition["Properties"]["ContainerProperties"]
    env = {e["Name"]: e["Value"] for e in container["Environment"]}
    assert env[jobs.ENV_WEIGHTS] == VARIANT["weights_s3_uri"]
    statements = role_statements(variant, "ComputeJobRole")
    resources = {str(r) for s in statements for r in as_list(s["Resource"])}
    assert "arn:aws:s3:::model-bucket/meshdrop/v1/*" in resources
    (listing,) = [s for s in statements if s["Action"] == "s3:ListBucket"]
    assert listing["Resource"] == "arn:aws:s3:::model-bucket"
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["meshdrop/v1/*"]}}


def test_both_e_mail_subscriptions_exist(variant: Template) -> None:
    subs = variant.find_resources("AWS::SNS::Subscription")
    assert {s["Properties"]["Endpoint"] for s in subs.values()} == {
        "ops@example.com",
        "team@example.com",
    }


def test_destroy_removes_data_and_empties_buckets(variant: Template) -> None:
    buckets = variant.find_resources("AWS::S3::Bucket")
    assert all(b["DeletionPolicy"] == "Delete" for b in buckets.values())
    assert variant.find_resources("Custom::S3AutoDeleteObjects")
    _, table = single(variant.find_resources("AWS::DynamoDB::GlobalTable"))
    assert table["DeletionPolicy"] == "Delete"
    assert table["Properties"]["Replicas"][0].get("DeletionProtectionEnabled") is not True


def test_explicit_environment_and_architecture(variant: Template) -> None:
    functions = variant.find_resources("AWS::Lambda::Function")
    ours = [
        f for f in functions.values() if f["Properties"].get("Handler", "").startswith("lambdas.")
    ]
    assert all(f["Properties"]["Architectures"] == ["x86_64"] for f in ours)
    _, table = single(variant.find_resources("AWS::DynamoDB::GlobalTable"))
    assert table["Properties"]["Replicas"][0]["Region"] == "eu-west-1"


def test_weights_location_names_baked_weights_only_when_there_are_some(tmp_path: Path) -> None:
    empty = tmp_path / "weights"
    assert weights_location(MeshdropSettings(), empty) == ""
    empty.mkdir()
    assert weights_location(MeshdropSettings(), empty) == ""
    (empty / "u2net.onnx").write_bytes(b"onnx")
    assert weights_location(MeshdropSettings(), empty) == BAKED_WEIGHTS_DIR
    baked = MeshdropSettings.from_mapping(
        {"weights_url": "https://example.com/w.tar.gz", "weights_sha256": "0" * 64}
    )
    assert weights_location(baked, tmp_path / "none") == BAKED_WEIGHTS_DIR
    s3 = MeshdropSettings.from_mapping({"weights_s3_uri": "s3://bkt/p/"})
    assert weights_location(s3, empty) == "s3://bkt/p/"
