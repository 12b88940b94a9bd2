"""Putting meshdrop events on the bus; a partially failed ``PutEvents`` is an error, not a log."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meshdrop_contract import DetailType, put_events_entry

from .clients import client


class EventPublishError(RuntimeError):
    """EventBridge refused the entry (``FailedEntryCount`` > 0); retrying the record may help."""


def emit(detail_type: DetailType, detail: Mapping[str, Any], bus: str) -> str:
    """Put one meshdrop event on ``bus`` and return its event id."""
    response: Mapping[str, Any] = client("events").put_events(
        Entries=[put_events_entry(detail_type, detail, bus)]
    )
    entries: list[Mapping[str, Any]] = response.get("Entries") or []
    entry: Mapping[str, Any] = entries[0] if entries else {}
    # PutEvents answers 200 even when an entry failed; only the count and the entry tell.
    if response.get("FailedEntryCount", 0) or "EventId" not in entry:
        code = entry.get("ErrorCode", "unknown")
        raise EventPublishError(
            f"PutEvents refused {detail_type.value!r}: {code} {entry.get('ErrorMessage', '')}"
        )
    return str(entry["EventId"])
