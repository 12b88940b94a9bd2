"""Compute: GPU compute environments that scale to zero, the job queue and the job definition."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from aws_cdk import Duration, IgnoreMode, RemovalPolicy, Size
from aws_cdk import aws_batch as batch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from meshdrop_contract import ExitCode

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = "gpu_container/Dockerfile"
#: The image build context is the repo root, minus everything but what the image copies.
#: Docker ignore semantics: ``*`` drops every top-level entry (``.venv``, ``node_modules``,
#: ``cdk.out``... are never even walked), the ``!`` lines bring back the generator and the
#: contract, so edits elsewhere (CLI, tests) neither change the image hash nor rebuild it.
IMAGE_EXCLUDE: tuple[str, ...] = (
    "*",
    "!gpu_container",
    "!meshdrop_contract",
    "**/__pycache__",
    "**/*.pyc",
)
#: Status reasons of jobs that can never leave RUNNABLE until someone changes the deployment.
STUCK_REASONS = (
    batch.JobStateTimeLimitActionsReason.COMPUTE_ENVIRONMENT_MAX_RESOURCE,
    batch.JobStateTimeLimitActionsReason.JOB_RESOURCE_REQUIREMENT,
)


def instance_selection(
    names: Sequence[str],
) -> tuple[list[ec2.InstanceClass], list[ec2.InstanceType]]:
    """Split settings' instance names into families (``g5``) and sized types (``g5.xlarge``).

    Raises
    ------
    ValueError
        For a family CDK does not know (``InstanceClass`` has every EC2 family).
    """
    classes: list[ec2.InstanceClass] = []
    types: list[ec2.InstanceType] = []
    for name in names:
        if "." in name:
            types.append(ec2.InstanceType(name))
            continue
        try:
            classes.append(ec2.InstanceClass[name.upper().replace("-", "_")])
        except KeyError:
            raise ValueError(f"unknown EC2 instance family {name!r}") from None
    return classes, types


class ComputeConstruct(Construct):
    """AWS Batch on GPU instances: Spot first, on-demand behind it, nothing running when idle."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        instance_types: Sequence[str],
        max_vcpus: int,
        spot: bool,
        job_vcpus: int,
        job_memory_mib: int,
        job_timeout: Duration,
        job_attempts: int,
        runnable_timeout: Duration,
        environment: Mapping[str, str],
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
        build_args: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        classes, types = instance_selection(instance_types)

        # Public subnets only: a NAT gateway would cost money every hour the stack exists.
        # Instances accept no inbound traffic; S3 and DynamoDB stay on free gateway endpoints.
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=3,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=20
                )
            ],
            gateway_endpoints={
                "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3),
                "DynamoDb": ec2.GatewayVpcEndpointOptions(
                    service=ec2.GatewayVpcEndpointAwsService.DYNAMODB
                ),
            },
        )
        self.flow_logs = logs.LogGroup(
            self, "FlowLogs", retention=log_retention, removal_policy=removal_policy
        )
        self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(self.flow_logs),
            traffic_type=ec2.FlowLogTrafficType.REJECT,
        )
        self.security_group = ec2.SecurityGroup(
            self,
            "InstancesSecurityGroup",
            vpc=self.vpc,
            description="meshdrop GPU instances: no inbound, outbound HTTPS for AWS APIs and ECR",
            allow_all_outbound=False,
        )
        self.security_group.add_egress_rule(
            ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "AWS APIs, ECR and S3 over HTTPS"
        )

        def environment_for(kind: str, is_spot: bool) -> batch.ManagedEc2EcsComputeEnvironment:
            return batch.ManagedEc2EcsComputeEnvironment(
                self,
                kind,
                vpc=self.vpc,
                vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
                security_groups=[self.security_group],
                instance_classes=classes or None,
                instance_types=types or None,
                use_optimal_instance_classes=False,
                images=[
                    batch.EcsMachineImage(image_type=batch.EcsMachineImageType.ECS_AL2023_NVIDIA)
                ],
                minv_cpus=0,
                maxv_cpus=max_vcpus,
                spot=is_spot,
                allocation_strategy=(
                    batch.AllocationStrategy.SPOT_PRICE_CAPACITY_OPTIMIZED
                    if is_spot
                    else batch.AllocationStrategy.BEST_FIT_PROGRESSIVE
                ),
                update_to_latest_image_version=True,
                replace_compute_environment=False,
            )

        self.compute_environments: list[batch.ManagedEc2EcsComputeEnvironment] = []
        if spot:
            self.compute_environments.append(environment_for("SpotEnvironment", True))
        self.compute_environments.append(environment_for("OnDemandEnvironment", False))

        self.job_queue = batch.JobQueue(
            self,
            "JobQueue",
            compute_environments=[
                batch.OrderedComputeEnvironment(compute_environment=env, order=order)
                for order, env in enumerate(self.compute_environments, start=1)
            ],
            job_state_time_limit_actions=[
                batch.JobStateTimeLimitAction(
                    action=batch.JobStateTimeLimitActionsAction.CANCEL,
                    max_time=runnable_timeout,
                    reason=reason,
                    state=batch.JobStateTimeLimitActionsState.RUNNABLE,
                )
                for reason in STUCK_REASONS
            ],
        )

        self.job_logs = logs.LogGroup(
            self, "JobLogs", retention=log_retention, removal_policy=removal_policy
        )
        self.job_role = iam.Role(
            self,
            "JobRole",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description="meshdrop generator job: read images/, write 3d_assets/, emit events",
        )
        self.image = ecs.ContainerImage.from_asset(
            str(REPO_ROOT),
            file=DOCKERFILE,
            exclude=list(IMAGE_EXCLUDE),
            ignore_mode=IgnoreMode.DOCKER,
            build_args=dict(build_args or {}),
            # g5/g6 are x86: build for them even on an ARM laptop.
            platform=ecr_assets.Platform.LINUX_AMD64,
        )
        self.container = batch.EcsEc2ContainerDefinition(
            self,
            "Container",
            image=self.image,
            cpu=job_vcpus,
            memory=Size.mebibytes(job_memory_mib),
            gpu=1,
            job_role=self.job_role,
            environment=dict(environment),
            logging=ecs.LogDriver.aws_logs(stream_prefix="generator", log_group=self.job_logs),
            readonly_root_filesystem=False,
            privileged=False,
        )
        self.job_definition = batch.EcsJobDefinition(
            self,
            "JobDefinition",
            container=self.container,
            timeout=job_timeout,
            retry_attempts=job_attempts,
            propagate_tags=True,
            # Evaluated in order, first match wins: Spot reclaims and transient failures are
            # retried; everything else, bad input (65) and the quality gate (66) included, is
            # final. Without the catch-all EXIT, Batch would retry every failure.
            retry_strategies=[
                batch.RetryStrategy.of(batch.Action.RETRY, batch.Reason.SPOT_INSTANCE_RECLAIMED),
                batch.RetryStrategy.of(
                    batch.Action.RETRY, batch.Reason.custom(on_exit_code=str(ExitCode.TRANSIENT))
                ),
                batch.RetryStrategy.of(batch.Action.EXIT, batch.Reason.custom(on_reason="*")),
            ],
        )
