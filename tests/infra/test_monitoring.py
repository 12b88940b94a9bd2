"""Monitoring construct: alarms on what needs a person, all to the encrypted alarm topic."""

from __future__ import annotations

from aws_cdk.assertions import Template

from tests.infra.helpers import logical_ref, single


def alarms(template: Template) -> dict[str, dict]:
    return template.find_resources("AWS::CloudWatch::Alarm")


def alarm_on(template: Template, metric: str, namespace: str) -> list[dict]:
    return [
        a["Properties"]
        for a in alarms(template).values()
        if a["Properties"].get("MetricName") == metric
        and a["Properties"].get("Namespace") == namespace
    ]


def test_dead_letter_queues_alarm_on_the_first_message(template: Template) -> None:
    found = alarm_on(template, "ApproximateNumberOfMessagesVisible", "AWS/SQS")
    queues = {logical_ref(d["Value"]) for a in found for d in a["Dimensions"]}
    assert any(q.startswith("IngestDeadLetterQueue") for q in queues), queues
    assert any(q.startswith("RoutingTargetDeadLetterQueue") for q in queues), queues
    assert all(a["Threshold"] == 1 for a in found)
    assert all(a["ComparisonOperator"] == "GreaterThanOrEqualToThreshold" for a in found)


def test_both_functions_alarm_on_errors(template: Template) -> None:
    found = alarm_on(template, "Errors", "AWS/Lambda")
    functions = {logical_ref(d["Value"]) for a in found for d in a["Dimensions"]}
    assert {f[: len("IngestFunction")] for f in functions if f.startswith("Ingest")} == {
        "IngestFunction"
    }
    assert any(f.startswith("StateFunction") for f in functions)
    assert len(found) == 2


def test_ingest_backlog_alarms_on_oldest_message_age(template: Template) -> None:
    (found,) = alarm_on(template, "ApproximateAgeOfOldestMessage", "AWS/SQS")
    assert found["Threshold"] == 15 * 60
    (dimension,) = found["Dimensions"]
    assert logical_ref(dimension["Value"]).startswith("IngestQueue")


def test_failed_batch_jobs_alarm_counts_the_failed_rule(template: Template) -> None:
    (found,) = alarm_on(template, "TriggeredRules", "AWS/Events")
    (dimension,) = found["Dimensions"]
    assert dimension["Name"] == "RuleName"
    assert logical_ref(dimension["Value"]).startswith("RoutingBatchJobFailedRule")
    assert found["Threshold"] == 1


def test_every_alarm_notifies_the_alarm_topic_and_idles_quietly(template: Template) -> None:
    found = alarms(template)
    assert len(found) == 6
    for alarm in found.values():
        props = alarm["Properties"]
        (action,) = props["AlarmActions"]
        assert logical_ref(action).startswith("MonitoringAlarmTopic")
        assert props["TreatMissingData"] == "notBreaching"


def test_alarm_topic_uses_a_rotated_key_cloudwatch_may_use(template: Template) -> None:
    key_id, key = single(template.find_resources("AWS::KMS::Key"))
    assert key["Properties"]["EnableKeyRotation"] is True
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    assert any(
        s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
        and set(s["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
        for s in statements
    )
    topics = template.find_resources("AWS::SNS::Topic")
    (alarm_topic,) = [t for lid, t in topics.items() if lid.startswith("MonitoringAlarmTopic")]
    assert alarm_topic["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}


def test_dashboard_shows_the_pipeline(template: Template) -> None:
    _, dashboard = single(template.find_resources("AWS::CloudWatch::Dashboard"))
    body = str(dashboard["Properties"]["DashboardBody"])
    for title in ("Ingest queue", "Functions", "Failed Batch jobs", "Dead-letter queues"):
        assert title in body
