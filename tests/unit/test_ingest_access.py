"""Ingest's S3 and Batch helpers without AWS: currency of a notice, backoff bounds, lookups."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from lambdas.ingest.access import Backoff, BatchGateway, Clock, Opened, SubmitThrottledError
from lambdas.ingest.notices import Action, Notice


def _notice(version_id: str | None, etag: str | None) -> Notice:
    return Notice(
        action=Action.CREATED,
        event_name="ObjectCreated:Put",
        bucket="photos",
        key="images/uploaded/a.jpg",
        etag=etag,
        version_id=version_id,
    )


def _opened(version_id: str | None, etag: str | None) -> Opened:
    return Opened(metadata={}, size=1, body=None, version_id=version_id, etag=etag)


@pytest.mark.parametrize(
    ("notice", "current", "is_current"),
    [
        (("v1", "e1"), ("v1", "e1"), True),
        (("v1", "e1"), ("v2", "e1"), False),  # same bytes uploaded again: the newer version owns
        ((None, "e1"), (None, "e1"), True),  # unversioned bucket: the ETag decides
        ((None, "e1"), (None, "e2"), False),  # overwritten by a newer upload
        (("v1", "e1"), (None, "e1"), True),  # versioning suspended since: the ETag decides
    ],
)
def test_a_notice_is_current_only_for_the_keys_current_object(
    notice: tuple[str | None, str | None], current: tuple[str | None, str | None], is_current: bool
) -> None:
    assert _opened(*current).is_current_for(_notice(*notice)) is is_current


class FakeTime:
    def __init__(self) -> None:
        self.t = 1000.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


class FakeBatch:
    def __init__(self, errors: list[str], pages: list[dict[str, Any]] | None = None) -> None:
        self.errors = errors
        self.pages = pages or [{"jobSummaryList": []}]
        self.calls: list[dict[str, Any]] = []

    def submit_job(self, **kwargs: Any) -> dict[str, str]:
        self.calls.append(kwargs)
        if self.errors:
            code = self.errors.pop(0)
            raise ClientError({"Error": {"Code": code, "Message": code}}, "SubmitJob")  # type: ignore[arg-type]
        return {"jobId": "batch-1"}

    def list_jobs(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return self.pages.pop(0)


def _gateway(batch: FakeBatch, time: FakeTime, **backoff: Any) -> BatchGateway:
    return BatchGateway(batch, "queue", Clock(now=time.now, sleep=time.sleep), Backoff(**backoff))


def test_submit_backs_off_on_throttling_then_succeeds() -> None:
    time = FakeTime()
    batch = FakeBatch(["TooManyRequestsException", "ThrottlingException"])
    assert _gateway(batch, time).submit(jobName="meshdrop-x") == "batch-1"
    assert len(time.sleeps) == 2
    assert len(batch.calls) == 3


def test_submit_gives_up_within_its_budget() -> None:
    time = FakeTime()
    batch = FakeBatch(["TooManyRequestsException"] * 50)
    gateway = _gateway(batch, time, attempts=10, base_seconds=2, cap_seconds=8, budget_seconds=5)
    with pytest.raises(SubmitThrottledError):
        gateway.submit(jobName="meshdrop-x")
    assert time.t - 1000.0 <= 5
    assert len(batch.calls) <= 10


def test_other_submit_errors_are_not_retried_here() -> None:
    batch = FakeBatch(["ClientException"])
    with pytest.raises(ClientError):
        _gateway(batch, FakeTime()).submit(jobName="meshdrop-x")
    assert len(batch.calls) == 1


def test_find_job_filters_by_name_across_pages() -> None:
    pages = [
        {"jobSummaryList": [{"jobName": "meshdrop-other", "jobId": "o"}], "nextToken": "t"},
        {"jobSummaryList": [{"jobName": "meshdrop-abc", "jobId": "found"}]},
    ]
    batch = FakeBatch([], pages)
    assert _gateway(batch, FakeTime()).find_job("abc") == "found"
    first, second = batch.calls
    assert first["filters"] == [{"name": "JOB_NAME", "values": ["meshdrop-abc"]}]
    assert "jobStatus" not in first  # with a name filter, every status is listed
    assert second["nextToken"] == "t"


def test_find_job_says_none_when_nothing_was_submitted() -> None:
    assert _gateway(FakeBatch([]), FakeTime()).find_job("abc") is None
