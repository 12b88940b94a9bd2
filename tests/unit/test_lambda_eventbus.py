"""Putting events: a partially failed PutEvents is an error, not a silent loss."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.stub import Stubber

from lambdas.common import clients
from lambdas.common.eventbus import EventPublishError, emit
from meshdrop_contract import DetailType


@pytest.fixture
def stubbed_events(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    clients.reset_clients()
    with Stubber(clients.client("events")) as stubber:
        yield stubber
    clients.reset_clients()


def _expected(detail: dict[str, Any]) -> dict[str, Any]:
    return {
        "Entries": [
            {
                "Source": "meshdrop",
                "DetailType": "Job Progress",
                "Detail": json.dumps(detail, separators=(",", ":")),
                "EventBusName": "bus",
            }
        ]
    }


def test_emit_returns_the_event_id(stubbed_events: Stubber) -> None:
    detail = {"job_id": "a" * 32}
    stubbed_events.add_response(
        "put_events", {"FailedEntryCount": 0, "Entries": [{"EventId": "e-1"}]}, _expected(detail)
    )
    assert emit(DetailType.PROGRESS, detail, "bus") == "e-1"


def test_a_failed_entry_raises_with_its_error_code(stubbed_events: Stubber) -> None:
    detail = {"job_id": "a" * 32}
    stubbed_events.add_response(
        "put_events",
        {
            "FailedEntryCount": 1,
            "Entries": [{"ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"}],
        },
        _expected(detail),
    )
    with pytest.raises(EventPublishError, match="ThrottlingException slow down"):
        emit(DetailType.PROGRESS, detail, "bus")
