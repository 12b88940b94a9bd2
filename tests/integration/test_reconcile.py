"""The reconciler repairs jobs whose events were deliberately dropped (issue 10, item 6).

Everything runs on moto with the real ingest, state and reconcile code. moto's Batch (no
Docker) finishes a submitted job at once, so "Batch says SUCCEEDED" is what the reconciler
finds whenever a job exists. The reconciler's clock is the test's: "three hours later" is a
number, not a sleep.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from lambdas.common import batchjobs
from lambdas.common.jobstore import SUBMIT_LEASE_UNTIL, JobStore
from lambdas.reconcile.service import AwsBatch, Reconciler
from lambdas.reconcile.settings import ReconcileSettings
from lambdas.state.notify import Notifier
from meshdrop_contract import JobState, job_pk
from tests.helpers.photos import image_bytes
from tests.integration.conftest import REGION, Stack

KEY = "images/uploaded/kitchen/mug.jpg"
HOURS = 3600.0


def _settings(stack: Stack, **overrides: Any) -> ReconcileSettings:
    res = stack.res
    values: dict[str, Any] = {
        "table_name": res.table,
        "topic_arn": res.topic_arn,
        "event_bus_name": res.event_bus,
        "job_queue": res.job_queue_arn,
        "job_definition": res.job_definition_arn,
        "job_ttl_days": 7,
    }
    return ReconcileSettings(**(values | overrides))


def _reconciler(stack: Stack, later_s: float = 0.0, **overrides: Any) -> Reconciler:
    settings = _settings(stack, **overrides)
    batch = AwsBatch(
        boto3.client("batch", region_name=REGION),
        settings.job_queue,
        settings.job_definition,
    )
    return Reconciler(settings, batch, clock=lambda: time.time() + later_s)


def _batch_jobs(stack: Stack, job_id: str) -> list[dict[str, Any]]:
    return batchjobs.find_jobs(stack.batch, stack.res.job_queue_arn, job_id)


def _expire_lease(stack: Stack, job_id: str) -> None:
    # The lease's own clock ran out (the holder died); DynamoDB TTL-style epoch seconds.
    stack.table.update_item(
        Key={"pk": job_pk(job_id)},
        UpdateExpression="SET #l = :zero",
        ExpressionAttributeNames={"#l": SUBMIT_LEASE_UNTIL},
        ExpressionAttributeValues={":zero": 0},
    )


def _fail_submit_once(stack: Stack) -> Callable[[], None]:
    """Make the next SubmitJob fail as if the function died before it; the undo."""
    calls = {"n": 0}

    def boom(**_: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ClientError({"Error": {"Code": "ServerException", "Message": "x"}}, "SubmitJob")

    session_events = boto3.DEFAULT_SESSION.events  # type: ignore[union-attr]
    session_events.register("before-call.batch.SubmitJob", boom)
    return lambda: session_events.unregister("before-call.batch.SubmitJob", boom)


def test_a_dropped_batch_succeeded_is_applied(stack: Stack) -> None:
    job_id, _ = stack.upload(KEY, image_bytes(), {"preset": "fast"})
    stack.drain_events()  # every event of this job is lost: none reaches the state function
    assert (stack.job(job_id) or {})["state"] == JobState.SUBMITTED

    early = _reconciler(stack).run_once()  # not stuck yet: Batch gets its time first
    assert early.actions == [] and early.stuck["SUBMITTED"] == 0

    report = _reconciler(stack, later_s=3 * HOURS).run_once()

    (action,) = report.actions
    assert (action.job_id, action.action) == (job_id, "applied")
    record = stack.job(job_id) or {}
    assert record["state"] == JobState.SUCCEEDED
    assert record["asset_key"] == "3d_assets/uploaded/kitchen/mug.glb"
    ((message, attributes),) = stack.notifications()
    assert attributes["state"] == "SUCCEEDED" and message["job_id"] == job_id
    # Nothing left to do, and nothing is notified twice.
    assert _reconciler(stack, later_s=3 * HOURS).run_once().actions == []
    assert stack.notifications() == []


class _Crash(BaseException):
    """The function's process dying: no ``except Exception`` gets to clean up."""


def test_a_notification_lost_in_a_crash_is_sent_once_later(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id, _ = stack.upload(KEY, image_bytes(), {"preset": "fast"})
    stack.drain_events()

    def crash(*_: Any, **__: Any) -> None:
        raise _Crash

    with monkeypatch.context() as patched:
        patched.setattr(Notifier, "_publish", crash)
        with pytest.raises(_Crash):  # dies after the SUCCEEDED write and the claim
            _reconciler(stack, later_s=3 * HOURS).run_once()
    record = stack.job(job_id) or {}
    assert record["state"] == JobState.SUCCEEDED
    assert record.get("notification_pending") and not record.get("notification_sent_at")
    assert stack.notifications() == []

    report = _reconciler(stack, later_s=3 * HOURS).run_once()

    assert [(a.job_id, a.action) for a in report.actions] == [(job_id, "notified")]
    ((message, _),) = stack.notifications()
    assert message["job_id"] == job_id and message["state"] == "SUCCEEDED"
    assert (stack.job(job_id) or {}).get("notification_sent_at")
    assert _reconciler(stack, later_s=3 * HOURS).run_once().actions == []
    assert stack.notifications() == []


def test_a_lost_submit_is_resubmitted_exactly_once(stack: Stack) -> None:
    undo = _fail_submit_once(stack)
    try:
        put = stack.put(KEY, image_bytes(), {"preset": "fast"})
        try:
            failed = bool(stack.ingest(stack.s3_record(KEY, put))["batchItemFailures"])
        except Exception:  # Powertools raises when every record of the batch failed
            failed = True
    finally:
        undo()
    job_id = stack.job_id(KEY, put)
    assert failed  # the delivery failed before SubmitJob...
    assert _batch_jobs(stack, job_id) == []  # ...so no Batch job exists
    assert (stack.job(job_id) or {})["state"] == JobState.ACCEPTED
    _expire_lease(stack, job_id)

    first = _reconciler(stack, later_s=1 * HOURS).run_once()
    # The next scheduled pass: the record was updated by the resubmit, so it is not stuck.
    again = _reconciler(stack).run_once()

    assert [a.action for a in first.actions] == ["resubmitted"]
    assert again.actions == []
    (batch_job,) = _batch_jobs(stack, job_id)
    record = stack.job(job_id) or {}
    assert record["state"] == JobState.SUBMITTED
    assert record["batch_job_id"] == batch_job["jobId"] == first.actions[0].batch_job_id
    assert record["resubmits"] == 1
    env = {e["name"]: e["value"] for e in batch_job["container"]["environment"]}
    assert env["MESHDROP_JOB_ID"] == job_id and env["MESHDROP_SOURCE_KEY"] == KEY

    # Its Batch events are lost too: a later pass applies the Batch state, never resubmits.
    later = _reconciler(stack, later_s=5 * HOURS).run_once()
    assert [a.action for a in later.actions] == ["applied"]
    assert len(_batch_jobs(stack, job_id)) == 1
    assert (stack.job(job_id) or {})["state"] == JobState.SUCCEEDED


def test_a_crash_after_submit_is_adopted_not_resubmitted(stack: Stack) -> None:
    job_id, _ = stack.upload(KEY, image_bytes(), {"preset": "fast"})
    # The write after SubmitJob never happened: the record still says ACCEPTED, no job id.
    stack.table.update_item(
        Key={"pk": job_pk(job_id)},
        UpdateExpression="SET #s = :a REMOVE batch_job_id",
        ExpressionAttributeNames={"#s": "state"},
        ExpressionAttributeValues={":a": "ACCEPTED"},
    )
    _expire_lease(stack, job_id)

    report = _reconciler(stack, later_s=1 * HOURS).run_once()

    (action,) = report.actions
    assert action.action == "applied"  # adopted, then Batch's SUCCEEDED applied
    (batch_job,) = _batch_jobs(stack, job_id)
    record = stack.job(job_id) or {}
    assert record["batch_job_id"] == batch_job["jobId"]
    assert record["state"] == JobState.SUCCEEDED


def test_a_held_lease_is_left_alone(stack: Stack) -> None:
    store = JobStore(stack.res.table, 7)
    job_id = "c" * 32
    attrs = {"bucket": stack.res.bucket, "source_key": KEY, "options": {"preset": "fast"}}
    store.create(job_id, JobState.ACCEPTED, attrs, lease=("ingest-alive", 10 * 365 * 86400))

    (action,) = _reconciler(stack, later_s=1 * HOURS).run_once().actions

    assert action.action == "skipped"
    assert _batch_jobs(stack, job_id) == []


def test_a_job_lost_too_often_fails_with_a_reason(stack: Stack) -> None:
    store = JobStore(stack.res.table, 7)
    job_id = "d" * 32
    attrs = {
        "bucket": stack.res.bucket,
        "source_key": KEY,
        "options": {"preset": "fast"},
        "batch_job_id": "vanished",
        "resubmits": 2,
    }
    store.create(job_id, JobState.ACCEPTED, attrs)
    store.transition(job_id, JobState.SUBMITTED)

    (action,) = _reconciler(stack, later_s=1 * HOURS, max_resubmits=2).run_once().actions

    assert action.action == "failed" and "lost 3 times" in action.reason
    record = stack.job(job_id) or {}
    assert record["state"] == JobState.FAILED and "giving up" in record["reason"]
    assert _batch_jobs(stack, job_id) == []
    ((_, attributes),) = stack.notifications()
    assert attributes["state"] == "FAILED"


class _FakeBatch:
    def __init__(self, oldest_ms: int | None) -> None:
        self.oldest_ms = oldest_ms

    def find(self, job_id: str) -> list[dict[str, Any]]:
        return []

    def find_named(self, name: str) -> list[dict[str, Any]]:
        return []

    def describe(self, batch_job_ids: list[str]) -> list[dict[str, Any]]:
        return []

    def submit(self, spec: Any) -> str:
        raise AssertionError("nothing to submit")

    def oldest_runnable_created_ms(self) -> int | None:
        return self.oldest_ms


@pytest.mark.parametrize(("oldest_ms", "age"), [(None, 0.0), (1_000_000, 9_000.0)])
def test_oldest_runnable_age(stack: Stack, oldest_ms: int | None, age: float) -> None:
    reconciler = Reconciler(_settings(stack), _FakeBatch(oldest_ms), clock=lambda: 10_000.0)
    assert reconciler.run_once().oldest_runnable_age_s == age


def test_the_handler_runs_one_pass_and_reports_it(stack: Stack) -> None:
    from lambdas.reconcile import settings as reconcile_settings_module
    from lambdas.reconcile.handler import lambda_handler
    from tests.integration.conftest import FakeContext

    reconcile_settings_module.reconcile_settings.cache_clear()
    job_id, _ = stack.upload(KEY, image_bytes(), {"preset": "fast"})

    report = lambda_handler({}, FakeContext("meshdrop-reconcile"))

    # Just submitted: not stuck yet (the default wait is longer than the RUNNABLE limit).
    assert report == {
        "stuck": {"ACCEPTED": 0, "SUBMITTED": 0, "RUNNING": 0},
        "oldest_runnable_age_s": 0.0,
        "actions": [],
    }
    assert (stack.job(job_id) or {})["state"] == JobState.SUBMITTED
