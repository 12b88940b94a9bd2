"""Events: bus with archive and schemas; rules to the state function with retries and DLQs."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, cast

import pytest
from aws_cdk.assertions import Template

from infra.events import event_pattern, schema_name
from meshdrop_contract import (
    DetailType,
    batch_job_state_pattern,
    meshdrop_job_events_pattern,
    schema,
)
from tests.infra.helpers import logical_ref, single


def rules(template: Template) -> Mapping[str, Any]:
    return template.find_resources("AWS::Events::Rule")


def rule(template: Template, prefix: str) -> dict:
    (found,) = [r for lid, r in rules(template).items() if lid.startswith(prefix)]
    return found["Properties"]


def job_queue_ref(template: Template) -> dict:
    lid, _ = single(template.find_resources("AWS::Batch::JobQueue"))
    return {"Fn::GetAtt": [lid, "JobQueueArn"]}


def archives(template: Template) -> Mapping[str, Any]:
    return template.find_resources("AWS::Events::Archive")


def test_bus_has_an_archive_of_meshdrop_events(template: Template) -> None:
    bus_id, _ = single(template.find_resources("AWS::Events::EventBus"))
    (archive,) = [a for lid, a in archives(template).items() if lid.startswith("EventsBus")]
    props = archive["Properties"]
    assert props["SourceArn"] == {"Fn::GetAtt": [bus_id, "Arn"]}
    assert props["EventPattern"] == meshdrop_job_events_pattern()
    assert props["RetentionDays"] == 30


def test_job_events_rule_uses_the_contract_pattern_on_the_meshdrop_bus(
    template: Template,
) -> None:
    props = rule(template, "RoutingJobEventsRule")
    assert props["EventPattern"] == meshdrop_job_events_pattern()
    assert logical_ref(props["EventBusName"]).startswith("EventsBus")
    # The state function maps "Job Superseded" to SUPERSEDED: the rule must deliver it.
    assert "Job Superseded" in props["EventPattern"]["detail-type"]


def test_batch_rule_matches_this_queue_on_the_default_bus(template: Template) -> None:
    props = rule(template, "RoutingBatchJobStateRule")
    # The template holds the queue ARN as a GetAtt where the contract expects the ARN text.
    assert props["EventPattern"] == batch_job_state_pattern(cast(str, job_queue_ref(template)))
    # Batch publishes only to the default bus.
    assert "EventBusName" not in props


@pytest.mark.parametrize("prefix", ["RoutingJobEventsRule", "RoutingBatchJobStateRule"])
def test_state_targets_retry_and_dead_letter(template: Template, prefix: str) -> None:
    (target,) = rule(template, prefix)["Targets"]
    assert logical_ref(target["Arn"]).startswith("StateFunction")
    assert logical_ref(target["DeadLetterConfig"]["Arn"]).startswith("RoutingTargetDeadLetterQueue")
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 8
    assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] == 2 * 3600


def test_state_function_may_be_invoked_by_both_rules_only(template: Template) -> None:
    permissions = template.find_resources("AWS::Lambda::Permission")
    sources = {
        logical_ref(p["Properties"]["SourceArn"])
        for p in permissions.values()
        if logical_ref(p["Properties"]["FunctionName"]).startswith("StateFunction")
    }
    assert any(s.startswith("RoutingJobEventsRule") for s in sources)
    assert any(s.startswith("RoutingBatchJobStateRule") for s in sources)
    assert len(sources) == 2


def test_failed_batch_jobs_are_copied_to_a_queue(template: Template) -> None:
    props = rule(template, "RoutingBatchJobFailedRule")
    pattern = props["EventPattern"]
    assert pattern["detail"]["status"] == ["FAILED"]
    assert pattern["detail"]["jobQueue"] == [job_queue_ref(template)]
    (target,) = props["Targets"]
    assert logical_ref(target["Arn"]).startswith("RoutingFailedJobsQueue")
    assert "DeadLetterConfig" in target


def test_every_contract_schema_is_published_as_draft4(template: Template) -> None:
    registry_id, _ = single(template.find_resources("AWS::EventSchemas::Registry"))
    schemas = template.find_resources("AWS::EventSchemas::Schema")
    by_name = {s["Properties"]["SchemaName"]: s["Properties"] for s in schemas.values()}
    assert set(by_name) == {schema_name(t) for t in DetailType}
    for detail_type in DetailType:
        props = by_name[schema_name(detail_type)]
        assert props["Type"] == "JSONSchemaDraft4"
        assert json.loads(props["Content"]) == schema(detail_type)
        assert props["RegistryName"] == {"Fn::GetAtt": [registry_id, "RegistryName"]}


def test_event_pattern_translates_every_field_and_refuses_unknown_ones() -> None:
    pattern = event_pattern({"source": ["a"], "detail-type": ["b"], "detail": {"x": [1]}})
    assert pattern.source == ["a"]
    assert pattern.detail_type == ["b"]
    assert pattern.detail == {"x": [1]}
    with pytest.raises(ValueError, match="unsupported event pattern fields"):
        event_pattern({"source": ["a"], "time": ["now"]})


def test_schema_names_are_valid_registry_names() -> None:
    names = [schema_name(t) for t in DetailType]
    assert len(set(names)) == len(names)
    assert all(n.startswith("meshdrop@") and " " not in n for n in names)


def test_batch_events_of_the_queue_are_archived_on_the_default_bus(template: Template) -> None:
    (archive,) = [a for lid, a in archives(template).items() if lid.startswith("RoutingBatch")]
    props = archive["Properties"]
    source = json.dumps(props["SourceArn"])
    assert ":event-bus/default" in source
    pattern = props["EventPattern"]
    assert pattern["source"] == ["aws.batch"]
    assert set(pattern["detail-type"]) == {"Batch Job State Change", "Batch Job Queue Blocked"}
    assert logical_ref(pattern["detail"]["jobQueue"][0]).startswith("ComputeJobQueue")
    assert props["RetentionDays"] == 30


def test_queue_blocked_events_of_the_queue_are_kept_for_the_alarm(template: Template) -> None:
    props = rule(template, "RoutingBatchQueueBlockedRule")
    pattern = props["EventPattern"]
    assert pattern["detail-type"] == ["Batch Job Queue Blocked"]
    assert logical_ref(pattern["detail"]["jobQueue"][0]).startswith("ComputeJobQueue")
    (target,) = props["Targets"]
    assert logical_ref(target["Arn"]).startswith("RoutingFailedJobsQueue")
    assert logical_ref(target["DeadLetterConfig"]["Arn"]).startswith("RoutingTargetDeadLetter")
