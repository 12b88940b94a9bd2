"""The state function at its edge (issue 10): what it validates, believes, records and notifies.

All on the mocked stack with the real handlers; Batch events from the AWS-documented shapes in
tests/events (see its README).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from lambdas.common.jobstore import to_dynamo
from lambdas.common.observability import MetricName
from meshdrop_contract import JobState
from tests.helpers.photos import image_bytes
from tests.integration.conftest import Stack, load_event
from tests.integration.test_state import KEY, meshdrop_event, put_asset

RECORDS = Path(__file__).resolve().parent.parent / "fixtures" / "records"
ERROR_KEY = "3d_assets/uploaded/kitchen/mug.error.json"


@pytest.fixture
def job_id(stack: Stack) -> str:
    job, _ = stack.upload(KEY, image_bytes())
    stack.drain_events()
    return job


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the metrics the handlers add."""
    from lambdas.common import observability

    names: list[str] = []
    real = observability.metrics.add_metric

    def add_metric(*, name: str, **kwargs: Any) -> None:
        names.append(name)
        real(name=name, **kwargs)

    monkeypatch.setattr(observability.metrics, "add_metric", add_metric)
    return names


def objects(stack: Stack) -> set[str]:
    listing = stack.s3.list_objects_v2(Bucket=stack.res.bucket)
    return {o["Key"] for o in listing.get("Contents", [])}


# -- validation at the edge ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "change"),
    [
        ("job-succeeded", {"faces": "many"}),
        ("job-progress", {"progress": None}),
        ("job-progress", {"job_id": None}),
        ("job-failed", {"error_kind": 7}),
        ("job-succeeded", {"schema_version": "2.0"}),
    ],
)
def test_invalid_meshdrop_events_are_dropped_with_a_reason(
    stack: Stack, job_id: str, counted: list[str], name: str, change: dict[str, Any]
) -> None:
    before = stack.job(job_id)
    event = meshdrop_event(name, stack, job_id)
    event["detail"].update(change)
    result = stack.state(event)
    assert (result["outcome"], result["changed"]) == ("invalid", False)
    assert result["reason"].startswith(event["detail-type"])
    assert MetricName.INVALID_EVENTS in counted
    assert stack.job(job_id) == before
    assert not any(i["pk"] == "job#None" for i in stack.all_items())


@pytest.mark.parametrize(
    "change",
    [
        {"attempts": "three"},
        {"attempts": [{"container": {"exitCode": "137"}}]},
        {"status": 3},
        {"jobName": None},
        {"container": {"exitCode": 1.5}},
        {"statusReason": ["Host EC2"]},
    ],
)
def test_batch_events_with_wrong_types_are_dropped(
    stack: Stack, job_id: str, counted: list[str], change: dict[str, Any]
) -> None:
    before = stack.job(job_id)
    result = stack.state(stack.batch_event("batch-failed-oom.json", job_id, **change))
    assert result["outcome"] == "invalid"
    assert MetricName.INVALID_EVENTS in counted
    assert stack.job(job_id) == before
    assert stack.notifications() == []


@pytest.mark.parametrize(
    "event",
    [
        {"source": "aws.s3", "detail-type": "Object Created", "detail": {}},
        {"source": "meshdrop", "detail-type": "Job Exploded", "detail": {}},
        {"source": "aws.batch", "detail-type": "Batch Job Queue Blocked", "detail": {}},
    ],
)
def test_unrecognised_events_are_ignored(stack: Stack, event: dict[str, Any]) -> None:
    result = stack.state(event)
    assert result["outcome"] == "ignored"
    assert "not an event this function handles" in result["reason"]


@pytest.mark.parametrize("event", [None, [], "text", {"detail": {}}, {"source": 1}])
def test_what_is_not_an_eventbridge_event_is_invalid(stack: Stack, event: Any) -> None:
    assert stack.state(event)["outcome"] == "invalid"


def test_an_invalid_event_for_a_terminal_unnotified_job_still_notifies(
    stack: Stack, job_id: str
) -> None:
    # Terminal, but the notification claim was given back (its publish failed).
    stack.table.update_item(
        Key={"pk": f"job#{job_id}"},
        UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "state"},
        ExpressionAttributeValues={":s": "SUCCEEDED"},
    )
    result = stack.state(meshdrop_event("job-succeeded", stack, job_id, faces="many"))
    assert (result["outcome"], result["notified"]) == ("invalid", True)
    [(message, _)] = stack.notifications()
    assert message["thumbnail_key"] == "3d_assets/uploaded/kitchen/mug.thumb.png"


# -- Batch as it really behaves ------------------------------------------------------------


def test_retries_record_the_attempt_and_why_the_last_one_ended(stack: Stack, job_id: str) -> None:
    stack.state(stack.batch_event("batch-running.json", job_id))
    stack.state(meshdrop_event("job-progress", stack, job_id, attempt=1))
    assert (stack.job(job_id) or {})["progress"] == 0.6

    # Attempt 1 was OOM-killed; Batch goes straight to RUNNING for attempt 2.
    result = stack.state(stack.batch_event("batch-running-retry-oom.json", job_id))
    job = stack.job(job_id) or {}
    assert (result["changed"], job["state"], job["attempt"]) == (True, "RUNNING", 2)
    assert job["previous_attempt_reason"] == (
        "OutOfMemoryError: Container killed due to memory usage"
    )
    assert "progress" not in job  # the new attempt starts over
    # The same event again, and attempt 1's late events, change nothing.
    assert (
        stack.state(stack.batch_event("batch-running-retry-oom.json", job_id))["changed"] is False
    )
    assert stack.state(stack.batch_event("batch-running.json", job_id))["changed"] is False
    late = stack.state(meshdrop_event("job-progress", stack, job_id, attempt=1, progress=0.9))
    assert late["outcome"] == "ignored" and "attempt 1" in late["reason"]
    # Attempt 2's progress starts from 0.
    stack.state(meshdrop_event("job-progress", stack, job_id, attempt=2, progress=0.2))
    assert (stack.job(job_id) or {})["progress"] == 0.2


def test_runnable_again_does_not_move_the_job_backwards(stack: Stack, job_id: str) -> None:
    stack.state(stack.batch_event("batch-running.json", job_id))
    stack.state(stack.batch_event("batch-failed-transient-retrying.json", job_id))
    job = stack.job(job_id) or {}
    assert (job["state"], job["attempt"]) == ("RUNNING", 2)
    assert job["previous_attempt_reason"].startswith("Host EC2 (instance i-")
    stack.state(stack.batch_event("batch-runnable.json", job_id))  # a late first RUNNABLE
    assert (stack.job(job_id) or {})["attempt"] == 2


def test_out_of_memory_reaches_the_user_as_such_with_an_error_file(
    stack: Stack, job_id: str
) -> None:
    stack.state(stack.batch_event("batch-failed-oom.json", job_id))
    [(message, _)] = stack.notifications()
    assert message["error_kind"] == "out_of_memory"
    assert message["error"].startswith("out of memory")
    assert "internal error" not in message["error"]
    body = json.loads(stack.s3.get_object(Bucket=stack.res.bucket, Key=ERROR_KEY)["Body"].read())
    assert body["job_id"] == job_id
    assert (body["error_kind"], body["reason"]) == ("out_of_memory", message["error"])
    assert body["state"] == "FAILED" and body["time"]

    # A new upload of the same key succeeds: the error file goes.
    newer, _ = stack.upload(KEY, image_bytes() + b"\0")
    stack.drain_events()
    stack.state(meshdrop_event("job-succeeded", stack, newer))
    assert ERROR_KEY not in objects(stack)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("batch-failed-runnable-capacity.json", "capacity"),
        ("batch-failed-runnable-misconfiguration.json", "configuration"),
    ],
)
def test_runnable_time_limit_cancellations_say_why(
    stack: Stack, job_id: str, name: str, kind: str
) -> None:
    stack.state(stack.batch_event(name, job_id))
    [(message, _)] = stack.notifications()
    assert message["error_kind"] == kind
    assert "JobStateTimeLimit" in message["error"]


def test_batch_success_first_still_notifies_asset_and_thumbnail_once(
    stack: Stack, job_id: str
) -> None:
    stack.state(stack.batch_event("batch-succeeded.json", job_id))
    stack.state(meshdrop_event("job-succeeded", stack, job_id))
    [(message, _)] = stack.notifications()
    assert message["asset_key"] == "3d_assets/uploaded/kitchen/mug.glb"
    assert message["thumbnail_key"] == "3d_assets/uploaded/kitchen/mug.thumb.png"
    assert (stack.job(job_id) or {})["faces"] == 59876


def test_a_batch_event_of_another_batch_job_is_ignored(stack: Stack, job_id: str) -> None:
    event = stack.batch_event("batch-succeeded.json", job_id, jobId="another-batch-job")
    result = stack.state(event)
    assert result["outcome"] == "ignored"
    assert (stack.job(job_id) or {})["state"] == "SUBMITTED"


# -- SUPERSEDED ----------------------------------------------------------------------------


def test_job_superseded_ends_the_job_without_a_notification(stack: Stack, job_id: str) -> None:
    event = meshdrop_event("job-succeeded", stack, job_id)
    event["detail-type"] = "Job Superseded"
    detail = {k: event["detail"][k] for k in ("schema_version", "job_id", "bucket", "source_key")}
    event["detail"] = detail | {
        "asset_key": event["detail"]["asset_key"],
        "options": event["detail"]["options"],
        "emitted_at": event["detail"]["emitted_at"],
        "reason": "a newer upload owns the key",
        "batch_job_id": (stack.job(job_id) or {})["batch_job_id"],
        "attempt": 1,
    }
    result = stack.state(event)
    assert (result["state"], result["notified"]) == ("SUPERSEDED", False)
    stack.state(stack.batch_event("batch-failed-superseded.json", job_id))
    assert (stack.job(job_id) or {})["state"] == "SUPERSEDED"
    assert stack.notifications() == []


def test_batch_exit_67_supersedes_without_a_notification(stack: Stack, job_id: str) -> None:
    result = stack.state(stack.batch_event("batch-failed-superseded.json", job_id))
    assert (result["state"], result["notified"]) == ("SUPERSEDED", False)
    assert stack.notifications() == []
    assert ERROR_KEY not in objects(stack)


# -- believing the generator ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"batch_job_id": "someone-elses-batch-job"}, "comes from Batch job"),
        ({"batch_job_id": None}, "names no Batch job"),
    ],
)
def test_generator_events_of_another_batch_job_are_not_believed(
    stack: Stack, job_id: str, counted: list[str], change: dict[str, Any], why: str
) -> None:
    event = meshdrop_event("job-succeeded", stack, job_id)
    for name, value in change.items():
        if value is None:
            event["detail"].pop(name)
        else:
            event["detail"][name] = value
    result = stack.state(event)
    assert result["outcome"] == "ignored" and why in result["reason"]
    assert MetricName.UNTRUSTED_EVENTS in counted
    assert (stack.job(job_id) or {})["state"] == "SUBMITTED"
    assert stack.notifications() == []


def test_events_about_another_bucket_are_not_believed_nor_recorded(
    stack: Stack, job_id: str, counted: list[str]
) -> None:
    event = meshdrop_event("job-succeeded", stack, job_id)
    event["detail"]["bucket"] = "someone-elses-bucket"
    result = stack.state(event)
    assert result["outcome"] == "ignored" and "someone-elses-bucket" in result["reason"]
    assert MetricName.UNTRUSTED_EVENTS in counted
    assert (stack.job(job_id) or {})["state"] == "SUBMITTED"
    # An Accepted for a job without a record would recreate it: not for a foreign bucket.
    accepted = meshdrop_event("job-accepted", stack, "e" * 32)
    accepted["detail"]["bucket"] = "someone-elses-bucket"
    assert stack.state(accepted)["outcome"] == "ignored"
    assert stack.job("e" * 32) is None
    assert stack.notifications() == []


def test_a_success_without_its_asset_is_not_believed(stack: Stack, job_id: str) -> None:
    event = meshdrop_event("job-succeeded", stack, job_id)
    stack.s3.delete_object(Bucket=stack.res.bucket, Key=event["detail"]["asset_key"])
    result = stack.state(event)
    assert result["outcome"] == "ignored" and "does not exist" in result["reason"]


def test_a_success_for_an_asset_another_job_wrote_is_not_believed(
    stack: Stack, job_id: str
) -> None:
    event = meshdrop_event("job-succeeded", stack, job_id)
    put_asset(stack, job_id, event["detail"]["asset_key"], owner="f" * 32)
    result = stack.state(event)
    assert result["outcome"] == "ignored" and "written by job" in result["reason"]
    assert stack.notifications() == []


def test_a_reused_success_is_believed_only_if_ingest_recorded_the_reuse(
    stack: Stack, job_id: str
) -> None:
    event = meshdrop_event("job-succeeded", stack, job_id, reused=True)
    result = stack.state(event)
    assert result["outcome"] == "ignored" and "reuse" in result["reason"]


# -- SNS failures --------------------------------------------------------------------------


def test_a_publish_failure_is_retried_and_sent_exactly_once(
    stack: Stack, job_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lambdas.common import clients

    sns = clients.client("sns")
    real_publish = sns.publish
    calls: list[int] = []

    def flaky_publish(**kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) <= 2:
            raise RuntimeError("SNS is throttling")
        return real_publish(**kwargs)

    monkeypatch.setattr(sns, "publish", flaky_publish)
    event = stack.batch_event("batch-succeeded.json", job_id)
    for _ in range(2):  # Lambda's retries of the failed invocation
        with pytest.raises(RuntimeError, match="throttling"):
            stack.state(event)
        job = stack.job(job_id) or {}
        assert job["state"] == "SUCCEEDED"  # the state write stands
        assert "notified_at" not in job and "notification_sent_at" not in job
    assert stack.state(event)["notified"] is True
    for _ in range(2):
        assert stack.state(event)["notified"] is False
    assert len(stack.notifications()) == 1
    assert "notification_sent_at" in (stack.job(job_id) or {})


# -- records written by earlier versions ---------------------------------------------------


def old_record(stack: Stack, name: str) -> dict[str, Any]:
    record = json.loads((RECORDS / name).read_text())
    record["bucket"] = stack.res.bucket
    stack.table.put_item(Item=to_dynamo(record))
    return record


def test_a_1_0_record_runs_to_success_and_notifies_with_the_thumbnail(stack: Stack) -> None:
    record = old_record(stack, "job-1.0-submitted.json")
    job_id = record["job_id"]
    # A 1.0 record names no Batch job: events without batch_job_id are believed for it.
    running = stack.batch_event("batch-running.json", job_id)
    stack.state(running)
    assert (stack.job(job_id) or {})["batch_job_id"] == running["detail"]["jobId"]
    stack.state(stack.batch_event("batch-succeeded.json", job_id))
    [(message, attributes)] = stack.notifications()
    assert message["asset_key"] == "3d_assets/uploaded/kitchen/teapot.glb"
    assert message["thumbnail_key"] == "3d_assets/uploaded/kitchen/teapot.thumb.png"
    assert attributes == {"state": "SUCCEEDED", "category": "uploaded"}


def test_a_1_0_record_believes_a_1_1_generator_event(stack: Stack) -> None:
    record = old_record(stack, "job-1.0-submitted.json")
    event = load_event("meshdrop-job-succeeded.json")
    event["detail"].update(
        job_id=record["job_id"],
        bucket=stack.res.bucket,
        source_key=record["source_key"],
        asset_key=record["asset_key"],
        schema_version="1.1",
        thumbnail_key=None,
    )
    event["detail"].pop("batch_job_id", None)
    put_asset(stack, record["job_id"], record["asset_key"])
    result = stack.state(event)
    assert (result["state"], result["notified"]) == ("SUCCEEDED", True)
    [(message, _)] = stack.notifications()
    assert message["thumbnail_key"] == "3d_assets/uploaded/kitchen/teapot.thumb.png"


def test_a_1_1_record_follows_a_retry_and_fails_with_one_notification(stack: Stack) -> None:
    record = old_record(stack, "job-1.1-running.json")
    job_id = record["job_id"]
    retry = stack.batch_event("batch-running-retry-oom.json", job_id)
    assert retry["detail"]["jobId"] == record["batch_job_id"]
    assert stack.state(retry)["changed"] is True
    job = stack.job(job_id) or {}
    assert (job["attempt"], job["attempts"], job["state"]) == (2, 1, "RUNNING")
    failed = copy.deepcopy(stack.batch_event("batch-failed-oom.json", job_id))
    for _ in range(2):
        stack.state(failed)
    [(message, attributes)] = stack.notifications()
    assert message["state"] == JobState.FAILED
    assert message["error_kind"] == "out_of_memory"
    assert attributes["category"] == "generated"
    assert "3d_assets/generated/shelf/vase.error.json" in objects(stack)


def test_a_notification_lost_between_claim_and_publish_is_resent_once(
    stack: Stack, job_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lambdas.common import clients, settings
    from lambdas.state.service import StateApplier

    sns = clients.client("sns")

    def crash(**_: Any) -> None:
        raise SystemExit("the function timed out")  # not an Exception: nothing is released

    monkeypatch.setattr(sns, "publish", crash)
    with pytest.raises(SystemExit):
        stack.state(stack.batch_event("batch-failed-bad-input.json", job_id))
    monkeypatch.undo()
    job = stack.job(job_id) or {}
    assert "notification_pending" in job and "notification_sent_at" not in job
    # Redeliveries see the claim and stay silent; the reconciler finds the old outbox mark.
    assert (
        stack.state(stack.batch_event("batch-failed-bad-input.json", job_id))["notified"] is False
    )
    notifier = StateApplier(settings.state_settings()).notifier
    assert notifier.resend_lost(job_id, claimed_before=job["notification_pending"]) is False
    assert notifier.resend_lost(job_id, claimed_before="9999") is True
    assert notifier.resend_lost(job_id, claimed_before="9999") is False
    [(message, _)] = stack.notifications()
    assert message["error_kind"] == "bad_input"
    job = stack.job(job_id) or {}
    assert "notification_pending" not in job and "notification_sent_at" in job


def test_records_notified_before_the_outbox_are_never_resent(stack: Stack) -> None:
    from lambdas.common import settings
    from lambdas.state.service import StateApplier

    record = old_record(stack, "job-1.0-submitted.json")
    stack.table.update_item(
        Key={"pk": record["pk"]},
        UpdateExpression="SET #s = :s, notified_at = :t",
        ExpressionAttributeNames={"#s": "state"},
        ExpressionAttributeValues={":s": "FAILED", ":t": "2025-06-02T09:20:00.000Z"},
    )
    notifier = StateApplier(settings.state_settings()).notifier
    assert notifier.resend_lost(record["job_id"], claimed_before="9999") is False
    assert stack.notifications() == []
