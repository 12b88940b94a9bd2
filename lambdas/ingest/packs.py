"""Packs: the newly accepted photos of one invocation go to Batch as few jobs as possible.

With ``pack_size`` N > 1, ingest does not submit each accepted photo at once: it holds the
photo (record ACCEPTED, submit lease held) and, when every record of the invocation has been
handled, submits one Batch job per group of at most N held photos.

Exactly one Batch job per photo, under retries and partial failures:

* Before SubmitJob, each photo's record notes the pack's deterministic name
  (``meshdrop-pack-<hash of the sorted job ids>``, :func:`meshdrop_contract.pack_job_name`) and
  the photo's place in it, conditional on still holding the lease.
* A later delivery that takes the lease over first looks for a Batch job by that name (as it
  does for ``meshdrop-<job_id>``), so a pack submitted by a holder that died before recording
  it is adopted, never submitted again.
* Each photo's record then moves to SUBMITTED on its own, with ``batch_job_id``,
  ``pack_index`` and ``pack_size``; its own "Job Accepted" event goes out as before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.conditions import Attr

from meshdrop_contract import (
    JobSpec,
    JobState,
    pack_job_name,
    pack_parameters,
    pack_to_env,
)
from meshdrop_contract.jobs import RECORD_PACK_INDEX, RECORD_PACK_NAME, RECORD_PACK_SIZE

from ..common.jobstore import STATE, SUBMIT_OWNER, JobStore
from ..common.observability import logger
from .access import BatchGateway
from .notices import Notice


@dataclass(frozen=True, slots=True)
class HeldPhoto:
    """A photo accepted and leased by this invocation, waiting for its pack."""

    spec: JobSpec
    upload: Notice
    asset_key: str
    message_id: str | None


@dataclass(frozen=True, slots=True)
class Pack:
    name: str
    photos: tuple[HeldPhoto, ...]

    @property
    def job_ids(self) -> list[str]:
        return [p.spec.job_id for p in self.photos]

    def place(self, photo: HeldPhoto) -> dict[str, Any]:
        """The record attributes naming ``photo``'s place in this pack."""
        return {
            RECORD_PACK_NAME: self.name,
            RECORD_PACK_INDEX: self.photos.index(photo),
            RECORD_PACK_SIZE: len(self.photos),
        }


def group(photos: Sequence[HeldPhoto], size: int) -> list[Pack]:
    """``photos`` in arrival order, cut into packs of at most ``size``."""
    packs: list[Pack] = []
    for start in range(0, len(photos), max(1, size)):
        members = tuple(photos[start : start + size])
        packs.append(Pack(pack_job_name(p.spec.job_id for p in members), members))
    return packs


def note_places(store: JobStore, owner: str, pack: Pack) -> Pack:
    """Write each photo's place in ``pack``; the pack of the photos whose lease still holds.

    A photo whose write fails (its lease was lost: cannot happen while the lease outlives the
    invocation) is left out, and the others are noted again under the smaller pack's name.
    """
    kept: list[HeldPhoto] = []
    for photo in pack.photos:
        result = store.update(
            photo.spec.job_id,
            pack.place(photo),
            condition=Attr(STATE).eq(JobState.ACCEPTED.value) & Attr(SUBMIT_OWNER).eq(owner),
        )
        if result.applied:
            kept.append(photo)
        else:
            logger.error("lost the submit lease before packing", extra={"job": photo.spec.job_id})
    if len(kept) == len(pack.photos) or not kept:
        return Pack(pack.name, tuple(kept))
    return note_places(store, owner, group(kept, len(kept))[0])


def submit_pack(gateway: BatchGateway, queue: str, definition: str, pack: Pack) -> str:
    """SubmitJob for ``pack``; the Batch job id."""
    specs = [p.spec for p in pack.photos]
    environment = [{"name": k, "value": v} for k, v in sorted(pack_to_env(specs).items())]
    presets = sorted({s.options.preset.value for s in specs})
    return gateway.submit(
        jobName=pack.name,
        jobQueue=queue,
        jobDefinition=definition,
        parameters=pack_parameters(pack.job_ids),
        containerOverrides={"environment": environment},
        tags={"meshdrop:pack-size": str(len(specs)), "meshdrop:preset": "+".join(presets)},
        propagateTags=True,
    )


def place_of(record: Mapping[str, Any] | None) -> tuple[str, dict[str, Any]] | None:
    """The pack name and place a record notes (written before its pack's SubmitJob)."""
    if not record or not record.get(RECORD_PACK_NAME):
        return None
    attrs = {
        k: record[k] for k in (RECORD_PACK_NAME, RECORD_PACK_INDEX, RECORD_PACK_SIZE) if k in record
    }
    return str(record[RECORD_PACK_NAME]), attrs


#: ``record(photo, batch_job_id, place)`` of the ingestor: the photo's SUBMITTED write.
Recorder = Callable[[HeldPhoto, str, Mapping[str, Any]], object]
