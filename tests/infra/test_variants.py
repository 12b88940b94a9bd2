"""Non-default settings: weights from S3, no Spot, e-mails, destroy on delete, fixed env,
a pinned AMI, a bigger root volume, no budget, packs of 12."""

from __future__ import annotations

from pathlib import Path

import pytest
from aws_cdk.assertions import Template

from infra.image import BAKED_WEIGHTS_DIR
from infra.settings import MeshdropSettings
from infra.stack import ENV_WEIGHTS_SHA256, weights_location
from meshdrop_contract import jobs, wiring
from tests.infra.conftest import cdk_context
from tests.infra.helpers import as_list, object_patterns, role_statements, single

VARIANT = {
    "spot": False,
    "weights_s3_uri": "s3://model-bucket/meshdrop/v1/",
    "weights_s3_sha256": "b" * 64,
    "ami_id": "ami-0123456789abcdef0",
    "root_volume_gib": 150,
    "monthly_budget_usd": 0,
    "alarm_email": "ops@example.com",
    "notification_email": "team@example.com",
    "removal_policy": "destroy",
    "account": "123456789012",
    "region": "eu-west-1",
    "stack_name": "meshdrop-dev",
    "lambda_architecture": "x86_64",
    "delete_assets_with_source": True,
    "error_files": False,
    "pack_size": 12,
    "pack_wait_seconds": 8,
}


@pytest.fixture(scope="module")
def variant_app(tmp_path_factory: pytest.TempPathFactory):
    from aws_cdk import App

    from infra.app import build

    app = App(context=cdk_context(**VARIANT), outdir=str(tmp_path_factory.mktemp("variant")))
    stack = build(app)
    assert stack.stack_name == "meshdrop-dev"
    app.synth()
    return app


@pytest.fixture(scope="module")
def variant(variant_app) -> Template:
    return Template.from_stack(variant_app.node.find_child("meshdrop-dev"))


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
    # Each instance downloads once to scratch (TMPDIR) and checks the pinned SHA256SUMS.
    assert env[ENV_WEIGHTS_SHA256] == "b" * 64
    assert env["TMPDIR"] == "/scratch"
    statements = role_statements(variant, "ComputeJobRole")
    resources = {str(r) for s in statements for r in as_list(s["Resource"])}
    assert "arn:aws:s3:::model-bucket/meshdrop/v1/*" in resources
    (listing,) = [
        s
        for s in statements
        if s["Action"] == "s3:ListBucket" and s["Resource"] == "arn:aws:s3:::model-bucket"
    ]
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


def test_weights_location_follows_the_weights_mode() -> None:
    assert weights_location(MeshdropSettings()) == BAKED_WEIGHTS_DIR
    assert weights_location(MeshdropSettings.from_mapping({"compute": "cpu"})) == ""
    s3 = MeshdropSettings.from_mapping(
        {"weights_s3_uri": "s3://bkt/p/", "weights_s3_sha256": "c" * 64}
    )
    assert weights_location(s3) == "s3://bkt/p/"


def test_s3_weights_build_the_gpu_image_without_baking(variant_app) -> None:
    import json

    outdir = Path(variant_app.outdir)
    manifest = json.loads(next(outdir.glob("*.assets.json")).read_text())
    (image,) = manifest["dockerImages"].values()
    assert image["source"]["dockerBuildTarget"] == "gpu"
    assert image["source"]["dockerBuildArgs"] == {"BAKE_WEIGHTS": "0"}


def test_a_pinned_ami_id_and_root_size_reach_the_instances(variant: Template) -> None:
    for env in variant.find_resources("AWS::Batch::ComputeEnvironment").values():
        (config,) = env["Properties"]["ComputeResources"]["Ec2Configuration"]
        assert config["ImageIdOverride"] == "ami-0123456789abcdef0"
    _, lt = single(variant.find_resources("AWS::EC2::LaunchTemplate"))
    assert (
        lt["Properties"]["LaunchTemplateData"]["BlockDeviceMappings"][0]["Ebs"]["VolumeSize"] == 150
    )


def test_a_named_environment_spreads_over_three_azs(variant: Template) -> None:
    subnets = variant.find_resources("AWS::EC2::Subnet")
    assert len(subnets) == 3


def test_budget_zero_creates_no_budget(variant: Template) -> None:
    variant.resource_count_is("AWS::Budgets::Budget", 0)


def test_subscribed_topics_raise_no_subscriber_warnings(variant_app) -> None:
    stack = variant_app.node.find_child("meshdrop-dev")
    texts = [m.data for m in stack.node.metadata if m.type == "aws:cdk:warning"]
    assert not any("alarm_email is empty" in str(t) for t in texts)
    assert any("monthly_budget_usd is 0" in str(t) for t in texts)


def test_deleting_assets_with_their_photo_grants_delete_on_assets_only(variant: Template) -> None:
    statements = role_statements(variant, "IngestFunctionRole")
    assert object_patterns(statements, "s3:DeleteObject") == {"/3d_assets/*"}
    functions = variant.find_resources("AWS::Lambda::Function")
    envs = [f["Properties"].get("Environment", {}).get("Variables", {}) for f in functions.values()]
    ingest = [e for e in envs if wiring.ENV_DELETE_ASSETS_WITH_SOURCE in e]
    assert [e[wiring.ENV_DELETE_ASSETS_WITH_SOURCE] for e in ingest] == ["true"]
    assert {e[wiring.ENV_ERROR_FILES] for e in envs if wiring.ENV_ERROR_FILES in e} == {"false"}


def test_packs_size_the_ingest_batches_and_let_the_job_see_finished_assets(
    variant: Template,
) -> None:
    (mapping,) = variant.find_resources("AWS::Lambda::EventSourceMapping").values()
    assert mapping["Properties"]["BatchSize"] == 12  # a whole pack in one invocation
    assert mapping["Properties"]["MaximumBatchingWindowInSeconds"] == 8
    functions = variant.find_resources(
        "AWS::Lambda::Function",
        {"Properties": {"Handler": "lambdas.ingest.handler.lambda_handler"}},
    )
    (function,) = functions.values()
    assert function["Properties"]["Environment"]["Variables"][wiring.ENV_PACK_SIZE] == "12"
    # A retried pack skips photos finished before: HeadObject of their assets.
    statements = role_statements(variant, "ComputeJobRole")
    assert "/3d_assets/*" in object_patterns(statements, "s3:GetObject")
