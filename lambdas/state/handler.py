"""State Lambda: EventBridge events (meshdrop job events, AWS Batch job state changes).

Every event is checked at the edge first (:mod:`.validation`): an invalid one is logged with
the reason, counted (``InvalidEvents``, alarmed) and dropped, because retrying cannot fix it;
one of another source or type is ignored. An exception (a throttled write, a failed publish)
fails the invocation so Lambda's retries and then the failure queue deliver the event again;
stale or duplicate events return normally.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from ..common.observability import MetricName, logger, metrics, tracer
from ..common.settings import state_settings
from .outcome import Applied
from .service import StateApplier
from .validation import Checked, Outcome, check_event


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    checked = check_event(event)
    if checked.outcome is not Outcome.VALID:
        return dropped(checked).as_response()
    applier = StateApplier(state_settings())
    try:
        return applier.apply(checked.source, checked.detail_type, checked.detail).as_response()
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") != "ValidationException":
            raise  # throttling, a service error: the retry may succeed
        # DynamoDB refused the values themselves (nesting too deep, an item too large): no
        # retry can change that, so the event is invalid, not failed.
        reason = f"{checked.detail_type}: DynamoDB refused it: {err}"
        return dropped(replace(checked, outcome=Outcome.INVALID, reason=reason)).as_response()


def dropped(checked: Checked) -> Applied:
    """Log, count and drop an event the edge refused; a terminal job still gets notified."""
    extra = {"reason": checked.reason, "source": checked.source, "type": checked.detail_type}
    if checked.outcome is Outcome.IGNORED:
        logger.info("event ignored", extra=extra)
        return Applied(
            job_id=None, state=None, changed=False, outcome="ignored", reason=checked.reason
        )
    metrics.add_metric(name=MetricName.INVALID_EVENTS, unit="Count", value=1)
    logger.warning("invalid event dropped", extra=extra)
    job_id = _job_id(checked)
    notified = False
    if job_id is not None:
        # A terminal event with one bad field must not cost the user the final notification:
        # if the job is already terminal, notify now; otherwise Batch's own event (or the
        # reconciler asking Batch) ends the job.
        notified = StateApplier(state_settings()).notify_if_terminal(job_id)
    return Applied(
        job_id=job_id,
        state=None,
        changed=False,
        notified=notified,
        outcome="invalid",
        reason=checked.reason,
    )


def _job_id(checked: Checked) -> str | None:
    """The meshdrop job an invalid meshdrop event names, when it names one well-formed."""
    value = checked.detail.get("job_id") if checked.meshdrop_type is not None else None
    if isinstance(value, str) and len(value) == 32 and all(c in "0123456789abcdef" for c in value):
        return value
    return None
