"""The deployed stack's dead-letter queues: list them, peek at messages, send them back.

Three queues hold what the pipeline gave up on (the stack names them in its outputs):

* ``ingest``: the ingest queue's dead-letter queue (S3 notifications the ingest function failed
  on ``maxReceiveCount`` times). Redrive is an SQS message move task back to the ingest queue.
* ``events``: the EventBridge targets' dead-letter queue (events EventBridge could not deliver
  to the state function). Each body is the event; redrive invokes the state function with it,
  asynchronously, as EventBridge would have.
* ``state``: the state function's on-failure destination (Lambda invocation records: the
  original event under ``requestPayload``). Redrive invokes the function with that event.

Peeking receives with a visibility timeout of 0 and never deletes, so ``show`` leaves every
message where it was. Redrive deletes a message only once its event was handed back.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from meshdrop_contract.wiring import (
    STACK_OUTPUT_EVENTS_DLQ,
    STACK_OUTPUT_INGEST_DLQ,
    STACK_OUTPUT_INGEST_QUEUE,
    STACK_OUTPUT_STATE_FAILURES,
    STACK_OUTPUT_STATE_FUNCTION,
)

from .errors import RemoteError, error_code

INGEST, EVENTS, STATE = "ingest", "events", "state"
#: What each queue holds, for ``ls``.
DESCRIPTIONS = {
    INGEST: "S3 notifications the ingest function gave up on",
    EVENTS: "events EventBridge could not deliver to the state function",
    STATE: "state function invocations that failed after Lambda's retries",
}
_OUTPUTS = {
    INGEST: STACK_OUTPUT_INGEST_DLQ,
    EVENTS: STACK_OUTPUT_EVENTS_DLQ,
    STATE: STACK_OUTPUT_STATE_FAILURES,
}
#: Answers of an SQS endpoint without message move tasks (older emulators, some partitions).
_NO_MOVE_TASKS = frozenset({"InvalidAction", "UnsupportedOperation", "NotImplemented"})
_PEEK_ROUNDS = 5


@dataclass(frozen=True)
class DeadLetterQueue:
    name: str
    url: str
    description: str


@dataclass(frozen=True)
class DlqStack:
    """The queues of one deployment, and where their messages go back to."""

    queues: dict[str, DeadLetterQueue]
    ingest_queue_url: str | None = None
    state_function: str | None = None

    def queue(self, name: str) -> DeadLetterQueue:
        try:
            return self.queues[name]
        except KeyError:
            known = ", ".join(sorted(self.queues)) or "none"
            raise RemoteError(
                f"No dead-letter queue {name!r} in this stack (known: {known}). Deploy the "
                "current stack: it names its queues in its outputs."
            ) from None


def from_outputs(outputs: Mapping[str, str]) -> DlqStack:
    """The dead-letter queues a stack's outputs name (old stacks name none)."""
    queues = {
        name: DeadLetterQueue(name, outputs[key], DESCRIPTIONS[name])
        for name, key in _OUTPUTS.items()
        if outputs.get(key)
    }
    return DlqStack(
        queues=queues,
        ingest_queue_url=outputs.get(STACK_OUTPUT_INGEST_QUEUE),
        state_function=outputs.get(STACK_OUTPUT_STATE_FUNCTION),
    )


@dataclass
class QueueStats:
    name: str
    url: str
    description: str
    depth: int
    in_flight: int
    #: Age of the oldest message seen (a sample of up to ten): SQS reports no such number.
    oldest_age_s: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "queue": self.name,
            "url": self.url,
            "description": self.description,
            "depth": self.depth,
            "in_flight": self.in_flight,
            "oldest_age_s": self.oldest_age_s,
        }


def stats(sqs: Any, queue: DeadLetterQueue, now: float | None = None) -> QueueStats:
    attrs = sqs.get_queue_attributes(
        QueueUrl=queue.url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    depth = int(attrs.get("ApproximateNumberOfMessages", 0))
    oldest: float | None = None
    if depth:
        sent = [m.sent_at for m in peek(sqs, queue, limit=10) if m.sent_at]
        if sent:
            oldest = round(max(0.0, (now or time.time()) - min(sent)), 1)
    return QueueStats(
        name=queue.name,
        url=queue.url,
        description=queue.description,
        depth=depth,
        in_flight=int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
        oldest_age_s=oldest,
    )


@dataclass
class Message:
    message_id: str
    body: str
    receive_count: int
    sent_at: float | None  # epoch seconds
    attributes: dict[str, str] = field(default_factory=dict[str, str])
    receipt_handle: str = ""

    @property
    def parsed(self) -> Any:
        """The body as JSON, or the text when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return self.body

    def to_json(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "receive_count": self.receive_count,
            "sent_at": self.sent_at,
            "attributes": self.attributes,
            "body": self.parsed,
        }


def _message(raw: Mapping[str, Any]) -> Message:
    attributes: Mapping[str, Any] = raw.get("Attributes") or {}
    sent = attributes.get("SentTimestamp")
    user: Mapping[str, Any] = raw.get("MessageAttributes") or {}
    return Message(
        message_id=str(raw.get("MessageId", "")),
        body=str(raw.get("Body", "")),
        receive_count=int(attributes.get("ApproximateReceiveCount", 0) or 0),
        sent_at=int(sent) / 1000.0 if sent else None,
        attributes={k: str(v.get("StringValue", "")) for k, v in user.items()},
        receipt_handle=str(raw.get("ReceiptHandle", "")),
    )


def peek(sqs: Any, queue: DeadLetterQueue, *, limit: int = 10) -> list[Message]:
    """Up to ``limit`` messages, left in the queue (visibility timeout 0, nothing deleted)."""
    seen: dict[str, Message] = {}
    for _ in range(_PEEK_ROUNDS):
        if len(seen) >= limit:
            break
        response = sqs.receive_message(
            QueueUrl=queue.url,
            MaxNumberOfMessages=min(10, limit - len(seen)),
            VisibilityTimeout=0,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        fresh = [_message(m) for m in response.get("Messages", [])]
        new = [m for m in fresh if m.message_id not in seen]
        if not new:
            break
        seen.update((m.message_id, m) for m in new)
    return list(seen.values())[:limit]


@dataclass
class RedriveResult:
    queue: str
    method: str  # "message-move-task" | "moved" | "invoked"
    moved: int = 0
    skipped: list[str] = field(default_factory=list[str])
    task_handle: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "queue": self.queue,
            "method": self.method,
            "moved": self.moved,
            "skipped": self.skipped,
            "task_handle": self.task_handle,
        }


def queue_arn(sqs: Any, url: str) -> str:
    return str(
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
    )


def invoke_async(lambda_client: Any, function: str, event: Mapping[str, Any]) -> None:
    """Hand ``event`` to ``function`` the way EventBridge does: an asynchronous invocation."""
    response = lambda_client.invoke(
        FunctionName=function, InvocationType="Event", Payload=json.dumps(event).encode()
    )
    status = int(response.get("StatusCode", 0))
    if status != 202:
        raise RemoteError(f"Lambda did not queue the event for {function} (status {status})")


def _receive(sqs: Any, url: str, count: int) -> list[Message]:
    response = sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=max(1, min(10, count)),
        VisibilityTimeout=60,  # ours while we hand it back; it reappears if we die meanwhile
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
    )
    return [_message(m) for m in response.get("Messages", [])]


def redrive_sqs(
    sqs: Any, stack: DlqStack, queue: DeadLetterQueue, *, limit: int, by_hand: bool = False
) -> RedriveResult:
    """Move the ingest DLQ's messages back to the ingest queue.

    An SQS message move task by default: SQS itself moves every message back to the queue
    that dead-lettered it, at its own pace (``meshdrop dlq ls`` shows the depth falling).
    ``by_hand`` (for emulators without move tasks, or to move only ``limit`` messages) sends
    each message to the ingest queue and then deletes it.
    """
    if not by_hand:
        try:
            response = sqs.start_message_move_task(SourceArn=queue_arn(sqs, queue.url))
        except ClientError as err:
            if error_code(err) not in _NO_MOVE_TASKS:
                raise
        else:
            return RedriveResult(
                queue.name,
                "message-move-task",
                moved=stats(sqs, queue).depth,
                task_handle=response.get("TaskHandle"),
            )
    if not stack.ingest_queue_url:
        raise RemoteError("The stack names no ingest queue (output IngestQueueUrl) to move to")
    return _move_by_hand(sqs, queue, stack.ingest_queue_url, limit)


def _move_by_hand(sqs: Any, queue: DeadLetterQueue, target: str, limit: int) -> RedriveResult:
    """Where move tasks are missing: send each message to ``target``, then delete it."""
    result = RedriveResult(queue.name, "moved")
    while result.moved < limit:
        batch = _receive(sqs, queue.url, limit - result.moved)
        if not batch:
            break
        for message in batch:
            sqs.send_message(QueueUrl=target, MessageBody=message.body)
            sqs.delete_message(QueueUrl=queue.url, ReceiptHandle=message.receipt_handle)
            result.moved += 1
    return result


def event_of(queue: str, message: Message) -> tuple[dict[str, Any] | None, str]:
    """The event a message holds for the state function, or ``None`` and why not."""
    body = message.parsed
    if queue == STATE:
        if not isinstance(body, dict) or "requestPayload" not in body:
            return None, "not a Lambda invocation record (no requestPayload)"
        body = body["requestPayload"]
    if not isinstance(body, dict) or "detail-type" not in body:
        return None, "not an EventBridge event"
    return body, ""


def redrive_invocations(
    sqs: Any,
    lambda_client: Any,
    stack: DlqStack,
    queue: DeadLetterQueue,
    *,
    limit: int,
    invoke: Callable[[Any, str, Mapping[str, Any]], None] | None = None,
) -> RedriveResult:
    """Invoke the state function again with each message's event; delete what was handed back.

    A message that holds no event is left in the queue (and listed as skipped).
    """
    if not stack.state_function:
        raise RemoteError(
            "The stack names no state function (output StateFunctionName): deploy the "
            "current stack to redrive this queue."
        )
    invoke = invoke or invoke_async
    result = RedriveResult(queue.name, "invoked")
    seen: set[str] = set()
    while result.moved < limit:
        batch = [
            m for m in _receive(sqs, queue.url, limit - result.moved) if m.message_id not in seen
        ]
        if not batch:
            break
        for message in batch:
            seen.add(message.message_id)
            event, why = event_of(queue.name, message)
            if event is None:
                result.skipped.append(f"{message.message_id}: {why}")
                sqs.change_message_visibility(
                    QueueUrl=queue.url, ReceiptHandle=message.receipt_handle, VisibilityTimeout=0
                )
                continue
            invoke(lambda_client, stack.state_function, event)
            sqs.delete_message(QueueUrl=queue.url, ReceiptHandle=message.receipt_handle)
            result.moved += 1
    return result
