"""The meshdrop stack: composes the constructs, wires them together and grants least privilege."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Acknowledgment, CfnOutput, Duration, Stack, Token, Validations
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.common import log_retention, removal_policy
from infra.compute import REPO_ROOT, ComputeConstruct
from infra.events import EventBusConstruct, EventRoutingConstruct
from infra.ingest import IngestConstruct
from infra.lambda_code import lambda_code
from infra.monitoring import MonitoringConstruct
from infra.notifications import NotificationsConstruct
from infra.settings import MeshdropSettings
from infra.state import StateConstruct
from infra.storage import StorageConstruct
from meshdrop_contract import ASSET_PREFIX, SOURCE_PREFIX, jobs, wiring

#: Where the image keeps baked weights (the Dockerfile puts them there).
BAKED_WEIGHTS_DIR = "/opt/meshdrop/weights"
#: Weights copied into the image from the build context when no WEIGHTS_URL is given.
LOCAL_WEIGHTS_DIR = REPO_ROOT / "gpu_container" / "weights"
SERVICE_NAME = "meshdrop"
#: What the functions do with job items (conditional writes are PutItem/UpdateItem).
TABLE_ACTIONS = [
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DescribeTable",
]


def weights_location(settings: MeshdropSettings, local_weights: Path = LOCAL_WEIGHTS_DIR) -> str:
    """What the job's ``MESHDROP_WEIGHTS`` says; empty means the weight-free backend.

    The entrypoint refuses a local path that does not exist, so the baked directory is named
    only when the image build will really put weights there.
    """
    if settings.weights_s3_uri:
        return settings.weights_s3_uri
    if settings.weights_url or (local_weights.is_dir() and any(local_weights.iterdir())):
        return BAKED_WEIGHTS_DIR
    return ""


class MeshdropStack(Stack):
    """S3 -> SQS -> ingest -> Batch (GPU) -> EventBridge -> state -> DynamoDB + SNS."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: MeshdropSettings) -> None:
        super().__init__(
            scope,
            construct_id,
            env=settings.environment,
            description="meshdrop: drop a photo into S3, get a 3D asset back",
        )
        self.settings = settings
        retention = log_retention(settings.log_retention_days)
        data_policy = removal_policy(settings.removal_policy)

        self.storage = StorageConstruct(
            self,
            "Storage",
            noncurrent_version_days=settings.noncurrent_version_days,
            log_retention_days=settings.log_retention_days,
            removal_policy=data_policy,
        )
        self.bus = EventBusConstruct(self, "Events", archive_days=settings.event_archive_days)
        self.notifications = NotificationsConstruct(
            self, "Notifications", email=settings.notification_email
        )

        weights = weights_location(settings)
        weights_env = {jobs.ENV_WEIGHTS: weights} if weights else {}
        self.compute = ComputeConstruct(
            self,
            "Compute",
            instance_types=settings.gpu_instance_types,
            max_vcpus=settings.max_vcpus,
            spot=settings.spot,
            job_vcpus=settings.job_vcpus,
            job_memory_mib=settings.job_memory_mib,
            job_timeout=Duration.minutes(settings.job_timeout_minutes),
            job_attempts=settings.job_attempts,
            runnable_timeout=Duration.minutes(settings.runnable_timeout_minutes),
            environment={
                jobs.ENV_EVENT_BUS: self.bus.bus.event_bus_name,
                "AWS_DEFAULT_REGION": self.region,
                **weights_env,
            },
            build_args={
                "WEIGHTS_URL": settings.weights_url or "",
                "WEIGHTS_SHA256": settings.weights_sha256 or "",
            },
            log_retention=retention,
            removal_policy=data_policy,
        )

        code = lambda_code(settings.lambda_architecture)
        powertools = {
            "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
            "POWERTOOLS_METRICS_NAMESPACE": SERVICE_NAME,
        }
        self.state = StateConstruct(
            self,
            "State",
            code=code,
            environment={
                wiring.ENV_TOPIC_ARN: self.notifications.topic.topic_arn,
                wiring.ENV_JOB_TTL_DAYS: str(settings.job_ttl_days),
                **powertools,
            },
            architecture=settings.lambda_architecture,
            log_retention=retention,
            table_removal_policy=data_policy,
            log_removal_policy=data_policy,
        )
        table = self.state.table

        self.ingest = IngestConstruct(
            self,
            "Ingest",
            code=code,
            environment={
                wiring.ENV_TABLE_NAME: table.table_name,
                wiring.ENV_EVENT_BUS_NAME: self.bus.bus.event_bus_name,
                wiring.ENV_JOB_QUEUE: self.compute.job_queue.job_queue_arn,
                wiring.ENV_JOB_DEFINITION: self.compute.job_definition.job_definition_arn,
                wiring.ENV_MAX_IMAGE_BYTES: str(settings.max_image_bytes),
                wiring.ENV_MAX_IMAGE_PIXELS: str(settings.max_image_pixels),
                wiring.ENV_JOB_TTL_DAYS: str(settings.job_ttl_days),
                **powertools,
            },
            architecture=settings.lambda_architecture,
            reserved_concurrency=settings.ingest_reserved_concurrency,
            batch_size=settings.ingest_batch_size,
            log_retention=retention,
            removal_policy=data_policy,
        )
        self.storage.notify_uploads(self.ingest.queue)

        self.routing = EventRoutingConstruct(
            self,
            "Routing",
            bus=self.bus.bus,
            state_function=self.state.function,
            job_queue=self.compute.job_queue,
        )
        self.monitoring = MonitoringConstruct(
            self,
            "Monitoring",
            ingest_queue=self.ingest.queue,
            dead_letter_queues=[
                self.ingest.dead_letter_queue,
                self.routing.dead_letter_queue,
            ],
            functions=[self.ingest.function, self.state.function],
            failed_jobs_rule=self.routing.batch_failed_rule,
            oldest_message_threshold=Duration.minutes(settings.oldest_message_alarm_minutes),
            email=settings.alarm_email,
            removal_policy=data_policy,
        )

        self._grant()
        self._outputs()
        self._acknowledge()

    def _grant(self) -> None:
        bucket = self.storage.bucket
        images = bucket.arn_for_objects(f"{SOURCE_PREFIX}*")
        assets = bucket.arn_for_objects(f"{ASSET_PREFIX}*")
        read = ["s3:GetObject", "s3:GetObjectVersion"]

        job_role = self.compute.job_role
        job_role.add_to_principal_policy(iam.PolicyStatement(actions=read, resources=[images]))
        job_role.add_to_principal_policy(
            iam.PolicyStatement(actions=["s3:PutObject"], resources=[assets])
        )
        if self.settings.weights_s3_uri:
            weights_bucket, _, prefix = self.settings.weights_s3_uri[5:].partition("/")
            job_role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["s3:GetObject"],
                    resources=[f"arn:{self.partition}:s3:::{weights_bucket}/{prefix}*"],
                )
            )
            job_role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["s3:ListBucket"],
                    resources=[f"arn:{self.partition}:s3:::{weights_bucket}"],
                    conditions={"StringLike": {"s3:prefix": [f"{prefix}*"]}},
                )
            )
        self.bus.bus.grant_put_events_to(job_role)

        ingest = self.ingest.function
        ingest.add_to_role_policy(iam.PolicyStatement(actions=read, resources=[images, assets]))
        # Reusing an identical earlier asset is a server-side copy within 3d_assets/.
        ingest.add_to_role_policy(iam.PolicyStatement(actions=["s3:PutObject"], resources=[assets]))
        # Without ListBucket, S3 answers 403 instead of 404 for a missing key, and the
        # "does this asset exist yet?" check (HeadObject) could not tell absent from forbidden.
        # HeadObject carries no prefix, so a prefix condition would deny it: the bucket only.
        ingest.add_to_role_policy(
            iam.PolicyStatement(actions=["s3:ListBucket"], resources=[bucket.bucket_arn])
        )
        ingest.add_to_role_policy(self._table_statement())
        self.compute.job_definition.grant_submit_job(ingest, self.compute.job_queue)
        # SubmitJob with tags (job id, preset) also needs TagResource on the job it creates.
        ingest.add_to_role_policy(
            iam.PolicyStatement(
                actions=["batch:TagResource"],
                resources=[self.batch_jobs_arn],
                conditions={"StringEquals": {"batch:CreateAction": "SubmitJob"}},
            )
        )
        self.bus.bus.grant_put_events_to(ingest)

        state = self.state.function
        state.add_to_role_policy(self._table_statement())
        # The topic uses the AWS-managed SNS key, whose key policy already lets account
        # principals use it through SNS: sns:Publish is all the function needs.
        state.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sns:Publish"], resources=[self.notifications.topic.topic_arn]
            )
        )

    @property
    def batch_jobs_arn(self) -> str:
        """ARN pattern of Batch jobs: their ids are only known once submitted."""
        return self.format_arn(service="batch", resource="job", resource_name="*")

    def _table_statement(self) -> iam.PolicyStatement:
        """Item reads and writes on the job table and its two indexes, named one by one."""
        table_arn = self.state.table.table_arn
        return iam.PolicyStatement(
            actions=TABLE_ACTIONS,
            resources=[
                table_arn,
                f"{table_arn}/index/{jobs.GSI_BY_STATE}",
                f"{table_arn}/index/{jobs.GSI_BY_SOURCE}",
            ],
        )

    def _outputs(self) -> None:
        outputs = {
            wiring.STACK_OUTPUT_BUCKET: (
                self.storage.bucket.bucket_name,
                f"Upload photos under {SOURCE_PREFIX}",
            ),
            wiring.STACK_OUTPUT_EVENT_BUS: (self.bus.bus.event_bus_name, "meshdrop job events"),
            wiring.STACK_OUTPUT_TOPIC: (
                self.notifications.topic.topic_arn,
                "One message per finished job",
            ),
            wiring.STACK_OUTPUT_TABLE: (self.state.table.table_name, "Job records"),
            "JobQueueName": (self.compute.job_queue.job_queue_name, "Batch job queue"),
            "AlarmTopicArn": (self.monitoring.alarm_topic.topic_arn, "Alarms"),
            "DashboardName": (self.monitoring.dashboard.dashboard_name, "CloudWatch dashboard"),
        }
        for name, (value, description) in outputs.items():
            CfnOutput(self, name, value=value, description=description)

    def _acknowledge(self) -> None:
        """cdk-nag findings that are deliberate, each with the reason it is acceptable."""

        def ack(scope: Construct, rule: str, reason: str) -> None:
            Validations.of(scope).acknowledge(Acknowledgment(id=rule, reason=reason))

        bucket_arn = self.resolve(self.storage.bucket.bucket_arn)["Fn::GetAtt"][0]
        for prefix in (SOURCE_PREFIX, ASSET_PREFIX):
            for scope in (self.compute.job_role, self.ingest.function):
                ack(
                    scope,
                    f"AwsSolutions-IAM5[Resource::<{bucket_arn}.Arn>/{prefix}*]",
                    f"Object access is scoped to the {prefix} prefix of the meshdrop bucket; "
                    "the objects' names are not known in advance.",
                )
        if self.settings.weights_s3_uri:
            partition = self.partition
            if Token.is_unresolved(partition):
                partition = "<AWS::Partition>"  # how cdk-nag renders the pseudo parameter
            weights = self.settings.weights_s3_uri.removeprefix("s3://")
            ack(
                self.compute.job_role,
                f"AwsSolutions-IAM5[Resource::arn:{partition}:s3:::{weights}*]",
                "Weights are read from the configured s3:// prefix only.",
            )
        ack(
            self.ingest.function,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:batch:<AWS::Region>:"
            "<AWS::AccountId>:job/*]"
            if Token.is_unresolved(self.region)
            else f"AwsSolutions-IAM5[Resource::{self.batch_jobs_arn}]",
            "Tagging applies to the jobs this function submits (batch:CreateAction=SubmitJob); "
            "their ids do not exist before submission.",
        )
        for function in (self.ingest.function, self.state.function):
            ack(
                function,
                "AwsSolutions-IAM5[Resource::*]",
                "X-Ray tracing: xray:PutTraceSegments/PutTelemetryRecords support no resource.",
            )
            ack(
                function,
                f"AwsSolutions-IAM4[Policy::{_MANAGED}/service-role/AWSLambdaBasicExecutionRole]",
                "Lets the function write its own logs, nothing else.",
            )
            ack(
                function,
                "AwsSolutions-L1",
                "Python 3.12 on purpose: the handlers and the container share one Python version.",
            )
        ack(
            self.compute.container,
            "AwsSolutions-IAM5[Resource::*]",
            "ecr:GetAuthorizationToken supports no resource; the pull is scoped to the image repo.",
        )
        for environment in self.compute.compute_environments:
            ack(
                environment,
                f"AwsSolutions-IAM4[Policy::{_MANAGED}/service-role/"
                "AmazonEC2ContainerServiceforEC2Role]",
                "The policy AWS Batch documents for the ECS agent on its instances.",
            )
        notifications_handler = next(
            child
            for child in self.node.children
            if child.node.id.startswith("BucketNotificationsHandler")
        )
        ack(
            notifications_handler,
            f"AwsSolutions-IAM4[Policy::{_MANAGED}/service-role/AWSLambdaBasicExecutionRole]",
            "CDK's bucket-notification custom resource handler only writes its own logs.",
        )
        ack(
            self.routing.dead_letter_queue,
            "AwsSolutions-SQS3",
            "This queue is the dead-letter queue of the EventBridge targets.",
        )
        ack(
            self.routing.failed_jobs_queue,
            "AwsSolutions-SQS3",
            "Holds copies of failed-job events for inspection; EventBridge dead-letters "
            "undeliverable ones to the target dead-letter queue.",
        )


_MANAGED = "arn:<AWS::Partition>:iam::aws:policy"
