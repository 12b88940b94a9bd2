"""State construct: the job table as the contract describes it, and the state function."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Template

from meshdrop_contract import jobs, wiring
from tests.infra.helpers import as_list, logical_ref, object_patterns, role_statements, single

STATE_HANDLER = "lambdas.state.handler.lambda_handler"


def table(template: Template) -> dict[str, Any]:
    _, found = single(template.find_resources("AWS::DynamoDB::GlobalTable"))
    return found


def test_table_is_on_demand_encrypted_with_pitr_and_ttl(template: Template) -> None:
    props = table(template)["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert props["TimeToLiveSpecification"] == {
        "AttributeName": jobs.TTL_ATTRIBUTE,
        "Enabled": True,
    }
    (replica,) = props["Replicas"]
    assert replica["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert replica["DeletionProtectionEnabled"] is True
    assert table(template)["DeletionPolicy"] == "Retain"


def test_table_keys_and_indexes_follow_the_contract(template: Template) -> None:
    props = table(template)["Properties"]
    assert props["KeySchema"] == [{"AttributeName": jobs.TABLE_PK, "KeyType": "HASH"}]
    indexes = {i["IndexName"]: i for i in props["GlobalSecondaryIndexes"]}
    assert set(indexes) == {jobs.GSI_BY_STATE, jobs.GSI_BY_SOURCE}
    assert indexes[jobs.GSI_BY_STATE]["KeySchema"] == [
        {"AttributeName": jobs.GSI_BY_STATE_PK, "KeyType": "HASH"},
        {"AttributeName": jobs.GSI_BY_STATE_SK, "KeyType": "RANGE"},
    ]
    assert indexes[jobs.GSI_BY_SOURCE]["KeySchema"] == [
        {"AttributeName": jobs.GSI_BY_SOURCE_PK, "KeyType": "HASH"},
        {"AttributeName": jobs.GSI_BY_SOURCE_SK, "KeyType": "RANGE"},
    ]
    assert all(i["Projection"] == {"ProjectionType": "ALL"} for i in indexes.values())


def test_state_function_is_configured_from_the_contract(template: Template) -> None:
    (fn,) = template.find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": STATE_HANDLER}}
    ).values()
    props = fn["Properties"]
    env = props["Environment"]["Variables"]
    assert logical_ref(env[wiring.ENV_TABLE_NAME]).startswith("StateJobs")
    assert logical_ref(env[wiring.ENV_TOPIC_ARN]).startswith("NotificationsTopic")
    assert logical_ref(env[wiring.ENV_BUCKET_NAME]).startswith("StorageBucket")
    assert env[wiring.ENV_JOB_TTL_DAYS] == "90"
    assert props["TracingConfig"] == {"Mode": "Active"}


def test_state_function_may_use_the_table_and_publish_only(template: Template) -> None:
    statements = role_statements(template, "StateFunctionRole")
    actions = {a for s in statements for a in as_list(s["Action"])}
    assert "sns:Publish" in actions
    assert not any(a.startswith(("batch:", "events:")) for a in actions)
    # S3: asset metadata (believing "Job Succeeded") and error files beside the assets only.
    assert {a for a in actions if a.startswith("s3:")} == {
        "s3:GetObject",
        "s3:ListBucket",
        "s3:PutObject",
        "s3:DeleteObject",
    }
    assert object_patterns(statements, "s3:GetObject") == {"/3d_assets/*"}
    assert object_patterns(statements, "s3:PutObject") == {"/3d_assets/*.error.json"}
    assert object_patterns(statements, "s3:DeleteObject") == {"/3d_assets/*.error.json"}
    (publish,) = [s for s in statements if s["Action"] == "sns:Publish"]
    assert logical_ref(publish["Resource"]).startswith("NotificationsTopic")
    table_statements = [s for s in statements if "dynamodb:UpdateItem" in as_list(s["Action"])]
    (st,) = table_statements
    # Exactly what lambdas/common/jobstore.py calls: no deletes, queries, scans or indexes.
    assert set(as_list(st["Action"])) == {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
    }
    (resource,) = as_list(st["Resource"])
    assert logical_ref(resource).startswith("StateJobs")


def test_functions_log_only_to_their_own_log_groups(template: Template) -> None:
    for prefix in ("StateFunctionRole", "IngestFunctionRole"):
        statements = role_statements(template, prefix)
        (logs,) = [s for s in statements if "logs:PutLogEvents" in as_list(s["Action"])]
        assert set(as_list(logs["Action"])) == {"logs:CreateLogStream", "logs:PutLogEvents"}
        group = prefix.removesuffix("Role") + "Logs"
        assert logical_ref(logs["Resource"]).startswith(group)
    roles = template.find_resources("AWS::IAM::Role")
    ours = [
        r for lid, r in roles.items() if lid.startswith(("StateFunctionRole", "IngestFunctionRole"))
    ]
    assert len(ours) == 2
    assert all("ManagedPolicyArns" not in r["Properties"] for r in ours)


def test_failed_async_invocations_go_to_a_failure_queue(template: Template) -> None:
    _, config = single(template.find_resources("AWS::Lambda::EventInvokeConfig"))
    props = config["Properties"]
    assert logical_ref(props["FunctionName"]).startswith("StateFunction")
    assert props["MaximumRetryAttempts"] == 2
    destination = props["DestinationConfig"]["OnFailure"]["Destination"]
    assert logical_ref(destination).startswith("StateFailureQueue")
    statements = role_statements(template, "StateFunctionRole")
    (send,) = [s for s in statements if "sqs:SendMessage" in as_list(s["Action"])]
    assert logical_ref(send["Resource"]).startswith("StateFailureQueue")
