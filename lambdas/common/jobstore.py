"""The job record in DynamoDB and every write to it.

One table (layout in :mod:`meshdrop_contract.jobs`). Each state change is a conditional write
naming the states the job may come from (:data:`meshdrop_contract.ALLOWED_PREDECESSORS`), so a
duplicate, late or out-of-order writer fails its condition instead of moving a job backwards.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from boto3.dynamodb.conditions import Attr, ConditionBase, Key
from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from meshdrop_contract import (
    ALLOWED_PREDECESSORS,
    TERMINAL_STATES,
    JobOptions,
    JobState,
    can_transition,
)
from meshdrop_contract.events import now_iso
from meshdrop_contract.jobs import (
    GSI_BY_SOURCE,
    GSI_BY_SOURCE_PK,
    GSI_BY_SOURCE_SK,
    GSI_BY_STATE_PK,
    GSI_BY_STATE_SK,
    TABLE_PK,
    TTL_ATTRIBUTE,
    content_pk,
    from_dynamo,
    job_pk,
)

from .clients import dynamodb_table

STATE = GSI_BY_STATE_PK
UPDATED_AT = GSI_BY_STATE_SK
SOURCE_KEY = GSI_BY_SOURCE_PK
CREATED_AT = GSI_BY_SOURCE_SK
#: JSON of an event written with a transition and removed once it is on the bus, so a crash
#: between the two leaves a trace a redelivery can finish.
PENDING_EVENT = "pending_event"
SUBMIT_OWNER = "submit_owner"
SUBMIT_LEASE_UNTIL = "submit_lease_until"
NOTIFIED_AT = "notified_at"
#: Set once SNS accepted the notification claimed by ``notified_at``: a claim without it, older
#: than one function timeout, is a notification a crash lost between claim and publish.
NOTIFICATION_SENT_AT = "notification_sent_at"
#: Outbox mark: set with ``notified_at`` by :meth:`JobStore.claim_notification_outbox`, removed
#: once SNS accepted the message. Still there long after its claim: the publish was lost.
NOTIFICATION_PENDING = "notification_pending"

_SECONDS_PER_DAY = 86_400


def to_dynamo(value: Any) -> Any:
    """Python value -> what the DynamoDB resource API stores (floats become Decimals)."""
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, Mapping):
        return {str(k): to_dynamo(v) for k, v in cast("Mapping[object, object]", value).items()}
    if isinstance(value, list | tuple):
        return [to_dynamo(v) for v in cast("Sequence[object]", value)]
    return value


def expires_at(ttl_days: int, now: float | None = None) -> int:
    """Epoch seconds at which DynamoDB TTL may delete an item written now."""
    return int(now if now is not None else time.time()) + ttl_days * _SECONDS_PER_DAY


@dataclass(frozen=True, slots=True)
class WriteResult:
    """Outcome of a conditional write: whether it applied, and the item as it now stands."""

    applied: bool
    item: dict[str, Any] | None

    @property
    def state(self) -> JobState | None:
        return JobState(self.item[STATE]) if self.item and STATE in self.item else None


def _is_condition_failure(err: ClientError) -> bool:
    return err.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


_DESERIALIZER = TypeDeserializer()


def _item_at_failure(err: ClientError) -> dict[str, Any] | None:
    """The item a failed conditional write saw (``ReturnValuesOnConditionCheckFailure``).

    DynamoDB returns it in the low-level attribute-value format even to the resource API, and
    returns none when the item does not exist. It is the item the condition was checked
    against, so it is as current as a consistent read right after the failure would be, and
    saves that read.
    """
    raw = err.response.get("Item")
    if not raw:
        return None
    return from_dynamo({k: _DESERIALIZER.deserialize(v) for k, v in raw.items()})


class JobStore:
    """Reads and conditional writes of job and content items in the jobs table."""

    def __init__(self, table_name: str, ttl_days: int) -> None:
        self._table = dynamodb_table(table_name)
        self._ttl_days = ttl_days

    # -- reads -------------------------------------------------------------------------------

    def get(self, job_id: str) -> dict[str, Any] | None:
        response = self._table.get_item(Key={TABLE_PK: job_pk(job_id)}, ConsistentRead=True)
        item = response.get("Item")
        return from_dynamo(item) if item else None

    def get_content(self, content_sha256: str, options: JobOptions) -> dict[str, Any] | None:
        key = {TABLE_PK: content_pk(content_sha256, options)}
        item = self._table.get_item(Key=key, ConsistentRead=True).get("Item")
        return from_dynamo(item) if item else None

    # -- writes ------------------------------------------------------------------------------

    def create(
        self,
        job_id: str,
        state: JobState,
        attrs: Mapping[str, Any],
        *,
        pending_event: Any = None,
        lease: tuple[str, int] | None = None,
    ) -> WriteResult:
        """Write a new job record in ``state`` unless one exists (then return that one).

        Parameters
        ----------
        lease
            ``(owner, seconds)``: the new record is born with the submit lease held by
            ``owner`` (see :meth:`claim_submit`), so creating and claiming is one write.
        """
        if not can_transition(None, state):
            raise ValueError(f"a job record cannot start in {state}")
        if lease is not None and state is not JobState.ACCEPTED:
            raise ValueError("only an ACCEPTED job has a submit lease")
        now = now_iso()
        item: dict[str, Any] = {
            **attrs,
            TABLE_PK: job_pk(job_id),
            "job_id": job_id,
            STATE: state.value,
            CREATED_AT: now,
            UPDATED_AT: now,
            TTL_ATTRIBUTE: expires_at(self._ttl_days),
        }
        if pending_event is not None:
            item[PENDING_EVENT] = json.dumps(pending_event)
        if lease is not None:
            owner, seconds = lease
            item[SUBMIT_OWNER] = owner
            item[SUBMIT_LEASE_UNTIL] = int(time.time()) + seconds
        try:
            self._table.put_item(
                Item=to_dynamo(item),
                ConditionExpression=Attr(TABLE_PK).not_exists(),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as err:
            if not _is_condition_failure(err):
                raise
            return WriteResult(applied=False, item=_item_at_failure(err))
        return WriteResult(applied=True, item=item)

    def transition(
        self,
        job_id: str,
        target: JobState,
        attrs: Mapping[str, Any] | None = None,
        *,
        remove: Iterable[str] = (),
        require: ConditionBase | None = None,
        or_when: ConditionBase | None = None,
        pending_event: Any = None,
    ) -> WriteResult:
        """Move a job to ``target`` if it is in one of the allowed predecessor states.

        Parameters
        ----------
        require
            Extra condition that must also hold (for example: this caller holds the lease).
        or_when
            Alternative condition under which the write applies anyway; used for updates that
            stay in the same state but only move forward (progress, late success details).
        """
        allowed = sorted(s.value for s in ALLOWED_PREDECESSORS[target])
        condition: ConditionBase = Attr(STATE).is_in(allowed) if allowed else Attr(TABLE_PK).eq("")
        if require is not None:
            condition = condition & require
        if or_when is not None:
            condition = condition | or_when
        values = {**(attrs or {}), STATE: target.value, UPDATED_AT: now_iso()}
        if pending_event is not None:
            values[PENDING_EVENT] = json.dumps(pending_event)
        return self._update(job_id, values, remove, Attr(TABLE_PK).exists() & condition)

    def update(
        self,
        job_id: str,
        attrs: Mapping[str, Any],
        *,
        condition: ConditionBase,
        remove: Iterable[str] = (),
    ) -> WriteResult:
        """Conditional update that does not change the state."""
        return self._update(job_id, attrs, remove, Attr(TABLE_PK).exists() & condition)

    def claim_submit(self, job_id: str, owner: str, lease_seconds: int) -> bool:
        """Take the right to call SubmitJob for a job still ACCEPTED (see :meth:`take_lease`)."""
        return self.take_lease(job_id, owner, lease_seconds).applied

    def take_lease(self, job_id: str, owner: str, lease_seconds: int) -> WriteResult:
        """Take the submit lease of a job still ACCEPTED whose lease is free or expired.

        The lease lets a later delivery take over when the holder died before it could submit;
        it must outlast one invocation (the function timeout), or two could submit. On failure
        the result carries the record as it stands (already submitted, or still leased).
        """
        now = int(time.time())
        free = Attr(SUBMIT_LEASE_UNTIL).not_exists() | Attr(SUBMIT_LEASE_UNTIL).lt(now)
        return self.update(
            job_id,
            {SUBMIT_OWNER: owner, SUBMIT_LEASE_UNTIL: now + lease_seconds},
            condition=Attr(STATE).eq(JobState.ACCEPTED.value) & free,
        )

    def take_lease_at(self, job_id: str, owner: str, *, now: int, until: int) -> WriteResult:
        """:meth:`take_lease` on the caller's clock: free or expired at ``now``, held to ``until``.

        Ingest passes its own clock so tests can move time instead of sleeping.
        """
        free = Attr(SUBMIT_LEASE_UNTIL).not_exists() | Attr(SUBMIT_LEASE_UNTIL).lt(now)
        return self.update(
            job_id,
            {SUBMIT_OWNER: owner, SUBMIT_LEASE_UNTIL: until},
            condition=Attr(STATE).eq(JobState.ACCEPTED.value) & free,
        )

    def release_lease(self, job_id: str, owner: str) -> bool:
        """Give up ``owner``'s submit lease of a job still ACCEPTED; whether it was released.

        Called when the holder fails, so the message's next delivery can proceed at once
        instead of waiting for the lease to run out.
        """
        result = self.update(
            job_id,
            {SUBMIT_LEASE_UNTIL: 0},
            remove=(SUBMIT_OWNER,),
            condition=Attr(STATE).eq(JobState.ACCEPTED.value) & Attr(SUBMIT_OWNER).eq(owner),
        )
        return result.applied

    def jobs_for_source(self, source_key: str) -> list[dict[str, Any]]:
        """Every job of one source key (all its versions), oldest first (GSI ``by_source``)."""
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "IndexName": GSI_BY_SOURCE,
            "KeyConditionExpression": Key(SOURCE_KEY).eq(source_key),
        }
        while True:
            response = self._table.query(**kwargs)
            items.extend(from_dynamo(item) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return items
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def clear_pending_event(self, job_id: str) -> None:
        self._table.update_item(
            Key={TABLE_PK: job_pk(job_id)}, UpdateExpression=f"REMOVE {PENDING_EVENT}"
        )

    def claim_notification(self, job_id: str) -> dict[str, Any] | None:
        """Mark a terminal job as notified; the item if this caller won, else ``None``."""
        terminal = sorted(s.value for s in TERMINAL_STATES)
        result = self.update(
            job_id,
            {NOTIFIED_AT: now_iso()},
            condition=Attr(STATE).is_in(terminal) & Attr(NOTIFIED_AT).not_exists(),
        )
        return result.item if result.applied else None

    def release_notification(self, job_id: str) -> None:
        """Undo :meth:`claim_notification` so a retry can notify (the publish failed)."""
        self._table.update_item(
            Key={TABLE_PK: job_pk(job_id)}, UpdateExpression=f"REMOVE {NOTIFIED_AT}"
        )

    def claim_notification_outbox(self, job_id: str) -> dict[str, Any] | None:
        """:meth:`claim_notification` that also sets the outbox mark ``notification_pending``."""
        terminal = sorted(s.value for s in TERMINAL_STATES)
        now = now_iso()
        result = self.update(
            job_id,
            {NOTIFIED_AT: now, NOTIFICATION_PENDING: now},
            condition=Attr(STATE).is_in(terminal) & Attr(NOTIFIED_AT).not_exists(),
        )
        return result.item if result.applied else None

    def release_notification_outbox(self, job_id: str) -> None:
        """Undo :meth:`claim_notification_outbox` (the publish failed; a retry will notify)."""
        self._table.update_item(
            Key={TABLE_PK: job_pk(job_id)},
            UpdateExpression="REMOVE #claimed, #pending",
            ExpressionAttributeNames={"#claimed": NOTIFIED_AT, "#pending": NOTIFICATION_PENDING},
        )

    def mark_notification_sent(self, job_id: str) -> None:
        """SNS accepted the claimed notification: record it and clear the outbox mark."""
        self._table.update_item(
            Key={TABLE_PK: job_pk(job_id)},
            UpdateExpression="SET #sent = :now REMOVE #pending",
            ExpressionAttributeNames={
                "#sent": NOTIFICATION_SENT_AT,
                "#pending": NOTIFICATION_PENDING,
            },
            ExpressionAttributeValues={":now": now_iso()},
        )

    def reclaim_lost_notification(self, job_id: str, claimed_before: str) -> dict[str, Any] | None:
        """Take over a claim made before ``claimed_before`` (ISO time) whose publish never
        completed (a crash between claim and publish); the item if this caller won, else ``None``.

        Only claims with the outbox mark qualify, so records notified before it existed are
        never notified twice.
        """
        now = now_iso()
        result = self.update(
            job_id,
            {NOTIFIED_AT: now, NOTIFICATION_PENDING: now},
            condition=Attr(NOTIFICATION_PENDING).lt(claimed_before)
            & Attr(NOTIFICATION_SENT_AT).not_exists(),
        )
        return result.item if result.applied else None

    def put_content(
        self, content_sha256: str, options: JobOptions, attrs: Mapping[str, Any]
    ) -> None:
        """Remember which asset this content and these options produced (last writer wins).

        The item carries neither ``state`` nor ``source_key`` so it stays out of both GSIs.
        """
        item = {
            **attrs,
            TABLE_PK: content_pk(content_sha256, options),
            "content_sha256": content_sha256,
            "options_digest": options.digest(),
            "stored_at": now_iso(),
            TTL_ATTRIBUTE: expires_at(self._ttl_days),
        }
        self._table.put_item(Item=to_dynamo(item))

    def _update(
        self,
        job_id: str,
        values: Mapping[str, Any],
        remove: Iterable[str],
        condition: ConditionBase,
    ) -> WriteResult:
        names: dict[str, str] = {}
        expr_values: dict[str, Any] = {}
        sets: list[str] = []
        for i, (name, value) in enumerate(values.items()):
            names[f"#s{i}"] = name
            expr_values[f":s{i}"] = to_dynamo(value)
            sets.append(f"#s{i} = :s{i}")
        removes: list[str] = []
        for i, name in enumerate(remove):
            names[f"#r{i}"] = name
            removes.append(f"#r{i}")
        expression = ""
        if sets:
            expression += "SET " + ", ".join(sets)
        if removes:
            expression += " REMOVE " + ", ".join(removes)
        kwargs: dict[str, Any] = {
            "Key": {TABLE_PK: job_pk(job_id)},
            "UpdateExpression": expression.strip(),
            "ConditionExpression": condition,
            "ReturnValues": "ALL_NEW",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        if names:
            kwargs["ExpressionAttributeNames"] = names
        if expr_values:
            kwargs["ExpressionAttributeValues"] = expr_values
        try:
            response = self._table.update_item(**kwargs)
        except ClientError as err:
            if not _is_condition_failure(err):
                raise
            return WriteResult(applied=False, item=_item_at_failure(err))
        return WriteResult(applied=True, item=from_dynamo(response.get("Attributes") or {}))
