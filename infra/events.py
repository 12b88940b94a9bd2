"""Events: the meshdrop event bus, its archive and schema registry, and the rules to the state
function (meshdrop job events, and AWS Batch job state changes of this stack's queue)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, cast

from aws_cdk import Duration
from aws_cdk import aws_batch as batch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_eventschemas as eventschemas
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.common import parking_queue
from meshdrop_contract import (
    DetailType,
    batch_job_state_pattern,
    meshdrop_job_events_pattern,
    schema,
)

#: EventBridge retries a failed delivery this often, for at most this long, then dead-letters it.
TARGET_RETRY_ATTEMPTS = 8
TARGET_MAX_EVENT_AGE = Duration.hours(2)


def event_pattern(pattern: Mapping[str, Any]) -> events.EventPattern:
    """The CDK form of a plain EventBridge pattern as ``meshdrop_contract.wiring`` returns it.

    Raises
    ------
    ValueError
        For a top-level field this helper does not translate (so nothing is silently dropped).
    """
    known = {"source", "detail-type", "detail", "account", "region", "resources"}
    unknown = set(pattern) - known
    if unknown:
        raise ValueError(f"unsupported event pattern fields: {sorted(unknown)}")
    return events.EventPattern(
        source=pattern.get("source"),
        detail_type=pattern.get("detail-type"),
        detail=pattern.get("detail"),
        account=pattern.get("account"),
        region=pattern.get("region"),
        resources=pattern.get("resources"),
    )


#: Batch's event for a job that blocks the head of its queue in RUNNABLE (detail.statusReason
#: says why, e.g. "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY - ...").
QUEUE_BLOCKED_DETAIL_TYPE = "Batch Job Queue Blocked"


def queue_blocked_pattern(job_queue_arn: str) -> dict[str, Any]:
    """EventBridge pattern of queue-blocked events of one job queue."""
    return {
        "source": ["aws.batch"],
        "detail-type": [QUEUE_BLOCKED_DETAIL_TYPE],
        "detail": {"jobQueue": [job_queue_arn]},
    }


def schema_name(detail_type: DetailType) -> str:
    return f"meshdrop@{detail_type.value.replace(' ', '')}"


class EventBusConstruct(Construct):
    """The custom bus meshdrop publishes on, an archive to replay from, and the event schemas."""

    def __init__(self, scope: Construct, construct_id: str, *, archive_days: int) -> None:
        super().__init__(scope, construct_id)
        self.bus = events.EventBus(self, "Bus", description="meshdrop job events")
        self.archive = self.bus.archive(
            "Archive",
            description="meshdrop job events, for replay after an outage or a consumer bug",
            event_pattern=event_pattern(meshdrop_job_events_pattern()),
            # 0 keeps events forever, which is what an explicit 0 in the settings asks for.
            retention=Duration.days(archive_days),
        )
        # Consumers generate code bindings from these; the contract's files are the source.
        self.registry = eventschemas.CfnRegistry(
            self, "SchemaRegistry", description="Schemas of the events meshdrop publishes"
        )
        self.schemas: dict[DetailType, eventschemas.CfnSchema] = {}
        for detail_type in DetailType:
            self.schemas[detail_type] = eventschemas.CfnSchema(
                self,
                f"Schema{detail_type.name.title()}",
                registry_name=self.registry.attr_registry_name,
                schema_name=schema_name(detail_type),
                type="JSONSchemaDraft4",
                content=json.dumps(schema(detail_type)),
                description=f"detail of source=meshdrop, detail-type={detail_type.value!r}",
            )


class EventRoutingConstruct(Construct):
    """Rules that feed the state function, each target with retries and a dead-letter queue.

    A third rule copies Batch ``FAILED`` changes of this queue to ``failed_jobs_queue``: its
    ``TriggeredRules`` metric drives the failed-jobs alarm, and the queue keeps the events for
    whoever investigates.

    Batch publishes only on the default bus, which meshdrop does not own: ``batch_archive``
    archives this queue's Batch events there (state changes and queue-blocked events), so a
    state-function outage can be replayed like one of the meshdrop bus. A fourth rule copies
    ``Batch Job Queue Blocked`` events of this queue (jobs stuck in RUNNABLE, with Batch's
    reason) to the same inspection queue; its metric drives the blocked-queue alarm.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bus: events.IEventBus,
        state_function: lambda_.IFunction,
        job_queue: batch.IJobQueue,
        archive_days: int,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queue = parking_queue(self, "TargetDeadLetterQueue")

        def to_state() -> targets.LambdaFunction:
            return targets.LambdaFunction(
                state_function,
                dead_letter_queue=self.dead_letter_queue,
                retry_attempts=TARGET_RETRY_ATTEMPTS,
                max_event_age=TARGET_MAX_EVENT_AGE,
            )

        self.job_events_rule = events.Rule(
            self,
            "JobEventsRule",
            description="meshdrop job events -> state function",
            event_bus=bus,
            event_pattern=event_pattern(meshdrop_job_events_pattern()),
            targets=[cast(events.IRuleTarget, to_state())],
        )
        batch_pattern = batch_job_state_pattern(job_queue.job_queue_arn)
        # Batch emits on the default bus only, so this rule cannot live on the meshdrop bus.
        self.batch_state_rule = events.Rule(
            self,
            "BatchJobStateRule",
            description="Batch job state changes of the meshdrop queue -> state function",
            event_pattern=event_pattern(batch_pattern),
            targets=[cast(events.IRuleTarget, to_state())],
        )
        self._batch_archive(batch_pattern, job_queue, archive_days)
        self._inspection_rules(batch_pattern, job_queue)

    def _inspection_rules(
        self, batch_pattern: Mapping[str, Any], job_queue: batch.IJobQueue
    ) -> None:
        """Failed and queue-blocked Batch events, copied to a queue a person reads."""
        self.failed_jobs_queue = parking_queue(self, "FailedJobsQueue")
        failed_pattern = {
            **batch_pattern,
            "detail": {**batch_pattern["detail"], "status": ["FAILED"]},
        }
        self.batch_failed_rule = events.Rule(
            self,
            "BatchJobFailedRule",
            description="Failed Batch jobs of the meshdrop queue, for the alarm and inspection",
            event_pattern=event_pattern(failed_pattern),
            targets=[self._to_inspection_queue()],
        )
        self.queue_blocked_rule = events.Rule(
            self,
            "BatchQueueBlockedRule",
            description="Jobs of the meshdrop queue blocked in RUNNABLE, for the alarm",
            event_pattern=event_pattern(queue_blocked_pattern(job_queue.job_queue_arn)),
            targets=[self._to_inspection_queue()],
        )

    def _to_inspection_queue(self) -> events.IRuleTarget:
        return cast(
            events.IRuleTarget,
            targets.SqsQueue(
                self.failed_jobs_queue,
                dead_letter_queue=self.dead_letter_queue,
                retry_attempts=TARGET_RETRY_ATTEMPTS,
                max_event_age=TARGET_MAX_EVENT_AGE,
            ),
        )

    def _batch_archive(
        self, batch_pattern: Mapping[str, Any], job_queue: batch.IJobQueue, archive_days: int
    ) -> None:
        default_bus = events.EventBus.from_event_bus_name(self, "DefaultBus", "default")
        self.batch_archive = events.Archive(
            self,
            "BatchArchive",
            source_event_bus=default_bus,
            description="Batch events of the meshdrop queue, for replay to the state function",
            event_pattern=event_pattern(
                {
                    "source": batch_pattern["source"],
                    "detail-type": [*batch_pattern["detail-type"], QUEUE_BLOCKED_DETAIL_TYPE],
                    "detail": {"jobQueue": [job_queue.job_queue_arn]},
                }
            ),
            retention=Duration.days(archive_days),
        )
