"""Ingest Lambda: an SQS batch of S3 object-created notifications.

Each SQS record is processed on its own; a failing record is reported back as a partial batch
failure (the event source mapping needs ``ReportBatchItemFailures``) so only it is retried.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from ..common.observability import MetricName, logger, metrics, tracer
from ..common.settings import ingest_settings
from .service import Ingestor, Outcome

processor = BatchProcessor(event_type=EventType.SQS)


@tracer.capture_method
def record_handler(record: SQSRecord) -> list[Outcome]:
    metrics.add_metric(name=MetricName.RECORDS_PROCESSED, unit="Count", value=1)
    outcomes = Ingestor(ingest_settings()).handle_body(record.body)
    logger.info("record processed", extra={"outcomes": [o.value for o in outcomes]})
    return outcomes


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    ingest_settings()  # a broken configuration fails the whole batch, loudly, before any record
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
