"""Monitoring construct: alarms on what needs a person, all to the encrypted alarm topic."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk.assertions import Template

from tests.infra.helpers import logical_ref, single


def alarms(template: Template) -> Mapping[str, Any]:
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
    # Events the state function failed on (after Lambda's retries) are watched too.
    assert any(q.startswith("StateFailureQueue") for q in queues), queues
    assert all(a["Threshold"] == 1 for a in found)
    assert all(a["ComparisonOperator"] == "GreaterThanOrEqualToThreshold" for a in found)


def test_every_function_alarms_on_errors(template: Template) -> None:
    found = alarm_on(template, "Errors", "AWS/Lambda")
    functions = {logical_ref(d["Value"]) for a in found for d in a["Dimensions"]}
    assert {f[: len("IngestFunction")] for f in functions if f.startswith("Ingest")} == {
        "IngestFunction"
    }
    assert any(f.startswith("StateFunction") for f in functions)
    assert any(f.startswith("ReconcileFunction") for f in functions)
    assert len(found) == 3


def test_ingest_backlog_alarms_on_oldest_message_age(template: Template) -> None:
    (found,) = alarm_on(template, "ApproximateAgeOfOldestMessage", "AWS/SQS")
    assert found["Threshold"] == 15 * 60
    (dimension,) = found["Dimensions"]
    assert logical_ref(dimension["Value"]).startswith("IngestQueue")


def test_failed_jobs_and_blocked_queue_alarms_count_their_rules(template: Template) -> None:
    found = alarm_on(template, "TriggeredRules", "AWS/Events")
    rules = set()
    for alarm in found:
        (dimension,) = alarm["Dimensions"]
        assert dimension["Name"] == "RuleName"
        assert alarm["Threshold"] == 1
        rules.add(logical_ref(dimension["Value"]).rstrip("0123456789ABCDEF"))
    assert rules == {"RoutingBatchJobFailedRule", "RoutingBatchQueueBlockedRule"}


def test_runnable_age_alarms_at_the_runnable_timeout(template: Template) -> None:
    (found,) = alarm_on(template, "OldestRunnableJobAgeSeconds", "meshdrop")
    assert found["Threshold"] == 30 * 60  # meshdrop:runnable_timeout_minutes
    assert found["Statistic"] == "Maximum"
    assert found["Dimensions"] == [{"Name": "service", "Value": "meshdrop"}]


def test_invalid_events_dropped_by_the_state_function_alarm(template: Template) -> None:
    (found,) = alarm_on(template, "InvalidEvents", "meshdrop")
    assert (found["Threshold"], found["Statistic"]) == (1, "Sum")
    assert found["Dimensions"] == [{"Name": "service", "Value": "meshdrop"}]
    assert found["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_every_alarm_notifies_the_alarm_topic_and_idles_quietly(template: Template) -> None:
    found = alarms(template)
    assert len(found) == 12  # 9 + InvalidEvents + the reconciler's errors and its DLQ
    for alarm in found.values():
        props = alarm["Properties"]
        (action,) = props["AlarmActions"]
        assert logical_ref(action).startswith("MonitoringAlarmTopic")
        assert props["TreatMissingData"] == "notBreaching"


def test_alarm_topic_key_serves_cloudwatch_and_budgets_of_this_account_only(
    template: Template,
) -> None:
    key_id, key = single(template.find_resources("AWS::KMS::Key"))
    assert key["Properties"]["EnableKeyRotation"] is True
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    (grant,) = [s for s in statements if s.get("Sid") == "AllowCloudWatchAndBudgetsForThisAccount"]
    assert set(grant["Principal"]["Service"]) == {
        "cloudwatch.amazonaws.com",
        "budgets.amazonaws.com",
    }
    assert set(grant["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    assert grant["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    topics = template.find_resources("AWS::SNS::Topic")
    (alarm_topic,) = [t for lid, t in topics.items() if lid.startswith("MonitoringAlarmTopic")]
    assert alarm_topic["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}


def test_dashboard_shows_the_pipeline(template: Template) -> None:
    _, dashboard = single(template.find_resources("AWS::CloudWatch::Dashboard"))
    body = str(dashboard["Properties"]["DashboardBody"])
    for title in ("Ingest queue", "Functions", "Batch jobs", "Queue blocked", "Dead-letter queues"):
        assert title in body


def test_monthly_budget_alerts_the_alarm_topic(template: Template) -> None:
    _, budget = single(template.find_resources("AWS::Budgets::Budget"))
    props = budget["Properties"]
    assert props["Budget"]["BudgetLimit"] == {"Amount": 50, "Unit": "USD"}
    assert props["Budget"]["TimeUnit"] == "MONTHLY"
    alerts = {
        (n["Notification"]["NotificationType"], n["Notification"]["Threshold"])
        for n in props["NotificationsWithSubscribers"]
    }
    assert alerts == {("ACTUAL", 80), ("FORECASTED", 100)}
    for n in props["NotificationsWithSubscribers"]:
        (subscriber,) = n["Subscribers"]
        assert subscriber["SubscriptionType"] == "SNS"
        assert logical_ref(subscriber["Address"]).startswith("MonitoringAlarmTopic")
    policies = template.find_resources("AWS::SNS::TopicPolicy")
    statements = [
        s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    (allow,) = [s for s in statements if s.get("Sid") == "AllowBudgetsForThisAccount"]
    assert allow["Principal"] == {"Service": "budgets.amazonaws.com"}
    assert allow["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}


def test_synth_warns_when_nobody_would_hear_an_alarm(synthesized) -> None:
    warnings = [str(m.data) for m in synthesized.stack.node.metadata if m.type == "aws:cdk:warning"]
    assert any("alarm_email is empty" in w for w in warnings), warnings
    assert any("notification_email is empty" in w for w in warnings), warnings
    assert any("image build will stop" in w for w in warnings), warnings
