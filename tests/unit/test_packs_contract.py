"""The pack form of the contract and the state mapping of a pack's Batch events (pure)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lambdas.state.mapping import batch_changes
from meshdrop_contract import (
    JobOptions,
    JobSpec,
    JobState,
    Preset,
    job_id_from_batch_job_name,
    pack_job_ids,
    pack_job_name,
    pack_parameters,
    pack_to_env,
    specs_from_env,
)
from meshdrop_contract.jobs import ENV_PACK

EVENTS = Path(__file__).resolve().parents[1] / "events"
IDS = ["a" * 32, "b" * 32, "c" * 32]


def _detail(name: str, **extra: Any) -> dict[str, Any]:
    detail = json.loads((EVENTS / name).read_text())["detail"]
    detail |= {"jobName": pack_job_name(IDS), "parameters": pack_parameters(IDS)}
    return detail | extra


def test_a_pack_round_trips_through_the_environment_in_order() -> None:
    specs = [
        JobSpec(IDS[0], "bkt", "images/x/a.jpg", JobOptions(preset=Preset.FAST), "v1", "f" * 64),
        JobSpec(IDS[1], "bkt", "images/x/b.png"),
    ]
    env = pack_to_env(specs)
    assert specs_from_env(env) == specs
    assert specs_from_env(specs[1].to_env()) == [specs[1]]  # a job of one photo
    with pytest.raises(ValueError):
        specs_from_env({ENV_PACK: "[]"})
    with pytest.raises(KeyError):
        specs_from_env({ENV_PACK: json.dumps([{"job_id": "x"}])})


def test_a_pack_s_name_depends_on_its_photos_not_their_order() -> None:
    name = pack_job_name(IDS)
    assert name == pack_job_name(reversed(IDS)) != pack_job_name(IDS[:2])
    assert name.startswith("meshdrop-pack-") and len(name) <= 128
    assert job_id_from_batch_job_name(name) is None  # never read as one job's name
    assert pack_job_ids(pack_parameters(IDS)) == IDS
    assert pack_job_ids({"job_id": IDS[0]}) == [] and pack_job_ids(None) == []


def test_a_pack_s_batch_events_concern_each_photo() -> None:
    running = batch_changes(_detail("batch-running.json"))
    assert [(c.job_id, c.target) for c in running] == [(i, JobState.RUNNING) for i in IDS]
    failed = batch_changes(_detail("batch-failed-spot-reclaim.json"))
    assert {c.target for c in failed} == {JobState.FAILED} and len(failed) == 3
    succeeded = batch_changes(_detail("batch-succeeded.json"))
    assert [c.target for c in succeeded] == [JobState.SUCCEEDED] * 3
    assert all("batch_seconds" not in c.attrs for c in succeeded)  # the pack's, not a photo's
    assert batch_changes(_detail("batch-running.json", parameters={})) == []
