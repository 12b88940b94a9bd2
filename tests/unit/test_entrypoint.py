"""The container entrypoint on a mocked account, with the real generator.

Each test runs a job through :func:`gpu_container.entrypoint.run_job` (or ``main``) against
moto's S3 and EventBridge; the events the job emits are read back from an SQS queue behind a
bus rule, so what is asserted is what a subscriber would receive.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import jsonschema
import pytest
import trimesh
from botocore.exceptions import ClientError
from PIL import Image

from gpu_container import entrypoint
from gpu_container.job.events import EventEmitter, ProgressReporter
from gpu_container.job.failures import TransientError, is_transient
from gpu_container.job.run import run_job
from gpu_container.job.storage import CONTENT_TYPES, resolve_weights
from gpu_container.meshgen import Generator
from meshdrop.local.resources import JOB_ATTEMPTS
from meshdrop.local.runner import retry_action
from meshdrop_contract import (
    AssetFormat,
    DetailType,
    ExitCode,
    JobOptions,
    JobSpec,
    Preset,
    Stage,
    job_id_for,
    schema,
)
from meshdrop_contract.jobs import (
    ASSET_META_GENERATOR,
    ASSET_META_JOB_ID,
    ASSET_META_PRESET,
    ASSET_META_SOURCE_ETAG,
    ASSET_META_SOURCE_KEY,
    ASSET_META_SOURCE_SHA256,
    ENV_EVENT_BUS,
)
from tests.helpers.account import Account, mocked_account
from tests.helpers.gltf import assert_valid_gltf
from tests.helpers.photos import make_photo

REGION = "us-east-1"
BUCKET = "meshdrop-entrypoint-test"
BUS = "meshdrop-test-bus"
FAST = JobOptions(preset=Preset.FAST)


@pytest.fixture
def account(monkeypatch: pytest.MonkeyPatch) -> Iterator[Account]:
    with mocked_account(monkeypatch, bucket=BUCKET, bus=BUS) as mocked:
        yield mocked


@pytest.fixture(scope="module")
def generator() -> Generator:
    return Generator.from_pretrained(None)


def _upload(account: Account, key: str, data: bytes) -> JobSpec:
    response = account.s3.put_object(Bucket=BUCKET, Key=key, Body=data)
    version = response["VersionId"]
    return JobSpec(
        job_id=job_id_for(BUCKET, key, version),
        bucket=BUCKET,
        source_key=key,
        options=FAST,
        source_version=version,
    )


def _validate(event: dict[str, Any]) -> None:
    jsonschema.validate(event["detail"], schema(DetailType(event["detail-type"])))


def _terminal(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    finals = {DetailType.SUCCEEDED.value, DetailType.FAILED.value}
    return [e for e in events if e["detail-type"] in finals]


def test_success_uploads_asset_with_provenance_and_emits_one_terminal_event(
    account: Account, generator: Generator
) -> None:
    photo = make_photo("mug", background="gradient", shadow=True, jpeg_quality=90)
    spec = _upload(account, "images/uploaded/kitchen/mug.jpg", photo.data)

    outcome = run_job(
        spec,
        s3=account.s3,
        events=account.events,
        bus=BUS,
        generator_loader=lambda: generator,
        attempt=2,
        progress_interval_s=0.0,
    )

    assert outcome.exit_code == ExitCode.OK
    asset = account.s3.get_object(Bucket=BUCKET, Key="3d_assets/uploaded/kitchen/mug.glb")
    assert asset["ContentType"] == CONTENT_TYPES[AssetFormat.GLB] == "model/gltf-binary"
    meta = asset["Metadata"]
    source = account.s3.head_object(Bucket=BUCKET, Key=spec.source_key)
    assert meta[ASSET_META_JOB_ID] == spec.job_id
    assert meta[ASSET_META_SOURCE_KEY] == spec.source_key
    assert meta[ASSET_META_SOURCE_ETAG] == source["ETag"].strip('"')
    assert meta[ASSET_META_SOURCE_SHA256] == hashlib.sha256(photo.data).hexdigest()
    assert meta[ASSET_META_PRESET] == "fast"
    assert meta[ASSET_META_GENERATOR]
    glb = asset["Body"].read()
    assert_valid_gltf(glb)
    mesh = trimesh.load(io.BytesIO(glb), file_type="glb", force="mesh")
    assert len(mesh.faces) > 100

    thumb = account.s3.get_object(Bucket=BUCKET, Key="3d_assets/uploaded/kitchen/mug.thumb.png")
    assert thumb["ContentType"] == "image/png"
    assert Image.open(io.BytesIO(thumb["Body"].read())).size[0] > 0

    received = account.received()
    for event in received:
        _validate(event)
    progress = [e["detail"] for e in received if e["detail-type"] == DetailType.PROGRESS]
    stages = list(dict.fromkeys(d["stage"] for d in progress))
    assert stages == [s.value for s in Stage]
    assert all(d["attempt"] == 2 for d in progress)
    values = [d["progress"] for d in progress]
    assert values == sorted(values) and values[-1] == 1.0
    (final,) = _terminal(received)
    assert final["detail-type"] == DetailType.SUCCEEDED
    detail = final["detail"]
    assert detail["asset_key"] == "3d_assets/uploaded/kitchen/mug.glb"
    assert detail["thumbnail_key"] == "3d_assets/uploaded/kitchen/mug.thumb.png"
    assert detail["bytes"] == len(glb)
    assert detail["faces"] == len(mesh.faces)
    assert {"background", "reconstruct", "export", "upload"} <= set(detail["timings"])


def test_bad_input_exits_65_with_one_failed_event_and_is_never_retried(
    account: Account, generator: Generator
) -> None:
    spec = _upload(account, "images/uploaded/blank.png", _blank_png())
    outcome = run_job(
        spec, s3=account.s3, events=account.events, bus=BUS, generator_loader=lambda: generator
    )

    assert outcome.exit_code == ExitCode.BAD_INPUT == 65
    (final,) = _terminal(account.received())
    _validate(final)
    assert final["detail-type"] == DetailType.FAILED
    assert final["detail"]["error_kind"] == "bad_input"
    assert final["detail"]["exit_code"] == 65
    assert final["detail"]["reason"]
    assert "Contents" not in account.s3.list_objects_v2(Bucket=BUCKET, Prefix="3d_assets/")
    # The job definition's retry strategy (as the stack and the local runner apply it).
    strategy = _local_retry_strategy()
    assert retry_action(strategy, 65, "Essential container in task exited") == "EXIT"
    assert retry_action(strategy, 75, "Essential container in task exited") == "RETRY"


def test_changed_source_is_bad_input(account: Account, generator: Generator) -> None:
    photo = make_photo("box", jpeg_quality=90)
    spec = _upload(account, "images/uploaded/box.jpg", photo.data)
    tampered = JobSpec(
        job_id=spec.job_id,
        bucket=BUCKET,
        source_key=spec.source_key,
        options=FAST,
        source_version=spec.source_version,
        source_sha256="0" * 64,
    )
    outcome = run_job(
        tampered, s3=account.s3, events=account.events, bus=BUS, generator_loader=lambda: generator
    )
    assert outcome.exit_code == ExitCode.BAD_INPUT
    assert "SHA-256" in outcome.detail["reason"]


def test_quality_gate_exits_66(account: Account) -> None:
    strict = Generator.from_pretrained(None, config=Generator.Config(min_iou=1.0))
    spec = _upload(account, "images/uploaded/mug.jpg", make_photo("mug", jpeg_quality=90).data)
    outcome = run_job(
        spec, s3=account.s3, events=account.events, bus=BUS, generator_loader=lambda: strict
    )
    assert outcome.exit_code == ExitCode.QUALITY == 66
    (final,) = _terminal(account.received())
    _validate(final)
    assert final["detail"]["error_kind"] == "quality"
    assert final["detail"]["metrics"]


@pytest.mark.slow
def test_s3_throttling_is_transient_without_terminal_event(
    account: Account, generator: Generator
) -> None:
    spec = _upload(account, "images/uploaded/mug.jpg", make_photo("mug", jpeg_quality=90).data)

    def slow_down(**_: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "SlowDown"}, "ResponseMetadata": {"HTTPStatusCode": 503}},
            "PutObject",
        )

    account.s3.meta.events.register("before-call.s3.PutObject", slow_down)
    outcome = run_job(
        spec, s3=account.s3, events=account.events, bus=BUS, generator_loader=lambda: generator
    )
    assert outcome.exit_code == ExitCode.TRANSIENT == 75
    assert outcome.detail_type is None
    assert _terminal(account.received()) == []
    assert retry_action(_local_retry_strategy(), 75, "") == "RETRY"


@pytest.mark.slow
def test_put_events_failed_entries_are_transient(account: Account, generator: Generator) -> None:
    spec = _upload(account, "images/uploaded/mug.jpg", make_photo("mug", jpeg_quality=90).data)
    calls: list[int] = []

    def throttled(**_: Any) -> tuple[Any, dict[str, Any]]:
        # PutEvents reports throttling per entry, with HTTP 200.
        calls.append(1)
        return SimpleNamespace(status_code=200), {
            "FailedEntryCount": 1,
            "Entries": [{"ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded"}],
        }

    account.events.meta.events.register("before-call.events.PutEvents", throttled)
    emitter = EventEmitter(account.events, BUS, spec, tries=2)
    with pytest.raises(TransientError):
        emitter.emit(DetailType.PROGRESS, emitter.detail(None, stage="download", progress=0.0))
    assert len(calls) == 2
    outcome = run_job(
        spec, s3=account.s3, events=account.events, bus=BUS, generator_loader=lambda: generator
    )
    assert outcome.exit_code == ExitCode.TRANSIENT


def test_crash_is_internal_with_failed_event(account: Account) -> None:
    spec = _upload(account, "images/uploaded/mug.jpg", make_photo("mug", jpeg_quality=90).data)

    def broken_loader() -> Generator:
        raise RuntimeError("model file is corrupt")

    outcome = run_job(
        spec, s3=account.s3, events=account.events, bus=BUS, generator_loader=broken_loader
    )
    assert outcome.exit_code == ExitCode.INTERNAL == 70
    (final,) = _terminal(account.received())
    assert final["detail"]["error_kind"] == "internal"
    assert "model file is corrupt" in final["detail"]["reason"]


def test_missing_source_is_bad_input(account: Account, generator: Generator) -> None:
    spec = JobSpec(job_id="a" * 32, bucket=BUCKET, source_key="images/uploaded/gone.jpg")
    outcome = run_job(
        spec, s3=account.s3, events=account.events, bus=BUS, generator_loader=lambda: generator
    )
    assert outcome.exit_code == ExitCode.BAD_INPUT


def test_main_reads_the_job_from_the_environment(
    account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _upload(account, "images/uploaded/blank.png", _blank_png())
    env = {**spec.to_env(), ENV_EVENT_BUS: BUS, "AWS_BATCH_JOB_ATTEMPT": "1"}
    monkeypatch.setattr(entrypoint, "load_generator", lambda _w: Generator.from_pretrained(None))
    assert entrypoint.main(env) == ExitCode.BAD_INPUT
    assert entrypoint.main({ENV_EVENT_BUS: BUS}) == ExitCode.INTERNAL  # no job in env


def test_weights_are_downloaded_from_s3_once(
    account: Account, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    account.s3.put_object(Bucket=BUCKET, Key="weights/v1/config.json", Body=b"{}")
    account.s3.put_object(Bucket=BUCKET, Key="weights/v1/sub/model.pt", Body=b"abc")
    path = resolve_weights(f"s3://{BUCKET}/weights/v1", account.s3)
    assert path is not None and (path / "sub" / "model.pt").read_bytes() == b"abc"
    account.s3.delete_object(Bucket=BUCKET, Key="weights/v1/config.json")
    assert resolve_weights(f"s3://{BUCKET}/weights/v1", account.s3) == path  # cached
    with pytest.raises(FileNotFoundError):
        resolve_weights(f"s3://{BUCKET}/nothing/", account.s3)
    with pytest.raises(ValueError, match="s3://"):
        resolve_weights("https://example.com/w", account.s3)
    assert resolve_weights(None) is None


def test_progress_is_monotonic_and_rate_limited() -> None:
    sent: list[tuple[str, float]] = []

    class Recorder(EventEmitter):
        def __init__(self) -> None:
            spec = JobSpec(job_id="b" * 32, bucket=BUCKET, source_key="images/uploaded/a.jpg")
            super().__init__(None, BUS, spec)

        def emit(self, detail_type: DetailType, detail: dict[str, Any]) -> None:
            sent.append((detail["stage"], detail["progress"]))

    now = [0.0]
    reporter = ProgressReporter(
        Recorder(), "3d_assets/uploaded/a.glb", 1, min_interval_s=1.0, clock=lambda: now[0]
    )
    reporter(Stage.DOWNLOAD, 0.0)
    reporter(Stage.DOWNLOAD, 0.05)  # same stage, too soon: dropped
    now[0] = 2.0
    reporter(Stage.BACKGROUND, 0.1)
    reporter(Stage.RECONSTRUCT, 0.05)  # a lower value never moves the bar back
    now[0] = 3.5
    assert reporter.finish() == {"download": 2.0, "background": 0.0, "reconstruct": 1.5}
    assert sent == [("download", 0.0), ("background", 0.1), ("reconstruct", 0.1)]


def test_transient_classification() -> None:
    throttled = ClientError({"Error": {"Code": "ThrottlingException"}}, "PutEvents")
    denied = ClientError(
        {"Error": {"Code": "AccessDenied"}, "ResponseMetadata": {"HTTPStatusCode": 403}}, "Get"
    )
    assert is_transient(throttled)
    assert is_transient(MemoryError())
    assert is_transient(ConnectionResetError(104, "reset"))
    assert not is_transient(denied)
    assert not is_transient(ValueError("bug"))


def _local_retry_strategy() -> dict[str, Any]:
    strategy = {
        "attempts": JOB_ATTEMPTS,
        "evaluateOnExit": [
            {"onExitCode": str(ExitCode.TRANSIENT), "action": "RETRY"},
            {"onExitCode": "*", "action": "EXIT"},
        ],
    }
    return strategy


def _blank_png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (200, 160), (235, 235, 235)).save(buf, "PNG")
    return buf.getvalue()
