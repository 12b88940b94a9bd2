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
    #: Stored items that fail their schema: not used (an upload is generated afresh instead).
    INVALID_RECORDS = "InvalidRecords"
    #: Folder placeholders, removals of unknown keys, S3 events that start no work.
    IGNORED_EVENTS = "IgnoredEvents"
    JOBS_SUPERSEDED = "JobsSuperseded"
    SOURCES_DELETED = "SourcesDeleted"
    #: A Batch job found already submitted for a job a crashed delivery left ACCEPTED.
    SUBMITS_ADOPTED = "SubmitsAdopted"
