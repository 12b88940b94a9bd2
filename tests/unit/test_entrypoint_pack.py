"""A pack in the container: one generator, photos one by one, each with its own outcome."""

from __future__ import annotations

from typing import Any

import pytest

from gpu_container import entrypoint
from gpu_container.job.pack import DONE_BEFORE, TRANSIENT, run_pack
from gpu_container.meshgen import Generator
from meshdrop_contract import DetailType, ExitCode, JobSpec, pack_to_env
from meshdrop_contract.jobs import ASSET_META_JOB_ID, ENV_EVENT_BUS
from tests.helpers.photos import make_photo
from tests.unit import test_entrypoint as base
from tests.unit.test_entrypoint import BUCKET, BUS, Account

# The single-job tests' moto account and generator fixtures, and their helpers.
account = base.account
generator = base.generator
_blank_png = base._blank_png  # pyright: ignore[reportPrivateUsage]
_terminal = base._terminal  # pyright: ignore[reportPrivateUsage]
_upload = base._upload  # pyright: ignore[reportPrivateUsage]
_validate = base._validate  # pyright: ignore[reportPrivateUsage]

BATCH_JOB = "pack-batch-job-1"


def _pack(account: Account) -> list[JobSpec]:
    return [
        _upload(account, "images/uploaded/mug.jpg", make_photo("mug", jpeg_quality=90).data),
        _upload(account, "images/uploaded/blank.png", _blank_png()),
        _upload(account, "images/uploaded/box.jpg", make_photo("box", jpeg_quality=90).data),
    ]


class CountingLoader:
    def __init__(self, generator: Generator) -> None:
        self.generator = generator
        self.calls = 0

    def __call__(self) -> Generator:
        self.calls += 1
        return self.generator


def _run(account: Account, specs: list[JobSpec], loader: Any, attempt: int = 1) -> Any:
    return run_pack(
        specs,
        s3=account.s3,
        events=account.events,
        bus=BUS,
        generator_loader=loader,
        attempt=attempt,
        batch_job_id=BATCH_JOB,
    )


def test_a_bad_photo_fails_alone_and_the_pack_exits_0(
    account: Account, generator: Generator
) -> None:
    specs = _pack(account)
    outcome = _run(account, specs, CountingLoader(generator))

    assert outcome.exit_code == ExitCode.OK
    assert list(outcome.photos.values()) == [
        DetailType.SUCCEEDED.value,
        DetailType.FAILED.value,
        DetailType.SUCCEEDED.value,
    ]
    finals = _terminal(account.received())
    for event in finals:
        _validate(event)
        assert event["detail"]["batch_job_id"] == BATCH_JOB
    by_job = {e["detail"]["job_id"]: e["detail-type"] for e in finals}
    assert by_job == {
        specs[0].job_id: DetailType.SUCCEEDED.value,
        specs[1].job_id: DetailType.FAILED.value,
        specs[2].job_id: DetailType.SUCCEEDED.value,
    }
    for spec in (specs[0], specs[2]):
        head = account.s3.head_object(Bucket=BUCKET, Key=spec.asset_key)
        assert head["Metadata"][ASSET_META_JOB_ID] == spec.job_id


def test_a_retried_pack_skips_what_succeeded_and_redoes_the_rest(
    account: Account, generator: Generator
) -> None:
    specs = [s for i, s in enumerate(_pack(account)) if i != 1]
    loader = CountingLoader(generator)
    # Attempt 1 dies after the first photo (a spot reclaim mid-pack): only photo 0 is done.
    first = _run(account, specs[:1], loader)
    assert first.exit_code == ExitCode.OK
    account.received()
    before = account.s3.head_object(Bucket=BUCKET, Key=specs[0].asset_key)["ETag"]

    retry = _run(account, specs, loader, attempt=2)
    assert retry.exit_code == ExitCode.OK
    assert retry.photos == {
        specs[0].job_id: DONE_BEFORE,
        specs[1].job_id: DetailType.SUCCEEDED.value,
    }
    # Not generated again: the asset is the one attempt 1 wrote, its success said again.
    assert account.s3.head_object(Bucket=BUCKET, Key=specs[0].asset_key)["ETag"] == before
    finals = _terminal(account.received())
    for event in finals:
        _validate(event)
    assert sorted(e["detail"]["job_id"] for e in finals) == sorted(s.job_id for s in specs)
    assert {e["detail"]["attempt"] for e in finals} == {2}


def test_a_transient_photo_makes_the_pack_transient_and_the_others_finish(
    account: Account, generator: Generator
) -> None:
    specs = [s for i, s in enumerate(_pack(account)) if i != 1]
    flaky = {"left": 1}

    def loader() -> Generator:
        if flaky["left"]:
            flaky["left"] -= 1
            raise TimeoutError("GPU busy")  # transient
        return generator

    outcome = _run(account, specs, loader)
    assert outcome.exit_code == ExitCode.TRANSIENT
    assert outcome.photos == {
        specs[0].job_id: TRANSIENT,
        specs[1].job_id: DetailType.SUCCEEDED.value,
    }
    retry = _run(account, specs, loader, attempt=2)
    assert retry.exit_code == ExitCode.OK
    assert retry.photos == {
        specs[0].job_id: DetailType.SUCCEEDED.value,
        specs[1].job_id: DONE_BEFORE,
    }


def test_main_runs_a_pack_from_the_environment_loading_the_generator_once(
    account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    specs = _pack(account)
    loads: list[object] = []

    def load(weights: object) -> Generator:
        loads.append(weights)
        return Generator.from_pretrained(None)

    monkeypatch.setattr(entrypoint, "load_generator", load)
    env = {**pack_to_env(specs), ENV_EVENT_BUS: BUS, "AWS_BATCH_JOB_ID": BATCH_JOB}
    assert entrypoint.main(env) == ExitCode.OK
    finals = _terminal(account.received())
    assert len(finals) == 3
    assert len(loads) == 1  # the model, once for the pack
