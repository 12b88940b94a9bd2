"""``meshdrop smoke`` against a moto server, with the stack's pipeline simulated.

What is real: the moto HTTP server standing in for S3, DynamoDB, CloudFormation, SNS and SQS;
stack discovery through the stack's outputs; the upload of a bundled sample; the temporary SQS
subscription to the topic and SNS's delivery into it; the CLI's polling and report.

What is simulated: everything the deployed stack would do between the upload and the
notification. A thread plays ingest, the generator and the state function: it notices the
upload, writes the job record through ACCEPTED, RUNNING and SUCCEEDED (contract attribute and
index names), puts a GLB asset and publishes the notification the state function would.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
import trimesh
from typer.testing import CliRunner

from meshdrop.cli import app
from meshdrop.cli.remote import jobs as remote_jobs
from meshdrop.cli.smoke import SAMPLES_DIR, describe, run_smoke, sample_photo
from meshdrop.local.resources import create_job_table
from meshdrop.remote.client import Remote, discover
from meshdrop_contract import JobOptions, JobState, job_id_for, job_pk, parse_source_key
from meshdrop_contract.events import now_iso
from meshdrop_contract.jobs import (
    GSI_BY_SOURCE_PK,
    GSI_BY_SOURCE_SK,
    GSI_BY_STATE_PK,
    GSI_BY_STATE_SK,
    TABLE_PK,
)
from meshdrop_contract.wiring import (
    STACK_OUTPUT_BUCKET,
    STACK_OUTPUT_TABLE,
    STACK_OUTPUT_TOPIC,
)

REGION = "us-east-1"


@dataclass
class FakeStack:
    name: str
    bucket: str
    table: str
    topic_arn: str


def deploy_fake_stack(endpoint: str) -> FakeStack:
    """Bucket, job table and topic, found through a CloudFormation stack's outputs."""
    name = f"meshdrop-{uuid.uuid4().hex[:10]}"
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=endpoint)
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    create_job_table(boto3.client("dynamodb", region_name=REGION, endpoint_url=endpoint), name)
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {
            STACK_OUTPUT_BUCKET: {"Value": name},
            STACK_OUTPUT_TABLE: {"Value": name},
            STACK_OUTPUT_TOPIC: {"Value": {"Ref": "Topic"}},
        },
    }
    cfn = boto3.client("cloudformation", region_name=REGION, endpoint_url=endpoint)
    cfn.create_stack(StackName=name, TemplateBody=json.dumps(template))
    outputs = cfn.describe_stacks(StackName=name)["Stacks"][0]["Outputs"]
    topic = next(o["OutputValue"] for o in outputs if o["OutputKey"] == STACK_OUTPUT_TOPIC)
    return FakeStack(name=name, bucket=name, table=name, topic_arn=topic)


class SimulatedPipeline:
    """Plays ingest + generator + state function for the first upload it sees, one stage per
    :meth:`step`; the smoke test's own sleeps drive it, so no test waits for real time."""

    def __init__(self, endpoint: str, stack: FakeStack, outcome: JobState) -> None:
        self.stack = stack
        self.outcome = outcome
        self.s3 = boto3.client("s3", region_name=REGION, endpoint_url=endpoint)
        dynamodb: Any = boto3.resource("dynamodb", region_name=REGION, endpoint_url=endpoint)
        self.table = dynamodb.Table(stack.table)
        self.sns = boto3.client("sns", region_name=REGION, endpoint_url=endpoint)
        self.job: tuple[str, str] | None = None  # (job id, key) once the upload is seen
        self.stage = 0
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        """What the smoke test calls between polls: time passes and the pipeline moves on."""
        self.now += seconds
        self.step()

    def step(self) -> None:
        if self.job is None:
            listed = self.s3.list_object_versions(
                Bucket=self.stack.bucket, Prefix="images/uploaded/smoke/"
            )
            versions = listed.get("Versions", [])
            if not versions:
                return
            key = versions[0]["Key"]
            self.job = (job_id_for(self.stack.bucket, key, versions[0]["VersionId"]), key)
        job_id, key = self.job
        stages = (JobState.ACCEPTED, JobState.RUNNING)
        if self.stage < len(stages):
            self.record(job_id, key, stages[self.stage])
        elif self.stage == len(stages):
            self.finish(job_id, key)
        self.stage += 1

    def record(self, job_id: str, key: str, state: JobState, **attrs: Any) -> None:
        stamp = now_iso()
        self.table.put_item(
            Item={
                TABLE_PK: job_pk(job_id),
                "job_id": job_id,
                GSI_BY_STATE_PK: state.value,
                GSI_BY_STATE_SK: stamp,
                GSI_BY_SOURCE_PK: key,
                GSI_BY_SOURCE_SK: stamp,
                "bucket": self.stack.bucket,
                "asset_key": parse_source_key(key).asset_key(),
                "options": JobOptions().to_dict(),
                **attrs,
            }
        )

    def finish(self, job_id: str, key: str) -> None:
        asset_key = parse_source_key(key).asset_key()
        if self.outcome is JobState.SUCCEEDED:
            body = trimesh.creation.box().export(file_type="glb")
            self.s3.put_object(Bucket=self.stack.bucket, Key=asset_key, Body=body)
            self.record(job_id, key, JobState.SUCCEEDED, metrics={"device": "cuda"}, seconds=1)
        else:
            self.record(
                job_id, key, JobState.FAILED, error="CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY"
            )
        message = {"job_id": job_id, "state": self.outcome.value, "asset_key": asset_key}
        self.sns.publish(TopicArn=self.stack.topic_arn, Message=json.dumps(message))


def connect(stack: FakeStack) -> Remote:
    cfn = boto3.client("cloudformation", region_name=REGION)
    return Remote(discover(cfn, stack=stack.name, env={}))


def test_samples_are_bundled_and_found_by_name() -> None:
    assert sample_photo("mug") == SAMPLES_DIR / "mug.jpg"
    assert {p.stem for p in SAMPLES_DIR.glob("*.jpg")} >= {"mug", "box", "bottle", "vase"}


def test_smoke_sees_states_asset_and_notification(aws_env: str) -> None:
    stack = deploy_fake_stack(aws_env)
    pipeline = SimulatedPipeline(aws_env, stack, JobState.SUCCEEDED)
    said: list[str] = []
    report = run_smoke(
        connect(stack), sample_photo("mug"), timeout=30, interval=0.1, grace=10,
        clock=pipeline.clock, sleep=pipeline.sleep, say=said.append,
    )  # fmt: skip
    assert report.ok, report.to_json()
    assert report.key.startswith("images/uploaded/smoke/") and report.key.endswith("-mug.jpg")
    seen = [s for s, _ in report.states]
    assert seen[-1] == "SUCCEEDED"
    assert "RUNNING" in seen
    times = [t for _, t in report.states]
    assert times == sorted(times)
    assert report.asset is not None and report.asset["bytes"] > 100
    assert report.notification is not None
    assert report.notification["job_id"] == report.job_id
    assert report.notification_seconds is not None
    assert report.notification_seconds <= report.total_seconds
    lines = describe(report)
    assert lines[0].endswith("SUCCEEDED")
    assert "device: cuda" in lines
    assert lines[-1].endswith("OK")
    assert said[0].startswith(f"uploaded s3://{stack.bucket}/images/uploaded/smoke/")
    # The temporary queue and subscription are gone again.
    sns = boto3.client("sns", region_name=REGION)
    assert sns.list_subscriptions_by_topic(TopicArn=stack.topic_arn)["Subscriptions"] == []
    sqs = boto3.client("sqs", region_name=REGION)
    urls = sqs.list_queues(QueueNamePrefix="meshdrop-smoke-").get("QueueUrls", [])
    assert urls == []


def test_a_failed_job_fails_the_smoke_test_with_its_reason(
    aws_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = deploy_fake_stack(aws_env)
    pipeline = SimulatedPipeline(aws_env, stack, JobState.FAILED)
    monkeypatch.setattr(remote_jobs, "CLOCK", remote_jobs.Clock(pipeline.clock, pipeline.sleep))
    result = CliRunner().invoke(
        app, ["smoke", "--stack", stack.name, "--interval", "0.1", "--timeout", "30"]
    )
    assert result.exit_code == 1, result.output
    assert "FAILED" in result.output
    assert "error: CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY" in result.output


def test_no_job_record_times_out(aws_env: str) -> None:
    stack = deploy_fake_stack(aws_env)
    pipeline = SimulatedPipeline(aws_env, stack, JobState.SUCCEEDED)
    report = run_smoke(
        connect(stack), sample_photo("box"), timeout=0.5, interval=0.1, notify=False,
        clock=pipeline.clock, sleep=lambda s: setattr(pipeline, "now", pipeline.now + s),
        say=lambda _: None,
    )  # fmt: skip
    assert not report.ok
    assert report.problem == "no final state within 0.5s"
    assert describe(report)[0].endswith("no record")
