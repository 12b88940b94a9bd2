"""Submit leases on a clock the test controls: crashes, throttling, exactly one Batch job.

Deployed timing (``IngestSettings`` defaults, matching infra/ingest.py): a 60 s function, a
queue that hides a received message for 360 s, and a 120 s submit lease between the two. A
delivery that fails is seen again one visibility timeout later; every scenario here must end
SUBMITTED with one Batch job by then (at most one lease plus one visibility timeout after the
first delivery), never after 18 minutes, never in the dead-letter queue.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.exceptions import ClientError

from lambdas.common.settings import ingest_settings
from lambdas.ingest.access import Backoff, BatchGateway, Clock, SubmitThrottledError
from lambdas.ingest.records import JobRecords
from lambdas.ingest.service import Ingestor, LeaseHeldError, Outcome
from meshdrop_contract import JobState
from tests.helpers.photos import image_bytes
from tests.integration.conftest import Stack

KEY = "images/uploaded/kitchen/mug.jpg"
VISIBILITY = 360
LEASE = 120


@dataclass
class FakeTime:
    """Seconds since the epoch that only move when the test (or a backoff sleep) says so."""

    t: float = field(default_factory=time.time)
    sleeps: list[float] = field(default_factory=list)

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds

    @property
    def clock(self) -> Clock:
        return Clock(now=self.now, sleep=self.sleep)


class InjectedFaultError(Exception):
    """A fault injected at one point of the ingest path."""


def _batch_jobs(stack: Stack, job_id: str) -> list[Any]:
    return stack.batch.list_jobs(
        jobQueue=stack.res.job_queue_arn,
        filters=[{"name": "JOB_NAME", "values": [f"meshdrop-{job_id}"]}],
    )["jobSummaryList"]


def _ingestor(fake: FakeTime, **kwargs: Any) -> Ingestor:
    return Ingestor(ingest_settings(), clock=fake.clock, **kwargs)


def _upload(stack: Stack) -> tuple[str, str]:
    put = stack.put(KEY, image_bytes())
    return stack.job_id(KEY, put), stack.s3_record(KEY, put)["body"]


@pytest.mark.parametrize("hard", [False, True], ids=["exception", "killed"])
@pytest.mark.parametrize("where", ["before submit", "after submit"])
def test_a_crash_ends_with_one_batch_job_within_a_lease_and_a_visibility_timeout(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, where: str, hard: bool
) -> None:
    job_id, body = _upload(stack)
    fake = FakeTime()
    start = fake.t
    # Before: SubmitJob itself fails. After: the Batch job exists, the SUBMITTED write fails.
    owner, target = (
        (BatchGateway, "submit")
        if where == "before submit"
        else (
            Ingestor,
            "_record_submitted",
        )
    )
    real = getattr(owner, target)
    faults = iter([True])

    def faulty(self: Any, *args: Any, **kwargs: Any) -> Any:
        if next(faults, False):
            raise InjectedFaultError(where)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(owner, target, faulty)
    if hard:
        # Killed (timeout, out of memory): no finally block runs, the lease is not released.
        monkeypatch.setattr(JobRecords, "release", lambda self, job_id: None)

    with pytest.raises(InjectedFaultError):
        _ingestor(fake).handle_body(body)
    left = stack.job(job_id) or {}
    assert left["state"] == JobState.ACCEPTED
    assert ("submit_owner" in left) is hard  # released unless the process was killed
    assert len(stack.submit_calls) == (1 if where == "after submit" else 0)

    if hard:
        # While the dead holder's lease runs, another delivery is refused (and retried).
        fake.t = start + LEASE - 1
        with pytest.raises(LeaseHeldError):
            _ingestor(fake).handle_body(body)

    # SQS shows the message again one visibility timeout after the failed delivery.
    fake.t = start + VISIBILITY
    assert _ingestor(fake).handle_body(body) == [Outcome.SUBMITTED]
    assert fake.t - start <= LEASE + VISIBILITY

    job = stack.job(job_id) or {}
    assert job["state"] == JobState.SUBMITTED
    [batch_job] = _batch_jobs(stack, job_id)
    assert job["batch_job_id"] == batch_job["jobId"]
    assert len(stack.submit_calls) == 1
    # Any later delivery is a duplicate.
    assert _ingestor(fake).handle_body(body) == [Outcome.DUPLICATE]
    assert len(_batch_jobs(stack, job_id)) == 1


class ThrottlingBatch:
    """A Batch client that throttles the first ``times`` SubmitJob calls."""

    def __init__(self, real: Any, times: int) -> None:
        self.real = real
        self.times = times

    def submit_job(self, **kwargs: Any) -> Any:
        if self.times > 0:
            self.times -= 1
            error = {"Error": {"Code": "TooManyRequestsException", "Message": "Too Many Requests"}}
            raise ClientError(error, "SubmitJob")  # type: ignore[arg-type]
        return self.real.submit_job(**kwargs)

    def list_jobs(self, **kwargs: Any) -> Any:
        return self.real.list_jobs(**kwargs)


def test_throttled_submit_backs_off_inside_the_invocation(stack: Stack) -> None:
    job_id, body = _upload(stack)
    fake = FakeTime()
    ingestor = _ingestor(fake, backoff=Backoff(attempts=4, base_seconds=0.5, cap_seconds=4))
    ingestor.gateway.batch = ThrottlingBatch(ingestor.gateway.batch, times=2)

    assert ingestor.handle_body(body) == [Outcome.SUBMITTED]
    assert len(fake.sleeps) == 2
    assert all(0 <= s <= 4 for s in fake.sleeps)
    assert len(_batch_jobs(stack, job_id)) == 1


def test_sustained_throttling_returns_the_item_without_burning_the_lease(stack: Stack) -> None:
    job_id, body = _upload(stack)
    fake = FakeTime()
    start = fake.t
    backoff = Backoff(attempts=4, base_seconds=0.5, cap_seconds=4, budget_seconds=10)
    ingestor = _ingestor(fake, backoff=backoff)
    ingestor.gateway.batch = ThrottlingBatch(ingestor.gateway.batch, times=100)

    with pytest.raises(SubmitThrottledError):
        ingestor.handle_body(body)
    assert len(fake.sleeps) <= 3
    assert fake.t - start <= 10  # bounded: the invocation is not spent sleeping
    job = stack.job(job_id) or {}
    assert job["state"] == JobState.ACCEPTED
    assert "submit_owner" not in job  # lease given back: the retry proceeds at once

    fake.t = start + VISIBILITY
    assert _ingestor(fake).handle_body(body) == [Outcome.SUBMITTED]
    assert len(_batch_jobs(stack, job_id)) == 1


def test_a_throttled_record_is_reported_for_retry_by_the_handler(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    put = stack.put(KEY, image_bytes())
    record = stack.s3_record(KEY, put)
    ok = stack.put("images/uploaded/other.png", image_bytes("PNG"))

    def throttled(self: BatchGateway, **kwargs: Any) -> str:
        if kwargs["jobName"] == f"meshdrop-{stack.job_id(KEY, put)}":
            raise SubmitThrottledError("Batch throttled SubmitJob")
        return str(self.batch.submit_job(**kwargs)["jobId"])

    monkeypatch.setattr(BatchGateway, "submit", throttled)
    response = stack.ingest(record, stack.s3_record("images/uploaded/other.png", ok))
    assert response == {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
    assert "submit_owner" not in (stack.job(stack.job_id(KEY, put)) or {})


def test_a_burst_with_duplicates_and_crashes_submits_each_upload_once(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small stand-in for ``make bench``'s 1 000-upload burst: zero double submissions."""
    import random

    rng = random.Random(10)
    uploads = []
    for i in range(24):
        key = f"images/uploaded/burst/{i}.png"
        put = stack.put(key, image_bytes("PNG", (48 + i, 48)))
        uploads.append((stack.job_id(key, put), stack.s3_record(key, put)))
    # Every notification delivered three times, in random batches of up to ten.
    deliveries = [record for _, record in uploads for _ in range(3)]
    rng.shuffle(deliveries)
    real = BatchGateway.submit

    def flaky(self: BatchGateway, **kwargs: Any) -> str:
        if rng.random() < 0.2:
            raise SubmitThrottledError("Batch throttled SubmitJob")
        return real(self, **kwargs)

    monkeypatch.setattr(BatchGateway, "submit", flaky)
    pending = deliveries
    for _ in range(20):  # redeliveries of the failed ones, as SQS would
        failed: list[dict[str, Any]] = []
        for start in range(0, len(pending), 10):
            batch = pending[start : start + 10]
            by_id = {r["messageId"]: r for r in batch}
            try:
                response = stack.ingest(*batch)
                failed += [by_id[f["itemIdentifier"]] for f in response["batchItemFailures"]]
            except Exception:  # every record of the batch failed: all come back
                failed += batch
        pending = failed
        if not pending:
            break

    assert pending == []
    names = [call["jobName"] for call in stack.submit_calls]
    assert sorted(names) == sorted(f"meshdrop-{job_id}" for job_id, _ in uploads)
    for job_id, _ in uploads:
        assert (stack.job(job_id) or {})["state"] == JobState.SUBMITTED


def test_a_job_left_accepted_whose_photo_is_deleted_is_closed_not_left_waiting(
    stack: Stack,
) -> None:
    from lambdas.common.jobstore import JobStore

    put = stack.put(KEY, image_bytes())
    job_id, body = stack.job_id(KEY, put), stack.s3_record(KEY, put)["body"]
    fake = FakeTime()
    # What a delivery killed right after its create leaves: ACCEPTED, leased until start + LEASE.
    JobStore(stack.res.table, 7).create(
        job_id,
        JobState.ACCEPTED,
        {
            "bucket": stack.res.bucket,
            "source_key": KEY,
            "submit_owner": "killed",
            "submit_lease_until": int(fake.t) + LEASE,
        },
    )
    stack.s3.delete_object(Bucket=stack.res.bucket, Key=KEY)
    stack.drain_events()

    fake.t += VISIBILITY
    assert _ingestor(fake).handle_body(body) == [Outcome.SUPERSEDED]
    job = stack.job(job_id) or {}
    assert job["state"] == JobState.SUPERSEDED
    assert job["source_deleted"] is True
    assert stack.submit_calls == []
    assert [e["detail-type"] for e in stack.drain_events()] == ["Job Superseded"]
    assert stack.notifications() == []
