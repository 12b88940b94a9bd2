"""Reconciler: a scheduled function that repairs jobs whose events were lost.

EventBridge Scheduler invokes ``lambdas/reconcile`` every ``reconcile_every_minutes``. The
function needs only: Query on the job table's by_state index, GetItem/UpdateItem on job items,
ListJobs/DescribeJobs/SubmitJob on Batch, PutEvents on the meshdrop bus and Publish on the
notification topic (granted by the stack, which owns those resources).
"""

from __future__ import annotations

from typing import cast

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as targets
from constructs import Construct

from infra.common import parking_queue
from infra.lambda_code import python_function

RECONCILE_HANDLER = "lambdas.reconcile.handler.lambda_handler"
RECONCILE_TIMEOUT = Duration.minutes(2)


class ReconcileConstruct(Construct):
    """``function`` plus the ``schedule`` that runs it; one pass at a time."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        code: lambda_.Code,
        environment: dict[str, str],
        architecture: str,
        every: Duration,
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = python_function(
            self,
            "Function",
            code=code,
            handler=RECONCILE_HANDLER,
            description="meshdrop reconcile: repair jobs whose Batch or meshdrop events were lost",
            environment=environment,
            architecture=architecture,
            log_retention=log_retention,
            removal_policy=removal_policy,
            timeout=RECONCILE_TIMEOUT,
            memory_mib=256,
            # One pass at a time: two would only race for the same claims.
            reserved_concurrency=1,
        )
        # A schedule invocation that keeps failing is parked here (the next run retries the
        # jobs anyway; this shows that the function itself is broken).
        self.dead_letter_queue = parking_queue(self, "DeadLetterQueue")
        # The schedule's own role (rather than the stack-wide one the target would create), so
        # its one permission, invoking this function, is easy to find and to reason about.
        self.schedule_role = iam.Role(
            self,
            "ScheduleRole",
            assumed_by=cast(iam.IPrincipal, iam.ServicePrincipal("scheduler.amazonaws.com")),
            description="meshdrop reconcile schedule: invokes the reconcile function",
        )
        target = targets.LambdaInvoke(
            cast(lambda_.IFunction, self.function),
            role=cast(iam.IRole, self.schedule_role),
            dead_letter_queue=self.dead_letter_queue,
            retry_attempts=1,
            max_event_age=every,
        )
        self.schedule = scheduler.Schedule(
            self,
            "Schedule",
            schedule=scheduler.ScheduleExpression.rate(every),
            target=cast(scheduler.IScheduleTarget, target),
            description="meshdrop: reconcile stuck jobs with Batch",
            time_window=scheduler.TimeWindow.off(),
        )
