"""Ingest construct: encrypted queue with a DLQ, and a traced function that drains it."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Template

from meshdrop_contract import wiring
from tests.infra.conftest import Synthesized
from tests.infra.helpers import as_list, logical_ref, object_patterns, role_statements

INGEST_HANDLER = "lambdas.ingest.handler.lambda_handler"


def ingest_function(template: Template) -> dict[str, Any]:
    found = template.find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": INGEST_HANDLER}}
    )
    assert len(found) == 1
    return next(iter(found.values()))["Properties"]


def ingest_queue(template: Template) -> dict[str, Any]:
    queues = template.find_resources("AWS::SQS::Queue")
    (queue,) = [q for lid, q in queues.items() if lid.startswith("IngestQueue")]
    return queue["Properties"]


def test_queue_is_encrypted_and_redrives_to_a_dead_letter_queue(template: Template) -> None:
    props = ingest_queue(template)
    assert props["SqsManagedSseEnabled"] is True
    redrive = props["RedrivePolicy"]
    assert redrive["maxReceiveCount"] == 5
    dlq_id = redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]
    dlq = template.to_json()["Resources"][dlq_id]
    assert dlq["Type"] == "AWS::SQS::Queue"
    assert dlq["Properties"]["SqsManagedSseEnabled"] is True
    # Messages must outlive the function timeout several times over before redelivery.
    assert props["VisibilityTimeout"] >= 6 * ingest_function(template)["Timeout"]


def test_every_queue_denies_plain_http(template: Template) -> None:
    queues = template.find_resources("AWS::SQS::Queue")
    policies = template.find_resources("AWS::SQS::QueuePolicy")
    tls_only = {"Bool": {"aws:SecureTransport": "false"}}
    protected: set[str] = set()
    for policy in policies.values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        if any(s["Effect"] == "Deny" and s.get("Condition") == tls_only for s in statements):
            protected.update(logical_ref(q) for q in policy["Properties"]["Queues"])
    assert set(queues) <= protected, set(queues) - protected


def test_function_is_traced_python_312_plus_with_reserved_concurrency(template: Template) -> None:
    props = ingest_function(template)
    assert props["Runtime"].startswith("python3.1")
    assert int(props["Runtime"].removeprefix("python3.")) >= 12
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert props["ReservedConcurrentExecutions"] == 5
    assert props["Architectures"] == ["arm64"]
    assert props["LoggingConfig"]["LogGroup"]["Ref"].startswith("IngestFunctionLogs")


def test_function_log_group_has_retention(template: Template) -> None:
    props = ingest_function(template)
    group_id = props["LoggingConfig"]["LogGroup"]["Ref"]
    group = template.to_json()["Resources"][group_id]
    assert group["Properties"]["RetentionInDays"] == 30


def test_function_environment_names_come_from_the_contract(template: Template) -> None:
    env = ingest_function(template)["Environment"]["Variables"]
    for name in (
        wiring.ENV_TABLE_NAME,
        wiring.ENV_EVENT_BUS_NAME,
        wiring.ENV_JOB_QUEUE,
        wiring.ENV_JOB_DEFINITION,
        wiring.ENV_MAX_IMAGE_BYTES,
        wiring.ENV_MAX_IMAGE_PIXELS,
        wiring.ENV_JOB_TTL_DAYS,
        "POWERTOOLS_SERVICE_NAME",
    ):
        assert name in env, name
    assert env[wiring.ENV_MAX_IMAGE_BYTES] == str(25 * 1024 * 1024)
    assert env[wiring.ENV_MAX_IMAGE_PIXELS] == "40000000"
    assert env[wiring.ENV_JOB_QUEUE]["Fn::GetAtt"][1] == "JobQueueArn"


def test_function_knows_its_timeout_and_visibility_so_its_lease_fits(template: Template) -> None:
    function = ingest_function(template)
    env = function["Environment"]["Variables"]
    assert env[wiring.ENV_INGEST_TIMEOUT_SECONDS] == str(function["Timeout"])
    (queue,) = [
        q["Properties"]
        for lid, q in template.find_resources("AWS::SQS::Queue").items()
        if lid.startswith("IngestQueue")
    ]
    assert env[wiring.ENV_INGEST_VISIBILITY_SECONDS] == str(queue["VisibilityTimeout"])
    # The defaults: error files on, assets kept when their photo is deleted.
    assert env[wiring.ENV_ERROR_FILES] == "true"
    assert env[wiring.ENV_DELETE_ASSETS_WITH_SOURCE] == "false"


def test_ingest_may_look_for_a_batch_job_and_query_a_key_s_jobs(template: Template) -> None:
    statements = role_statements(template, "IngestFunctionRole")
    (listing,) = [s for s in statements if "batch:ListJobs" in as_list(s["Action"])]
    assert listing["Resource"] == "*"  # ListJobs has no resource-level permissions
    (query,) = [s for s in statements if s["Action"] == "dynamodb:Query"]
    parts = query["Resource"]["Fn::Join"][1]
    assert parts[-1] == "/index/by_source"


def test_event_source_reports_partial_batch_failures(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            # A batch holds a whole pack (10 by default), gathered for at most pack_wait_seconds.
            "BatchSize": 10,
            "MaximumBatchingWindowInSeconds": 5,
            # Never more concurrent batches than reserved executions: no throttling retries.
            "ScalingConfig": {"MaximumConcurrency": 5},
            "EventSourceArn": {"Fn::GetAtt": [_queue_id(template), "Arn"]},
        },
    )


def _queue_id(template: Template) -> str:
    (lid,) = [q for q in template.find_resources("AWS::SQS::Queue") if q.startswith("IngestQueue")]
    return lid


def test_ingest_reads_images_and_writes_only_assets(template: Template) -> None:
    statements = role_statements(template, "IngestFunctionRole")
    assert object_patterns(statements, "s3:GetObject") == {"/images/*", "/3d_assets/*"}
    assert object_patterns(statements, "s3:PutObject") == {"/3d_assets/*"}
    assert object_patterns(statements, "s3:DeleteObject") == set()


def test_ingest_may_list_the_bucket_so_missing_keys_are_404(template: Template) -> None:
    statements = role_statements(template, "IngestFunctionRole")
    (listing,) = [s for s in statements if s["Action"] == "s3:ListBucket"]
    assert logical_ref(listing["Resource"]).startswith("StorageBucket")
    assert listing["Resource"]["Fn::GetAtt"][1] == "Arn"  # the bucket itself, no objects


def test_ingest_may_tag_only_jobs_it_submits(template: Template) -> None:
    statements = role_statements(template, "IngestFunctionRole")
    (tagging,) = [s for s in statements if s["Action"] == "batch:TagResource"]
    assert tagging["Condition"] == {"StringEquals": {"batch:CreateAction": "SubmitJob"}}
    parts = tagging["Resource"]["Fn::Join"][1]
    assert parts[-1] == ":job/*"
    assert {"Ref": "AWS::AccountId"} in parts


def test_ingest_may_submit_only_to_its_queue_and_definition(template: Template) -> None:
    statements = role_statements(template, "IngestFunctionRole")
    (submit,) = [s for s in statements if s["Action"] == "batch:SubmitJob"]
    refs = {logical_ref(r) for r in submit["Resource"]}
    assert any(r.startswith("ComputeJobQueue") for r in refs), refs
    assert any(r.startswith("ComputeJobDefinition") for r in refs), refs
    assert len(refs) == 2


def test_ingest_puts_events_on_the_meshdrop_bus_only(template: Template) -> None:
    statements = role_statements(template, "IngestFunctionRole")
    (put,) = [s for s in statements if s["Action"] == "events:PutEvents"]
    assert logical_ref(put["Resource"]).startswith("EventsBus")


def test_synth_needs_no_docker_and_skipped_bundling(synthesized: Synthesized) -> None:
    assets = list(synthesized.outdir.glob("*.assets.json"))
    assert assets, "an assets manifest is written"
    assert synthesized.error is None
