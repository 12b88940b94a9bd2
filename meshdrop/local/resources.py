"""The stack's resources, created on the embedded AWS (or any moto endpoint).

Mirrors the CDK stack closely enough that the real Lambda handlers and the real generator
container run unchanged: a versioned bucket whose ``images/`` uploads notify an SQS queue
(with a dead-letter queue), the job table with its GSIs, a custom event bus, rules using the
contract's patterns, an SNS topic and a Batch compute environment, queue and job definition.

Two deliberate differences: rules target SQS queues (moto's ``put_events`` fails when a rule
targets SNS or Lambda), and the SNS topic has an SQS subscription so tests can count the
notifications a person would have received.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import boto3

from meshdrop_contract import SOURCE_PREFIX, ExitCode, batch_job_state_pattern
from meshdrop_contract.jobs import (
    ENV_EVENT_BUS,
    GSI_BY_SOURCE,
    GSI_BY_SOURCE_PK,
    GSI_BY_SOURCE_SK,
    GSI_BY_STATE,
    GSI_BY_STATE_PK,
    GSI_BY_STATE_SK,
    TABLE_PK,
    TTL_ATTRIBUTE,
)
from meshdrop_contract.wiring import (
    ENV_BUCKET_NAME,
    ENV_EVENT_BUS_NAME,
    ENV_JOB_DEFINITION,
    ENV_JOB_QUEUE,
    ENV_JOB_TTL_DAYS,
    ENV_TABLE_NAME,
    ENV_TOPIC_ARN,
    meshdrop_job_events_pattern,
)

#: Seconds a pumped message stays invisible before redelivery after a failed handler call.
#: Small, so that a batch item failure is retried within the same local run.
INGEST_VISIBILITY_TIMEOUT_S = 2
#: Deliveries before a poison message moves to the dead-letter queue (the stack uses 5).
INGEST_MAX_RECEIVE_COUNT = 5
#: Batch retry strategy: like the stack, retry only transient exits, up to 3 attempts.
JOB_ATTEMPTS = 3
JOB_RETRY_STRATEGY: dict[str, Any] = {
    "attempts": JOB_ATTEMPTS,
    "evaluateOnExit": [
        # A superseded job must never run again (it would overwrite a newer asset).
        {"onExitCode": str(ExitCode.SUPERSEDED), "action": "EXIT"},
        {"onExitCode": str(ExitCode.TRANSIENT), "action": "RETRY"},
        {"onExitCode": "*", "action": "EXIT"},
    ],
}
#: Batch attempt timeout; CPU generation on a laptop is slower than a GPU.
JOB_TIMEOUT_S = 900


@dataclass(frozen=True)
class ResourceNames:
    """Physical names of the local resources; unique per ``prefix``."""

    prefix: str = "meshdrop-local"

    @property
    def bucket(self) -> str:
        return f"{self.prefix}-bucket"

    @property
    def table(self) -> str:
        return f"{self.prefix}-jobs"

    @property
    def event_bus(self) -> str:
        return f"{self.prefix}-bus"

    @property
    def ingest_queue(self) -> str:
        return f"{self.prefix}-ingest"

    @property
    def ingest_dlq(self) -> str:
        return f"{self.prefix}-ingest-dlq"

    @property
    def state_queue(self) -> str:
        return f"{self.prefix}-state-events"

    @property
    def topic(self) -> str:
        return f"{self.prefix}-notifications"

    @property
    def notification_queue(self) -> str:
        return f"{self.prefix}-notifications-inbox"

    @property
    def compute_environment(self) -> str:
        return f"{self.prefix}-gpu"

    @property
    def job_queue(self) -> str:
        return f"{self.prefix}-job-queue"

    @property
    def job_definition(self) -> str:
        return f"{self.prefix}-generator"


@dataclass
class LocalResources:
    """Identifiers of everything :func:`create_resources` made."""

    names: ResourceNames
    region: str
    bucket: str
    table: str
    event_bus: str
    event_bus_arn: str
    ingest_queue_url: str
    ingest_queue_arn: str
    ingest_dlq_url: str
    state_queue_url: str
    state_queue_arn: str
    topic_arn: str
    notification_queue_url: str
    job_queue_arn: str
    job_definition_arn: str
    rules: list[str] = field(default_factory=list)

    def lambda_env(self, job_ttl_days: int = 7) -> dict[str, str]:
        """The environment both Lambda functions get from the stack."""
        return {
            ENV_TABLE_NAME: self.table,
            ENV_EVENT_BUS_NAME: self.event_bus,
            ENV_JOB_QUEUE: self.job_queue_arn,
            ENV_JOB_DEFINITION: self.job_definition_arn,
            ENV_TOPIC_ARN: self.topic_arn,
            ENV_BUCKET_NAME: self.bucket,
            ENV_JOB_TTL_DAYS: str(job_ttl_days),
            "POWERTOOLS_SERVICE_NAME": "meshdrop",
            "POWERTOOLS_METRICS_NAMESPACE": "meshdrop",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
        }


def _queue(sqs: Any, name: str, attributes: dict[str, str]) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return url, arn


def _allow_service(queue_arn: str, service: str, source_arn: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": service},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": source_arn}},
                }
            ],
        }
    )


def create_job_table(ddb: Any, name: str) -> None:
    """The job table as the stack defines it (keys, both GSIs, TTL), with a DynamoDB client."""
    indexes = (
        (GSI_BY_STATE, GSI_BY_STATE_PK, GSI_BY_STATE_SK),
        (GSI_BY_SOURCE, GSI_BY_SOURCE_PK, GSI_BY_SOURCE_SK),
    )
    attributes = [TABLE_PK, *(key for _, pk, sk in indexes for key in (pk, sk))]
    ddb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in attributes],
        KeySchema=[{"AttributeName": TABLE_PK, "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": index,
                "KeySchema": [
                    {"AttributeName": pk, "KeyType": "HASH"},
                    {"AttributeName": sk, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
            for index, pk, sk in indexes
        ],
    )
    ddb.update_time_to_live(
        TableName=name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
    )


@dataclass(frozen=True)
class _Queues:
    ingest_url: str
    ingest_arn: str
    dlq_url: str
    state_url: str
    state_arn: str
    notify_url: str
    notify_arn: str


def _create_queues(sqs: Any, names: ResourceNames) -> _Queues:
    # Queues first: the bucket notification and the rules need their ARNs.
    dlq_url, dlq_arn = _queue(sqs, names.ingest_dlq, {"MessageRetentionPeriod": "1209600"})
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": INGEST_MAX_RECEIVE_COUNT}
    ingest_url, ingest_arn = _queue(
        sqs,
        names.ingest_queue,
        {
            "VisibilityTimeout": str(INGEST_VISIBILITY_TIMEOUT_S),
            "RedrivePolicy": json.dumps(redrive),
        },
    )
    state_url, state_arn = _queue(sqs, names.state_queue, {"VisibilityTimeout": "2"})
    notify_url, notify_arn = _queue(sqs, names.notification_queue, {})
    sqs.set_queue_attributes(
        QueueUrl=state_url,
        Attributes={"Policy": _allow_service(state_arn, "events.amazonaws.com", "*")},
    )
    return _Queues(ingest_url, ingest_arn, dlq_url, state_url, state_arn, notify_url, notify_arn)


def _create_bucket(s3: Any, sqs: Any, names: ResourceNames, queues: _Queues) -> None:
    s3.create_bucket(Bucket=names.bucket)
    s3.put_bucket_versioning(Bucket=names.bucket, VersioningConfiguration={"Status": "Enabled"})
    bucket_arn = f"arn:aws:s3:::{names.bucket}"
    sqs.set_queue_attributes(
        QueueUrl=queues.ingest_url,
        Attributes={"Policy": _allow_service(queues.ingest_arn, "s3.amazonaws.com", bucket_arn)},
    )
    # As deployed: uploads under images/ start work, removals mark what the photo made; assets
    # written under 3d_assets/ must never loop.
    prefix_filter = {"Key": {"FilterRules": [{"Name": "prefix", "Value": SOURCE_PREFIX}]}}
    s3.put_bucket_notification_configuration(
        Bucket=names.bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": queues.ingest_arn,
                    "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
                    "Filter": prefix_filter,
                }
            ]
        },
    )


def _create_topic(sns: Any, names: ResourceNames, queues: _Queues) -> str:
    topic_arn: str = sns.create_topic(Name=names.topic)["TopicArn"]
    sns.subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=queues.notify_arn,
        Attributes={"RawMessageDelivery": "true"},
    )
    return topic_arn


def _create_batch_service_role(iam: Any, names: ResourceNames) -> str:
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "batch.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role = iam.create_role(
        RoleName=f"{names.prefix}-batch-service", AssumeRolePolicyDocument=json.dumps(trust)
    )
    return str(role["Role"]["Arn"])


def _create_batch(batch: Any, iam: Any, names: ResourceNames) -> tuple[str, str]:
    """The compute environment, job queue and job definition; (queue ARN, definition ARN)."""
    ce_arn = batch.create_compute_environment(
        computeEnvironmentName=names.compute_environment,
        type="UNMANAGED",
        state="ENABLED",
        serviceRole=_create_batch_service_role(iam, names),
    )["computeEnvironmentArn"]
    job_queue_arn = batch.create_job_queue(
        jobQueueName=names.job_queue,
        state="ENABLED",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce_arn}],
    )["jobQueueArn"]
    job_definition_arn = batch.register_job_definition(
        jobDefinitionName=names.job_definition,
        type="container",
        containerProperties={
            "image": "meshdrop-generator:local",
            "command": ["python", "-m", "gpu_container.entrypoint"],
            "resourceRequirements": [
                {"type": "VCPU", "value": "4"},
                {"type": "MEMORY", "value": "15000"},
            ],
            "environment": [{"name": ENV_EVENT_BUS, "value": names.event_bus}],
        },
        retryStrategy=JOB_RETRY_STRATEGY,
        timeout={"attemptDurationSeconds": JOB_TIMEOUT_S},
    )["jobDefinitionArn"]
    return job_queue_arn, job_definition_arn


def _create_rules(
    events: Any, names: ResourceNames, state_queue_arn: str, job_queue_arn: str
) -> list[str]:
    """The state function's two rules: meshdrop's bus, and Batch on the default bus."""
    rules = [
        (f"{names.prefix}-job-events", names.event_bus, meshdrop_job_events_pattern()),
        (f"{names.prefix}-batch-state", "default", batch_job_state_pattern(job_queue_arn)),
    ]
    for name, bus, pattern in rules:
        events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(pattern))
        events.put_targets(
            Rule=name, EventBusName=bus, Targets=[{"Id": "state", "Arn": state_queue_arn}]
        )
    return [name for name, _, _ in rules]


def create_resources(
    names: ResourceNames | None = None,
    *,
    session: boto3.Session | None = None,
) -> LocalResources:
    """Create the stack's resources on the endpoint ``session`` (default: boto3's) points to.

    Parameters
    ----------
    names
        Physical names; the default prefix is ``meshdrop-local``.
    session
        boto3 session; ``AWS_ENDPOINT_URL`` in its environment selects the moto server.
    """
    names = names or ResourceNames()
    session = session or boto3.Session()
    region = session.region_name or "us-east-1"

    def client(service: str) -> Any:
        return session.client(service, region_name=region)  # type: ignore[call-overload]

    sqs = client("sqs")
    queues = _create_queues(sqs, names)
    _create_bucket(client("s3"), sqs, names, queues)
    create_job_table(client("dynamodb"), names.table)
    events = client("events")
    bus_arn = events.create_event_bus(Name=names.event_bus)["EventBusArn"]
    topic_arn = _create_topic(client("sns"), names, queues)
    job_queue_arn, job_definition_arn = _create_batch(client("batch"), client("iam"), names)
    rules = _create_rules(events, names, queues.state_arn, job_queue_arn)
    return LocalResources(
        names=names,
        region=region,
        bucket=names.bucket,
        table=names.table,
        event_bus=names.event_bus,
        event_bus_arn=bus_arn,
        ingest_queue_url=queues.ingest_url,
        ingest_queue_arn=queues.ingest_arn,
        ingest_dlq_url=queues.dlq_url,
        state_queue_url=queues.state_url,
        state_queue_arn=queues.state_arn,
        topic_arn=topic_arn,
        notification_queue_url=queues.notify_url,
        job_queue_arn=job_queue_arn,
        job_definition_arn=job_definition_arn,
        rules=rules,
    )
