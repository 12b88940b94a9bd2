"""The state function's edge check (no AWS): what is valid, invalid or ignored, and why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lambdas.state.validation import Outcome, check_event, unstorable_number

EVENTS = Path(__file__).resolve().parent.parent / "events"


def event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


@pytest.mark.parametrize(
    "name", sorted(p.name for p in EVENTS.glob("*.json") if not p.name.startswith("s3-"))
)
def test_every_documented_fixture_is_valid(name: str) -> None:
    checked = check_event(event(name))
    assert checked.outcome is Outcome.VALID, checked.reason


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"exitCode": "137"}, "must be integer"),
        ({"exitCode": True}, "must be integer"),
        ({"reason": 5}, "must be string"),
    ],
)
def test_batch_container_fields_are_typed(change: dict[str, Any], words: str) -> None:
    e = event("batch-failed-oom.json")
    e["detail"]["attempts"][0]["container"].update(change)
    checked = check_event(e)
    assert checked.outcome is Outcome.INVALID
    assert words in checked.reason and checked.reason.startswith("Batch Job State Change")


def test_batch_fields_nobody_reads_may_be_anything() -> None:
    # AWS may add properties to the event; only the fields the function reads are checked.
    e = event("batch-succeeded.json")
    e["detail"]["eksAttempts"] = "new shape"
    e["detail"]["status"] = "SOME_FUTURE_STATUS"
    assert check_event(e).outcome is Outcome.VALID


@pytest.mark.parametrize("missing", ["jobName", "jobId", "status"])
def test_batch_events_need_name_id_and_status(missing: str) -> None:
    e = event("batch-running.json")
    del e["detail"][missing]
    assert check_event(e).outcome is Outcome.INVALID


def test_meshdrop_reasons_name_the_field() -> None:
    e = event("meshdrop-job-succeeded.json")
    e["detail"]["faces"] = "many"
    checked = check_event(e)
    assert (checked.outcome, checked.reason) == (
        Outcome.INVALID,
        "Job Succeeded: data.faces must be integer",
    )


def test_other_sources_and_types_are_ignored() -> None:
    e = event("batch-running.json") | {"detail-type": "Batch Job Queue Blocked"}
    assert check_event(e).outcome is Outcome.IGNORED
    assert check_event(e | {"source": "aws.s3"}).outcome is Outcome.IGNORED


@pytest.mark.parametrize(
    ("value", "bad"),
    [
        (1.5, False),
        (10**37, False),
        (10**40, True),
        (1e300, True),
        (1e-200, True),
        ({"a": [1, {"b": 1e127}]}, True),
        (True, False),
        ("1e999", False),
    ],
)
def test_numbers_dynamodb_cannot_store(value: object, bad: bool) -> None:
    assert (unstorable_number(value) is not None) is bad
