"""Reconcile construct: the scheduled function and exactly the permissions it needs."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Template

from meshdrop_contract import jobs, wiring
from tests.infra.helpers import as_list, logical_ref, role_statements, single
from tests.infra.test_settings import cdk_json

RECONCILE_HANDLER = "lambdas.reconcile.handler.lambda_handler"


def _function(template: Template) -> tuple[str, dict[str, Any]]:
    return single(
        template.find_resources(
            "AWS::Lambda::Function", {"Properties": {"Handler": RECONCILE_HANDLER}}
        )
    )


def _context(name: str) -> int:
    return int(cdk_json()["context"][f"meshdrop:{name}"])


def test_the_schedule_invokes_the_function_every_few_minutes(template: Template) -> None:
    function_id, _ = _function(template)
    _, schedule = single(template.find_resources("AWS::Scheduler::Schedule"))
    props = schedule["Properties"]
    every = _context("reconcile_every_minutes")
    assert props["ScheduleExpression"] == f"rate({every} minutes)"
    assert props["State"] == "ENABLED"
    assert logical_ref(props["Target"]["Arn"]) == function_id
    assert "DeadLetterConfig" in props["Target"]


def test_the_reconciler_waits_longer_than_the_runnable_time_limit(template: Template) -> None:
    _, function = _function(template)
    env = function["Properties"]["Environment"]["Variables"]
    runnable_s = _context("runnable_timeout_minutes") * 60
    stuck_after = int(env[wiring.ENV_RECONCILE_STUCK_AFTER_S])
    running_after = int(env[wiring.ENV_RECONCILE_RUNNING_AFTER_S])
    assert stuck_after > runnable_s
    attempts_s = _context("job_timeout_minutes") * _context("job_attempts") * 60
    assert running_after > attempts_s
    assert function["Properties"]["ReservedConcurrentExecutions"] == 1
    for name in (wiring.ENV_TABLE_NAME, wiring.ENV_JOB_QUEUE, wiring.ENV_JOB_DEFINITION):
        assert name in env


def test_least_privilege(template: Template) -> None:
    function_id, function = _function(template)
    role_id = logical_ref(function["Properties"]["Role"])
    statements = role_statements(template, role_id)
    actions = {a for st in statements for a in as_list(st["Action"])}
    assert {
        "dynamodb:Query",
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
        "batch:ListJobs",
        "batch:DescribeJobs",
        "batch:SubmitJob",
        "events:PutEvents",
        "sns:Publish",
    } <= actions
    assert not {"dynamodb:Scan", "dynamodb:PutItem", "dynamodb:DeleteItem"} & actions
    # The state logic it runs reads asset metadata and writes/removes error files only.
    assert {"s3:GetObject", "s3:ListBucket", "s3:PutObject", "s3:DeleteObject"} <= actions
    for st in statements:
        if {"s3:PutObject", "s3:DeleteObject"} & set(as_list(st["Action"])):
            (resource,) = as_list(st["Resource"])
            assert resource["Fn::Join"][1][-1] == "/3d_assets/*.error.json"
    (query,) = [st for st in statements if "dynamodb:Query" in as_list(st["Action"])]
    (resource,) = as_list(query["Resource"])
    assert resource["Fn::Join"][1][-1] == f"/index/{jobs.GSI_BY_STATE}"
    assert function_id
