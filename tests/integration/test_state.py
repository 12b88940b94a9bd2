"""The state function on a mocked account: forward-only transitions, one SNS per job."""

from __future__ import annotations

from typing import Any

import pytest

from lambdas.common.jobstore import JobStore
from meshdrop_contract import JobState, parse_source_key
from meshdrop_contract.jobs import ASSET_META_JOB_ID
from tests.helpers.photos import image_bytes
from tests.integration.conftest import Stack, load_event

KEY = "images/uploaded/kitchen/mug.jpg"


@pytest.fixture
def job_id(stack: Stack) -> str:
    """A job submitted by the real ingest function; its Job Accepted event already drained."""
    job, _ = stack.upload(KEY, image_bytes())
    assert (stack.job(job) or {})["state"] == JobState.SUBMITTED
    stack.drain_events()
    return job


def meshdrop_event(name: str, stack: Stack, job_id: str, **detail: Any) -> dict[str, Any]:
    job = stack.job(job_id) or {}
    event = load_event(f"meshdrop-{name}.json")
    event["detail"].update(
        job_id=job_id, bucket=stack.res.bucket, source_key=job.get("source_key", KEY)
    )
    if event["detail"].get("asset_key"):
        event["detail"]["asset_key"] = job.get("asset_key")
    if event["detail"].get("thumbnail_key"):
        source = parse_source_key(event["detail"]["source_key"])
        event["detail"]["thumbnail_key"] = source.thumbnail_key()
    # The generator reports from the Batch job the record names (schema 1.2).
    if name != "job-accepted" and job.get("batch_job_id"):
        event["detail"]["batch_job_id"] = job["batch_job_id"]
    event["detail"].update(detail)
    if name == "job-succeeded" and not event["detail"].get("reused"):
        put_asset(stack, job_id, event["detail"]["asset_key"])
    return event


def put_asset(stack: Stack, job_id: str, key: str, owner: str | None = None) -> None:
    """The asset as the generator writes it: with the job id in its metadata."""
    stack.s3.put_object(
        Bucket=stack.res.bucket,
        Key=key,
        Body=b"glTF-binary",
        Metadata={ASSET_META_JOB_ID: owner or job_id},
    )


def test_a_job_runs_to_success_and_notifies_once(stack: Stack, job_id: str) -> None:
    stack.state(stack.batch_event("batch-runnable.json", job_id))
    assert (stack.job(job_id) or {})["state"] == JobState.SUBMITTED
    stack.state(stack.batch_event("batch-running.json", job_id))
    assert (stack.job(job_id) or {})["state"] == JobState.RUNNING
    stack.state(meshdrop_event("job-progress", stack, job_id))
    job = stack.job(job_id) or {}
    assert (job["stage"], job["progress"]) == ("reconstruct", 0.6)
    assert stack.notifications() == []

    result = stack.state(meshdrop_event("job-succeeded", stack, job_id))
    stack.state(stack.batch_event("batch-succeeded.json", job_id))

    assert result == {
        "job_id": job_id,
        "state": "SUCCEEDED",
        "changed": True,
        "notified": True,
        "outcome": "applied",
        "reason": "",
    }
    job = stack.job(job_id) or {}
    assert job["state"] == JobState.SUCCEEDED
    assert (job["faces"], job["vertices"], job["bytes"], job["seconds"]) == (
        59876,
        29940,
        2483117,
        41.7,
    )
    assert job["timings"]["reconstruct"] == 31.2
    assert job["metrics"]["watertight"] is True
    [(message, attributes)] = stack.notifications()
    assert message == {
        "job_id": job_id,
        "state": "SUCCEEDED",
        "bucket": stack.res.bucket,
        "source_key": KEY,
        "asset_key": "3d_assets/uploaded/kitchen/mug.glb",
        "thumbnail_key": "3d_assets/uploaded/kitchen/mug.thumb.png",
        "reused": False,
        "error": None,
        "error_kind": None,
        "seconds": 41.7,
    }
    assert attributes == {"state": "SUCCEEDED", "category": "uploaded"}
    # The content item lets an identical upload reuse this asset.
    content = [i for i in stack.all_items() if i["pk"].startswith("content#")]
    assert [c["job_id"] for c in content] == [job_id]
    assert "state" not in content[0] and "source_key" not in content[0]


def test_sns_exactly_once_when_the_terminal_event_arrives_three_times(
    stack: Stack, job_id: str
) -> None:
    event = stack.batch_event("batch-failed-bad-input.json", job_id)
    results = [stack.state(event) for _ in range(3)]

    assert [r["notified"] for r in results] == [True, False, False]
    assert [r["state"] for r in results] == ["FAILED"] * 3
    [(message, attributes)] = stack.notifications()
    assert message["state"] == "FAILED"
    assert message["asset_key"] is None
    assert "exit code 65" in message["error"]
    assert message["error_kind"] == "bad_input"
    assert attributes["state"] == "FAILED"


def test_out_of_order_batch_events_never_move_a_job_backwards(stack: Stack, job_id: str) -> None:
    stack.state(stack.batch_event("batch-succeeded.json", job_id))
    job = stack.job(job_id) or {}
    assert job["state"] == JobState.SUCCEEDED
    assert job["asset_key"] == "3d_assets/uploaded/kitchen/mug.glb"

    stale = [
        stack.batch_event("batch-running.json", job_id),
        meshdrop_event("job-progress", stack, job_id),
        stack.batch_event("batch-failed-bad-input.json", job_id),
        meshdrop_event("job-failed", stack, job_id),
    ]
    for event in stale:
        assert stack.state(event)["changed"] is False
    after = stack.job(job_id) or {}
    assert after["state"] == JobState.SUCCEEDED
    assert after["updated_at"] == job["updated_at"]
    assert "error" not in after
    assert len(stack.notifications()) == 1


def test_generator_details_after_batch_success_still_land(stack: Stack, job_id: str) -> None:
    stack.state(stack.batch_event("batch-succeeded.json", job_id))
    stack.state(meshdrop_event("job-succeeded", stack, job_id))
    job = stack.job(job_id) or {}
    assert (job["state"], job["faces"]) == (JobState.SUCCEEDED, 59876)
    # ...but only once: a second success cannot rewrite them.
    stack.state(meshdrop_event("job-succeeded", stack, job_id, faces=7))
    assert (stack.job(job_id) or {})["faces"] == 59876


def test_progress_never_goes_backwards(stack: Stack, job_id: str) -> None:
    stack.state(meshdrop_event("job-progress", stack, job_id, stage="export", progress=0.8))
    stack.state(meshdrop_event("job-progress", stack, job_id, stage="background", progress=0.2))
    job = stack.job(job_id) or {}
    assert (job["state"], job["stage"], job["progress"]) == (JobState.RUNNING, "export", 0.8)
    stack.state(meshdrop_event("job-progress", stack, job_id, stage="upload", progress=0.95))
    assert (stack.job(job_id) or {})["stage"] == "upload"


def test_a_transient_failure_is_retried_then_succeeds(stack: Stack, job_id: str) -> None:
    stack.state(stack.batch_event("batch-running.json", job_id))
    stack.state(meshdrop_event("job-failed", stack, job_id, error_kind="transient", exit_code=75))
    # Batch retries: the job is RUNNABLE again with one finished attempt.
    result = stack.state(stack.batch_event("batch-failed-transient-retrying.json", job_id))

    assert (result["state"], result["changed"]) == ("RUNNING", True)
    job = stack.job(job_id) or {}
    assert job["state"] == JobState.RUNNING
    assert job["last_error"] == "no object found in the photo after background removal"
    assert job["attempt"] == 2
    assert job["previous_attempt_reason"] == "Host EC2 (instance i-0a1b2c3d4e5f60718) terminated."
    assert stack.notifications() == []

    retry = stack.batch_event("batch-running.json", job_id)
    retry["detail"]["attempts"] = load_event("batch-failed-transient-retrying.json")["detail"][
        "attempts"
    ]
    assert stack.state(retry)["changed"] is False  # attempt 2 is already recorded
    stack.state(stack.batch_event("batch-succeeded.json", job_id))
    assert (stack.job(job_id) or {})["state"] == JobState.SUCCEEDED
    [(message, _)] = stack.notifications()
    assert message["state"] == "SUCCEEDED"


def test_spot_reclaim_on_the_last_attempt_fails_the_job(stack: Stack, job_id: str) -> None:
    stack.state(stack.batch_event("batch-failed-spot-reclaim.json", job_id))
    job = stack.job(job_id) or {}
    assert job["state"] == JobState.FAILED
    assert job["error_kind"] == "transient"
    assert job["error"].startswith("the spot instance running the job was reclaimed")
    assert job["error"].endswith("after 3 attempts")
    [(message, _)] = stack.notifications()
    assert message["error"] == job["error"]


def test_rejected_and_reused_jobs_are_notified_from_their_events(stack: Stack) -> None:
    rejected, _ = stack.upload("images/uploaded/anim.png", image_bytes("GIF"))
    for event in stack.drain_events():
        stack.state(event)
        stack.state(event)
    [(message, attributes)] = stack.notifications()
    assert message["job_id"] == rejected
    assert message["state"] == "REJECTED"
    assert message["error"].startswith("content is GIF")
    assert attributes == {"state": "REJECTED", "category": "uploaded"}


def test_unknown_and_foreign_jobs_are_not_errors(stack: Stack) -> None:
    unknown = "f" * 32
    assert stack.state(stack.batch_event("batch-succeeded.json", unknown))["state"] is None
    foreign = stack.batch_event("batch-succeeded.json", unknown)
    foreign["detail"]["jobName"] = "nightly-report"
    assert stack.state(foreign) == {
        "job_id": None,
        "state": None,
        "changed": False,
        "notified": False,
        "outcome": "ignored",
        "reason": "Batch status 'SUCCEEDED' of 'nightly-report'",
    }
    assert stack.state(meshdrop_event("job-progress", stack, unknown))["state"] is None
    assert stack.all_items() == []
    assert stack.notifications() == []


def test_job_accepted_recreates_a_missing_record(stack: Stack) -> None:
    event = load_event("meshdrop-job-accepted.json")
    event["detail"]["bucket"] = stack.res.bucket
    result = stack.state(event)
    job = stack.job(event["detail"]["job_id"]) or {}
    assert result["changed"] is True
    assert job["state"] == JobState.SUBMITTED
    assert job["batch_job_id"] == event["detail"]["batch_job_id"]
    # With the record there, the same event is a no-op.
    assert stack.state(event)["changed"] is False


def test_a_failed_publish_releases_the_claim_for_the_retry(
    stack: Stack, job_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lambdas.common import clients

    sns = clients.client("sns")
    real_publish = sns.publish

    def broken_publish(**_: Any) -> None:
        raise RuntimeError("SNS is down")

    monkeypatch.setattr(sns, "publish", broken_publish)
    event = stack.batch_event("batch-failed-bad-input.json", job_id)
    with pytest.raises(RuntimeError, match="SNS is down"):
        stack.state(event)
    assert "notified_at" not in (stack.job(job_id) or {})

    monkeypatch.setattr(sns, "publish", real_publish)
    assert stack.state(event)["notified"] is True
    assert len(stack.notifications()) == 1
    assert JobStore(stack.res.table, 7).claim_notification(job_id) is None


def test_a_reused_job_is_notified_once_without_a_content_rewrite(stack: Stack, job_id: str) -> None:
    job = stack.job(job_id) or {}
    stack.s3.put_object(Bucket=stack.res.bucket, Key=job["asset_key"], Body=b"glTF-binary")
    stack.state(meshdrop_event("job-succeeded", stack, job_id))
    stack.notifications()
    stack.drain_events()

    copy_id, _ = stack.upload("images/generated/copy.jpg", image_bytes())
    [event] = stack.drain_events()
    assert event["detail"]["reused"] is True
    for _ in range(2):
        stack.state(event)

    [(message, attributes)] = stack.notifications()
    assert (message["job_id"], message["reused"]) == (copy_id, True)
    assert message["asset_key"] == "3d_assets/generated/copy.glb"
    assert attributes == {"state": "SUCCEEDED", "category": "generated"}
    content = [i for i in stack.all_items() if i["pk"].startswith("content#")]
    assert [c["job_id"] for c in content] == [job_id]
