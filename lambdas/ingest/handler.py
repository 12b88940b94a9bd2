"""Ingest Lambda: an SQS batch of S3 object notifications (direct, through SNS or EventBridge).

Each SQS record is processed on its own. A record that can never succeed (a malformed or
unrecognised body) is logged with the reason, counted (``InvalidEvents``) and dropped; a record
that failed for a reason that may pass (throttling, a held lease, an AWS error) is reported back
as a partial batch failure (the event source mapping needs ``ReportBatchItemFailures``) so only
it is retried.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,  # pyright: ignore[reportUnknownVariableType]
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from ..common.clients import client
from ..common.jobstore import JobStore
from ..common.observability import MetricName, logger, metrics, tracer
from ..common.settings import ConfigurationError, ingest_settings
from .access import BACKOFF_BUDGET_SECONDS, Backoff
from .service import Ingestor, Outcome

processor = BatchProcessor(event_type=EventType.SQS)


def warm_up() -> None:
    """Create the per-container clients now, so the first record does not pay for them.

    Called at import on Lambda, in the init phase, which runs before the first event with
    the full CPU. Creating the four clients took ~0.5 s on the (busy) development machine;
    lazily, that lands on the first record's drop -> SUBMITTED latency.
    """
    try:
        settings = ingest_settings()
    except ConfigurationError:
        return  # lambda_handler reports it, failing the batch loudly
    JobStore(settings.table_name, settings.job_ttl_days)
    for service in ("s3", "batch", "events"):
        client(service)


if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):  # set by the Lambda runtime only
    warm_up()


#: Seconds of the invocation kept free of SubmitJob backoff, for the writes that follow it.
_BACKOFF_MARGIN_SECONDS = 15.0


def _backoff(context: LambdaContext | None) -> Backoff:
    if context is None:
        return Backoff()
    remaining = context.get_remaining_time_in_millis() / 1000 - _BACKOFF_MARGIN_SECONDS
    return Backoff(budget_seconds=max(0.0, min(BACKOFF_BUDGET_SECONDS, remaining)))


@tracer.capture_method
def record_handler(record: SQSRecord, lambda_context: LambdaContext | None = None) -> list[Outcome]:
    """One SQS record: handled, or dropped with a reason when invalid; raises only to retry.

    The body is read from the raw record, so a record without a text body is an invalid
    event (logged, counted, dropped) rather than a crash.
    """
    metrics.add_metric(name=MetricName.RECORDS_PROCESSED, unit="Count", value=1)
    ingestor = Ingestor(ingest_settings(), backoff=_backoff(lambda_context))
    # The message id ties every line (a dropped invalid body's reason included) to the message.
    logger.append_keys(message_id=record.raw_event.get("messageId"))
    try:
        outcomes = ingestor.handle_body(record.raw_event.get("body"))
        logger.info("record processed", extra={"outcomes": [o.value for o in outcomes]})
    finally:
        logger.remove_keys(["message_id"])
    return outcomes


def packed_handler(
    event: dict[str, Any], context: LambdaContext | None = None
) -> PartialItemFailureResponse:
    """With ``pack_size`` > 1: every record handled, then the held photos submitted in packs.

    One :class:`Ingestor` for the invocation collects the photos it accepted
    (:mod:`.packs`); a record that raised, or whose photo's pack could not be submitted or
    recorded, is reported back as a batch item failure so only it is retried.
    """
    ingestor = Ingestor(ingest_settings(), backoff=_backoff(context))
    failed: list[str] = []
    records: list[dict[str, Any]] = event.get("Records") or []
    for record in records:
        message_id = str(record.get("messageId") or "")
        metrics.add_metric(name=MetricName.RECORDS_PROCESSED, unit="Count", value=1)
        ingestor.message_id = message_id
        logger.append_keys(message_id=message_id)
        try:
            outcomes = ingestor.handle_body(record.get("body"))
            logger.info("record processed", extra={"outcomes": [o.value for o in outcomes]})
        except Exception:
            logger.exception("record failed; it is retried")
            failed.append(message_id)
        finally:
            logger.remove_keys(["message_id"])
    failed += ingestor.submit_packs()
    return {"batchItemFailures": [{"itemIdentifier": m} for m in dict.fromkeys(failed) if m]}


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    settings = ingest_settings()  # a broken configuration fails the whole batch, loudly
    if settings.pack_size > 1:
        return packed_handler(event, context)
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
