"""Compute construct: GPU Batch environments that scale to zero, queue, job definition."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
from aws_cdk import App, Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_logs as logs
from aws_cdk.assertions import Template

from infra.compute import ComputeConstruct, PinnedAmi, instance_selection, vcpu_split
from meshdrop_contract import ExitCode, jobs
from tests.infra.helpers import as_list, logical_ref, object_patterns, role_statements, single


def environments(template: Template) -> Mapping[str, Any]:
    return template.find_resources("AWS::Batch::ComputeEnvironment")


def test_environments_scale_to_zero_on_sized_gpu_instances_with_the_nvidia_ami(
    template: Template,
) -> None:
    envs = environments(template)
    assert len(envs) == 2
    for env in envs.values():
        resources = env["Properties"]["ComputeResources"]
        assert resources["MinvCpus"] == 0
        # Sized types only: a whole family would let Batch pick a g5.8xlarge for one job.
        assert resources["InstanceTypes"] == ["g5.xlarge", "g6.xlarge", "g4dn.xlarge"]
        (config,) = resources["Ec2Configuration"]
        assert config["ImageType"] == "ECS_AL2023_NVIDIA"
        assert "DesiredvCpus" not in resources


def test_max_vcpus_is_a_hard_cap_across_spot_and_on_demand(template: Template) -> None:
    caps = [
        e["Properties"]["ComputeResources"]["MaxvCpus"] for e in environments(template).values()
    ]
    assert sorted(caps) == [16, 16]
    assert sum(caps) == 32  # meshdrop:max_vcpus


def test_the_ami_is_pinned_through_the_ssm_parameter_not_updated_by_batch(
    template: Template,
) -> None:
    parameters = template.to_json()["Parameters"]
    (ami_parameter,) = [
        p
        for p in parameters.values()
        if p["Type"].startswith("AWS::SSM::Parameter::Value<AWS::EC2")
    ]
    assert ami_parameter["Default"] == (
        "/aws/service/ecs/optimized-ami/amazon-linux-2023/gpu/recommended/image_id"
    )
    for env in environments(template).values():
        (config,) = env["Properties"]["ComputeResources"]["Ec2Configuration"]
        assert "Ref" in config["ImageIdOverride"]
        assert env["Properties"]["ReplaceComputeEnvironment"] is False
        assert env["Properties"].get("UpdatePolicy", {}).get("UpdateToLatestImageVersion") in (
            None,
            False,
        )


def test_launch_template_requires_imdsv2_hop_1_and_an_encrypted_gp3_root(
    template: Template,
) -> None:
    lid, lt = single(template.find_resources("AWS::EC2::LaunchTemplate"))
    data = lt["Properties"]["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert data["MetadataOptions"]["HttpPutResponseHopLimit"] == 1
    (root,) = data["BlockDeviceMappings"]
    assert root["DeviceName"] == "/dev/xvda"
    assert root["Ebs"] == {
        "DeleteOnTermination": True,
        "Encrypted": True,
        "VolumeSize": 100,
        "VolumeType": "gp3",
    }
    for env in environments(template).values():
        spec = env["Properties"]["ComputeResources"]["LaunchTemplate"]
        assert logical_ref(spec["LaunchTemplateId"]) == lid


def test_user_data_mounts_instance_store_as_scratch_in_mime_form(synthesized) -> None:

    template = synthesized.template_json
    (lt,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::EC2::LaunchTemplate"]
    encoded = lt["Properties"]["LaunchTemplateData"]["UserData"]["Fn::Base64"]
    text = encoded if isinstance(encoded, str) else json.dumps(encoded)
    assert "multipart/mixed" in text  # Batch merges only MIME multi-part user data
    assert "Amazon_EC2_NVMe_Instance_Storage" in text
    assert "mount -o noatime" in text
    assert "chmod 1777 /scratch" in text


def test_jobs_use_the_scratch_volume_as_tmpdir(template: Template) -> None:
    _, definition = single(template.find_resources("AWS::Batch::JobDefinition"))
    container = definition["Properties"]["ContainerProperties"]
    env = {e["Name"]: e["Value"] for e in container["Environment"]}
    assert env["TMPDIR"] == "/scratch"
    assert container["Volumes"] == [{"Name": "scratch", "Host": {"SourcePath": "/scratch"}}]
    assert container["MountPoints"] == [{"SourceVolume": "scratch", "ContainerPath": "/scratch"}]


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


def test_queue_cancels_jobs_stuck_for_capacity_or_misconfiguration(template: Template) -> None:
    _, queue = single(template.find_resources("AWS::Batch::JobQueue"))
    actions = queue["Properties"]["JobStateTimeLimitActions"]
    assert {a["Reason"] for a in actions} == {
        "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY",
        "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE",
        "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT",
        "MISCONFIGURATION:SERVICE_ROLE_PERMISSIONS",
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
        {"Action": "EXIT", "OnExitCode": str(ExitCode.SUPERSEDED)},
        {"Action": "RETRY", "OnStatusReason": "Host EC2*"},
        {"Action": "RETRY", "OnExitCode": str(ExitCode.TRANSIENT)},
        {"Action": "EXIT", "OnReason": "*"},
    ]
    retried_codes = {r.get("OnExitCode") for r in rules if r["Action"] == "RETRY"}
    assert str(ExitCode.BAD_INPUT) not in retried_codes
    assert str(ExitCode.QUALITY) not in retried_codes
    assert str(ExitCode.SUPERSEDED) not in retried_codes


def test_job_gets_the_bus_and_logs_to_its_log_group(template: Template) -> None:
    _, definition = single(template.find_resources("AWS::Batch::JobDefinition"))
    container = definition["Properties"]["ContainerProperties"]
    env = {e["Name"]: e["Value"] for e in container["Environment"]}
    assert logical_ref(env[jobs.ENV_EVENT_BUS]).startswith("EventsBus")
    # The default GPU image bakes the weights in the Hub's layout.
    assert env[jobs.ENV_WEIGHTS] == "/opt/meshdrop/weights/triposr"
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
    assert source["dockerBuildTarget"] == "gpu"
    assert source["platform"] == "linux/amd64"
    assert source["dockerBuildArgs"]["BAKE_WEIGHTS"] == "1"
    assert source["dockerBuildArgs"]["MESHDROP_MODEL_REPO"] == "stabilityai/TripoSR"
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
    # Reading assets too: a retried pack skips the photos whose asset it already wrote.
    assert object_patterns(statements, "s3:GetObject") == {"/images/*", "/3d_assets/*"}
    assert object_patterns(statements, "s3:PutObject") == {"/3d_assets/*"}
    (put,) = [s for s in statements if s["Action"] == "events:PutEvents"]
    assert logical_ref(put["Resource"]).startswith("EventsBus")
    actions = {a for s in statements for a in as_list(s["Action"])}
    assert actions == {
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:PutObject",
        "s3:ListBucket",  # so the pre-write HeadObject of a deleted photo answers 404, not 403
        "events:PutEvents",
    }
    (listing,) = [s for s in statements if s["Action"] == "s3:ListBucket"]
    assert logical_ref(listing["Resource"]).startswith("StorageBucket")


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
        gpu=True,
        instance_types=["g6.xlarge"],
        machine_image=PinnedAmi("ami-0123456789abcdef0"),
        root_volume_gib=80,
        image=ecs.ContainerImage.from_registry("example/generator:1"),
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
    assert resources["MaxvCpus"] == 8  # no Spot: the on-demand environment gets the whole cap
    assert resources["Ec2Configuration"][0]["ImageIdOverride"] == "ami-0123456789abcdef0"
    _, queue = single(template.find_resources("AWS::Batch::JobQueue"))
    assert len(queue["Properties"]["ComputeEnvironmentOrder"]) == 1


def test_vcpu_split_never_exceeds_the_cap() -> None:
    assert vcpu_split(32, spot=True) == [
        ("SpotEnvironment", True, 16),
        ("OnDemandEnvironment", False, 16),
    ]
    assert sum(v for _, _, v in vcpu_split(33, spot=True)) == 33
    assert vcpu_split(8, spot=False) == [("OnDemandEnvironment", False, 8)]


def test_cpu_compute_runs_the_slim_image_without_a_gpu(tmp_path) -> None:
    from tests.infra.conftest import synthesize

    result = synthesize(tmp_path, compute="cpu", spot=False)
    assert result.violations == []
    template = Template.from_stack(result.stack)
    (env,) = template.find_resources("AWS::Batch::ComputeEnvironment").values()
    resources = env["Properties"]["ComputeResources"]
    assert resources["InstanceTypes"] == ["m7i.xlarge", "m6i.xlarge"]
    assert resources["Ec2Configuration"][0]["ImageType"] == "ECS_AL2023"
    _, definition = single(template.find_resources("AWS::Batch::JobDefinition"))
    container = definition["Properties"]["ContainerProperties"]
    kinds = {r["Type"] for r in container["ResourceRequirements"]}
    assert kinds == {"VCPU", "MEMORY"}  # no GPU
    env_vars = {e["Name"] for e in container["Environment"]}
    assert jobs.ENV_WEIGHTS not in env_vars  # the weight-free backend
    manifest = json.loads(next(result.outdir.glob("*.assets.json")).read_text())
    (image,) = manifest["dockerImages"].values()
    assert image["source"]["dockerBuildTarget"] == "cpu"
    assert image["source"]["dockerBuildArgs"] == {"BAKE_WEIGHTS": "0"}
