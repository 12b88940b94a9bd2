"""``meshdrop local replay``: feed captured AWS deliveries to the real handlers on a local stack.

A file holds one thing exactly as AWS delivers it; :func:`route` decides which consumer would
receive it in AWS and in what shape:

* an S3 event notification (the SQS message body), an SNS envelope around one, S3's
  EventBridge "Object Created" event (an EventBridge rule's SQS target delivers the event as
  the body), or any other SQS body, JSON or not: the **ingest** function, as one SQS record;
* a Lambda SQS event (``{"Records": [{"eventSource": "aws:sqs", ...}]}``): ingest, with its
  records' bodies;
* any other EventBridge event ("Batch Job State Change", meshdrop's own): the **state**
  function, invoked with the event;
* a Lambda asynchronous-invocation failure record (what an on-failure destination or
  ``meshdrop dlq show`` holds): the original event under ``requestPayload``, routed as above.

The bucket named anywhere in an event is taken to be the local stack's bucket, and the Batch job
an event names is taken to be the local job's Batch job (when the local stack knows the job), so
events captured from a deployed stack replay as they are. Each file's result says which consumer got
it and what came of it (:data:`OUTCOMES`), with the job records it touched and the SNS
messages it caused.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshdrop.remote.jobs import JobRecord
from meshdrop_contract import (
    BATCH_DETAIL_TYPE,
    BATCH_SOURCE,
    EVENT_SOURCE,
    DetailType,
    job_id_from_batch_job_name,
)
from meshdrop_contract.jobs import JOB_PK_PREFIX, TABLE_PK, from_dynamo

from .pipeline import LocalPipeline
from .pumps import LambdaContext

INGEST = "ingest"
STATE = "state"
#: What one replayed file came to. ``error``: the handler raised, or handed the record back
#: for a retry (AWS would retry it, then dead-letter it).
OUTCOMES = ("accepted", "rejected", "applied", "ignored", "invalid", "error")
#: The Powertools logger both functions log through; its messages explain ignored events.
HANDLER_LOGGER = "meshdrop"
_S3_ARN = re.compile(r"^arn:aws[a-z-]*:s3:::([^/]+)(.*)$")
_JOB_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass
class Delivery:
    """What a consumer receives for one file."""

    consumer: str
    kind: str
    #: SQS message bodies (ingest).
    bodies: list[str] = field(default_factory=list[str])
    #: The EventBridge event (state).
    event: dict[str, Any] | None = None
    #: Why the content is not a shape the consumer knows (it should then be dropped, invalid).
    problem: str | None = None


@dataclass
class ReplayEntry:
    file: str
    consumer: str
    outcome: str
    reason: str
    jobs: list[dict[str, Any]] = field(default_factory=list[dict[str, Any]])
    notifications: list[Any] = field(default_factory=list[Any])

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "consumer": self.consumer,
            "outcome": self.outcome,
            "reason": self.reason,
            "jobs": self.jobs,
            "notifications": self.notifications,
        }


# -- routing -----------------------------------------------------------------------------------


def rewrite_bucket(value: Any, bucket: str) -> Any:
    """``value`` with every bucket it names (names, S3 ARNs, SNS-wrapped messages) -> ``bucket``."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key == "bucket" and isinstance(item, str):
                out[key] = bucket
            elif key == "bucket" and isinstance(item, dict) and "name" in item:
                out[key] = {**rewrite_bucket(item, bucket), "name": bucket}
            elif key == "Message" and isinstance(item, str):
                out[key] = _rewrite_json_text(item, bucket)
            else:
                out[key] = rewrite_bucket(item, bucket)
        return out
    if isinstance(value, list):
        return [rewrite_bucket(v, bucket) for v in value]
    if isinstance(value, str) and (match := _S3_ARN.match(value)):
        return f"arn:aws:s3:::{bucket}{match.group(2)}"
    return value


def _rewrite_json_text(text: str, bucket: str) -> str:
    try:
        inner = json.loads(text)
    except ValueError:
        return text
    return json.dumps(rewrite_bucket(inner, bucket)) if isinstance(inner, dict | list) else text


def route(text: str, bucket: str) -> Delivery:
    """The consumer that would receive ``text`` in AWS, and what it would receive."""
    try:
        data = json.loads(text)
    except ValueError:
        return Delivery(INGEST, "sqs-body", bodies=[text], problem="the body is not JSON")
    return _route(data, bucket)


def _route(data: Any, bucket: str) -> Delivery:
    if isinstance(data, dict) and "requestPayload" in data:
        delivery = _route(data["requestPayload"], bucket)
        delivery.kind = f"lambda-failure-record/{delivery.kind}"
        return delivery
    data = rewrite_bucket(data, bucket)
    if isinstance(data, dict) and "detail-type" in data and "source" in data:
        if data.get("source") == "aws.s3":
            return Delivery(INGEST, "eventbridge-s3", bodies=[json.dumps(data)])
        return Delivery(STATE, _event_kind(data), event=data, problem=_event_problem(data))
    records = data.get("Records") if isinstance(data, dict) else None
    if isinstance(records, list) and records and all(_is_sqs_record(r) for r in records):
        bodies = [_rewrite_json_text(str(r.get("body", "")), bucket) for r in records]
        return Delivery(INGEST, "sqs-event", bodies=bodies)
    kind, problem = _body_kind(data)
    return Delivery(INGEST, kind, bodies=[json.dumps(data)], problem=problem)


def _is_sqs_record(record: Any) -> bool:
    return isinstance(record, dict) and record.get("eventSource") == "aws:sqs"


def _body_kind(data: Any) -> tuple[str, str | None]:
    if isinstance(data, dict):
        records = data.get("Records")
        if (
            isinstance(records, list)
            and records
            and all(isinstance(r, dict) and r.get("eventSource") == "aws:s3" for r in records)
        ):
            return "s3", None
        if data.get("Event") == "s3:TestEvent":
            return "s3-test-event", None
        if data.get("Type") == "Notification" and isinstance(data.get("Message"), str):
            return "sns-envelope", None
    return "sqs-body", "not an S3 notification, SNS envelope or EventBridge event"


def _event_kind(event: Mapping[str, Any]) -> str:
    if event.get("source") == BATCH_SOURCE and event.get("detail-type") == BATCH_DETAIL_TYPE:
        return "batch-job-state-change"
    if event.get("source") == EVENT_SOURCE:
        return "meshdrop-event"
    return "eventbridge-event"


def _event_problem(event: Mapping[str, Any]) -> str | None:
    """A structural reason the state function cannot use ``event`` (None: it looks usable)."""
    detail = event.get("detail")
    if not isinstance(detail, dict):
        return "the event has no detail object"
    kind = _event_kind(event)
    if kind == "batch-job-state-change":
        if not isinstance(detail.get("jobName"), str) or not isinstance(detail.get("status"), str):
            return "a Batch event needs string jobName and status"
        return None
    if kind == "meshdrop-event":
        if event.get("detail-type") not in {t.value for t in DetailType}:
            return f"unknown meshdrop detail-type {event.get('detail-type')!r}"
        job_id = detail.get("job_id")
        if not isinstance(job_id, str) or not _JOB_ID.match(job_id):
            return "job_id must be 32 hex digits"
        return None
    return f"no meshdrop consumer takes {event.get('source')!r} events"


def localize_batch_job(
    event: dict[str, Any], jobs: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """``event`` with the Batch job it names taken to be the local job's, as the bucket is.

    A captured event names the deployed stack's Batch job; the same job replayed here has
    another Batch job id (the state function believes an event only about the job's own Batch
    job). Only a job the local stack knows, with a recorded Batch job id, is mapped.
    """
    detail = event.get("detail")
    if not isinstance(detail, dict):
        return event
    if event.get("source") == BATCH_SOURCE:
        job_id = job_id_from_batch_job_name(str(detail.get("jobName", "")))
        field_name = "jobId"
    else:
        job_id = str(detail.get("job_id") or "") or None
        field_name = "batch_job_id"
    record = jobs.get(f"{JOB_PK_PREFIX}{job_id}") if job_id else None
    local = str((record or {}).get("batch_job_id") or "")
    captured = detail.get(field_name)
    if not local or not isinstance(captured, str) or captured == local:
        return event
    text = json.dumps(event).replace(captured, local)  # jobArn and resources name it too
    return json.loads(text)


# -- the replay --------------------------------------------------------------------------------


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def _handler_logs() -> Iterator[_Collect]:
    """What the handlers log meanwhile (INFO and up), to explain an ignored or failed event."""
    logger = logging.getLogger(HANDLER_LOGGER)
    collect = _Collect()
    level = logger.level
    logger.addHandler(collect)
    logger.setLevel(logging.INFO)
    try:
        yield collect
    finally:
        logger.removeHandler(collect)
        logger.setLevel(level)


#: Messages the handlers log for every record, which explain nothing.
_NOISE = ("record processed", "reconciled")


def _explanation(collect: _Collect) -> str | None:
    """The handler's own words: its last warning, else the first thing it said."""
    said = [r for r in collect.records if r.getMessage() and r.getMessage() not in _NOISE]
    warnings = [r for r in said if r.levelno >= logging.WARNING]
    if warnings:
        return warnings[-1].getMessage()
    return said[0].getMessage() if said else None


def _error_text(error: BaseException) -> str:
    """One line naming what the handler raised (the record's own error for a failed batch)."""
    children: Any = getattr(error, "child_exceptions", None)
    if isinstance(children, list) and children and isinstance(children[0], tuple):
        first: tuple[Any, ...] = children[0]
        if len(first) >= 2 and isinstance(first[1], BaseException):
            error = first[1]
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")


def _job_json(item: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return JobRecord.from_item(item).to_json()
    except (KeyError, ValueError, TypeError):  # a record no tool can read: show it as stored
        return json.loads(json.dumps(dict(item), default=str))


def _notification(body: str) -> Any:
    try:
        message = json.loads(body)
    except ValueError:
        return body
    if isinstance(message, dict) and message.get("Type") == "Notification":
        try:
            return json.loads(str(message.get("Message")))
        except ValueError:
            return message.get("Message")
    return message


class Replayer:
    """Replays files one by one on ``pipeline`` (started); see the module docstring.

    Parameters
    ----------
    run
        Also run the generator for accepted uploads (the local Batch runner), and reconcile
        what is left in flight; without it an accepted upload stops at SUBMITTED, where its
        consumer stops.
    """

    def __init__(self, pipeline: LocalPipeline, *, run: bool = False, timeout_s: float = 1800.0):
        assert pipeline.resources is not None, "start the pipeline first"
        self.pipeline = pipeline
        self.resources = pipeline.resources
        self.run = run
        self.timeout_s = timeout_s

    def seed(self, root: Path) -> list[str]:
        """Upload every file under ``root`` (key: its relative path), processing none of them."""
        keys: list[str] = []
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            key = path.relative_to(root).as_posix()
            content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            self.pipeline.s3.put_object(
                Bucket=self.resources.bucket,
                Key=key,
                Body=path.read_bytes(),
                ContentType=content_type,
            )
            keys.append(key)
        self._discard_queued(self.resources.ingest_queue_url)
        return keys

    def _discard_queued(self, url: str) -> None:
        # The bucket notified ingest of each seeded object; those uploads are not to be run.
        sqs = self.pipeline.sqs
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            for message in messages:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message.get("ReceiptHandle", ""))

    def replay(self, file: Path) -> ReplayEntry:
        """Feed ``file`` to its consumer; what came of it."""
        text = file.read_bytes().decode("utf-8", errors="replace")
        delivery = route(text, self.resources.bucket)
        before = self._jobs()
        if delivery.event is not None:
            delivery.event = localize_batch_job(delivery.event, before)
        sent = len(self.pipeline.notifications)
        with _handler_logs() as logs:
            error, returned = self._deliver(delivery)
            self._settle()
        after = self._jobs()
        touched = [pk for pk, item in after.items() if before.get(pk) != item]
        outcome, reason = _decide(delivery, error, returned, [after[pk] for pk in touched], logs)
        return ReplayEntry(
            file=str(file),
            consumer=delivery.consumer,
            outcome=outcome,
            reason=reason,
            jobs=[_job_json(after[pk]) for pk in touched],
            notifications=[
                _notification(str(n.get("body", ""))) for n in self.pipeline.notifications[sent:]
            ],
        )

    def _deliver(self, delivery: Delivery) -> tuple[BaseException | None, Any]:
        try:
            if delivery.consumer == STATE:
                context = LambdaContext("meshdrop-state")
                return None, self.pipeline.state_handler(delivery.event or {}, context)
            records = [self._sqs_record(body) for body in delivery.bodies]
            context = LambdaContext("meshdrop-ingest")
            return None, self.pipeline.ingest_handler({"Records": records}, context)
        except Exception as exc:  # the outcome "error": AWS would retry, then dead-letter
            return exc, None

    def _sqs_record(self, body: str) -> dict[str, Any]:
        import uuid

        now_ms = str(int(time.time() * 1000))
        message_id = str(uuid.uuid4())
        arn = self.resources.ingest_queue_arn
        return {
            "messageId": message_id,
            "receiptHandle": f"replay-{message_id}",
            "body": body,
            "attributes": {
                "ApproximateReceiveCount": "1",
                "SentTimestamp": now_ms,
                "SenderId": "replay",
                "ApproximateFirstReceiveTimestamp": now_ms,
            },
            "messageAttributes": {},
            "md5OfBody": "",
            "eventSource": "aws:sqs",
            "eventSourceARN": arn,
            "awsRegion": arn.split(":")[3],
        }

    def _settle(self) -> None:
        """Let what the delivery set off happen: events to the state function and
        notifications; with ``run``, the generator too, then one reconcile pass if a job is
        left in flight (as a local run does)."""
        deadline = time.monotonic() + self.timeout_s
        self._drain(deadline)
        if self.run and self._in_flight():
            self.pipeline.reconcile()
            self._drain(deadline)

    def _drain(self, deadline: float) -> None:
        pipeline = self.pipeline
        while time.monotonic() < deadline:
            if self.run:
                moved = pipeline.step()
                idle = moved == 0 and pipeline.is_idle()
            else:
                moved = pipeline.ingest_pump.pump_once() + pipeline.state_pump.pump_once()
                pipeline.collect_notifications()
                idle = moved == 0
            if idle:
                return
            if moved == 0:
                time.sleep(0.05)

    def _in_flight(self) -> bool:
        in_flight = {"ACCEPTED", "SUBMITTED", "RUNNING"}
        return any(item.get("state") in in_flight for item in self._jobs().values())

    def _jobs(self) -> dict[str, dict[str, Any]]:
        """Every job record now (the local table is small), by key."""
        table = self.pipeline.table
        items: dict[str, dict[str, Any]] = {}
        kwargs: dict[str, Any] = {"ConsistentRead": True}
        while True:
            page = table.scan(**kwargs)
            for item in page.get("Items", []):
                pk = str(item.get(TABLE_PK, ""))
                if pk.startswith(JOB_PK_PREFIX):
                    items[pk] = from_dynamo(item)
            last = page.get("LastEvaluatedKey")
            if not last:
                return items
            kwargs["ExclusiveStartKey"] = last


def _decide(
    delivery: Delivery,
    error: BaseException | None,
    returned: Any,
    touched: list[dict[str, Any]],
    logs: _Collect,
) -> tuple[str, str]:
    """The outcome of one delivery and the reason to print with it."""
    said = _explanation(logs)
    if error is not None:
        return "error", _error_text(error)
    if isinstance(returned, dict) and returned.get("batchItemFailures"):
        return "error", said or "the handler handed the record back for a retry"
    told = returned.get("outcome") if isinstance(returned, dict) else None
    if told in OUTCOMES and told != "applied":
        # The handler's own verdict (a dropped invalid event, one it does not handle).
        return str(told), str(returned.get("reason") or said or told)
    if delivery.consumer == INGEST:
        return _ingest_outcome(delivery, touched, said)
    if touched:
        item = touched[-1]
        return "applied", f"job {item.get('job_id')} is now {item.get('state')}"
    if delivery.problem is not None:
        return "invalid", said or delivery.problem
    return "ignored", said or "the event changed no job (stale, duplicate or unknown job)"


def _ingest_outcome(
    delivery: Delivery, touched: list[dict[str, Any]], said: str | None
) -> tuple[str, str]:
    if not touched:
        if delivery.problem is not None:
            return "invalid", said or delivery.problem
        return "ignored", said or "no job was made from this delivery"
    item = touched[-1]
    state = str(item.get("state"))
    why = str(item.get("reason") or item.get("error") or "")
    if state == "REJECTED":
        return "rejected", why or "rejected"
    if state == "SUPERSEDED":
        return "ignored", why or "superseded by a newer upload of the same key"
    return "accepted", f"job {item.get('job_id')} is {state}"


def replay_files(
    files: list[Path],
    *,
    seed: Path | None = None,
    run: bool = False,
    timeout_s: float = 1800.0,
    work_dir: Path | None = None,
) -> list[ReplayEntry]:
    """Start a fresh local stack, seed it, replay ``files`` in order; one entry per file."""
    with LocalPipeline(work_dir=work_dir) as pipeline:
        replayer = Replayer(pipeline, run=run, timeout_s=timeout_s)
        if seed is not None:
            replayer.seed(seed)
        return [replayer.replay(file) for file in files]
