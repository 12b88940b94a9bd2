"""Compute construct: GPU Batch environments that scale to zero, queue, job definition."""

from __future__ import annotations

import pytest
from aws_cdk import App, Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from aws_cdk.assertions import Template

from infra.compute import ComputeConstruct, instance_selection
from meshdrop_contract import ExitCode, jobs
from tests.infra.helpers import as_list, logical_ref, object_patterns, role_statements, single


def environments(template: Template) -> dict[str, dict]:
    return template.find_resources("AWS::Batch::ComputeEnvironment")


def test_environments_scale_to_zero_on_gpu_instances_with_the_nvidia_ami(
    template: Template,
) -> None:
    envs = environments(template)
    assert len(envs) == 2
    for env in envs.values():
        resources = env["Properties"]["ComputeResources"]
        assert resources["MinvCpus"] == 0
        assert resources["MaxvCpus"] == 32
        assert resources["InstanceTypes"] == ["g5", "g6"]
        assert resources["Ec2Configuration"] == [{"ImageType": "ECS_AL2023_NVIDIA"}]
        assert "DesiredvCpus" not in resources


def test_spot_environment_comes_before_on_demand(template: Template) -> None:
    envs = environments(template)
    by_type = {e["Properties"]["ComputeResources"]["Type"]: lid for lid, e in envs.items()}
    spot = envs[by_type["SPOT"]]["Properties"]["ComputeResources"]
    assert spot["AllocationStrategy"] == "SPOT_PRICE_CAPACITY_OPTIMIZED"
    _, queue = single(template.find_resources("AWS::Batch::JobQueue"))
    order = sorted(queue["Properties"]["ComputeEnvironmentOrder"], key=lambda o: o["Order"])
    assert [logical_ref(o["ComputeEnvironment"]) for o in order] == [
        by_type["SPOT"],
        by_type["EC2"],
    ]


def test_queue_cancels_jobs_stuck_for_misconfiguration(template: Template) -> None:
    _, queue = single(template.find_resources("AWS::Batch::JobQueue"))
    actions = queue["Properties"]["JobStateTimeLimitActions"]
    assert {a["Reason"] for a in actions} == {
        "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE",
        "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT",
    }
    assert all(a["Action"] == "CANCEL" and a["State"] == "RUNNABLE" for a in actions)
    assert all(a["MaxTimeSeconds"] == 30 * 60 for a in actions)


def test_job_definition_asks_for_one_gpu_and_times_out(template: Template) -> None:
    _, definition = single(template.find_resources("AWS::Batch::JobDefinition"))
    props = definition["Properties"]
    wanted = props["ContainerProperties"]["ResourceRequirements"]
    requirements = {r["Type"]: r["Value"] for r in wanted}
    assert requirements == {"GPU": "1", "VCPU": "4", "MEMORY": "14336"}
    assert props["Timeout"] == {"AttemptDurationSeconds": 30 * 60}
    assert props["PlatformCapabilities"] == ["EC2"]


def test_retry_strategy_retries_only_spot_reclaims_and_transient_exits(
    template: Template,
) -> None:
    _, definition = single(template.find_resources("AWS::Batch::JobDefinition"))
    strategy = definition["Properties"]["RetryStrategy"]
    assert strategy["Attempts"] == 3
    rules = strategy["EvaluateOnExit"]
    # Batch applies the first matching rule, so the order is the behaviour.
    assert rules == [
        {"Action": "RETRY", "OnStatusReason": "Host EC2*"},
        {"Action": "RETRY", "OnExitCode": str(ExitCode.TRANSIENT)},
        {"Action": "EXIT", "OnReason": "*"},
    ]
    retried_codes = {r.get("OnExitCode") for r in rules if r["Action"] == "RETRY"}
    assert str(ExitCode.BAD_INPUT) not in retried_codes
    assert str(ExitCode.QUALITY) not in retried_codes


def test_job_gets_the_bus_and_logs_to_its_log_group(template: Template) -> None:
    _, definition = single(template.find_resources("AWS::Batch::JobDefinition"))
    container = definition["Properties"]["ContainerProperties"]
    env = {e["Name"]: e["Value"] for e in container["Environment"]}
    assert logical_ref(env[jobs.ENV_EVENT_BUS]).startswith("EventsBus")
    # No weights configured and none in gpu_container/weights: the weight-free backend.
    assert jobs.ENV_WEIGHTS not in env
    log = container["LogConfiguration"]
    assert log["LogDriver"] == "awslogs"
    assert logical_ref(log["Options"]["awslogs-group"]).startswith("ComputeJobLogs")


def test_job_image_is_a_docker_asset_built_from_the_dockerfile(synthesized) -> None:
    import json

    manifest = json.loads(next(synthesized.outdir.glob("*.assets.json")).read_text())
    images = manifest["dockerImages"]
    assert len(images) == 1
    source = next(iter(images.values()))["source"]
    assert source["dockerFile"] == "gpu_container/Dockerfile"
    staged = synthesized.outdir / source["directory"]
    # Only what the image copies is staged: no venv, no node_modules, no tests.
    assert (staged / "gpu_container" / "Dockerfile").exists()
    assert (staged / "meshdrop_contract" / "__init__.py").exists()
    assert not (staged / ".venv").exists()
    assert not (staged / "node_modules").exists()
    assert not (staged / "tests").exists()
    # The tools (meshdrop/) never travel into the image.
    assert not (staged / "meshdrop").exists()


def test_job_role_reads_images_writes_assets_and_emits_on_the_bus(template: Template) -> None:
    statements = role_statements(template, "ComputeJobRole")
    assert object_patterns(statements, "s3:GetObject") == {"/images/*"}
    assert object_patterns(statements, "s3:PutObject") == {"/3d_assets/*"}
    (put,) = [s for s in statements if s["Action"] == "events:PutEvents"]
    assert logical_ref(put["Resource"]).startswith("EventsBus")
    actions = {a for s in statements for a in as_list(s["Action"])}
    assert actions == {"s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "events:PutEvents"}


def test_instances_accept_no_inbound_traffic(template: Template) -> None:
    groups = template.find_resources("AWS::EC2::SecurityGroup")
    (group,) = [g for lid, g in groups.items() if lid.startswith("ComputeInstancesSecurityGroup")]
    assert "SecurityGroupIngress" not in group["Properties"]
    egress = group["Properties"]["SecurityGroupEgress"]
    assert [(e["FromPort"], e["ToPort"]) for e in egress] == [(443, 443)]


def test_vpc_has_no_nat_gateway_and_logs_rejected_flows(template: Template) -> None:
    template.resource_count_is("AWS::EC2::NatGateway", 0)
    template.has_resource_properties("AWS::EC2::FlowLog", {"TrafficType": "REJECT"})
    endpoints = template.find_resources("AWS::EC2::VPCEndpoint")
    assert len(endpoints) == 2  # S3 and DynamoDB gateways: free


def test_instance_selection_splits_families_and_sizes() -> None:
    classes, types = instance_selection(["g5", "g6e", "g5.2xlarge"])
    assert classes == [ec2.InstanceClass.G5, ec2.InstanceClass.G6E]
    assert [t.to_string() for t in types] == ["g5.2xlarge"]
    with pytest.raises(ValueError, match="unknown EC2 instance family 'zz9'"):
        instance_selection(["zz9"])


def test_on_demand_only_when_spot_is_off() -> None:
    app = App(context={"aws:cdk:bundling-stacks": []})
    stack = Stack(app, "ComputeOnly")
    ComputeConstruct(
        stack,
        "Compute",
        instance_types=["g6.xlarge"],
        max_vcpus=8,
        spot=False,
        job_vcpus=4,
        job_memory_mib=8192,
        job_timeout=Duration.minutes(10),
        job_attempts=1,
        runnable_timeout=Duration.minutes(15),
        environment={},
        log_retention=logs.RetentionDays.ONE_WEEK,
        removal_policy=RemovalPolicy.DESTROY,
    )
    template = Template.from_stack(stack)
    (env,) = template.find_resources("AWS::Batch::ComputeEnvironment").values()
    resources = env["Properties"]["ComputeResources"]
    assert resources["Type"] == "EC2"
    assert resources["InstanceTypes"] == ["g6.xlarge"]
    assert resources["MinvCpus"] == 0
    _, queue = single(template.find_resources("AWS::Batch::JobQueue"))
    assert len(queue["Properties"]["ComputeEnvironmentOrder"]) == 1
