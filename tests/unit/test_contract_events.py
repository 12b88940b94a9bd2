"""Event helpers and job identity."""

from __future__ import annotations

import json

import jsonschema
import pytest

from meshdrop_contract import (
    EVENT_SOURCE,
    DetailType,
    JobOptions,
    base_detail,
    batch_job_name,
    job_id_for,
    job_id_from_batch_job_name,
    put_events_entry,
    schema,
)


def test_job_id_is_deterministic_per_object_version() -> None:
    a = job_id_for("bucket", "images/uploaded/a.jpg", "v1")
    assert a == job_id_for("bucket", "images/uploaded/a.jpg", "v1")
    assert a != job_id_for("bucket", "images/uploaded/a.jpg", "v2")
    assert a != job_id_for("bucket", "images/uploaded/b.jpg", "v1")
    assert len(a) == 32
    assert job_id_from_batch_job_name(batch_job_name(a)) == a
    assert job_id_from_batch_job_name("someone-elses-job") is None


@pytest.mark.parametrize("detail_type", list(DetailType))
def test_every_detail_type_has_a_valid_schema(detail_type: DetailType) -> None:
    jsonschema.Draft4Validator.check_schema(schema(detail_type))


def test_progress_detail_validates_and_a_wrong_one_does_not() -> None:
    detail = base_detail(
        job_id="0" * 32,
        bucket="bucket",
        source_key="images/uploaded/a.jpg",
        asset_key="3d_assets/uploaded/a.glb",
        options=JobOptions().to_dict(),
    )
    detail |= {"stage": "reconstruct", "progress": 0.5, "attempt": 1}
    jsonschema.validate(detail, schema(DetailType.PROGRESS))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(detail | {"progress": 2}, schema(DetailType.PROGRESS))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(detail | {"stage": "dreaming"}, schema(DetailType.PROGRESS))


def test_put_events_entry_shape() -> None:
    entry = put_events_entry(DetailType.FAILED, {"a": 1}, "bus")
    assert entry["Source"] == EVENT_SOURCE
    assert entry["DetailType"] == "Job Failed"
    assert json.loads(entry["Detail"]) == {"a": 1}
    assert entry["EventBusName"] == "bus"
