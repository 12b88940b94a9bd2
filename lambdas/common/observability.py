"""The one Logger, Tracer and Metrics of the project's Lambda functions.

Both functions import these, so log lines, traces and metrics share the service name and the
``meshdrop`` metrics namespace; ``POWERTOOLS_SERVICE_NAME`` set by the stack overrides the name.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = "meshdrop"
METRICS_NAMESPACE = "meshdrop"

logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE)


class MetricName:
    """Metric names the dashboards and alarms key on."""

    RECORDS_PROCESSED = "RecordsProcessed"
    JOBS_ACCEPTED = "JobsAccepted"
    JOBS_REJECTED = "JobsRejected"
    JOBS_REUSED = "JobsReused"
    DUPLICATE_DELIVERIES = "DuplicateDeliveries"
    JOBS_SUCCEEDED = "JobsSucceeded"
    JOBS_FAILED = "JobsFailed"
    JOB_SECONDS = "JobSeconds"
    UNKNOWN_JOBS = "UnknownJobs"
    STALE_EVENTS = "StaleEvents"
    NOTIFICATIONS_SENT = "NotificationsSent"
    #: Events that failed their schema at the edge: dropped, never retried; alarmed.
    INVALID_EVENTS = "InvalidEvents"
    #: Generator events not believed (another Batch job or attempt, an asset it did not write).
    UNTRUSTED_EVENTS = "UntrustedEvents"
