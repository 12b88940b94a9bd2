"""What an SQS message body tells ingest: S3 object notices, however S3 delivered them.

The stack sends S3 -> SQS, but a team that fans S3 out through SNS (with or without raw message
delivery) or through EventBridge must not lose uploads, so all of these end up as the same
:class:`Notice`:

* an S3 event notification (``{"Records": [...]}``), also what SNS raw delivery hands on;
* an SNS envelope (``{"Type": "Notification", "Message": "<S3 notification JSON>"}``);
* S3's EventBridge events "Object Created" and "Object Deleted" (EventBridge -> SQS).

Each shape is validated against its schema (:mod:`.shapes`) and then read through Powertools'
event data classes. Anything else raises :class:`InvalidEventError`: the caller logs the reason,
counts it and drops the message, because no retry can make a malformed body valid.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, cast

from aws_lambda_powertools.utilities.data_classes import S3Event
from aws_lambda_powertools.utilities.data_classes.s3_event import (
    S3EventBridgeNotificationEvent,
)
from aws_lambda_powertools.utilities.data_classes.sns_event import SNSMessage
from aws_lambda_powertools.utilities.validation.exceptions import SchemaValidationError

from meshdrop_contract import decode_event_key

from .shapes import check

#: Longest body ingest looks at; SQS allows 256 KiB, S3 notifications are a few KiB.
MAX_BODY_CHARS = 262_144
#: S3's limit on a key's UTF-8 length; no real event carries a longer one.
MAX_S3_KEY_BYTES = 1024


class InvalidEventError(ValueError):
    """The body is not a delivery ingest understands, or breaks its schema; ``str`` says why."""


class Action(StrEnum):
    CREATED = "created"
    REMOVED = "removed"
    OTHER = "other"  # restore, tagging, ACL, replication...: nothing for ingest to do


@dataclass(frozen=True, slots=True)
class Notice:
    """One S3 object event, key decoded, whichever envelope it came in."""

    action: Action
    event_name: str
    bucket: str
    key: str
    etag: str | None = None
    version_id: str | None = None
    size: int | None = None
    sequencer: str | None = None

    @property
    def version(self) -> str:
        """What identifies the stored object: its version id, else its ETag."""
        return self.version_id or self.etag or ""


def _action_of(event_name: str) -> Action:
    # Notifications say "ObjectCreated:Put"; configurations and some tools write "s3:..." too.
    name = event_name.removeprefix("s3:")
    if name.startswith("ObjectCreated:"):
        return Action.CREATED
    if name.startswith(("ObjectRemoved:", "LifecycleExpiration:")):
        return Action.REMOVED
    return Action.OTHER


def _clean(value: object) -> str | None:
    # "null" is what an unversioned bucket's events may carry as versionId.
    if not isinstance(value, str):
        return None
    text = value.strip().strip('"')
    return text if text and text != "null" else None


def _from_s3_notification(payload: dict[str, Any]) -> list[Notice]:
    check("S3_NOTIFICATION", payload)
    notices: list[Notice] = []
    for record in S3Event(payload).records:
        obj = record.s3.get_object
        notices.append(
            Notice(
                action=_action_of(record.event_name),
                event_name=record.event_name,
                bucket=record.s3.bucket.name,
                key=decode_event_key(obj.key),
                etag=_clean(obj.get("eTag")),
                version_id=_clean(obj.version_id),
                size=cast("int | None", obj.get("size")),
                sequencer=_clean(obj.get("sequencer")),
            )
        )
    return notices


_EVENTBRIDGE_ACTIONS = {"Object Created": Action.CREATED, "Object Deleted": Action.REMOVED}


def _from_eventbridge(payload: dict[str, Any]) -> list[Notice]:
    check("S3_EVENTBRIDGE", payload)
    event = S3EventBridgeNotificationEvent(payload)
    obj = event.detail.object
    return [
        Notice(
            action=_EVENTBRIDGE_ACTIONS.get(event.detail_type, Action.OTHER),
            event_name=event.detail_type,
            bucket=event.detail.bucket.name,
            key=obj.key,  # the data class URL-decodes it, as for notifications
            etag=_clean(obj.etag),
            version_id=_clean(obj.get("version-id")),
            size=obj.size,
            sequencer=_clean(obj.get("sequencer")),
        )
    ]


def _payload(text: str, what: str) -> dict[str, Any]:
    if len(text) > MAX_BODY_CHARS:
        raise InvalidEventError(f"{what} is longer than {MAX_BODY_CHARS} characters")
    try:
        payload = json.loads(text)
    except (ValueError, RecursionError):
        raise InvalidEventError(f"{what} is not JSON") from None
    if not isinstance(payload, dict):
        raise InvalidEventError(f"{what} is JSON but not an object")
    return cast("dict[str, Any]", payload)


def _notices(payload: dict[str, Any], *, in_sns: bool) -> list[Notice]:
    if payload.get("Event") == "s3:TestEvent":
        return []
    if "Records" in payload:
        return _from_s3_notification(payload)
    if payload.get("source") == "aws.s3" and "detail" in payload:
        return _from_eventbridge(payload)
    if payload.get("Type") == "Notification" and not in_sns:
        check("SNS_NOTIFICATION", payload)
        message = SNSMessage(payload).message
        return _notices(_payload(message, "the SNS message"), in_sns=True)
    keys = ", ".join(sorted(str(k) for k in payload)[:8])
    raise InvalidEventError(
        f"not an S3 notification, SNS envelope or S3 EventBridge event (keys: {keys})"
    )


def _check_text(notice: Notice) -> None:
    # JSON escapes can smuggle lone surrogates in, which no S3 key or id can hold.
    for value in (notice.key, notice.etag, notice.version_id, notice.sequencer, notice.event_name):
        if value is None:
            continue
        try:
            size = len(value.encode("utf-8"))
        except UnicodeEncodeError:
            raise InvalidEventError("the event holds text that is not valid Unicode") from None
        if size > MAX_S3_KEY_BYTES:
            raise InvalidEventError(f"a key or id is longer than S3 allows ({size} bytes)")


def parse_body(body: object) -> list[Notice]:
    """The S3 object notices in an SQS message body (``[]`` for ``s3:TestEvent``).

    Raises
    ------
    InvalidEventError
        The body is not JSON, not a shape listed in the module docstring, or breaks its schema.
    """
    if not isinstance(body, str):
        raise InvalidEventError("the SQS record has no text body")
    try:
        notices = _notices(_payload(body, "the body"), in_sns=False)
    except SchemaValidationError as err:
        raise InvalidEventError(f"malformed event: {err}") from None
    for notice in notices:
        _check_text(notice)
        if notice.action is Action.CREATED and not notice.version:
            # Every real ObjectCreated event names the stored object; without that, the job
            # cannot be identified (nor the photo told from a newer one).
            raise InvalidEventError(
                f"{notice.event_name} for {notice.key!r} has no eTag or versionId"
            )
    return notices
