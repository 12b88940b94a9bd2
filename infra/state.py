"""Job state: the DynamoDB job table and the function that applies job transitions to it."""

from __future__ import annotations

from typing import cast

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.common import parking_queue
from infra.lambda_code import python_function
from meshdrop_contract import jobs, wiring

STATE_HANDLER = "lambdas.state.handler.lambda_handler"
#: Lambda's own retries of a failed asynchronous (EventBridge) invocation before the event goes
#: to the failure queue, and how long an event may wait for them.
ASYNC_RETRY_ATTEMPTS = 2
ASYNC_MAX_EVENT_AGE = Duration.hours(6)


class StateConstruct(Construct):
    """On-demand table with the key, GSIs and TTL attribute of ``meshdrop_contract.jobs``.

    EventBridge invokes the function asynchronously; its rules' dead-letter queue catches only
    events EventBridge could not deliver. An event the function itself fails on goes, after
    Lambda's retries, to ``failure_queue`` (an on-failure destination): each message is the
    invocation record with the original event under ``requestPayload``, ready to replay.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        code: lambda_.Code,
        environment: dict[str, str],
        architecture: str,
        log_retention: logs.RetentionDays,
        table_removal_policy: RemovalPolicy,
        log_removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.table = self._table(table_removal_policy)
        self.function = python_function(
            self,
            "Function",
            code=code,
            handler=STATE_HANDLER,
            description="meshdrop state: apply job events to the job table, notify on completion",
            environment={**environment, wiring.ENV_TABLE_NAME: self.table.table_name},
            architecture=architecture,
            log_retention=log_retention,
            removal_policy=log_removal_policy,
            timeout=Duration.seconds(30),
            memory_mib=256,
        )
        self.failure_queue = parking_queue(self, "FailureQueue")
        self.function.configure_async_invoke(
            on_failure=cast(lambda_.IDestination, destinations.SqsDestination(self.failure_queue)),
            retry_attempts=ASYNC_RETRY_ATTEMPTS,
            max_event_age=ASYNC_MAX_EVENT_AGE,
        )

    def _table(self, removal_policy: RemovalPolicy) -> dynamodb.TableV2:
        def string(name: str) -> dynamodb.Attribute:
            return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING)

        return dynamodb.TableV2(
            self,
            "Jobs",
            partition_key=string(jobs.TABLE_PK),
            billing=dynamodb.Billing.on_demand(),
            encryption=dynamodb.TableEncryptionV2.aws_managed_key(),
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=jobs.TTL_ATTRIBUTE,
            global_secondary_indexes=[
                dynamodb.GlobalSecondaryIndexPropsV2(
                    index_name=jobs.GSI_BY_STATE,
                    partition_key=string(jobs.GSI_BY_STATE_PK),
                    sort_key=string(jobs.GSI_BY_STATE_SK),
                ),
                dynamodb.GlobalSecondaryIndexPropsV2(
                    index_name=jobs.GSI_BY_SOURCE,
                    partition_key=string(jobs.GSI_BY_SOURCE_PK),
                    sort_key=string(jobs.GSI_BY_SOURCE_SK),
                ),
            ],
            removal_policy=removal_policy,
            deletion_protection=removal_policy == RemovalPolicy.RETAIN,
        )
