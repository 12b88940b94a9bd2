"""The remote commands against a moto server: upload, status, ls, history, get, errors.

A real HTTP moto server (not in-process mocking) because ``get`` downloads through presigned
URLs with urllib, exactly as it does against AWS. Job records are written the way the state
function writes them (the contract's attribute and index names), so these tests pin the
reading side of that layout.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
import trimesh
from moto import settings as moto_settings
from PIL import Image
from typer.testing import CliRunner

from meshdrop.cli.remote import app
from meshdrop.cli.remote import jobs as remote_jobs
from meshdrop.local.resources import create_job_table
from meshdrop.remote.client import discover
from meshdrop.remote.errors import RemoteError
from meshdrop_contract import (
    AssetFormat,
    JobOptions,
    JobState,
    Preset,
    job_id_for,
    job_pk,
    parse_source_key,
)
from meshdrop_contract.events import now_iso
from meshdrop_contract.jobs import (
    ASSET_META_JOB_ID,
    ASSET_META_SOURCE_KEY,
    GSI_BY_SOURCE_PK,
    GSI_BY_SOURCE_SK,
    GSI_BY_STATE_PK,
    GSI_BY_STATE_SK,
    TABLE_PK,
)
from meshdrop_contract.wiring import (
    CLI_ENV_BUCKET,
    CLI_ENV_STACK,
    STACK_OUTPUT_BUCKET,
    STACK_OUTPUT_TABLE,
)

REGION = "us-east-1"
runner = CliRunner()


@dataclass
class Stack:
    """A bucket and job table laid out as the deployed stack's, with helpers to fake work."""

    bucket: str
    table: str
    s3: Any
    ddb: Any

    @property
    def flags(self) -> list[str]:
        return ["--bucket", self.bucket, "--table", self.table]

    def put_photo(self, key: str, color: tuple[int, int, int]) -> str:
        """Upload a photo as a person would; returns its job id."""
        response = self.s3.put_object(Bucket=self.bucket, Key=key, Body=_jpeg(color))
        return job_id_for(self.bucket, key, response["VersionId"])

    def record(self, job_id: str, key: str, state: JobState, **attrs: Any) -> dict[str, Any]:
        """Write a job item as the ingest and state functions would."""
        source = parse_source_key(key)
        stamp = attrs.pop("at", now_iso())
        item = {
            TABLE_PK: job_pk(job_id),
            "job_id": job_id,
            GSI_BY_STATE_PK: state.value,
            GSI_BY_SOURCE_PK: key,
            GSI_BY_SOURCE_SK: stamp,
            GSI_BY_STATE_SK: stamp,
            "bucket": self.bucket,
            "asset_key": source.asset_key(),
            "options": JobOptions().to_dict(),
            **attrs,
        }
        self.ddb.Table(self.table).put_item(Item=item)
        return item

    def put_asset(self, job_id: str, key: str, body: bytes) -> str:
        """Write the asset of a finished job (with provenance); returns its version id."""
        source = parse_source_key(key)
        response = self.s3.put_object(
            Bucket=self.bucket,
            Key=source.asset_key(),
            Body=body,
            ContentType="model/gltf-binary",
            Metadata={ASSET_META_JOB_ID: job_id, ASSET_META_SOURCE_KEY: key},
        )
        self.s3.put_object(Bucket=self.bucket, Key=source.thumbnail_key(), Body=_png())
        return response["VersionId"]


def _jpeg(color: tuple[int, int, int]) -> bytes:
    import io

    buffer = io.BytesIO()
    Image.new("RGB", (48, 48), color).save(buffer, "JPEG")
    return buffer.getvalue()


def _png() -> bytes:
    import io

    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 200, 10)).save(buffer, "PNG")
    return buffer.getvalue()


def glb(shape: str) -> bytes:
    """A real GLB mesh (trimesh primitive) to stand in for a generator's output."""
    meshes = {
        "box": trimesh.creation.box,
        "sphere": lambda: trimesh.creation.icosphere(subdivisions=2),
        "cylinder": lambda: trimesh.creation.cylinder(radius=0.5, height=1.0),
    }
    return meshes[shape]().export(file_type="glb")


def make_stack(endpoint: str) -> Stack:
    name = f"meshdrop-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=endpoint)
    ddb = boto3.resource("dynamodb", region_name=REGION, endpoint_url=endpoint)
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    create_job_table(ddb.meta.client, name)
    return Stack(bucket=name, table=name, s3=s3, ddb=ddb)


@pytest.fixture
def stack(aws_env: str) -> Stack:
    return make_stack(aws_env)


def invoke(*args: str) -> Any:
    result = runner.invoke(app, list(args))
    assert "Traceback" not in result.output, result.output
    return result


def invoke_json(*args: str) -> Any:
    result = invoke(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# -- stack discovery --------------------------------------------------------------------------


def test_names_come_from_flags_then_env_then_stack_outputs(stack: Stack) -> None:
    cfn = boto3.client("cloudformation", region_name=REGION)
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {
            STACK_OUTPUT_BUCKET: {"Value": stack.bucket},
            STACK_OUTPUT_TABLE: {"Value": stack.table},
        },
    }
    stack_name = f"md-{uuid.uuid4().hex[:8]}"
    cfn.create_stack(StackName=stack_name, TemplateBody=json.dumps(template))

    names = discover(cfn, stack=stack_name, env={})
    assert (names.bucket, names.table, names.stack) == (stack.bucket, stack.table, stack_name)
    env = {CLI_ENV_BUCKET: "env-bucket", CLI_ENV_STACK: stack_name}
    names = discover(cfn, env=env)
    assert (names.bucket, names.table) == ("env-bucket", stack.table)
    names = discover(cfn, bucket="flag-bucket", env=env)
    assert names.bucket == "flag-bucket"
    # Both given: the stack is not needed, even if it does not exist.
    names = discover(cfn, stack="absent", bucket="b1", table="t1", env={})
    assert (names.bucket, names.table) == ("b1", "t1")
    with pytest.raises(RemoteError, match="stack not found"):
        discover(cfn, stack="absent", env={})

    # The CLI reads the same outputs: ls via --stack only.
    job_id = stack.put_photo("images/uploaded/a.jpg", (1, 2, 3))
    stack.record(job_id, "images/uploaded/a.jpg", JobState.RUNNING)
    listed = invoke_json("ls", "--stack", stack_name)
    assert [j["job_id"] for j in listed] == [job_id]


# -- upload -----------------------------------------------------------------------------------


def test_upload_folder_with_options_as_metadata(stack: Stack, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    (photos / "kitchen").mkdir(parents=True)
    (photos / "kitchen" / "mug.jpg").write_bytes(_jpeg((200, 0, 0)))
    (photos / "vase.PNG").write_bytes(_png())
    (photos / "notes.txt").write_text("not a photo")
    single = tmp_path / "bottle.jpeg"
    single.write_bytes(_jpeg((0, 0, 200)))

    data = invoke_json(
        "upload", str(photos), str(single), "--category", "generated", "--preset", "quality",
        "--format", "obj", "--no-texture", *stack.flags,
    )  # fmt: skip
    assert data["skipped"] == 1
    assert data["rejected"] == []
    by_key = {u["key"]: u for u in data["uploads"]}
    assert set(by_key) == {
        "images/generated/kitchen/mug.jpg",
        "images/generated/vase.PNG",
        "images/generated/bottle.jpeg",
    }
    expected = JobOptions(
        texture=False, format=AssetFormat.OBJ, preset=Preset.QUALITY
    ).to_metadata()
    for key, upload in by_key.items():
        assert upload["error"] is None
        head = stack.s3.head_object(Bucket=stack.bucket, Key=key)
        assert head["Metadata"] == expected
        assert head["ContentType"].startswith("image/")
        # The printed job id is the one the ingest function derives for this version.
        assert upload["job_id"] == job_id_for(stack.bucket, key, head["VersionId"])


def test_upload_reports_every_failure_with_a_reason(stack: Stack, tmp_path: Path) -> None:
    good = tmp_path / "mug.jpg"
    good.write_bytes(_jpeg((9, 9, 9)))
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "readme.md"
    text.write_text("hi")
    result = invoke(
        "upload", str(good), str(empty), str(text), str(tmp_path / "gone.jpg"), *stack.flags
    )
    assert result.exit_code == 1
    assert "uploaded 1" in result.stdout and "3 failed" in result.stdout
    for reason in ("empty file", "not an image extension", "no such file or folder"):
        assert reason in result.stderr.replace("\n", " ") or reason in result.stderr
    listed = stack.s3.list_objects_v2(Bucket=stack.bucket)["Contents"]
    assert [o["Key"] for o in listed] == ["images/uploaded/mug.jpg"]


def test_upload_many_files_in_parallel(stack: Stack, tmp_path: Path) -> None:
    for n in range(60):
        (tmp_path / f"p{n:03d}.png").write_bytes(_png())
    data = invoke_json("upload", str(tmp_path), "--workers", "16", *stack.flags)
    assert len(data["uploads"]) == 60 and all(u["error"] is None for u in data["uploads"])
    assert len({u["job_id"] for u in data["uploads"]}) == 60
    pages = stack.s3.get_paginator("list_objects_v2").paginate(Bucket=stack.bucket)
    assert sum(len(p.get("Contents", [])) for p in pages) == 60


def test_upload_wait_follows_the_jobs_to_the_end(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    photo = tmp_path / "mug.jpg"
    photo.write_bytes(_jpeg((30, 60, 90)))
    key = "images/uploaded/mug.jpg"

    states = iter([JobState.RUNNING, JobState.SUCCEEDED])
    now = [0.0]

    def pipeline_step(seconds: float) -> None:
        """Stands in for ingest and the state function while the CLI waits between polls."""
        now[0] += seconds
        etag = stack.s3.head_object(Bucket=stack.bucket, Key=key)["ETag"].strip('"')
        state = next(states, JobState.SUCCEEDED)
        stack.record(job_id_for(stack.bucket, key, etag), key, state, seconds=Decimal("4.5"))

    monkeypatch.setattr(remote_jobs, "CLOCK", remote_jobs.Clock(lambda: now[0], pipeline_step))
    result = invoke(
        "upload", str(photo), "--wait", "--interval", "2", "--timeout", "30", *stack.flags
    )
    assert result.exit_code == 0, result.output
    assert "SUCCEEDED" in result.stdout and "4.5" in result.stdout
    assert now[0] == 4.0  # two polls: not there yet, RUNNING, then SUCCEEDED


def test_follow_gives_up_at_its_timeout(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    key = "images/uploaded/slow.jpg"
    stack.record("f" * 32, key, JobState.RUNNING)
    now = [0.0]

    def wait(seconds: float) -> None:
        now[0] += seconds

    monkeypatch.setattr(remote_jobs, "CLOCK", remote_jobs.Clock(lambda: now[0], wait))
    result = invoke("watch", key, "--interval", "5", "--timeout", "60", *stack.flags)
    assert result.exit_code == 1
    assert "Gave up after 60 s" in result.stderr
    assert now[0] == 60.0


# -- status / ls / history / get --------------------------------------------------------------


def test_status_of_a_job_a_key_and_the_summary(stack: Stack) -> None:
    key = "images/uploaded/mug.jpg"
    first = stack.put_photo(key, (1, 1, 1))
    stack.record(
        first, key, JobState.SUCCEEDED, at="2026-01-01T00:00:00.000Z", seconds=Decimal("12.5")
    )
    second = stack.put_photo(key, (2, 2, 2))
    stack.record(second, key, JobState.RUNNING, at="2026-01-02T00:00:00.000Z")
    other = stack.put_photo("images/uploaded/bad.jpg", (3, 3, 3))
    stack.record(other, "images/uploaded/bad.jpg", JobState.REJECTED, error="image too small")

    assert invoke_json("status", first, *stack.flags)["seconds"] == 12.5
    # A key means its current version's job, not the older one.
    by_key = invoke_json("status", key, *stack.flags)
    assert (by_key["job_id"], by_key["state"]) == (second, "RUNNING")
    url = f"s3://{stack.bucket}/images/uploaded/bad.jpg"
    assert invoke_json("status", url, *stack.flags)["error"] == "image too small"

    # A superseded job is no error, but the record says why in ``reason``: status shows it.
    old = stack.put_photo("images/uploaded/old.jpg", (5, 5, 5))
    why = "a newer upload of images/uploaded/old.jpg replaced this version"
    stack.record(old, "images/uploaded/old.jpg", JobState.SUPERSEDED, reason=why)
    assert invoke_json("status", old, *stack.flags)["error"] == why

    summary = invoke_json("status", *stack.flags)
    assert summary["counts"] == {
        "ACCEPTED": 0, "SUBMITTED": 0, "RUNNING": 1, "SUCCEEDED": 1, "FAILED": 0, "REJECTED": 1,
        "SUPERSEDED": 1,
    }  # fmt: skip
    assert summary["recent"][-1]["job_id"] == first  # oldest update last

    # Without a version id in the notification (moto, unversioned buckets) the ingest
    # function keys the job on the ETag; a key still finds it.
    etag_key = "images/uploaded/plain.jpg"
    etag = stack.s3.put_object(Bucket=stack.bucket, Key=etag_key, Body=_jpeg((4, 4, 4)))["ETag"]
    by_etag = job_id_for(stack.bucket, etag_key, etag.strip('"'))
    stack.record(by_etag, etag_key, JobState.ACCEPTED)
    assert invoke_json("status", etag_key, *stack.flags)["job_id"] == by_etag

    result = invoke("status", "0" * 32, *stack.flags)
    assert result.exit_code == 1 and "No job record" in result.stderr

    human = invoke("status", first, *stack.flags)
    assert human.exit_code == 0 and "SUCCEEDED" in human.stdout


def test_ls_jobs_by_state_and_assets(stack: Stack) -> None:
    jobs = {}
    for n, state in enumerate([JobState.SUCCEEDED, JobState.SUCCEEDED, JobState.FAILED]):
        key = f"images/uploaded/item{n}.jpg"
        jobs[n] = stack.put_photo(key, (n, n, n))
        stack.record(jobs[n], key, state, at=f"2026-01-0{n + 1}T00:00:00.000Z")
        if state is JobState.SUCCEEDED:
            stack.put_asset(jobs[n], key, glb("box"))
    succeeded = invoke_json("ls", "--state", "SUCCEEDED", *stack.flags)
    assert [j["job_id"] for j in succeeded] == [jobs[1], jobs[0]]  # newest first
    assert [j["job_id"] for j in invoke_json("ls", *stack.flags)] == [jobs[1], jobs[0], jobs[2]]
    assert len(invoke_json("ls", "--state", "SUCCEEDED", "--limit", "1", *stack.flags)) == 1
    assets = invoke_json("ls", "--assets", *stack.flags)
    # Thumbnails sit beside assets but are not assets.
    assert [a["key"] for a in assets] == [
        "3d_assets/uploaded/item0.glb",
        "3d_assets/uploaded/item1.glb",
    ]


def test_history_and_get_every_version(stack: Stack, tmp_path: Path) -> None:
    first_glb, second_glb = glb("box"), glb("sphere")
    key = "images/uploaded/kitchen/mug.jpg"
    asset_key = "3d_assets/uploaded/kitchen/mug.glb"
    first = stack.put_photo(key, (10, 0, 0))
    stack.record(first, key, JobState.SUCCEEDED, at="2026-01-01T00:00:00.000Z")
    v1 = stack.put_asset(first, key, first_glb)
    # Re-uploading the key with a new photo: new S3 version, new job, new asset version.
    second = stack.put_photo(key, (0, 10, 0))
    stack.record(second, key, JobState.SUCCEEDED, at="2026-01-02T00:00:00.000Z")
    v2 = stack.put_asset(second, key, second_glb)

    history = invoke_json("history", key, *stack.flags)
    assert [j["job_id"] for j in history["jobs"]] == [first, second]
    assert [j["asset_version"] for j in history["jobs"]] == [v1, v2]
    assert [(v["version_id"], v["latest"]) for v in history["asset_versions"]] == [
        (v2, True),
        (v1, False),
    ]
    # The asset key and a job id lead to the same history.
    assert invoke_json("history", asset_key, *stack.flags)["source_key"] == key
    assert invoke_json("history", first, *stack.flags)["source_key"] == key

    def get(*args: str) -> bytes:
        out = tmp_path / uuid.uuid4().hex
        result = invoke("get", *args, "-o", str(out), *stack.flags)
        assert result.exit_code == 0, result.output
        path = Path(result.stdout.strip())
        assert path == out / "mug.glb"
        return path.read_bytes()

    assert get(key) == second_glb
    assert get(key, "--version", first) == first_glb  # by the job that wrote it
    assert get(key, "--version", first[:8]) == first_glb
    assert get(f"s3://{stack.bucket}/{asset_key}", "--version", v1) == first_glb
    assert get(second) == second_glb
    # Path-style URL on the (local) endpoint, as a person copies it from a listing.
    endpoint = stack.s3.meta.endpoint_url
    assert get(f"{endpoint}/{stack.bucket}/{asset_key}?versionId={v1}") == first_glb

    result = invoke("get", key, "--version", "nope", "-o", str(tmp_path), *stack.flags)
    assert result.exit_code == 1 and "No version 'nope'" in result.stderr


def test_get_refuses_an_unfinished_or_failed_job(stack: Stack, tmp_path: Path) -> None:
    key = "images/uploaded/cup.jpg"
    done = stack.put_photo(key, (1, 2, 3))
    stack.record(done, key, JobState.SUCCEEDED, at="2026-01-01T00:00:00.000Z")
    stack.put_asset(done, key, glb("cylinder"))
    running = stack.put_photo(key, (3, 2, 1))
    stack.record(running, key, JobState.RUNNING, at="2026-01-02T00:00:00.000Z")
    result = invoke("get", key, "-o", str(tmp_path), *stack.flags)
    # The object at the asset key is the previous upload's; it must not pass as the new one.
    assert result.exit_code == 1 and "RUNNING" in result.stderr and "watch" in result.stderr
    failed = stack.put_photo("images/uploaded/x.jpg", (0, 0, 0))
    stack.record(failed, "images/uploaded/x.jpg", JobState.FAILED, error="no object found")
    result = invoke("get", failed, "-o", str(tmp_path), *stack.flags)
    assert result.exit_code == 1 and "no object found" in result.stderr
    assert not list(tmp_path.iterdir())


def test_watch_returns_when_all_jobs_are_terminal(stack: Stack) -> None:
    key = "images/uploaded/a.jpg"
    ok = stack.put_photo(key, (5, 5, 5))
    stack.record(ok, key, JobState.SUCCEEDED)
    bad = stack.put_photo("images/uploaded/b.jpg", (6, 6, 6))
    stack.record(
        bad, "images/uploaded/b.jpg", JobState.FAILED, error="quality gate [bold]iou 0.2[/bold]"
    )
    result = invoke("watch", ok, *stack.flags, "--interval", "0.1", "--timeout", "5")
    assert result.exit_code == 0, result.output
    result = invoke("watch", ok, bad, *stack.flags, "--interval", "0.1", "--timeout", "5")
    # Markup-like text in an error is shown as is, not swallowed as rich markup.
    assert result.exit_code == 1 and "[bold]iou" in result.stdout and "0.2[/bold]" in result.stdout
    pending = stack.put_photo("images/uploaded/c.jpg", (7, 7, 7))
    stack.record(
        pending,
        "images/uploaded/c.jpg",
        JobState.RUNNING,
        stage="reconstruct",
        progress=Decimal("0.5"),
    )
    result = invoke("watch", pending, *stack.flags, "--interval", "0.1", "--timeout", "0.3")
    assert result.exit_code == 1 and "Gave up" in result.stderr
    assert "reconstruct 50%" in result.stderr


# -- errors people can fix ----------------------------------------------------------------------


def _one_line_error(result: Any, expected: str) -> None:
    assert result.exit_code == 1, result.output
    assert expected in result.stderr
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_missing_credentials(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    _one_line_error(invoke("ls", "--assets", *stack.flags), "No AWS credentials")
    _one_line_error(invoke("status", *stack.flags), "No AWS credentials")
    _one_line_error(invoke("ls"), "No AWS credentials")  # during stack discovery


def test_missing_region(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    _one_line_error(invoke("ls", "--assets", *stack.flags), "No AWS region configured")
    # AWS_REGION alone is enough (botocore itself reads only AWS_DEFAULT_REGION).
    monkeypatch.setenv("AWS_REGION", REGION)
    assert invoke("ls", "--assets", *stack.flags).exit_code == 0


def test_upload_without_credentials_stops_at_once(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for n in range(5):
        (tmp_path / f"{n}.png").write_bytes(_png())
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    _one_line_error(invoke("upload", str(tmp_path), *stack.flags), "No AWS credentials")


def test_missing_bucket_table_and_stack(stack: Stack, tmp_path: Path) -> None:
    absent = ["--bucket", "no-such-bucket-here", "--table", stack.table]
    _one_line_error(invoke("ls", "--assets", *absent), "Bucket does not exist")
    photo = tmp_path / "a.jpg"
    photo.write_bytes(_jpeg((1, 1, 1)))
    _one_line_error(invoke("upload", str(photo), *absent), "Bucket does not exist")
    _one_line_error(
        invoke("ls", "--bucket", stack.bucket, "--table", "no-such-table"), "table not found"
    )
    _one_line_error(invoke("ls", "--stack", "no-such-stack"), "stack not found")
    # A bucket alone works for bucket commands; table commands say what is missing.
    _one_line_error(invoke("ls", "--bucket", stack.bucket, "--stack", "nope"), "No job table")


def test_access_denied(stack: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    iam = boto3.client("iam", region_name=REGION)
    user = f"viewer-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    # May list the bucket and query jobs, nothing else. (AWS authorises HeadBucket with
    # s3:ListBucket; moto checks an action of its own name.)
    allowed = ["dynamodb:Query", "s3:ListBucket", "s3:HeadBucket"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": allowed, "Resource": "*"}],
    }
    iam.put_user_policy(UserName=user, PolicyName="jobs", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    stack.put_photo("images/uploaded/a.jpg", (1, 2, 3))
    for n in range(6):
        (tmp_path / f"{n}.png").write_bytes(_png())
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    # moto enforces IAM only when asked to; this server runs in this process.
    monkeypatch.setattr(moto_settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
    assert invoke("ls", "--assets", *stack.flags).exit_code == 0  # the policy is not a blanket
    _one_line_error(invoke("get", "images/uploaded/a.jpg", *stack.flags), "Access denied")
    # Denied on PutObject after the bucket check passed: stops once, not six times.
    result = invoke("upload", str(tmp_path), *stack.flags)
    _one_line_error(result, "Access denied")
    assert "PutObject" in result.stderr
