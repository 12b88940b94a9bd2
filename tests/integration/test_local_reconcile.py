"""The local pipeline reconciles when it goes idle with a job left in flight (issue 10, item 6)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from meshdrop.local.pipeline import LocalPipeline
from meshdrop_contract import JobOptions, JobState, Preset
from tests.helpers.photos import make_photo

pytestmark = pytest.mark.slow


def test_lost_success_events_are_repaired_by_the_reconciler(tmp_path: Path) -> None:
    mug = tmp_path / "mug.jpg"
    mug.write_bytes(make_photo("mug", jpeg_quality=90).data)

    with LocalPipeline(work_dir=tmp_path / "work") as pipeline:
        # Both reports of success are lost: Batch's SUCCEEDED state change and the
        # generator's "Job Succeeded". Nothing but the reconciler can finish the job.
        pipeline.runner.drop_statuses = {"SUCCEEDED"}
        deliver = pipeline.state_pump._handler
        lost: list[dict[str, Any]] = []

        def lossy(event: dict[str, Any], context: Any) -> Any:
            if event.get("detail-type") == "Job Succeeded":
                lost.append(event)
                return None
            return deliver(event, context)

        pipeline.state_pump._handler = lossy
        key = pipeline.upload(mug, JobOptions(preset=Preset.FAST))
        (report,) = pipeline.run_until_done(timeout_s=300)
        record = pipeline.record_for(key) or {}
        passes = list(pipeline.reconcile_reports)
        notifications = list(pipeline.notifications)

    assert lost, "the generator's success event was not sent"
    assert report.status == JobState.SUCCEEDED, report
    assert record["state"] == JobState.SUCCEEDED
    assert record["asset_key"] == "3d_assets/uploaded/mug.glb"
    assert [(a.state, a.action) for a in passes[0].actions] == [("RUNNING", "applied")]
    assert len(notifications) == 1
