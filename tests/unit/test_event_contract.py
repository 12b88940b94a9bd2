"""The event contract: every schema is valid draft 4, builders' details validate, bad ones fail.

Consumers outside the project (dashboards, other teams' rules) code against these schemas, so
a schema that silently accepts anything, or a builder that drifts from its schema, is a bug.
"""

from __future__ import annotations

import copy
import json
from importlib import resources
from typing import Any

import jsonschema
import pytest

from meshdrop_contract import (
    EVENT_SOURCE,
    SCHEMA_VERSION,
    DetailType,
    ErrorKind,
    JobOptions,
    JobState,
    Stage,
    base_detail,
    job_id_for,
    put_events_entry,
    schema,
    source_key_for,
)
from meshdrop_contract.keys import parse_source_key

BUCKET = "meshdrop-photos"
SOURCE_KEY = source_key_for("uploaded", "kitchen/mug.jpg")
JOB_ID = job_id_for(BUCKET, SOURCE_KEY, "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY")
OPTIONS = JobOptions()
ASSET_KEY = parse_source_key(SOURCE_KEY).asset_key(OPTIONS.format.value)


def _base(asset_key: str | None = ASSET_KEY) -> dict[str, Any]:
    return base_detail(
        job_id=JOB_ID,
        bucket=BUCKET,
        source_key=SOURCE_KEY,
        asset_key=asset_key,
        options=OPTIONS.to_dict(),
    )


def _detail(detail_type: DetailType) -> dict[str, Any]:
    """A complete, realistic detail for ``detail_type`` built from the contract's builders."""
    detail = _base()
    if detail_type is DetailType.PROGRESS:
        detail |= {"stage": Stage.RECONSTRUCT.value, "progress": 0.5, "attempt": 1}
        detail["timings"] = {Stage.DOWNLOAD.value: 0.2, Stage.BACKGROUND.value: 1.4}
    elif detail_type is DetailType.SUCCEEDED:
        detail |= {
            "thumbnail_key": parse_source_key(SOURCE_KEY).thumbnail_key(),
            "faces": 12_000,
            "vertices": 6_002,
            "bytes": 481_516,
            "seconds": 12.5,
            "timings": {s.value: 1.0 for s in Stage},
            "reused": False,
            "metrics": {"watertight": True},
        }
    elif detail_type is DetailType.FAILED:
        detail |= {
            "reason": "no foreground object found",
            "error_kind": ErrorKind.BAD_INPUT.value,
            "exit_code": 65,
            "attempts": 1,
            "seconds": 3.0,
        }
    elif detail_type is DetailType.REJECTED:
        detail = _base(asset_key=None) | {
            "reason": "image is 20x20 pixels, smaller than 32",
            "error_kind": ErrorKind.BAD_INPUT.value,
        }
    elif detail_type is DetailType.SUPERSEDED:
        detail |= {"reason": "a newer upload of images/uploaded/kitchen/mug.jpg owns the key"}
    return detail


def _validator(detail_type: DetailType) -> jsonschema.Draft4Validator:
    return jsonschema.Draft4Validator(
        schema(detail_type), format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER
    )


def test_schema_files_and_detail_types_match_one_to_one() -> None:
    files = {
        p.name
        for p in resources.files("meshdrop_contract").joinpath("schemas").iterdir()
        if p.name.endswith(".json")
    }
    assert files == {f"{t.slug}.json" for t in DetailType}


@pytest.mark.parametrize("detail_type", list(DetailType))
def test_each_schema_is_a_valid_draft4_schema(detail_type: DetailType) -> None:
    doc = schema(detail_type)
    assert doc["$schema"] == "http://json-schema.org/draft-04/schema#"
    jsonschema.Draft4Validator.check_schema(doc)
    # additionalProperties false is what makes a typo in a producer fail loudly.
    assert doc["additionalProperties"] is False
    assert set(doc["required"]) <= set(doc["properties"])


@pytest.mark.parametrize("detail_type", list(DetailType))
def test_builder_details_validate(detail_type: DetailType) -> None:
    detail = _detail(detail_type)
    _validator(detail_type).validate(detail)
    # What goes on the wire is JSON: the detail must survive put_events_entry unchanged.
    entry = put_events_entry(detail_type, detail, bus="meshdrop-bus")
    assert entry["Source"] == EVENT_SOURCE
    assert entry["DetailType"] == detail_type.value
    _validator(detail_type).validate(json.loads(entry["Detail"]))


@pytest.mark.parametrize("detail_type", list(DetailType))
def test_a_minimal_detail_of_required_fields_only_validates(detail_type: DetailType) -> None:
    full = _detail(detail_type)
    required = schema(detail_type)["required"]
    _validator(detail_type).validate({k: full[k] for k in required})


def _mutations(detail_type: DetailType) -> list[tuple[str, dict[str, Any]]]:
    full = _detail(detail_type)
    cases: list[tuple[str, dict[str, Any]]] = []
    for name in schema(detail_type)["required"]:
        broken = copy.deepcopy(full)
        del broken[name]
        cases.append((f"missing {name}", broken))
    cases += [
        ("unknown field", full | {"jobId": JOB_ID}),
        ("job id not hex", full | {"job_id": "not-a-job-id"}),
        ("major version 2", full | {"schema_version": "2.0"}),
        ("asset outside 3d_assets/", full | {"asset_key": "images/uploaded/mug.glb"}),
        ("short bucket", full | {"bucket": "ab"}),
        ("options as a list", full | {"options": ["preset", "fast"]}),
    ]
    if detail_type is DetailType.REJECTED:
        # A rejection may be *because* the key is outside images/, so any key but "" is fine.
        cases.append(("empty source key", full | {"source_key": ""}))
    else:
        cases.append(("source outside images/", full | {"source_key": "3d_assets/uploaded/m.glb"}))
        # A rejection may be *because* the options are bad, so it carries them as sent.
        cases += [
            ("unknown format", full | {"options": OPTIONS.to_dict() | {"format": "fbx"}}),
            ("unknown option", full | {"options": OPTIONS.to_dict() | {"colour": "red"}}),
            ("texture as string", full | {"options": OPTIONS.to_dict() | {"texture": "on"}}),
        ]
    if detail_type is DetailType.PROGRESS:
        cases += [
            ("unknown stage", full | {"stage": "render"}),
            ("progress above 1", full | {"progress": 1.5}),
            ("attempt 0", full | {"attempt": 0}),
            ("negative timing", full | {"timings": {"download": -1}}),
        ]
    if detail_type is DetailType.SUCCEEDED:
        cases += [
            ("no faces", full | {"faces": 0}),
            ("empty file", full | {"bytes": 0}),
            ("seconds as string", full | {"seconds": "12"}),
        ]
    if detail_type in (DetailType.FAILED, DetailType.REJECTED):
        cases += [
            ("empty reason", full | {"reason": ""}),
            ("unknown error kind", full | {"error_kind": "oops"}),
        ]
    if detail_type is DetailType.REJECTED:
        # A rejection happens before any GPU time: only bad input can be the cause.
        cases.append(("rejected as transient", full | {"error_kind": ErrorKind.TRANSIENT.value}))
    return cases


@pytest.mark.parametrize(
    ("detail_type", "case", "detail"),
    [(t, case, detail) for t in DetailType for case, detail in _mutations(t)],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_invalid_details_fail(detail_type: DetailType, case: str, detail: dict[str, Any]) -> None:
    errors = list(_validator(detail_type).iter_errors(detail))
    assert errors, f"{detail_type.value}: {case} was accepted"


def test_base_detail_carries_version_and_utc_time() -> None:
    detail = _base()
    assert detail["schema_version"] == SCHEMA_VERSION
    assert detail["emitted_at"].endswith("Z")
    # A consumer matching on the major number must see the one the schemas accept.
    assert SCHEMA_VERSION.split(".")[0] == "1"


def test_a_rejection_keeps_the_options_as_sent() -> None:
    detail = _detail(DetailType.REJECTED) | {"options": {"preset": "qualty"}}
    _validator(DetailType.REJECTED).validate(detail)


def test_each_detail_type_names_the_state_it_moves_to() -> None:
    assert {t.state for t in DetailType} == set(JobState) - {JobState.SUBMITTED}
    assert all(t.state.terminal for t in (DetailType.SUCCEEDED, DetailType.FAILED))
    assert not DetailType.PROGRESS.state.terminal
