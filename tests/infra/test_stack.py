"""The whole stack: outputs, cdk-nag, cfn-lint, least privilege across every policy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from aws_cdk.assertions import Match, Template

from meshdrop_contract import wiring
from tests.infra.conftest import Synthesized


def policies(template: Template) -> dict[str, list[dict[str, Any]]]:
    """Statements of every IAM policy in the template, by logical id."""
    found = template.find_resources("AWS::IAM::Policy")
    return {lid: res["Properties"]["PolicyDocument"]["Statement"] for lid, res in found.items()}


def test_synth_passes_cdk_nag_with_zero_findings(synthesized: Synthesized) -> None:
    assert synthesized.violations == []
    assert synthesized.error is None


def test_every_acknowledgement_carries_a_reason(synthesized: Synthesized) -> None:
    from aws_cdk import Validations

    key = Validations.ACKNOWLEDGED_RULES_METADATA_KEY
    acks: dict[str, str] = {}
    for construct in synthesized.stack.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == key:
                for rule, reason in entry.data.items():
                    acks[f"{construct.node.path} {rule}"] = reason
    nag = {where: reason for where, reason in acks.items() if "AwsSolutions-" in where}
    assert nag, "the stack acknowledges known cdk-nag findings; none were recorded"
    short = {where: reason for where, reason in nag.items() if len(reason.strip()) < 30}
    assert short == {}


def test_cfn_lint_reports_no_errors(synthesized: Synthesized) -> None:
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "cfn-lint"),
            "--format",
            "json",
            str(synthesized.template_path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    findings = json.loads(result.stdout or "[]")
    errors = [f for f in findings if f["Level"] == "Error"]
    assert errors == [], errors
    # cfn-lint exits 2 for errors and 4 for warnings (CDK's own redundant DependsOn).
    assert result.returncode in (0, 4), result.stderr


def test_outputs_are_the_ones_the_cli_reads(template: Template) -> None:
    outputs = template.find_outputs("*")
    for name in (
        wiring.STACK_OUTPUT_BUCKET,
        wiring.STACK_OUTPUT_EVENT_BUS,
        wiring.STACK_OUTPUT_TOPIC,
        wiring.STACK_OUTPUT_TABLE,
        "JobQueueName",
    ):
        assert name in outputs, sorted(outputs)


def test_default_stack_name_is_the_clis_default(synthesized: Synthesized) -> None:
    assert synthesized.stack.stack_name == wiring.DEFAULT_STACK_NAME


def test_stack_is_environment_agnostic_by_default(template: Template) -> None:
    text = json.dumps(template.to_json())
    # Account and region stay pseudo parameters, never literal values.
    assert '"Ref": "AWS::Region"' in text
    assert '"Ref": "AWS::AccountId"' in text


def test_no_policy_grants_every_action(template: Template) -> None:
    for lid, statements in policies(template).items():
        for st in statements:
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            assert "*" not in actions, lid
            assert not any(a.endswith(":*") for a in actions), (lid, actions)


def test_wildcard_resources_only_where_aws_requires_them(template: Template) -> None:
    # Actions that support no resource-level permissions; nothing else may use "*".
    allowed = {
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "ecr:GetAuthorizationToken",
        # The reconciler's look-ups in Batch.
        "batch:ListJobs",
        "batch:DescribeJobs",
        # CDK's bucket-notification handler (a custom resource of CDK itself).
        "s3:PutBucketNotification",
    }
    for lid, statements in policies(template).items():
        for st in statements:
            if st["Resource"] == "*":
                actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
                assert set(actions) <= allowed, (lid, actions)


def test_template_has_the_pipeline_resources(template: Template) -> None:
    template.resource_count_is("AWS::S3::Bucket", 2)  # data + access logs
    template.resource_count_is("AWS::Lambda::EventSourceMapping", 1)
    template.resource_count_is("AWS::Batch::JobQueue", 1)
    template.resource_count_is("AWS::Batch::JobDefinition", 1)
    template.resource_count_is("AWS::DynamoDB::GlobalTable", 1)
    template.resource_count_is("AWS::Events::EventBus", 1)
    template.resource_count_is("AWS::SNS::Topic", 2)  # notifications + alarms
    template.has_resource_properties(
        "AWS::Lambda::Function", {"Handler": "lambdas.ingest.handler.lambda_handler"}
    )
    template.has_resource_properties(
        "AWS::Lambda::Function", {"Handler": "lambdas.state.handler.lambda_handler"}
    )
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "lambdas.ingest.handler.lambda_handler",
            "Runtime": Match.string_like_regexp(r"^python3\.1[2-9]$"),
        },
    )
