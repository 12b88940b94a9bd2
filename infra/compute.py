"""Compute: Batch compute environments that scale to zero, the job queue and the job definition.

GPU instances (the default) or CPU ones, behind one launch template: IMDSv2 with a hop limit of
1 (job containers cannot borrow the instance role), an encrypted gp3 root volume sized for the
image and its weights, and the instance store mounted as scratch space for the jobs' TMPDIR.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import cast

import jsii
from aws_cdk import Duration, RemovalPolicy, Size
from aws_cdk import aws_batch as batch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from meshdrop_contract import ExitCode

#: Status reasons of RUNNABLE jobs the queue cancels after ``runnable_timeout``: capacity that
#: did not come, and configuration only a deployment fixes. Batch supports exactly these for ECS
#: queues; CDK's enum lacks the service-role one, hence plain strings and an L1 override. The
#: job then fails with statusReason "Canceled by JobStateTimeLimit action due to reason: <r>".
RUNNABLE_TIMEOUT_REASONS = (
    "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY",
    "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE",
    "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT",
    "MISCONFIGURATION:SERVICE_ROLE_PERMISSIONS",
)
#: Host path of the scratch space (instance store when the type has one) and where jobs see it.
SCRATCH_PATH = "/scratch"
#: Formats and mounts the first instance-store NVMe disk at /scratch before the ECS agent starts
#: containers; types without one keep /scratch on the (large, encrypted) root volume. Instance
#: store is encrypted at rest by the hardware on every Nitro instance type.
SCRATCH_SCRIPT = f"""#!/bin/bash
set -euo pipefail
mkdir -p {SCRATCH_PATH}
disk=$(ls /dev/disk/by-id/nvme-Amazon_EC2_NVMe_Instance_Storage_* 2>/dev/null | head -n 1 || true)
if [ -n "$disk" ] && ! mountpoint -q {SCRATCH_PATH}; then
  mkfs.xfs -f "$disk"
  mount -o noatime "$disk" {SCRATCH_PATH}
fi
chmod 1777 {SCRATCH_PATH}
"""
ROOT_DEVICE = "/dev/xvda"  # the root device of the ECS-optimized AL2023 AMIs


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


def vcpu_split(max_vcpus: int, spot: bool) -> list[tuple[str, bool, int]]:
    """(construct id, is Spot, maxvCpus) per compute environment; together at most max_vcpus.

    Batch scales every environment of a queue independently, so a per-environment maximum
    equal to the cap would let Spot and on-demand together run twice the cap.
    """
    if not spot:
        return [("OnDemandEnvironment", False, max_vcpus)]
    on_demand = max_vcpus // 2
    return [
        ("SpotEnvironment", True, max_vcpus - on_demand),
        ("OnDemandEnvironment", False, on_demand),
    ]


@jsii.implements(ec2.IMachineImage)
class PinnedAmi:
    """An AMI given by id (setting ``ami_id``), valid in whatever region the stack deploys to."""

    def __init__(self, ami_id: str) -> None:
        self.ami_id = ami_id

    def get_image(self, scope: Construct) -> ec2.MachineImageConfig:
        return ec2.MachineImageConfig(
            image_id=self.ami_id,
            os_type=ec2.OperatingSystemType.LINUX,
            user_data=ec2.UserData.for_linux(),
        )


class ComputeConstruct(Construct):
    """AWS Batch: Spot first, on-demand behind it, nothing running when idle."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        gpu: bool,
        instance_types: Sequence[str],
        machine_image: ec2.IMachineImage,
        root_volume_gib: int,
        max_vcpus: int,
        spot: bool,
        job_vcpus: int,
        job_memory_mib: int,
        job_timeout: Duration,
        job_attempts: int,
        runnable_timeout: Duration,
        image: ecs.ContainerImage,
        environment: Mapping[str, str],
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.gpu = gpu
        self._network(log_retention, removal_policy)
        self.launch_template = self._launch_template(root_volume_gib)
        self.compute_environments = [
            self._environment(name, is_spot, vcpus, instance_types, machine_image)
            for name, is_spot, vcpus in vcpu_split(max_vcpus, spot)
        ]
        self.job_queue = self._queue(runnable_timeout)
        self.job_logs = logs.LogGroup(
            self, "JobLogs", retention=log_retention, removal_policy=removal_policy
        )
        self.job_role = iam.Role(
            self,
            "JobRole",
            assumed_by=cast(iam.IPrincipal, iam.ServicePrincipal("ecs-tasks.amazonaws.com")),
            description="meshdrop generator job: read images/, write 3d_assets/, emit events",
        )
        self.container = self._container(image, job_vcpus, job_memory_mib, environment)
        self.job_definition = self._job_definition(job_timeout, job_attempts)

    def _network(self, log_retention: logs.RetentionDays, removal_policy: RemovalPolicy) -> None:
        # Public subnets only: a NAT gateway would cost money every hour the stack exists.
        # Instances accept no inbound traffic; S3 and DynamoDB stay on free gateway endpoints.
        # max_azs=3 takes effect when the stack names an environment (else CDK knows 2 AZs).
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
            description="meshdrop instances: no inbound, outbound HTTPS for AWS APIs and ECR",
            allow_all_outbound=False,
        )
        self.security_group.add_egress_rule(
            ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "AWS APIs, ECR and S3 over HTTPS"
        )

    def _launch_template(self, root_volume_gib: int) -> ec2.LaunchTemplate:
        # Batch merges launch-template user data only in MIME multi-part form.
        user_data = ec2.MultipartUserData()
        user_data.add_part(
            ec2.MultipartBody.from_raw_body(
                body=SCRATCH_SCRIPT, content_type='text/x-shellscript; charset="utf-8"'
            )
        )
        return ec2.LaunchTemplate(
            self,
            "LaunchTemplate",
            # Hop limit 1: a container on the bridge network is one hop further, so only the
            # host reaches instance metadata; jobs use their task role.
            require_imdsv2=True,
            http_put_response_hop_limit=1,
            block_devices=[
                ec2.BlockDevice(
                    device_name=ROOT_DEVICE,
                    volume=ec2.BlockDeviceVolume.ebs(
                        root_volume_gib,
                        encrypted=True,
                        volume_type=ec2.EbsDeviceVolumeType.GP3,
                        delete_on_termination=True,
                    ),
                )
            ],
            user_data=user_data,
        )

    def _environment(
        self,
        name: str,
        is_spot: bool,
        max_vcpus: int,
        instance_types: Sequence[str],
        machine_image: ec2.IMachineImage,
    ) -> batch.ManagedEc2EcsComputeEnvironment:
        classes, types = instance_selection(instance_types)
        image_type = (
            batch.EcsMachineImageType.ECS_AL2023_NVIDIA
            if self.gpu
            else batch.EcsMachineImageType.ECS_AL2023
        )
        return batch.ManagedEc2EcsComputeEnvironment(
            self,
            name,
            vpc=self.vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
            security_groups=[self.security_group],
            instance_classes=classes or None,
            instance_types=types or None,
            use_optimal_instance_classes=False,
            # The AMI comes from the settings (pinned id, or a looked-up SSM parameter), so a
            # driver change is a reviewed deployment, never a silent image update.
            images=[batch.EcsMachineImage(image=machine_image, image_type=image_type)],
            update_to_latest_image_version=False,
            launch_template=self.launch_template,
            minv_cpus=0,
            maxv_cpus=max_vcpus,
            spot=is_spot,
            allocation_strategy=(
                batch.AllocationStrategy.SPOT_PRICE_CAPACITY_OPTIMIZED
                if is_spot
                else batch.AllocationStrategy.BEST_FIT_PROGRESSIVE
            ),
            replace_compute_environment=False,
        )

    def _queue(self, runnable_timeout: Duration) -> batch.JobQueue:
        queue = batch.JobQueue(
            self,
            "JobQueue",
            compute_environments=[
                batch.OrderedComputeEnvironment(compute_environment=env, order=order)
                for order, env in enumerate(self.compute_environments, start=1)
            ],
        )
        cfn_queue = queue.node.default_child
        assert isinstance(cfn_queue, batch.CfnJobQueue)
        cfn_queue.add_property_override(
            "JobStateTimeLimitActions",
            [
                {
                    "Action": "CANCEL",
                    "MaxTimeSeconds": int(runnable_timeout.to_seconds()),
                    "Reason": reason,
                    "State": "RUNNABLE",
                }
                for reason in RUNNABLE_TIMEOUT_REASONS
            ],
        )
        return queue

    def _container(
        self,
        image: ecs.ContainerImage,
        job_vcpus: int,
        job_memory_mib: int,
        environment: Mapping[str, str],
    ) -> batch.EcsEc2ContainerDefinition:
        return batch.EcsEc2ContainerDefinition(
            self,
            "Container",
            image=image,
            cpu=job_vcpus,
            memory=Size.mebibytes(job_memory_mib),
            gpu=1 if self.gpu else None,
            job_role=cast(iam.IRole, self.job_role),
            # Temporary files and the once-per-instance S3 weights cache live on scratch.
            environment={**environment, "TMPDIR": SCRATCH_PATH},
            volumes=[
                batch.EcsVolume.host(
                    name="scratch", host_path=SCRATCH_PATH, container_path=SCRATCH_PATH
                )
            ],
            logging=ecs.LogDriver.aws_logs(stream_prefix="generator", log_group=self.job_logs),
            readonly_root_filesystem=False,
            privileged=False,
        )

    def _job_definition(self, job_timeout: Duration, job_attempts: int) -> batch.EcsJobDefinition:
        return batch.EcsJobDefinition(
            self,
            "JobDefinition",
            container=self.container,
            timeout=job_timeout,
            retry_attempts=job_attempts,
            propagate_tags=True,
            # Evaluated in order, first match wins: a superseded job (67: a newer upload owns
            # the key) is final before anything else, whatever the status reason; Spot
            # reclaims and transient failures are retried; everything else, bad input (65),
            # the quality gate (66) and a host whose driver is too old for the image (70,
            # from the start-up self-check), is final.
            # Without the catch-all EXIT, Batch would retry every failure.
            retry_strategies=[
                batch.RetryStrategy.of(
                    batch.Action.EXIT, batch.Reason.custom(on_exit_code=str(ExitCode.SUPERSEDED))
                ),
                batch.RetryStrategy.of(batch.Action.RETRY, batch.Reason.SPOT_INSTANCE_RECLAIMED),
                batch.RetryStrategy.of(
                    batch.Action.RETRY, batch.Reason.custom(on_exit_code=str(ExitCode.TRANSIENT))
                ),
                batch.RetryStrategy.of(batch.Action.EXIT, batch.Reason.custom(on_reason="*")),
            ],
        )
