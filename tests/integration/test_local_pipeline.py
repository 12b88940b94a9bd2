"""End to end on the embedded AWS: S3 -> SQS -> ingest -> Batch (local runner) -> events ->
state -> SNS, with the real handlers and the real generator in a subprocess."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
import trimesh

from meshdrop.local.pipeline import LocalPipeline
from meshdrop.local.runner import retry_action
from meshdrop_contract import BATCH_DETAIL_TYPE, ExitCode, JobOptions, JobState, Preset
from tests.helpers.gltf import assert_valid_gltf
from tests.helpers.photos import make_photo

pytestmark = pytest.mark.slow


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_two_photos_and_a_bad_file(tmp_path: Path) -> None:
    mug = _write(tmp_path / "mug.jpg", make_photo("mug", shadow=True, jpeg_quality=90).data)
    bottle = _write(tmp_path / "bottle shot.png", make_photo("bottle", background="gradient").data)
    bad = _write(tmp_path / "notes.jpg", b"these are notes, not a photo\n" * 20)
    out = tmp_path / "out"

    with LocalPipeline(work_dir=tmp_path / "work") as pipeline:
        keys = [pipeline.upload(f, JobOptions(preset=Preset.FAST)) for f in (mug, bottle, bad)]
        reports = pipeline.run_until_done(timeout_s=300)
        pipeline.download(reports, out)
        by_key = {r.key: r for r in reports}
        records = {k: pipeline.record_for(k) for k in keys}
        runs = list(pipeline.runner.runs.values())
        delivered = list(pipeline.state_pump.delivered)
        notifications = list(pipeline.notifications)
        dlq = pipeline.sqs.receive_message(QueueUrl=pipeline.resources.ingest_dlq_url)

    assert [by_key[k].status for k in keys] == ["SUCCEEDED", "SUCCEEDED", "REJECTED"], reports
    for key, stem in ((keys[0], "mug"), (keys[1], "bottle shot")):
        report = by_key[key]
        assert report.asset_key == f"3d_assets/uploaded/{stem}.glb"
        local = out / report.asset_key
        assert report.local_asset == str(local.resolve())
        assert_valid_gltf(local)
        mesh = trimesh.load(local, force="mesh")
        assert len(mesh.faces) > 100 and mesh.is_watertight
        assert (out / f"3d_assets/uploaded/{stem}.thumb.png").stat().st_size > 0
        assert records[key]["state"] == JobState.SUCCEEDED
        assert report.seconds is not None and report.seconds > 0

    rejected = by_key[keys[2]]
    assert rejected.error and rejected.error_kind == "bad_input"
    assert rejected.asset_key is None and not (out / "3d_assets/uploaded/notes.glb").exists()

    # Batch ran exactly the two good photos, once each, and said so on the default bus.
    assert sorted(r.status for r in runs) == ["SUCCEEDED", "SUCCEEDED"]
    assert all(len(r.attempts) == 1 and r.exit_code == ExitCode.OK for r in runs)
    batch_states = [
        e["detail"]["status"] for e in delivered if e["detail-type"] == BATCH_DETAIL_TYPE
    ]
    assert batch_states.count("RUNNING") == 2 and batch_states.count("SUCCEEDED") == 2

    # One notification per finished job, each naming its own job.
    assert len(notifications) == 3
    job_ids = [records[k]["job_id"] for k in keys]
    for job_id in job_ids:
        assert sum(job_id in n["body"] for n in notifications) == 1, (job_id, notifications)
    assert "Messages" not in dlq


def _register(pipeline: LocalPipeline, command: list[str]) -> tuple[Any, str, str]:
    """A job definition running ``command`` with the stack's retry strategy."""
    assert pipeline.resources is not None
    batch = boto3.client("batch")
    definition = batch.register_job_definition(
        jobDefinitionName="flaky",
        type="container",
        containerProperties={"image": "x", "command": command, "vcpus": 1, "memory": 128},
        retryStrategy={
            "attempts": 3,
            "evaluateOnExit": [
                {"onExitCode": str(ExitCode.TRANSIENT), "action": "RETRY"},
                {"onExitCode": "*", "action": "EXIT"},
            ],
        },
        timeout={"attemptDurationSeconds": 60},
    )["jobDefinitionArn"]
    return batch, pipeline.resources.job_queue_arn, definition


@pytest.mark.parametrize(
    ("exits", "status", "attempts"),
    [((75, 75, 0), "SUCCEEDED", 3), ((75, 65), "FAILED", 2), ((75, 75, 75), "FAILED", 3)],
)
def test_runner_applies_the_retry_strategy(
    tmp_path: Path, exits: tuple[int, ...], status: str, attempts: int
) -> None:
    # The attempt number picks the exit code: AWS_BATCH_JOB_ATTEMPT is set per attempt.
    script = (
        "import os, sys; "
        f"codes = {list(exits)!r}; "
        "sys.exit(codes[int(os.environ['AWS_BATCH_JOB_ATTEMPT']) - 1])"
    )
    with LocalPipeline(work_dir=tmp_path) as pipeline:
        batch, queue_arn, definition = _register(pipeline, ["python", "-c", script])
        batch.submit_job(
            jobName="meshdrop-" + "c" * 32, jobQueue=queue_arn, jobDefinition=definition
        )
        assert pipeline.runner.poll() == 1
        pipeline.runner.wait(timeout=120)
        (run,) = pipeline.runner.runs.values()
        while pipeline.state_pump.pump_once():
            pass
        events = [e["detail"] for e in pipeline.state_pump.delivered if e["source"] == "aws.batch"]
    assert run.status == status
    assert [a.exit_code for a in run.attempts] == list(exits)[:attempts]
    assert [e["status"] for e in events].count("RUNNING") == attempts
    final = events[-1]
    assert final["status"] == status and len(final["attempts"]) == attempts
    assert final["jobQueue"] == queue_arn
    assert final["container"]["exitCode"] == run.exit_code


def test_runner_kills_an_attempt_past_its_timeout(tmp_path: Path) -> None:
    with LocalPipeline(work_dir=tmp_path) as pipeline:
        batch, queue_arn, definition = _register(
            pipeline, ["python", "-c", "import time; time.sleep(60)"]
        )
        batch.submit_job(
            jobName="meshdrop-" + "d" * 32,
            jobQueue=queue_arn,
            jobDefinition=definition,
            timeout={"attemptDurationSeconds": 1},
            retryStrategy={"attempts": 1},
        )
        pipeline.runner.poll()
        pipeline.runner.wait(timeout=30)
        (run,) = pipeline.runner.runs.values()
    assert run.status == "FAILED"
    assert run.attempts[0].exit_code is None
    assert "timeout" in run.attempts[0].status_reason
    assert json.dumps(run.attempts[0].as_batch())  # Batch-shaped and serialisable


def test_retry_action_follows_batch_rules() -> None:
    rules = {
        "evaluateOnExit": [
            {"onStatusReason": "Host EC2*", "action": "RETRY"},
            {"onExitCode": "6?", "action": "EXIT"},
        ]
    }
    assert retry_action(rules, None, "Host EC2 (instance i-1) terminated.") == "RETRY"
    assert retry_action(rules, 65, "Essential container in task exited") == "EXIT"
    assert retry_action(rules, 1, "Essential container in task exited") == "RETRY"  # no match
    assert retry_action(None, 1, "") == "RETRY"
