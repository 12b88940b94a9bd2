"""State Lambda: EventBridge events (meshdrop job events, AWS Batch job state changes).

An exception (a throttled write, a failed publish) fails the invocation so EventBridge retries
it; stale or duplicate events return normally.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from ..common.observability import logger, metrics, tracer
from ..common.settings import state_settings
from .service import StateApplier


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=EventBridgeEvent)
def lambda_handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    applied = StateApplier(state_settings()).apply(event.source, event.detail_type, event.detail)
    return {
        "job_id": applied.job_id,
        "state": applied.state.value if applied.state else None,
        "changed": applied.changed,
        "notified": applied.notified,
    }
