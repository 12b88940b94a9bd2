"""The local pipeline with ``backend=triposr``: a TripoSR checkpoint in the published layout
(hand-set to a ball, see tests/unit/generator/triposr_ball.py) behind ``MESHDROP_WEIGHTS``."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from meshdrop.local.pipeline import LocalPipeline
from meshdrop_contract import SCHEMA_VERSION, Backend, DetailType, JobOptions, Preset, Provenance
from meshdrop_contract.jobs import ENV_WEIGHTS
from meshdrop_contract.provenance import ENV_MODEL_ID, ENV_MODEL_REVISION
from tests.helpers.gltf import assert_valid_gltf
from tests.helpers.photos import make_photo
from tests.unit.generator.triposr_ball import write_ball_weights

pytestmark = pytest.mark.slow


def test_photo_through_the_pipeline_on_triposr(tmp_path: Path) -> None:
    weights = write_ball_weights(tmp_path / "weights" / "triposr")
    photo = tmp_path / "ball.png"
    photo.write_bytes(make_photo("disc").data)
    job_env = {ENV_WEIGHTS: str(weights), ENV_MODEL_ID: "test/ball", ENV_MODEL_REVISION: "r1"}
    options = JobOptions(preset=Preset.FAST, backend=Backend.TRIPOSR)

    with LocalPipeline(work_dir=tmp_path / "work", job_env=job_env) as pipeline:
        key = pipeline.upload(photo, options)
        (report,) = pipeline.run_until_done(timeout_s=300)
        pipeline.download([report], tmp_path / "out")
        head = pipeline.s3.head_object(Bucket=pipeline.resources.bucket, Key=report.asset_key)
        succeeded = [
            e["detail"]
            for e in pipeline.state_pump.delivered
            if e["detail-type"] == DetailType.SUCCEEDED.value
        ]

    assert report.key == key and report.status == "SUCCEEDED", report
    assert_valid_gltf(tmp_path / "out" / report.asset_key)
    sha256 = hashlib.sha256((weights / "model.ckpt").read_bytes()).hexdigest()
    expected = Provenance("triposr", "test/ball", "r1", sha256, "cpu")
    assert Provenance.from_metadata(head["Metadata"]) == expected
    (detail,) = succeeded
    assert detail["schema_version"] == SCHEMA_VERSION and detail["options"]["backend"] == "triposr"
    assert Provenance.from_dict(detail["provenance"]) == expected
    assert detail["metrics"]["backend"] == "triposr"
