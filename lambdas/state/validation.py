"""The state function's edge: which events it applies, which it drops, and why.

Every event is checked before anything reads it, with Powertools' validation utility
(fastjsonschema underneath): meshdrop events against the contract's JSON Schemas, Batch events
against :data:`BATCH_DETAIL_SCHEMA` (the fields of "Batch Job State Change" this function reads,
as AWS documents the event). A recognised event that fails its schema is *invalid*: logged with
the reason, counted, dropped; retrying cannot fix it, so it must never fail the invocation. An
event of another source or type is *ignored*.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, DecimalException
from enum import StrEnum
from typing import Any, cast

from aws_lambda_powertools.utilities.validation import validate  # pyright: ignore[reportUnknownVariableType]
from aws_lambda_powertools.utilities.validation.exceptions import SchemaValidationError
from boto3.dynamodb.types import DYNAMODB_CONTEXT

from meshdrop_contract import BATCH_DETAIL_TYPE, BATCH_SOURCE, EVENT_SOURCE, DetailType, schema

_DRAFT4 = "http://json-schema.org/draft-04/schema#"

#: What EventBridge hands the function: only these three fields are read.
ENVELOPE_SCHEMA: dict[str, Any] = {
    "$schema": _DRAFT4,
    "type": "object",
    "properties": {
        "source": {"type": "string"},
        "detail-type": {"type": "string"},
        "detail": {"type": "object"},
    },
    "required": ["source", "detail-type", "detail"],
}

_TEXT: dict[str, Any] = {"type": "string"}
_EPOCH_MS: dict[str, Any] = {"type": "number", "minimum": 0}
_CONTAINER: dict[str, Any] = {
    "type": "object",
    "properties": {"exitCode": {"type": "integer"}, "reason": _TEXT},
}

#: The fields of a "Batch Job State Change" ``detail`` (a JobDetail) the state function reads.
#: Other fields are not constrained: AWS says it may add properties at any time.
BATCH_DETAIL_SCHEMA: dict[str, Any] = {
    "$schema": _DRAFT4,
    "type": "object",
    "properties": {
        "jobName": {"type": "string", "minLength": 1},
        "jobId": {"type": "string", "minLength": 1},
        # Any string: a status AWS adds later is ignored by the mapping, not an error.
        "status": {"type": "string", "minLength": 1},
        "statusReason": _TEXT,
        "attempts": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "container": _CONTAINER,
                    "statusReason": _TEXT,
                    "startedAt": _EPOCH_MS,
                    "stoppedAt": _EPOCH_MS,
                },
            },
        },
        "container": _CONTAINER,
        "startedAt": _EPOCH_MS,
        "stoppedAt": _EPOCH_MS,
    },
    "required": ["jobName", "jobId", "status"],
}


class Outcome(StrEnum):
    VALID = "valid"
    INVALID = "invalid"
    IGNORED = "ignored"


@dataclass(frozen=True, slots=True)
class Checked:
    """An event after the edge check: what it is, and why it is dropped when it is."""

    outcome: Outcome
    reason: str = ""
    source: str = ""
    detail_type: str = ""
    detail: Mapping[str, Any] = field(default_factory=dict[str, Any])

    @property
    def meshdrop_type(self) -> DetailType | None:
        return DetailType(self.detail_type) if self.source == EVENT_SOURCE else None


def schema_problem(data: object, spec: dict[str, Any]) -> str | None:
    """Why ``data`` fails ``spec`` ("data.faces must be integer"), or ``None`` when it passes."""
    try:
        validate(event=data, schema=spec)
    except SchemaValidationError as err:
        return str(err.validation_message or err)
    return None


def unstorable_number(value: object, path: str = "data") -> str | None:
    """Where ``value`` holds a number boto3 refuses to send DynamoDB (more than 38 significant
    digits, or an exponent out of DynamoDB's range), or ``None``. JSON Schema allows them; a job
    record could never hold one. (Values at the very edge that DynamoDB itself refuses come back
    as a ValidationException, which the handler treats the same way.)
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            DYNAMODB_CONTEXT.create_decimal(
                Decimal(str(value)) if isinstance(value, float) else value
            )
        except DecimalException:
            return f"{path} = {value!r} is a number DynamoDB cannot store"
        return None
    if isinstance(value, Mapping):
        items = cast("Mapping[object, object]", value).items()
        return next((p for k, v in items if (p := unstorable_number(v, f"{path}.{k}"))), None)
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        values = enumerate(cast("Sequence[object]", value))
        return next((p for i, v in values if (p := unstorable_number(v, f"{path}[{i}]"))), None)
    return None


def check_event(event: object) -> Checked:
    """Classify one EventBridge event; never raises for anything the event contains."""
    problem = schema_problem(event, ENVELOPE_SCHEMA)
    if problem is not None:
        return Checked(Outcome.INVALID, f"not an EventBridge event: {problem}")
    envelope = cast("Mapping[str, Any]", event)
    source, detail_type = str(envelope["source"]), str(envelope["detail-type"])
    detail = cast("Mapping[str, Any]", envelope["detail"])
    if source == BATCH_SOURCE and detail_type == BATCH_DETAIL_TYPE:
        spec = BATCH_DETAIL_SCHEMA
    elif source == EVENT_SOURCE and detail_type in {t.value for t in DetailType}:
        spec = schema(DetailType(detail_type))
    else:
        reason = f"not an event this function handles: {source!r} / {detail_type!r}"
        return Checked(Outcome.IGNORED, reason, source, detail_type, detail)
    problem = schema_problem(detail, spec) or unstorable_number(detail)
    if problem is not None:
        return Checked(Outcome.INVALID, f"{detail_type}: {problem}", source, detail_type, detail)
    return Checked(Outcome.VALID, "", source, detail_type, detail)
