"""Batch event mapping and failure reason text of the state function (no AWS)."""

from __future__ import annotations

import copy
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


def test_transient_exit_with_attempts_left_is_not_final() -> None:
    change = batch_change(detail("batch-failed-transient-retrying.json"))
    assert change is not None and change.failure is not None
    assert change.target is None
    assert not change.failure.final
    assert change.failure.error_kind is ErrorKind.TRANSIENT


def test_transient_exit_on_the_last_attempt_is_final() -> None:
    d = detail("batch-failed-transient-retrying.json")
    d["attempts"] = [copy.deepcopy(d["attempts"][0]) for _ in range(3)]
    failure = batch_failure(d)
    assert failure.final
    assert failure.reason.endswith("after 3 attempts")


def test_spot_reclaim_is_transient_and_says_so() -> None:
    failure = batch_failure(detail("batch-failed-spot-reclaim.json"))
    assert failure.error_kind is ErrorKind.TRANSIENT
    assert failure.exit_code is None
    assert failure.final  # 3 of 3 attempts used
    assert failure.reason == (
        "the spot instance running the job was reclaimed: "
        "Host EC2 (instance i-0a1b2c3d4e5f60718) terminated. after 3 attempts"
    )


def test_without_a_retry_strategy_one_attempt_is_all() -> None:
    d = detail("batch-failed-transient-retrying.json")
    del d["retryStrategy"]
    assert batch_failure(d).final


@pytest.mark.parametrize(
    ("exit_code", "reason", "kind"),
    [
        (65, "", ErrorKind.BAD_INPUT),
        (66, "", ErrorKind.QUALITY),
        (75, "", ErrorKind.TRANSIENT),
        (None, "Host EC2 (instance i-1) terminated.", ErrorKind.TRANSIENT),
        (None, "Job attempt duration exceeded timeout", ErrorKind.TIMEOUT),
        (70, "", ErrorKind.INTERNAL),
        (137, "OutOfMemoryError: Container killed due to memory usage", ErrorKind.INTERNAL),
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
