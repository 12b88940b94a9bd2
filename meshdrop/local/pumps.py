"""Queue pumps: what the Lambda service's event source mappings do, done in-process.

The real handlers are imported (after their environment is set, since they read it at import
time) and called with events shaped as AWS delivers them.
"""

from __future__ import annotations

import json
import logging
import sys
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

log = logging.getLogger("meshdrop.local")

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class LambdaContext:
    """The parts of the Lambda context object the handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int = 512
    timeout_ms: int = 60_000
    region: str = "us-east-1"
    account: str = "123456789012"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account}:function:{self.function_name}"

    @property
    def function_version(self) -> str:
        return "$LATEST"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return "local"

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout_ms

    def fresh(self) -> LambdaContext:
        """A context for the next invocation (new request id)."""
        return LambdaContext(
            self.function_name, self.memory_limit_in_mb, self.timeout_ms, self.region, self.account
        )


def reset_lambda_caches() -> None:
    """Clear the per-container caches (settings, boto3 clients) of imported ``lambdas.*``.

    The functions cache what they read from the environment and the clients they create, as
    a warm Lambda container does. A new local run (or a test after it) has another endpoint
    and other resource names, so those caches must go. Modules are kept, not re-imported:
    code that already holds them (tests, fixtures) keeps working with the same objects.
    """
    for name, module in list(sys.modules.items()):
        if module is None or not name.startswith("lambdas."):
            continue
        for value in list(vars(module).values()):
            clear = getattr(value, "cache_clear", None)
            if callable(clear) and getattr(value, "__module__", None) == name:
                clear()


def load_handlers(env: Mapping[str, str]) -> tuple[ModuleType, ModuleType]:
    """The ingest and state handler modules, configured by ``env`` (set into ``os.environ``)."""
    import os

    os.environ.update(env)
    reset_lambda_caches()
    # Imported here, after the environment is set: the handlers read it at import time.
    from lambdas.ingest import handler as ingest_handler
    from lambdas.state import handler as state_handler

    return ingest_handler, state_handler


@dataclass
class PumpStats:
    invocations: int = 0
    records: int = 0
    failures: int = 0
    errors: list[str] = field(default_factory=list)


class IngestPump:
    """SQS -> ingest function, with partial batch responses (``ReportBatchItemFailures``)."""

    def __init__(
        self, sqs: Any, queue_url: str, queue_arn: str, handler: Handler, *, batch_size: int = 10
    ) -> None:
        self._sqs = sqs
        self._url = queue_url
        self._arn = queue_arn
        self._handler = handler
        self._batch_size = batch_size
        self._context = LambdaContext("meshdrop-ingest")
        self.stats = PumpStats()

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        attributes = message.get("Attributes", {})
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": {
                "ApproximateReceiveCount": attributes.get("ApproximateReceiveCount", "1"),
                "SentTimestamp": attributes.get("SentTimestamp", "0"),
                "SenderId": attributes.get("SenderId", "s3.amazonaws.com"),
                "ApproximateFirstReceiveTimestamp": attributes.get(
                    "ApproximateFirstReceiveTimestamp", "0"
                ),
            },
            "messageAttributes": {},
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": self._arn,
            "awsRegion": self._arn.split(":")[3],
        }

    def _receive(self, wait_s: int) -> list[dict[str, Any]]:
        """Up to ``batch_size`` messages, as an event source mapping batches them.

        SQS hands out at most 10 per call; a bigger batch (a pack of more than 10) is
        gathered from as many calls as the queue has messages for right now.
        """
        messages: list[dict[str, Any]] = []
        while len(messages) < self._batch_size:
            got = self._sqs.receive_message(
                QueueUrl=self._url,
                MaxNumberOfMessages=min(10, self._batch_size - len(messages)),
                WaitTimeSeconds=wait_s if not messages else 0,
                AttributeNames=["All"],
            ).get("Messages", [])
            messages += got
            if not got or self._batch_size <= 10:
                break
        return messages

    def pump_once(self, wait_s: int = 0) -> int:
        """Deliver one batch; the number of messages received (0: queue looked empty)."""
        messages = self._receive(wait_s)
        if not messages:
            return 0
        event = {"Records": [self._record(m) for m in messages]}
        self.stats.invocations += 1
        self.stats.records += len(messages)
        try:
            response = self._handler(event, self._context.fresh()) or {}
        except Exception as exc:
            log.warning("ingest handler raised %r; the batch will be redelivered", exc)
            self.stats.failures += len(messages)
            self.stats.errors.append(repr(exc))
            return len(messages)
        failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        self.stats.failures += len(failed)
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=self._url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
                ],
            )
        return len(messages)


class StatePump:
    """EventBridge rule (via its SQS target) -> state function, one event per invocation."""

    MAX_TRIES = 3

    def __init__(self, sqs: Any, queue_url: str, handler: Handler) -> None:
        self._sqs = sqs
        self._url = queue_url
        self._handler = handler
        self._context = LambdaContext("meshdrop-state")
        self.stats = PumpStats()
        #: Every event delivered, in order, for inspection by tests and the bench.
        self.delivered: list[dict[str, Any]] = []

    def pump_once(self, wait_s: int = 0) -> int:
        messages = self._sqs.receive_message(
            QueueUrl=self._url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=wait_s,
            AttributeNames=["ApproximateReceiveCount"],
        ).get("Messages", [])
        for message in messages:
            event = json.loads(message["Body"])
            self.stats.invocations += 1
            self.stats.records += 1
            try:
                self._handler(event, self._context.fresh())
            except Exception as exc:
                log.warning("state handler raised %r on %s", exc, event.get("detail-type"))
                self.stats.failures += 1
                self.stats.errors.append(repr(exc))
                receives = int(message.get("Attributes", {}).get("ApproximateReceiveCount", 1))
                if receives < self.MAX_TRIES:
                    continue
                # Lambda gives up on an asynchronous event after two retries.
                log.error("dropping %s after %d tries", event.get("detail-type"), receives)
            else:
                self.delivered.append(event)
            self._sqs.delete_message(QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"])
        return len(messages)
