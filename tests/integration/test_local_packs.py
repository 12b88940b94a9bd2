"""Packs end to end on the embedded AWS: one Batch job, one generator process, per pack."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import pytest
from PIL import Image

from meshdrop.local.pipeline import LocalPipeline
from meshdrop_contract import ExitCode, JobOptions, JobState, Preset, is_pack_job_name
from tests.helpers.gltf import assert_valid_gltf
from tests.helpers.photos import make_photo

pytestmark = pytest.mark.slow

FAST = JobOptions(preset=Preset.FAST)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _blank_png() -> bytes:
    """A valid image with nothing on it: ingest accepts it, the generator cannot use it."""
    buf = io.BytesIO()
    Image.new("RGB", (200, 160), (235, 235, 235)).save(buf, "PNG")
    return buf.getvalue()


def test_a_pack_runs_as_one_batch_job_and_a_bad_photo_fails_alone(tmp_path: Path) -> None:
    photos = [
        _write(tmp_path / "mug.jpg", make_photo("mug", jpeg_quality=90).data),
        _write(tmp_path / "blank.png", _blank_png()),
        _write(tmp_path / "bottle.png", make_photo("bottle", background="gradient").data),
        _write(tmp_path / "box.jpg", make_photo("box", jpeg_quality=90).data),
    ]
    out = tmp_path / "out"
    with LocalPipeline(work_dir=tmp_path / "work", pack_size=10) as pipeline:
        keys = [pipeline.upload(p, FAST) for p in photos]
        reports = pipeline.run_until_done(timeout_s=600)
        pipeline.download(reports, out)
        records = [pipeline.record_for(k) or {} for k in keys]
        runs = list(pipeline.runner.runs.values())
        notifications = list(pipeline.notifications)
        counts = pipeline.batch_job_counts()

    # One Batch job (a pack), one process, one attempt, exit 0 although a photo failed.
    (run,) = runs
    assert is_pack_job_name(run.job_name) and counts == (1, 1)
    assert run.status == "SUCCEEDED" and [a.exit_code for a in run.attempts] == [ExitCode.OK]
    assert [r["state"] for r in records] == ["SUCCEEDED", "FAILED", "SUCCEEDED", "SUCCEEDED"]
    assert [r["pack_index"] for r in records] == [0, 1, 2, 3]
    assert {r["batch_job_id"] for r in records} == {run.job_id}
    assert records[1]["error_kind"] == "bad_input"
    for report in (reports[0], reports[2], reports[3]):
        assert report.status == JobState.SUCCEEDED
        assert report.local_asset is not None
        assert_valid_gltf(Path(report.local_asset))
    # Each photo its own notification, once.
    assert len(notifications) == 4
    for record in records:
        assert sum(record["job_id"] in n["body"] for n in notifications) == 1
    log = run.attempts[0].log_path
    assert log is not None and log.read_text().count("generator loaded") == 1


def test_a_pack_killed_mid_way_is_retried_and_finishes_the_rest_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Attempt 1 dies (exit 75, as Batch retries it) right after its first photo's success.
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        textwrap.dedent(
            """
            import os
            if os.environ.get("AWS_BATCH_JOB_ATTEMPT") == "1" and os.environ.get("MESHDROP_PACK"):
                import gpu_container.job.pack as pack
                real = pack.run_job
                def run_job(*args, **kwargs):
                    outcome = real(*args, **kwargs)
                    os._exit(75)
                pack.run_job = run_job
            """
        )
    )
    monkeypatch.setenv("PYTHONPATH", str(hook))
    photos = [
        _write(tmp_path / "mug.jpg", make_photo("mug", jpeg_quality=90).data),
        _write(tmp_path / "box.jpg", make_photo("box", jpeg_quality=90).data),
    ]
    with LocalPipeline(work_dir=tmp_path / "work", pack_size=10) as pipeline:
        keys = [pipeline.upload(p, FAST) for p in photos]
        pipeline.run_until_done(timeout_s=600)
        records = [pipeline.record_for(k) or {} for k in keys]
        (run,) = pipeline.runner.runs.values()
        notifications = list(pipeline.notifications)
        assert pipeline.resources is not None
        versions = [
            pipeline.s3.list_object_versions(
                Bucket=pipeline.resources.bucket, Prefix=r["asset_key"]
            ).get("Versions", [])
            for r in records
        ]

    assert [a.exit_code for a in run.attempts] == [ExitCode.TRANSIENT, ExitCode.OK]
    assert [r["state"] for r in records] == ["SUCCEEDED", "SUCCEEDED"]
    # The first photo was made once (attempt 1), the second once (attempt 2).
    assert [len(v) for v in versions] == [1, 1]
    second = run.attempts[1].log_path
    assert second is not None and "earlier attempt" in second.read_text()
    assert len(notifications) == 2
