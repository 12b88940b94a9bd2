"""A pack's Batch events move only its photos not yet terminal; each photo notifies once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from lambdas.common.jobstore import JobStore
from lambdas.common.settings import ingest_settings
from meshdrop_contract import JobState, job_pk, pack_job_name
from meshdrop_contract.wiring import ENV_PACK_SIZE
from tests.helpers.photos import image_bytes
from tests.integration.conftest import Stack
from tests.integration.test_reconcile import (
    _expire_lease,  # pyright: ignore[reportPrivateUsage]
    _reconciler,  # pyright: ignore[reportPrivateUsage]
)
from tests.integration.test_state import meshdrop_event, put_asset


@pytest.fixture
def pack(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Three photos submitted by the real ingest function as one pack; events drained."""
    monkeypatch.setenv(ENV_PACK_SIZE, "3")
    ingest_settings.cache_clear()
    records, job_ids = [], []
    for i in range(3):
        key = f"images/uploaded/pack/{i}.png"
        put = stack.put(key, image_bytes("PNG", (40 + i, 40)))
        job_ids.append(stack.job_id(key, put))
        records.append(stack.s3_record(key, put))
    assert stack.ingest(*records) == {"batchItemFailures": []}
    stack.drain_events()
    yield job_ids
    ingest_settings.cache_clear()


def _pack_event(stack: Stack, name: str, job_ids: list[str], **detail: Any) -> dict[str, Any]:
    """A sample Batch event of the pack's Batch job (its job ids in ``parameters``)."""
    event = stack.batch_event(name, job_ids[0], **detail)
    event["detail"]["jobName"] = pack_job_name(job_ids)
    event["detail"]["parameters"] = {"job_ids": ",".join(job_ids)}
    return event


def _states(stack: Stack, job_ids: list[str]) -> list[str]:
    return [(stack.job(j) or {})["state"] for j in job_ids]


def test_a_pack_runs_each_photo_ends_on_its_own_and_notifies_once(
    stack: Stack, pack: list[str]
) -> None:
    response = stack.state(_pack_event(stack, "batch-running.json", pack))
    assert [m["state"] for m in response["members"]] == ["RUNNING"] * 3
    assert _states(stack, pack) == ["RUNNING"] * 3

    stack.state(meshdrop_event("job-succeeded", stack, pack[0]))
    stack.state(meshdrop_event("job-failed", stack, pack[1]))
    assert _states(stack, pack) == ["SUCCEEDED", "FAILED", "RUNNING"]

    # The pack's last attempt fails (spot reclaims): only the photo still running fails.
    stack.state(_pack_event(stack, "batch-failed-spot-reclaim.json", pack))
    assert _states(stack, pack) == ["SUCCEEDED", "FAILED", "FAILED"]
    assert "reclaimed" in (stack.job(pack[2]) or {})["error"]
    # A pack's SUCCEEDED moves nobody here (each photo reported its own outcome).
    late = stack.state(_pack_event(stack, "batch-succeeded.json", pack))
    assert not late["changed"]
    notified = sorted((m["job_id"], a["state"]) for m, a in stack.notifications())
    assert notified == sorted(zip(pack, ["SUCCEEDED", "FAILED", "FAILED"], strict=True))


def test_an_event_of_another_batch_job_with_the_pack_s_name_is_not_believed(
    stack: Stack, pack: list[str]
) -> None:
    event = _pack_event(stack, "batch-running.json", pack)
    event["detail"]["jobId"] = "another-batch-job"
    response = stack.state(event)
    assert {m["outcome"] for m in response["members"]} == {"ignored"}
    assert _states(stack, pack) == ["SUBMITTED"] * 3


def test_the_reconciler_adopts_a_pack_left_accepted_and_never_resubmits(
    stack: Stack, pack: list[str]
) -> None:
    # What a holder killed after SubmitJob leaves: ACCEPTED, its place in the pack noted.
    store = JobStore(stack.res.table, 7)
    stack.table.update_item(
        Key={"pk": job_pk(pack[1])},
        UpdateExpression="SET #s = :a REMOVE batch_job_id",
        ExpressionAttributeNames={"#s": "state"},
        ExpressionAttributeValues={":a": JobState.ACCEPTED.value},
    )
    _expire_lease(stack, pack[1])  # the holder died
    assert (store.get(pack[1]) or {})["pack_name"] == pack_job_name(pack)
    submits = len(stack.submit_calls)
    report = _reconciler(stack, later_s=3 * 3600).run_once()
    assert len(stack.submit_calls) == submits
    actions = {a.job_id: a.action for a in report.actions}
    # Adopted, then moto's pack says SUCCEEDED, which moves no photo: it waits for its own.
    assert actions[pack[1]] == "waiting"
    record = stack.job(pack[1]) or {}
    assert record["state"] == JobState.SUBMITTED
    assert record["batch_job_id"] == (stack.job(pack[0]) or {})["batch_job_id"]


def test_a_photo_written_before_its_pack_failed_for_good_succeeds_whatever_comes_first(
    stack: Stack, pack: list[str]
) -> None:
    stack.state(_pack_event(stack, "batch-running.json", pack))
    # Photo 0's asset is written and its "Job Succeeded" is still on its way when the pack's
    # last attempt fails.
    put_asset(stack, pack[0], (stack.job(pack[0]) or {})["asset_key"])
    late_success = meshdrop_event("job-succeeded", stack, pack[0])
    stack.state(_pack_event(stack, "batch-failed-spot-reclaim.json", pack))
    assert _states(stack, pack) == ["SUCCEEDED", "FAILED", "FAILED"]
    stack.state(late_success)
    assert (stack.job(pack[0]) or {})["state"] == JobState.SUCCEEDED
    notified = sorted((m["job_id"], a["state"]) for m, a in stack.notifications())
    assert notified == sorted(zip(pack, ["SUCCEEDED", "FAILED", "FAILED"], strict=True))


def test_a_pack_s_success_ends_a_photo_whose_own_event_was_lost_only_from_its_asset(
    stack: Stack, pack: list[str]
) -> None:
    stack.state(_pack_event(stack, "batch-running.json", pack))
    put_asset(stack, pack[0], (stack.job(pack[0]) or {})["asset_key"])  # its event lost
    stack.state(meshdrop_event("job-failed", stack, pack[1]))
    response = stack.state(_pack_event(stack, "batch-succeeded.json", pack))
    assert [m["outcome"] for m in response["members"]] == ["applied", "ignored", "ignored"]
    # Photo 2 wrote nothing and said nothing: it waits for its own event (or the reconciler).
    assert _states(stack, pack) == ["SUCCEEDED", "FAILED", "RUNNING"]
