"""Ingest: the upload queue (with its dead-letter queue) and the function that drains it."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.common import parking_queue
from infra.lambda_code import python_function
from meshdrop_contract import wiring

INGEST_HANDLER = "lambdas.ingest.handler.lambda_handler"
INGEST_TIMEOUT = Duration.seconds(60)
#: AWS recommends six times the function timeout so a slow batch is not redelivered while it
#: is still being processed.
VISIBILITY_TIMEOUT = Duration.seconds(INGEST_TIMEOUT.to_seconds() * 6)
#: Deliveries of one S3 event before it is parked in the dead-letter queue.
MAX_RECEIVE_COUNT = 5


class IngestConstruct(Construct):
    """S3 events arrive on ``queue``; ``function`` records jobs and submits them to Batch.

    The function reports partial batch failures, so one bad message is retried alone and,
    after ``MAX_RECEIVE_COUNT`` deliveries, lands in ``dead_letter_queue`` for inspection.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        code: lambda_.Code,
        environment: dict[str, str],
        architecture: str,
        reserved_concurrency: int,
        batch_size: int,
        pack_size: int = 1,
        pack_wait_seconds: int = 1,
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queue, self.queue = self._queues()
        self.function = python_function(
            self,
            "Function",
            code=code,
            handler=INGEST_HANDLER,
            description="meshdrop ingest: validate uploads, record jobs, submit them to Batch",
            # The submit lease must outlive one invocation and expire before the next delivery.
            environment={
                **environment,
                wiring.ENV_INGEST_TIMEOUT_SECONDS: str(int(INGEST_TIMEOUT.to_seconds())),
                wiring.ENV_INGEST_VISIBILITY_SECONDS: str(int(VISIBILITY_TIMEOUT.to_seconds())),
            },
            architecture=architecture,
            log_retention=log_retention,
            removal_policy=removal_policy,
            timeout=INGEST_TIMEOUT,
            # Decoding image headers for the pixel limit needs a little headroom.
            memory_mib=1024,
            reserved_concurrency=reserved_concurrency,
        )
        self.function.add_event_source(
            sources.SqsEventSource(
                self.queue,
                # Packs: a batch holds a whole pack, and waits at most pack_wait_seconds.
                batch_size=max(batch_size, pack_size),
                max_batching_window=Duration.seconds(pack_wait_seconds if pack_size > 1 else 1),
                report_batch_item_failures=True,
                # Pollers never start more invocations than the function may run, so a burst
                # waits on the queue instead of being throttled into the dead-letter queue.
                max_concurrency=reserved_concurrency,
            )
        )

    def _queues(self) -> tuple[sqs.Queue, sqs.Queue]:
        """The dead-letter queue and the upload queue that redrives to it."""
        dead_letter_queue = parking_queue(self, "DeadLetterQueue")
        queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=VISIBILITY_TIMEOUT,
            retention_period=Duration.days(4),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=dead_letter_queue, max_receive_count=MAX_RECEIVE_COUNT
            ),
        )
        return dead_letter_queue, queue
