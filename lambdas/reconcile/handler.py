"""Reconcile Lambda: invoked on a schedule (EventBridge Scheduler); one pass per invocation."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from ..common.clients import client
from ..common.observability import logger, metrics, tracer
from .service import AwsBatch, Reconciler, ReconcileReport
from .settings import reconcile_settings

#: Where the RUNNABLE-age alarm looks (infra/monitoring.py: RUNNABLE_AGE_METRIC).
OLDEST_RUNNABLE_METRIC = "OldestRunnableJobAgeSeconds"


def publish(report: ReconcileReport) -> None:
    """The pass's metrics: RUNNABLE age, stuck jobs per state, and what was repaired."""
    metrics.add_metric(OLDEST_RUNNABLE_METRIC, MetricUnit.Seconds, report.oldest_runnable_age_s)
    for state, count in report.stuck.items():
        metrics.add_metric(f"Stuck{state.title()}Jobs", MetricUnit.Count, count)
    for action, name in (
        ("resubmitted", "JobsResubmitted"),
        ("adopted", "JobsAdopted"),
        ("applied", "BatchStatesApplied"),
        ("failed", "JobsFailedByReconciler"),
        ("error", "ReconcileErrors"),
    ):
        metrics.add_metric(name, MetricUnit.Count, report.count(action))


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = reconcile_settings()
    batch = AwsBatch(client("batch"), settings.job_queue, settings.job_definition)
    report = Reconciler(settings, batch).run_once()
    publish(report)
    return report.to_json()
