"""Packs (``pack_size`` > 1): one Batch job per group of photos, still exactly one per photo."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from typing import Any

import pytest

from lambdas.common.settings import ingest_settings
from lambdas.ingest.access import BatchGateway, SubmitThrottledError
from lambdas.ingest.records import JobRecords
from lambdas.ingest.service import Ingestor, Outcome
from meshdrop_contract import JobState, pack_job_ids, pack_job_name, specs_from_env
from meshdrop_contract.wiring import ENV_PACK_SIZE
from tests.helpers.photos import image_bytes
from tests.integration.conftest import Stack
from tests.integration.test_ingest_leases import FakeTime


@pytest.fixture
def packed(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    monkeypatch.setenv(ENV_PACK_SIZE, "3")
    ingest_settings.cache_clear()
    yield stack
    ingest_settings.cache_clear()


def _uploads(stack: Stack, n: int, tag: str = "p") -> list[tuple[str, dict[str, Any]]]:
    out = []
    for i in range(n):
        key = f"images/uploaded/{tag}/{i}.png"
        put = stack.put(key, image_bytes("PNG", (40 + i, 40)))
        out.append((stack.job_id(key, put), stack.s3_record(key, put)))
    return out


def _pack_environment(call: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in call["containerOverrides"]["environment"]}


def test_three_photos_of_one_invocation_make_one_batch_job(packed: Stack) -> None:
    stack = packed
    uploads = _uploads(stack, 3)
    response = stack.ingest(*(record for _, record in uploads))
    assert response == {"batchItemFailures": []}

    [call] = stack.submit_calls
    job_ids = [job_id for job_id, _ in uploads]
    assert call["jobName"] == pack_job_name(job_ids)
    assert pack_job_ids(call["parameters"]) == job_ids
    specs = specs_from_env(_pack_environment(call))
    assert [s.job_id for s in specs] == job_ids
    records = [stack.job(job_id) or {} for job_id in job_ids]
    assert {r["state"] for r in records} == {JobState.SUBMITTED}
    assert len({r["batch_job_id"] for r in records}) == 1
    assert [r["pack_index"] for r in records] == [0, 1, 2]
    assert {r["pack_size"] for r in records} == {3}
    accepted = [e for e in stack.drain_events() if e.get("detail-type") == "Job Accepted"]
    assert sorted(e["detail"]["job_id"] for e in accepted) == sorted(job_ids)


def test_a_batch_larger_than_the_pack_size_makes_several_packs(packed: Stack) -> None:
    stack = packed
    uploads = _uploads(stack, 7)
    assert stack.ingest(*(record for _, record in uploads)) == {"batchItemFailures": []}
    sizes = [len(pack_job_ids(c["parameters"])) for c in stack.submit_calls]
    assert sizes == [3, 3, 1]
    assert stack.ingest(*(record for _, record in uploads)) == {"batchItemFailures": []}
    assert len(stack.submit_calls) == 3  # redeliveries are duplicates


def test_a_failed_pack_submission_retries_its_photos_only(
    packed: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = packed
    uploads = _uploads(stack, 4)
    real = BatchGateway.submit
    faults = iter([True])

    def flaky(self: BatchGateway, **kwargs: Any) -> str:
        if next(faults, False):
            raise SubmitThrottledError("Batch throttled SubmitJob")
        return real(self, **kwargs)

    monkeypatch.setattr(BatchGateway, "submit", flaky)
    response = stack.ingest(*(record for _, record in uploads))
    failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
    assert failed == {record["messageId"] for _, record in uploads[:3]}
    for job_id, _ in uploads[:3]:
        job = stack.job(job_id) or {}
        assert job["state"] == JobState.ACCEPTED
        assert "submit_owner" not in job  # given back: the redelivery proceeds at once
    assert stack.ingest(*(record for _, record in uploads[:3])) == {"batchItemFailures": []}
    assert sorted(len(pack_job_ids(c["parameters"])) for c in stack.submit_calls) == [1, 3]
    assert {(stack.job(j) or {})["state"] for j, _ in uploads} == {JobState.SUBMITTED}


def test_a_holder_killed_after_submitting_a_pack_is_adopted_not_resubmitted(
    packed: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = packed
    uploads = _uploads(stack, 3)
    real = Ingestor._record_submitted  # pyright: ignore[reportPrivateUsage]
    monkeypatch.setattr(Ingestor, "_record_submitted", _raises)
    monkeypatch.setattr(JobRecords, "release", lambda self, job_id: None)  # killed: no cleanup
    response = stack.ingest(*(record for _, record in uploads))
    assert len(response["batchItemFailures"]) == 3
    [call] = stack.submit_calls
    monkeypatch.setattr(Ingestor, "_record_submitted", real)

    # The redeliveries come one by one, after the dead holder's lease ran out.
    fake = FakeTime()
    fake.t += 1000
    for _, record in reversed(uploads):
        outcomes = Ingestor(ingest_settings(), clock=fake.clock).handle_body(record["body"])
        assert outcomes == [Outcome.SUBMITTED]
    assert len(stack.submit_calls) == 1
    records = [stack.job(job_id) or {} for job_id, _ in uploads]
    assert {r["state"] for r in records} == {JobState.SUBMITTED}
    assert [r["pack_index"] for r in records] == [0, 1, 2]
    assert {r["pack_name"] for r in records} == {call["jobName"]}


def test_a_burst_with_duplicates_and_faults_puts_every_photo_in_exactly_one_pack(
    packed: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = packed
    monkeypatch.setenv(ENV_PACK_SIZE, "10")
    ingest_settings.cache_clear()
    rng = random.Random(13)
    uploads = _uploads(stack, 40, "burst")
    real = BatchGateway.submit

    def flaky(self: BatchGateway, **kwargs: Any) -> str:
        if rng.random() < 0.2:
            raise SubmitThrottledError("Batch throttled SubmitJob")
        return real(self, **kwargs)

    monkeypatch.setattr(BatchGateway, "submit", flaky)
    pending = [record for _, record in uploads for _ in range(2)]
    rng.shuffle(pending)
    for _ in range(30):
        failed: list[dict[str, Any]] = []
        for start in range(0, len(pending), 10):
            batch = pending[start : start + 10]
            by_id = {r["messageId"]: r for r in batch}
            response = stack.ingest(*batch)
            failed += [by_id[f["itemIdentifier"]] for f in response["batchItemFailures"]]
        pending = failed
        if not pending:
            break
    assert pending == []
    recorded = {}
    for job_id, _ in uploads:
        job = stack.job(job_id) or {}
        assert job["state"] == JobState.SUBMITTED
        recorded[job_id] = job["pack_name"]
    submitted = [pack_job_ids(c["parameters"]) for c in stack.submit_calls]
    names = {pack_job_name(ids): ids for ids in submitted}
    assert len(names) == len(submitted)  # no pack submitted twice
    # Every photo is in exactly one submitted pack, the one its record names.
    members = [job_id for ids in submitted for job_id in ids]
    assert sorted(members) == sorted(recorded)
    for job_id, name in recorded.items():
        assert job_id in names[name]
    assert len(submitted) >= math.ceil(40 / 10)


def _raises(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("killed after SubmitJob")


def test_a_failed_place_write_retries_the_pack_s_photos_and_gives_their_leases_back(
    packed: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.exceptions import ClientError

    from lambdas.common.jobstore import JobStore

    stack = packed
    uploads = _uploads(stack, 2)
    real = JobStore.update
    faults = iter([True])

    def throttled(self: JobStore, *args: Any, **kwargs: Any) -> Any:
        if next(faults, False):
            error = {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "x"}}
            raise ClientError(error, "UpdateItem")  # type: ignore[arg-type]
        return real(self, *args, **kwargs)

    monkeypatch.setattr(JobStore, "update", throttled)
    response = stack.ingest(*(record for _, record in uploads))
    assert len(response["batchItemFailures"]) == 2
    assert stack.submit_calls == []
    for job_id, _ in uploads:
        assert "submit_owner" not in (stack.job(job_id) or {})
    assert stack.ingest(*(record for _, record in uploads)) == {"batchItemFailures": []}
    assert len(stack.submit_calls) == 1
