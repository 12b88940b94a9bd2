"""JSON Schemas of what ingest reads: the AWS deliveries it accepts and its own stored records.

Checked with fastjsonschema, the engine behind Powertools' validation utility, and reported as
Powertools' :class:`SchemaValidationError`. The schemas are compiled once per container
(``fastjsonschema.validate``, which Powertools' ``validate`` calls, compiles on every call: too
slow for every record of every batch).

The AWS shapes follow the documented examples:

* S3 event notification (``Records[].s3``): "Event message structure", Amazon S3 User Guide
  (notification-content-structure); ``eventVersion`` 2.1-2.5, ``versionId`` absent or ``null`` on
  an unversioned bucket, ``size``/``eTag`` absent on ``ObjectRemoved:*``.
* ``s3:TestEvent``: the same page, "test message".
* SNS envelope in SQS (``Type: Notification``): "Fanout to Amazon SQS queues", Amazon SNS
  Developer Guide (SendMessageToSQS). With raw message delivery the body is the S3 JSON itself.
* S3 via EventBridge ("Object Created", "Object Deleted"): "EventBridge event message
  structure", Amazon S3 User Guide (ev-events).

Only what ingest relies on is required; everything else AWS adds later is allowed.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any, cast

import fastjsonschema  # pyright: ignore[reportMissingTypeStubs]
from aws_lambda_powertools.utilities.validation.exceptions import SchemaValidationError

#: S3 bucket names (3-63 chars; legacy us-east-1 names may hold capitals and underscores).
_BUCKET = {"type": "string", "pattern": r"^[A-Za-z0-9._-]{3,255}$"}
_OPTIONAL_STRING = {"type": ["string", "null"]}
_KEY = {"type": "string", "minLength": 1, "maxLength": 4096}

S3_NOTIFICATION: dict[str, Any] = {
    "type": "object",
    "required": ["Records"],
    "properties": {
        "Records": {
            "type": "array",
            "minItems": 1,
            "maxItems": 100,
            "items": {
                "type": "object",
                "required": ["eventSource", "eventName", "s3"],
                "properties": {
                    "eventSource": {"const": "aws:s3"},
                    "eventName": {"type": "string", "minLength": 1},
                    "s3": {
                        "type": "object",
                        "required": ["bucket", "object"],
                        "properties": {
                            "bucket": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {"name": _BUCKET},
                            },
                            "object": {
                                "type": "object",
                                "required": ["key"],
                                "properties": {
                                    "key": _KEY,
                                    "size": {"type": "integer", "minimum": 0},
                                    "eTag": _OPTIONAL_STRING,
                                    "versionId": _OPTIONAL_STRING,
                                    "sequencer": _OPTIONAL_STRING,
                                },
                            },
                        },
                    },
                },
            },
        }
    },
}

S3_TEST_EVENT: dict[str, Any] = {
    "type": "object",
    "required": ["Event"],
    "properties": {"Event": {"const": "s3:TestEvent"}, "Bucket": {"type": "string"}},
}

SNS_NOTIFICATION: dict[str, Any] = {
    "type": "object",
    "required": ["Type", "MessageId", "TopicArn", "Message"],
    "properties": {
        "Type": {"const": "Notification"},
        "MessageId": {"type": "string"},
        "TopicArn": {"type": "string", "pattern": "^arn:"},
        "Message": {"type": "string"},
    },
}

S3_EVENTBRIDGE: dict[str, Any] = {
    "type": "object",
    "required": ["source", "detail-type", "detail"],
    "properties": {
        "source": {"const": "aws.s3"},
        "detail-type": {"type": "string"},
        "detail": {
            "type": "object",
            "required": ["bucket", "object"],
            "properties": {
                "bucket": {"type": "object", "required": ["name"], "properties": {"name": _BUCKET}},
                "object": {
                    "type": "object",
                    "required": ["key"],
                    "properties": {
                        "key": _KEY,
                        "size": {"type": "integer", "minimum": 0},
                        "etag": _OPTIONAL_STRING,
                        "version-id": _OPTIONAL_STRING,
                        "sequencer": _OPTIONAL_STRING,
                    },
                },
                "reason": _OPTIONAL_STRING,
                "deletion-type": _OPTIONAL_STRING,
            },
        },
    },
}

_COUNT = {"type": "integer", "minimum": 0}

#: The content item (``content#<sha256>#<options>``) a reuse reads back: written by the state
#: function from a generator's event, so an unvalidated event could have put anything there.
CONTENT_RECORD: dict[str, Any] = {
    "type": "object",
    "required": ["asset_key", "faces", "bytes"],
    "properties": {
        "asset_key": {"type": "string", "pattern": "^3d_assets/"},
        "bucket": _BUCKET,
        "job_id": {"type": "string"},
        "faces": _COUNT,
        "vertices": _COUNT,
        "bytes": _COUNT,
    },
}

#: A job item as ingest reads it back (a failed conditional write returns it).
JOB_RECORD: dict[str, Any] = {
    "type": "object",
    "required": ["job_id", "state"],
    "properties": {
        "job_id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
        "state": {
            "enum": [
                "ACCEPTED",
                "SUBMITTED",
                "RUNNING",
                "SUCCEEDED",
                "FAILED",
                "REJECTED",
                "SUPERSEDED",
            ]
        },
        "pending_event": {"type": "string"},
        "asset_key": {"type": ["string", "null"]},
        "batch_job_id": {"type": "string"},
    },
}

#: A ``pending_event`` (outbox) entry, once its JSON is decoded.
PENDING_EVENT: dict[str, Any] = {
    "type": "object",
    "required": ["detail_type", "detail"],
    "properties": {
        "detail_type": {
            "enum": [
                "Job Accepted",
                "Job Progress",
                "Job Succeeded",
                "Job Failed",
                "Job Rejected",
                "Job Superseded",
            ]
        },
        "detail": {"type": "object", "required": ["job_id"]},
    },
}


@cache
def _compiled(name: str) -> Callable[[Any], Any]:
    spec = cast("dict[str, Any]", globals()[name])
    return cast("Callable[[Any], Any]", fastjsonschema.compile(spec))  # pyright: ignore[reportUnknownMemberType]


def check(name: str, data: Any) -> None:
    """Raise :class:`SchemaValidationError` (its message says what is wrong) unless valid.

    ``name`` is the name of one of this module's schemas, e.g. ``"S3_NOTIFICATION"``.
    """
    try:
        _compiled(name)(data)
    except fastjsonschema.JsonSchemaValueException as err:  # pyright: ignore[reportUnknownMemberType]
        message = str(err.message)  # pyright: ignore[reportUnknownMemberType,reportUnknownArgumentType]
        raise SchemaValidationError(message, validation_message=message) from None


def is_valid(name: str, data: Any) -> bool:
    try:
        check(name, data)
    except SchemaValidationError:
        return False
    return True
