"""How the deployed parts find each other: Lambda environment names and EventBridge patterns.

Infrastructure (the CDK stack and the local pipeline) sets these; handlers read them.
"""

from __future__ import annotations

from typing import Any

from .events import BATCH_DETAIL_TYPE, BATCH_SOURCE, EVENT_SOURCE, DetailType

# Environment of the Lambda functions.
ENV_TABLE_NAME = "TABLE_NAME"
ENV_EVENT_BUS_NAME = "EVENT_BUS_NAME"
ENV_JOB_QUEUE = "JOB_QUEUE"
ENV_JOB_DEFINITION = "JOB_DEFINITION"
ENV_TOPIC_ARN = "TOPIC_ARN"
#: The photo bucket: the state function believes meshdrop events only about objects in it.
ENV_BUCKET_NAME = "BUCKET_NAME"
ENV_MAX_IMAGE_BYTES = "MAX_IMAGE_BYTES"
ENV_MAX_IMAGE_PIXELS = "MAX_IMAGE_PIXELS"
ENV_JOB_TTL_DAYS = "JOB_TTL_DAYS"
#: Reconciler: seconds an ACCEPTED or SUBMITTED job may go without an update before it is
#: looked at (longer than the job queue's RUNNABLE time limit, so Batch acts first).
ENV_RECONCILE_STUCK_AFTER_S = "RECONCILE_STUCK_AFTER_SECONDS"
#: Reconciler: the same for a RUNNING job (every attempt may run to its timeout).
ENV_RECONCILE_RUNNING_AFTER_S = "RECONCILE_RUNNING_AFTER_SECONDS"
#: Reconciler: resubmissions of one job (its Batch job vanished) before it is failed.
ENV_RECONCILE_MAX_RESUBMITS = "RECONCILE_MAX_RESUBMITS"
# Ingest's clock and its policies (all optional; lambdas/common/settings.py validates them).
#: The ingest function's timeout and its queue's visibility timeout, in seconds, as deployed:
#: the submit lease must outlive the first and end before the second.
ENV_INGEST_TIMEOUT_SECONDS = "MESHDROP_INGEST_TIMEOUT_SECONDS"
ENV_INGEST_VISIBILITY_SECONDS = "MESHDROP_INGEST_VISIBILITY_SECONDS"
ENV_SUBMIT_LEASE_SECONDS = "MESHDROP_SUBMIT_LEASE_SECONDS"
#: "true": deleting a photo deletes its asset and thumbnail too (default: keep them).
ENV_DELETE_ASSETS_WITH_SOURCE = "MESHDROP_DELETE_ASSETS_WITH_SOURCE"
#: "false": no ``<name>.error.json`` beside a rejected or failed job's asset (default: write it).
ENV_ERROR_FILES = "MESHDROP_ERROR_FILES"
#: Photos per Batch job (a pack); 1 (the default): one Batch job per photo.
ENV_PACK_SIZE = "MESHDROP_PACK_SIZE"


def meshdrop_job_events_pattern() -> dict[str, Any]:
    """Rule pattern for the events the state function applies (all meshdrop job events)."""
    return {"source": [EVENT_SOURCE], "detail-type": [t.value for t in DetailType]}


def batch_job_state_pattern(job_queue_arn: str) -> dict[str, Any]:
    """Rule pattern for Batch job state changes of meshdrop's job queue only."""
    return {
        "source": [BATCH_SOURCE],
        "detail-type": [BATCH_DETAIL_TYPE],
        "detail": {"jobQueue": [job_queue_arn]},
    }


# CloudFormation stack outputs (CfnOutput ids) through which the CLI finds a deployed stack.
STACK_OUTPUT_BUCKET = "BucketName"
STACK_OUTPUT_TABLE = "TableName"
STACK_OUTPUT_EVENT_BUS = "EventBusName"
STACK_OUTPUT_TOPIC = "TopicArn"
#: Dead-letter queues the ``meshdrop dlq`` commands read: the ingest queue's DLQ (S3
#: notifications), the EventBridge targets' DLQ (events the bus could not deliver) and the
#: state function's on-failure destination (Lambda invocation records, ``requestPayload``).
STACK_OUTPUT_INGEST_DLQ = "IngestDeadLetterQueueUrl"
STACK_OUTPUT_EVENTS_DLQ = "EventsDeadLetterQueueUrl"
STACK_OUTPUT_STATE_FAILURES = "StateFailureQueueUrl"
STACK_OUTPUT_INGEST_QUEUE = "IngestQueueUrl"
#: The function the ``events`` and ``state`` dead-letter queues' events are redriven to.
STACK_OUTPUT_STATE_FUNCTION = "StateFunctionName"
#: Default stack name of ``cdk deploy`` and of the CLI's ``--stack``.
DEFAULT_STACK_NAME = "meshdrop"

# Environment of the ``meshdrop`` CLI (overrides of what the stack outputs say).
CLI_ENV_STACK = "MESHDROP_STACK"
CLI_ENV_BUCKET = "MESHDROP_BUCKET"
CLI_ENV_TABLE = "MESHDROP_TABLE"

#: Error codes S3 answers with when the object, or the version asked for, is not there (HEAD
#: answers a bare "404"; GET names it). Ingest, the generator and the CLI all treat them alike.
S3_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NoSuchVersion", "NotFound"})
