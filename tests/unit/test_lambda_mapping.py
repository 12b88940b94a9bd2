"""Batch event mapping and failure reason text of the state function (no AWS)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lambdas.state.mapping import (
    batch_change,
    batch_failure,
    error_kind_for,
    failure_reason,
)
from lambdas.state.service import notification_message, notification_subject
from meshdrop_contract import ErrorKind, JobState

EVENTS = Path(__file__).resolve().parent.parent / "events"
JOB_ID = "0f6c2a7e9b1d4c3a8e5f7a9b0c1d2e3f"


def detail(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())["detail"]


def test_running_maps_to_running_with_the_attempt_number() -> None:
    change = batch_change(detail("batch-running.json"))
    assert change is not None
    assert (change.job_id, change.target) == (JOB_ID, JobState.RUNNING)
    assert change.attrs == {"batch_job_id": "7a1b2c3d-0000-4000-8000-000000000001", "attempt": 1}


def test_succeeded_carries_batch_runtime() -> None:
    change = batch_change(detail("batch-succeeded.json"))
    assert change is not None
    assert change.target is JobState.SUCCEEDED
    assert change.attrs["batch_seconds"] == 60.0
    assert change.attrs["attempts"] == 1


@pytest.mark.parametrize("status", ["SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "WEIRD"])
def test_statuses_before_running_are_ignored(status: str) -> None:
    d = detail("batch-running.json") | {"status": status}
    assert batch_change(d) is None


def test_jobs_of_other_teams_are_ignored() -> None:
    assert batch_change(detail("batch-succeeded.json") | {"jobName": "nightly-etl"}) is None
    assert batch_change(detail("batch-succeeded.json") | {"jobName": "meshdrop-"}) is None


def test_bad_input_exit_is_final_with_a_readable_reason() -> None:
    change = batch_change(detail("batch-failed-bad-input.json"))
    assert change is not None and change.failure is not None
    assert change.target is JobState.FAILED
    assert change.failure.final
    assert change.attrs["error_kind"] == "bad_input"
    assert change.attrs["exit_code"] == 65
    assert change.attrs["error"] == (
        "the photo cannot be turned into a 3D asset (exit code 65): "
        "Essential container in task exited after 1 attempt"
    )


def test_a_retry_is_runnable_again_with_one_more_attempt() -> None:
    # Batch never sends FAILED while retries remain: the job goes back to RUNNABLE.
    change = batch_change(detail("batch-failed-transient-retrying.json"))
    assert change is not None
    assert change.target is None
    assert change.attrs == {
        "batch_job_id": "7a1b2c3d-0000-4000-8000-000000000001",
        "attempt": 2,
        "previous_attempt_reason": "Host EC2 (instance i-0a1b2c3d4e5f60718) terminated.",
    }


def test_running_again_after_an_out_of_memory_kill_names_it() -> None:
    change = batch_change(detail("batch-running-retry-oom.json"))
    assert change is not None
    assert change.target is JobState.RUNNING
    assert change.attrs["attempt"] == 2
    assert change.attrs["previous_attempt_reason"] == (
        "OutOfMemoryError: Container killed due to memory usage"
    )


def test_the_local_runners_running_attempt_is_not_a_finished_one() -> None:
    d = detail("batch-running.json")
    d["attempts"] = [{"container": {"logStreamName": "x"}, "startedAt": 5, "stoppedAt": 5}]
    change = batch_change(d)
    assert change is not None and change.attrs["attempt"] == 1


def test_failed_is_always_final() -> None:
    d = detail("batch-failed-bad-input.json")
    d["container"]["exitCode"] = 75
    d["attempts"][0]["container"]["exitCode"] = 75
    failure = batch_failure(d)
    assert failure.final and failure.error_kind is ErrorKind.TRANSIENT


def test_out_of_memory_is_said_so() -> None:
    change = batch_change(detail("batch-failed-oom.json"))
    assert change is not None and change.target is JobState.FAILED
    assert change.attrs["error_kind"] == "out_of_memory"
    assert change.attrs["error"] == (
        "out of memory: the generator needed more memory than the job has (exit code 137): "
        "OutOfMemoryError: Container killed due to memory usage after 1 attempt"
    )


@pytest.mark.parametrize(
    ("name", "kind", "start"),
    [
        ("batch-failed-runnable-capacity.json", "capacity", "no GPU capacity"),
        ("batch-failed-runnable-misconfiguration.json", "configuration", "no compute environment"),
    ],
)
def test_runnable_time_limit_cancellations(name: str, kind: str, start: str) -> None:
    change = batch_change(detail(name))
    assert change is not None and change.target is JobState.FAILED
    assert change.attrs["error_kind"] == kind
    assert change.attrs["error"].startswith(start)
    assert "Canceled by JobStateTimeLimit action due to reason:" in change.attrs["error"]
    assert change.attrs["attempts"] == 0


def test_exit_67_is_superseded_not_failed() -> None:
    change = batch_change(detail("batch-failed-superseded.json"))
    assert change is not None
    assert change.target is JobState.SUPERSEDED
    assert "error" not in change.attrs


def test_spot_reclaim_is_transient_and_says_so() -> None:
    failure = batch_failure(detail("batch-failed-spot-reclaim.json"))
    assert failure.error_kind is ErrorKind.TRANSIENT
    assert failure.exit_code is None
    assert failure.final  # 3 of 3 attempts used
    assert failure.reason == (
        "the spot instance running the job was reclaimed: "
        "Host EC2 (instance i-0a1b2c3d4e5f60718) terminated. after 3 attempts"
    )


@pytest.mark.parametrize(
    ("exit_code", "reason", "kind"),
    [
        (65, "", ErrorKind.BAD_INPUT),
        (66, "", ErrorKind.QUALITY),
        (75, "", ErrorKind.TRANSIENT),
        (None, "Host EC2 (instance i-1) terminated.", ErrorKind.TRANSIENT),
        (None, "Job attempt duration exceeded timeout", ErrorKind.TIMEOUT),
        (70, "", ErrorKind.INTERNAL),
        (137, "OutOfMemoryError: Container killed due to memory usage", ErrorKind.OUT_OF_MEMORY),
        (137, "Essential container in task exited", ErrorKind.INTERNAL),
        (None, "", ErrorKind.INTERNAL),
    ],
)
def test_error_kind(exit_code: int | None, reason: str, kind: ErrorKind) -> None:
    assert error_kind_for(exit_code, reason) is kind


def test_reason_text_without_details() -> None:
    assert failure_reason(ErrorKind.INTERNAL, None, "", 0) == (
        "the generator failed with an internal error"
    )
    assert failure_reason(ErrorKind.QUALITY, 66, "", 2) == (
        "the generated asset failed the quality check (exit code 66) after 2 attempts"
    )


def test_notification_message_hides_the_asset_of_a_failed_job() -> None:
    item = {
        "job_id": JOB_ID,
        "state": "FAILED",
        "bucket": "photos",
        "source_key": "images/uploaded/mug.jpg",
        "asset_key": "3d_assets/uploaded/mug.glb",
        "error": "boom",
        "error_kind": "internal",
        "batch_seconds": 12.5,
    }
    message = notification_message(item)
    assert message["asset_key"] is None
    assert (message["error"], message["error_kind"], message["seconds"]) == (
        "boom",
        "internal",
        12.5,
    )


def test_notification_subject_is_ascii_and_short() -> None:
    item = {"state": "SUCCEEDED", "source_key": "images/uploaded/" + "café " * 40 + ".jpg"}
    subject = notification_subject(item)
    assert subject.startswith("meshdrop job SUCCEEDED: caf?")
    assert subject.isascii() and len(subject) < 100
