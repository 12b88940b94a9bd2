"""The meshdrop stack: composes the constructs, wires them together and grants least privilege."""

from __future__ import annotations

from typing import cast

from aws_cdk import Annotations, CfnOutput, Duration, Stack, Token
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.acknowledgements import acknowledge
from infra.common import log_retention, removal_policy
from infra.compute import ComputeConstruct, PinnedAmi
from infra.events import EventBusConstruct, EventRoutingConstruct
from infra.image import BAKED_WEIGHTS_DIR, build_args, local_image
from infra.image_codebuild import CodeBuildImage
from infra.ingest import IngestConstruct
from infra.lambda_code import lambda_code
from infra.monitoring import MonitoringConstruct
from infra.notifications import NotificationsConstruct
from infra.reconcile import ReconcileConstruct
from infra.settings import CONTEXT_PREFIX, MeshdropSettings
from infra.state import StateConstruct
from infra.storage import StorageConstruct
from meshdrop_contract import ASSET_PREFIX, SOURCE_PREFIX, jobs, wiring

SERVICE_NAME = "meshdrop"
#: What the handlers do with job items: lambdas/common/jobstore.py calls get_item, put_item and
#: update_item (conditional writes included); nothing queries, scans or deletes.
TABLE_ACTIONS = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"]
#: Job environment naming the sha256 of the S3 weights' SHA256SUMS manifest.
ENV_WEIGHTS_SHA256 = "MESHDROP_WEIGHTS_SHA256"


def weights_location(settings: MeshdropSettings) -> str:
    """What the job's ``MESHDROP_WEIGHTS`` says; empty means the weight-free backend."""
    mode = settings.weights_mode
    if mode == "s3":
        return settings.weights_s3_uri or ""
    return BAKED_WEIGHTS_DIR if mode == "baked" else ""


class MeshdropStack(Stack):
    """S3 -> SQS -> ingest -> Batch (GPU) -> EventBridge -> state -> DynamoDB + SNS."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: MeshdropSettings,
        env: dict[str, str] | None = None,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            env=env if env is not None else settings.environment(),
            description="meshdrop: drop a photo into S3, get a 3D asset back",
        )
        self.settings = settings
        self._foundation()
        self._compute()
        self._functions()
        self._routing_and_monitoring()
        self._grant()
        self._outputs()
        acknowledge(self)
        self._warn()

    def _foundation(self) -> None:
        s = self.settings
        self.retention = log_retention(s.log_retention_days)
        self.data_policy = removal_policy(s.removal_policy)
        self.storage = StorageConstruct(
            self,
            "Storage",
            noncurrent_version_days=s.noncurrent_version_days,
            log_retention_days=s.log_retention_days,
            removal_policy=self.data_policy,
        )
        self.bus = EventBusConstruct(self, "Events", archive_days=s.event_archive_days)
        self.notifications = NotificationsConstruct(
            self, "Notifications", email=s.notification_email
        )

    def _compute(self) -> None:
        s = self.settings
        weights = weights_location(s)
        weights_env = {jobs.ENV_WEIGHTS: weights} if weights else {}
        if s.weights_mode == "s3" and s.weights_s3_sha256:
            weights_env[ENV_WEIGHTS_SHA256] = s.weights_s3_sha256
        self.compute = ComputeConstruct(
            self,
            "Compute",
            gpu=s.compute == "gpu",
            instance_types=s.instance_types,
            machine_image=self._machine_image(),
            root_volume_gib=s.root_volume_gib,
            max_vcpus=s.max_vcpus,
            spot=s.spot,
            job_vcpus=s.job_vcpus,
            job_memory_mib=s.job_memory_mib,
            job_timeout=Duration.minutes(s.job_timeout_minutes),
            job_attempts=s.job_attempts,
            runnable_timeout=Duration.minutes(s.runnable_timeout_minutes),
            image=self._image(),
            environment={
                jobs.ENV_EVENT_BUS: self.bus.bus.event_bus_name,
                "AWS_DEFAULT_REGION": self.region,
                **weights_env,
            },
            log_retention=self.retention,
            removal_policy=self.data_policy,
        )
        if self.image_build is not None:
            # No job definition before its image exists.
            self.compute.job_definition.node.add_dependency(self.image_build.build)

    def _machine_image(self) -> ec2.IMachineImage:
        """The AMI: a pinned id, else the SSM parameter, looked up once and cached in
        cdk.context.json when the environment is known (commit that file to keep it pinned),
        else resolved by CloudFormation at each deployment."""
        s = self.settings
        if s.ami_id:
            return PinnedAmi(s.ami_id)
        cached = not Token.is_unresolved(self.account) and not Token.is_unresolved(self.region)
        return ec2.MachineImage.from_ssm_parameter(s.ami_parameter, cached_in_context=cached)

    def _image(self) -> ecs.ContainerImage:
        s = self.settings
        target = s.compute
        args = build_args(
            target=target,
            weights_mode=s.weights_mode,
            revision=s.weights_revision,
            config_sha256=s.weights_config_sha256,
            model_sha256=s.weights_model_sha256,
            u2net_sha256=s.u2net_sha256,
        )
        self.image_build: CodeBuildImage | None = None
        if s.image_build == "local":
            return local_image(target=target, args=args)
        self.image_build = CodeBuildImage(
            self,
            "ImageBuild",
            target=target,
            build_args=args,
            keep_images=s.ecr_keep_images,
            removal_policy=self.data_policy,
            log_retention=self.retention,
        )
        return self.image_build.image

    def _functions(self) -> None:
        s = self.settings
        code = lambda_code(s.lambda_architecture)
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
                wiring.ENV_BUCKET_NAME: self.storage.bucket.bucket_name,
                wiring.ENV_JOB_TTL_DAYS: str(s.job_ttl_days),
                wiring.ENV_ERROR_FILES: _flag(s.error_files),
                **powertools,
            },
            architecture=s.lambda_architecture,
            log_retention=self.retention,
            table_removal_policy=self.data_policy,
            log_removal_policy=self.data_policy,
        )
        self.ingest = IngestConstruct(
            self,
            "Ingest",
            code=code,
            environment={
                **self._submitter_env(),
                wiring.ENV_MAX_IMAGE_BYTES: str(s.max_image_bytes),
                wiring.ENV_MAX_IMAGE_PIXELS: str(s.max_image_pixels),
                wiring.ENV_ERROR_FILES: _flag(s.error_files),
                wiring.ENV_DELETE_ASSETS_WITH_SOURCE: _flag(s.delete_assets_with_source),
                wiring.ENV_PACK_SIZE: str(s.pack_size),
                **powertools,
            },
            architecture=s.lambda_architecture,
            reserved_concurrency=s.ingest_reserved_concurrency,
            batch_size=s.ingest_batch_size,
            pack_size=s.pack_size,
            pack_wait_seconds=s.pack_wait_seconds,
            log_retention=self.retention,
            removal_policy=self.data_policy,
        )
        self.storage.notify_uploads(self.ingest.queue)
        self._reconcile_function(code, powertools)

    def _submitter_env(self) -> dict[str, str]:
        """What a function that records jobs and submits them to Batch is told (ingest and the
        reconciler)."""
        return {
            wiring.ENV_TABLE_NAME: self.state.table.table_name,
            wiring.ENV_EVENT_BUS_NAME: self.bus.bus.event_bus_name,
            wiring.ENV_JOB_QUEUE: self.compute.job_queue.job_queue_arn,
            wiring.ENV_JOB_DEFINITION: self.compute.job_definition.job_definition_arn,
            wiring.ENV_JOB_TTL_DAYS: str(self.settings.job_ttl_days),
        }

    def _reconcile_function(self, code: lambda_.Code, powertools: dict[str, str]) -> None:
        s = self.settings
        self.reconcile = ReconcileConstruct(
            self,
            "Reconcile",
            code=code,
            environment={
                **self._submitter_env(),
                wiring.ENV_TOPIC_ARN: self.notifications.topic.topic_arn,
                wiring.ENV_ERROR_FILES: _flag(s.error_files),
                wiring.ENV_RECONCILE_STUCK_AFTER_S: str(s.reconcile_stuck_after_s),
                wiring.ENV_RECONCILE_RUNNING_AFTER_S: str(s.reconcile_running_after_s),
                **powertools,
            },
            architecture=s.lambda_architecture,
            every=Duration.minutes(s.reconcile_every_minutes),
            log_retention=self.retention,
            removal_policy=self.data_policy,
        )

    def _routing_and_monitoring(self) -> None:
        s = self.settings
        self.routing = EventRoutingConstruct(
            self,
            "Routing",
            bus=self.bus.bus,
            state_function=cast(lambda_.IFunction, self.state.function),
            job_queue=self.compute.job_queue,
            archive_days=s.event_archive_days,
        )
        self.monitoring = MonitoringConstruct(
            self,
            "Monitoring",
            ingest_queue=self.ingest.queue,
            dead_letter_queues=[
                self.ingest.dead_letter_queue,
                self.routing.dead_letter_queue,
                self.state.failure_queue,
                self.reconcile.dead_letter_queue,
            ],
            functions=[
                cast(lambda_.IFunction, f)
                for f in (self.ingest.function, self.state.function, self.reconcile.function)
            ],
            failed_jobs_rule=self.routing.batch_failed_rule,
            queue_blocked_rule=self.routing.queue_blocked_rule,
            oldest_message_threshold=Duration.minutes(s.oldest_message_alarm_minutes),
            runnable_threshold=Duration.minutes(s.runnable_timeout_minutes),
            monthly_budget_usd=s.monthly_budget_usd,
            email=s.alarm_email,
            removal_policy=self.data_policy,
        )

    def _grant(self) -> None:
        self._grant_job()
        self._grant_ingest()
        self._grant_reconcile()
        state = self.state.function
        state.add_to_role_policy(self._table_statement())
        # The topic uses the AWS-managed SNS key, whose key policy already lets account
        # principals use it through SNS: sns:Publish is all the function needs.
        state.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sns:Publish"], resources=[self.notifications.topic.topic_arn]
            )
        )
        self._grant_state_assets()

    def _grant_state_assets(self) -> None:
        """The state function believes a "Job Succeeded" only if the asset exists and its
        metadata names the job (HeadObject needs s3:GetObject; ListBucket makes a missing key
        404 rather than 403), and a FAILED job leaves ``<name>.error.json`` beside the asset.
        The reconciler runs the same state logic when it applies a lost Batch state."""
        bucket = self.storage.bucket
        for function in (self.state.function, self.reconcile.function):
            function.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["s3:GetObject"],
                    resources=[bucket.arn_for_objects(f"{ASSET_PREFIX}*")],
                )
            )
            function.add_to_role_policy(
                iam.PolicyStatement(actions=["s3:ListBucket"], resources=[bucket.bucket_arn])
            )
            function.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["s3:PutObject", "s3:DeleteObject"],
                    resources=[bucket.arn_for_objects(f"{ASSET_PREFIX}*.error.json")],
                )
            )

    def _grant_job(self) -> None:
        bucket = self.storage.bucket
        job_role = self.compute.job_role
        job_role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:GetObjectVersion"],
                resources=[bucket.arn_for_objects(f"{SOURCE_PREFIX}*")],
            )
        )
        job_role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject"], resources=[bucket.arn_for_objects(f"{ASSET_PREFIX}*")]
            )
        )
        if self.settings.pack_size > 1:
            # A retried pack skips the photos whose asset (or error file) an earlier attempt
            # wrote: HeadObject of their keys (gpu_container/job/pack.py).
            job_role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["s3:GetObject"], resources=[bucket.arn_for_objects(f"{ASSET_PREFIX}*")]
                )
            )
        # The "is the photo still current?" check before writing (HeadObject) must tell a
        # deleted photo (404) from a forbidden one: without ListBucket S3 answers 403 for both.
        job_role.add_to_principal_policy(
            iam.PolicyStatement(actions=["s3:ListBucket"], resources=[bucket.bucket_arn])
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

    def _grant_ingest(self) -> None:
        bucket = self.storage.bucket
        images = bucket.arn_for_objects(f"{SOURCE_PREFIX}*")
        assets = bucket.arn_for_objects(f"{ASSET_PREFIX}*")
        ingest = self.ingest.function
        ingest.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:GetObjectVersion"], resources=[images, assets]
            )
        )
        # Reusing an identical earlier asset is a server-side copy within 3d_assets/.
        ingest.add_to_role_policy(iam.PolicyStatement(actions=["s3:PutObject"], resources=[assets]))
        # Without ListBucket, S3 answers 403 instead of 404 for a missing key, and the
        # "does this asset exist yet?" check (HeadObject) could not tell absent from forbidden.
        # HeadObject carries no prefix, so a prefix condition would deny it: the bucket only.
        ingest.add_to_role_policy(
            iam.PolicyStatement(actions=["s3:ListBucket"], resources=[bucket.bucket_arn])
        )
        ingest.add_to_role_policy(self._table_statement())
        # Deleting a photo finds every job of its key through the by_source index.
        ingest.add_to_role_policy(
            iam.PolicyStatement(
                actions=["dynamodb:Query"],
                resources=[f"{self.state.table.table_arn}/index/{jobs.GSI_BY_SOURCE}"],
            )
        )
        if self.settings.delete_assets_with_source:
            ingest.add_to_role_policy(
                iam.PolicyStatement(actions=["s3:DeleteObject"], resources=[assets])
            )
        # Before submitting again after a crash, ingest looks for the job Batch may already
        # have (ListJobs supports no resource-level permissions).
        ingest.add_to_role_policy(iam.PolicyStatement(actions=["batch:ListJobs"], resources=["*"]))
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

    def _grant_reconcile(self) -> None:
        reconcile = self.reconcile.function
        table = self.state.table
        reconcile.add_to_role_policy(
            iam.PolicyStatement(
                actions=["dynamodb:Query"],
                resources=[f"{table.table_arn}/index/{jobs.GSI_BY_STATE}"],
            )
        )
        # GetItem: the state logic reads the record it applies a Batch state to.
        reconcile.add_to_role_policy(
            iam.PolicyStatement(
                actions=["dynamodb:GetItem", "dynamodb:UpdateItem"], resources=[table.table_arn]
            )
        )
        # ListJobs and DescribeJobs support no resource-level permissions.
        reconcile.add_to_role_policy(
            iam.PolicyStatement(actions=["batch:ListJobs", "batch:DescribeJobs"], resources=["*"])
        )
        self.compute.job_definition.grant_submit_job(reconcile, self.compute.job_queue)
        reconcile.add_to_role_policy(
            iam.PolicyStatement(
                actions=["batch:TagResource"],
                resources=[self.batch_jobs_arn],
                conditions={"StringEquals": {"batch:CreateAction": "SubmitJob"}},
            )
        )
        self.bus.bus.grant_put_events_to(reconcile)
        reconcile.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sns:Publish"], resources=[self.notifications.topic.topic_arn]
            )
        )

    @property
    def batch_jobs_arn(self) -> str:
        """ARN pattern of Batch jobs: their ids are only known once submitted."""
        return self.format_arn(service="batch", resource="job", resource_name="*")

    def _table_statement(self) -> iam.PolicyStatement:
        """Item reads and writes on the job table (the handlers use no index)."""
        return iam.PolicyStatement(actions=TABLE_ACTIONS, resources=[self.state.table.table_arn])

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
            "JobLogGroup": (self.compute.job_logs.log_group_name, "Generator job logs"),
            "AlarmTopicArn": (self.monitoring.alarm_topic.topic_arn, "Alarms"),
            "DashboardName": (self.monitoring.dashboard.dashboard_name, "CloudWatch dashboard"),
            # What `meshdrop dlq ls|show|redrive` reads.
            wiring.STACK_OUTPUT_INGEST_QUEUE: (self.ingest.queue.queue_url, "S3 upload events"),
            wiring.STACK_OUTPUT_INGEST_DLQ: (
                self.ingest.dead_letter_queue.queue_url,
                "Upload events the ingest function gave up on (meshdrop dlq)",
            ),
            wiring.STACK_OUTPUT_EVENTS_DLQ: (
                self.routing.dead_letter_queue.queue_url,
                "Events EventBridge could not deliver to the state function (meshdrop dlq)",
            ),
            wiring.STACK_OUTPUT_STATE_FUNCTION: (
                self.state.function.function_name,
                "State function (meshdrop dlq redrive invokes it)",
            ),
            wiring.STACK_OUTPUT_STATE_FAILURES: (
                self.state.failure_queue.queue_url,
                "State function invocations that failed after retries (meshdrop dlq)",
            ),
        }
        for name, (value, description) in outputs.items():
            CfnOutput(self, name, value=value, description=description)

    def _warn(self) -> None:
        """Deploy-time warnings (`cdk synth`/`cdk deploy` print them) for what will go unseen."""
        s = self.settings
        notes = Annotations.of(self)
        if not s.alarm_email:
            notes.add_warning_v2(
                "meshdrop:no-alarm-subscriber",
                f"{CONTEXT_PREFIX}alarm_email is empty: alarms and budget alerts go to a topic "
                "nobody is subscribed to. Set it, or subscribe to the AlarmTopicArn output.",
            )
        if not s.notification_email:
            notes.add_warning_v2(
                "meshdrop:no-notification-subscriber",
                f"{CONTEXT_PREFIX}notification_email is empty: finished-job notifications reach "
                "no one unless you subscribe to the TopicArn output.",
            )
        if s.monthly_budget_usd == 0:
            notes.add_warning_v2(
                "meshdrop:no-budget",
                f"{CONTEXT_PREFIX}monthly_budget_usd is 0: no AWS Budgets alert guards spend.",
            )
        if s.missing_weight_pins:
            notes.add_warning_v2(
                "meshdrop:weights-unpinned",
                "The GPU image bakes TripoSR weights but "
                f"{', '.join(s.missing_weight_pins)} are empty: the image build will stop "
                "with an error. See docs/deploy.md (weights).",
            )
        if not s.ami_id and Token.is_unresolved(self.region):
            notes.add_warning_v2(
                "meshdrop:ami-floats",
                "No environment is named, so the AMI is read from "
                f"{s.ami_parameter} at every deployment. Set {CONTEXT_PREFIX}ami_id, or deploy "
                "with credentials (CDK_DEFAULT_ACCOUNT/REGION) so the lookup is cached.",
            )


def _flag(value: bool) -> str:
    """A boolean setting as the functions read it (``lambdas/common/settings.py``)."""
    return "true" if value else "false"
