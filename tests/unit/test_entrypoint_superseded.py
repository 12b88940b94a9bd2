"""The generator writes the asset only while its job is still the key's current photo.

A stub generator stands in for the model and, while it "runs", plays what happens in the
meantime on S3 (a newer upload of the same key, a delete), so each test shows the conditional
check at the end of the job: newest photo wins, an older job never overwrites its asset.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import jsonschema
import pytest
from botocore.exceptions import ClientError

from gpu_container.job.run import run_job
from gpu_container.job.spec import read_context
from meshdrop.local.resources import JOB_RETRY_STRATEGY
from meshdrop.local.runner import retry_action
from meshdrop_contract import DetailType, ExitCode, JobOptions, JobSpec, Preset, job_id_for, schema
from meshdrop_contract.jobs import ENV_EVENT_BUS
from tests.helpers.account import Account, mocked_account

REGION = "us-east-1"
BUCKET = "meshdrop-superseded-test"
BUS = "meshdrop-test-bus"
KEY = "images/uploaded/mug.jpg"


class StubGenerator:
    """Returns a fixed "asset"; ``meanwhile`` runs while it generates (the minutes a job takes)."""

    def __init__(self, meanwhile: Callable[[], None] = lambda: None) -> None:
        self.meanwhile = meanwhile

    def generate(self, source: bytes, options: JobOptions, on_stage: Any = None) -> Any:
        self.meanwhile()
        provenance = SimpleNamespace(to_metadata=lambda: {}, to_dict=lambda: {"model": "stub"})
        return SimpleNamespace(
            data=b"glTF-from-" + source,
            thumbnail_png=b"\x89PNG-thumb",
            provenance=provenance,
            faces=12,
            vertices=8,
            timings={},
            metrics={"watertight": True},
        )


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Account]:
    # Unversioned at first: some tests turn versioning on, as a deployed bucket has it.
    with mocked_account(monkeypatch, bucket=BUCKET, bus=BUS, versioned=False) as mocked:
        yield mocked


def _versioned(aws: Account) -> None:
    aws.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})


def _spec(version: str) -> JobSpec:
    return JobSpec(
        job_id=job_id_for(BUCKET, KEY, version),
        bucket=BUCKET,
        source_key=KEY,
        options=JobOptions(preset=Preset.FAST),
        source_version=version,
    )


def _exists(aws: Account, key: str) -> bool:
    try:
        aws.s3.head_object(Bucket=BUCKET, Key=key)
    except ClientError:
        return False
    return True


def _run(aws: Account, spec: JobSpec, generator: StubGenerator, **kw: Any) -> Any:
    return run_job(
        spec,
        s3=aws.s3,
        events=aws.events,
        bus=BUS,
        generator_loader=lambda: generator,
        progress_interval_s=0.0,
        **kw,
    )


def _terminal(aws: Account) -> list[dict[str, Any]]:
    finals = {DetailType.SUCCEEDED.value, DetailType.FAILED.value, DetailType.SUPERSEDED.value}
    return [e for e in aws.received() if e["detail-type"] in finals]


def test_newer_upload_during_the_job_keeps_its_asset(aws: Account) -> None:
    _versioned(aws)
    old = aws.s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"old photo")["VersionId"]
    newer_asset = b"asset of the newer photo"
    spec = _spec(old)

    def newer_upload_lands() -> None:
        aws.s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"new photo")
        aws.s3.put_object(Bucket=BUCKET, Key=spec.asset_key, Body=newer_asset)

    outcome = _run(aws, spec, StubGenerator(newer_upload_lands))

    assert outcome.exit_code == ExitCode.SUPERSEDED == 67
    assert outcome.detail_type is DetailType.SUPERSEDED
    body = aws.s3.get_object(Bucket=BUCKET, Key=spec.asset_key)["Body"].read()
    assert body == newer_asset  # the newest photo's asset is intact
    assert not _exists(aws, spec.thumbnail_key)
    (event,) = _terminal(aws)
    assert event["detail-type"] == "Job Superseded"
    assert "newer upload" in event["detail"]["reason"]
    jsonschema.validate(event["detail"], schema(DetailType.SUPERSEDED))


def test_delete_during_the_job_writes_nothing(aws: Account) -> None:
    _versioned(aws)
    version = aws.s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"photo")["VersionId"]
    spec = _spec(version)
    outcome = _run(aws, spec, StubGenerator(lambda: aws.s3.delete_object(Bucket=BUCKET, Key=KEY)))
    assert outcome.exit_code == ExitCode.SUPERSEDED
    assert "deleted" in outcome.detail["reason"]
    assert not _exists(aws, spec.asset_key)


def test_etag_recorded_on_an_unversioned_bucket(aws: Account) -> None:
    etag = aws.s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"old")["ETag"].strip('"')
    spec = _spec(etag)
    outcome = _run(
        aws, spec, StubGenerator(lambda: aws.s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"new"))
    )
    assert outcome.exit_code == ExitCode.SUPERSEDED
    assert not _exists(aws, spec.asset_key)


def test_current_job_succeeds_with_batch_origin_and_device_facts(aws: Account) -> None:
    _versioned(aws)
    version = aws.s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"photo")["VersionId"]
    spec = _spec(version)
    device = {"device": "cpu", "reason": "torch not installed"}
    outcome = _run(aws, spec, StubGenerator(), attempt=2, batch_job_id="b-123", device=device)
    assert outcome.exit_code == ExitCode.OK
    assert _exists(aws, spec.asset_key) and _exists(aws, spec.thumbnail_key)
    events = aws.received()
    assert events and all(e["detail"]["batch_job_id"] == "b-123" for e in events)
    assert all(e["detail"]["attempt"] == 2 for e in events)
    (final,) = [e for e in events if e["detail-type"] == DetailType.SUCCEEDED.value]
    assert final["detail"]["metrics"]["device"] == device
    assert final["detail"]["metrics"]["watertight"] is True


def test_events_outside_batch_carry_no_batch_origin(aws: Account) -> None:
    version = aws.s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"photo").get("ETag", "")
    outcome = _run(aws, _spec(version.strip('"')), StubGenerator())
    assert outcome.exit_code == ExitCode.OK
    assert all("batch_job_id" not in e["detail"] for e in aws.received())


def test_batch_environment_gives_the_job_its_origin() -> None:
    spec = _spec("v1")
    env = {**spec.to_env(), ENV_EVENT_BUS: BUS, "AWS_BATCH_JOB_ID": "j-1"}
    context = read_context({**env, "AWS_BATCH_JOB_ATTEMPT": "3"})
    assert (context.batch_job_id, context.attempt, context.bus) == ("j-1", 3, BUS)
    assert read_context({**env, "AWS_BATCH_JOB_ATTEMPT": "x"}).attempt == 1
    assert read_context({**spec.to_env(), ENV_EVENT_BUS: BUS}).batch_job_id is None


def test_superseded_exit_is_never_retried() -> None:
    strategy = JOB_RETRY_STRATEGY
    assert retry_action(strategy, ExitCode.SUPERSEDED, "Essential container in task exited") == (
        "EXIT"
    )
    assert retry_action(strategy, ExitCode.TRANSIENT, "") == "RETRY"
