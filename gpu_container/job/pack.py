"""A pack: several photos in one Batch job, the generator (and rembg session) loaded once.

The photos run one after the other through :func:`gpu_container.job.run.run_job`, each with
its own events, so each outcome is reported as soon as the photo is done and a crash or spot
reclaim loses at most the photo in progress. A bad photo fails alone (its "Job Failed" event);
it never fails the pack.

Exit code of the pack (:class:`meshdrop_contract.ExitCode`): 0 once every photo has a final
outcome; 75 (TRANSIENT, retried by Batch) when any photo hit a transient error. A retried
attempt skips the photos an earlier attempt finished (idempotent by job id):

* the asset exists with this job's id as provenance metadata: the photo succeeded; its
  "Job Succeeded" is sent again from the asset's metadata (the earlier attempt may have died
  between the write and the event; the state function ignores a repeat);
* the error file beside it carries this job's id: the photo failed for good (the state
  function writes it after recording the failure).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from meshdrop_contract import DetailType, ExitCode, JobSpec, parse_source_key
from meshdrop_contract.jobs import ASSET_META_JOB_ID

from .events import EventEmitter
from .failures import client_error_code
from .run import ASSET_META_FACES, ASSET_META_VERTICES, run_job

log = logging.getLogger("meshdrop.entrypoint")

#: What a photo ended with in this attempt (besides a :class:`DetailType` value).
DONE_BEFORE = "done in an earlier attempt"
TRANSIENT = "transient"


@dataclass
class PackOutcome:
    """What one attempt at a pack ended with; ``exit_code`` is the process exit status."""

    exit_code: int
    #: job id -> "Job Succeeded", "Job Failed", "Job Superseded", DONE_BEFORE or TRANSIENT.
    photos: dict[str, str] = field(default_factory=dict[str, str])


def run_pack(
    specs: Sequence[JobSpec],
    *,
    s3: Any,
    events: Any,
    bus: str,
    generator_loader: Callable[[], Any],
    attempt: int = 1,
    batch_job_id: str | None = None,
    device: Mapping[str, Any] | None = None,
    progress_interval_s: float = 1.0,
) -> PackOutcome:
    """Run every photo of a pack not finished before; never raises (but KeyboardInterrupt)."""
    outcome = PackOutcome(ExitCode.OK)
    for index, spec in enumerate(specs):
        emitter = EventEmitter(events, bus, spec, batch_job_id=batch_job_id, attempt=attempt)
        try:
            finished = already_finished(s3, spec, emitter)
        except Exception as exc:
            log.warning("photo %d (%s): earlier outcome unknown (%r)", index, spec.job_id, exc)
            finished = False
        if finished:
            log.info("photo %d (%s): %s, skipped", index, spec.job_id, DONE_BEFORE)
            outcome.photos[spec.job_id] = DONE_BEFORE
            continue
        result = run_job(
            spec,
            s3=s3,
            events=events,
            bus=bus,
            generator_loader=generator_loader,
            attempt=attempt,
            progress_interval_s=progress_interval_s,
            batch_job_id=batch_job_id,
            device=device,
            counts_in_metadata=True,
        )
        said = result.detail_type.value if result.detail_type else TRANSIENT
        outcome.photos[spec.job_id] = said
        log.info("photo %d/%d (%s): %s", index + 1, len(specs), spec.job_id, said)
        if result.detail_type is None:
            outcome.exit_code = ExitCode.TRANSIENT
    return outcome


def already_finished(s3: Any, spec: JobSpec, emitter: EventEmitter) -> bool:
    """Whether an earlier attempt finished ``spec`` (a success is reported again)."""
    asset = _metadata(s3, spec.bucket, spec.asset_key)
    if asset is not None and asset[0].get(ASSET_META_JOB_ID) == spec.job_id:
        metadata, size = asset
        if ASSET_META_FACES not in metadata:
            return False  # not written by a pack: generate again
        detail = emitter.detail(
            spec.asset_key, faces=int(metadata[ASSET_META_FACES]), bytes=size, seconds=0.0
        )
        if (vertices := int(metadata.get(ASSET_META_VERTICES) or 0)) > 0:
            detail["vertices"] = vertices
        emitter.emit(DetailType.SUCCEEDED, detail)
        return True
    error = _metadata(s3, spec.bucket, parse_source_key(spec.source_key).error_key())
    return error is not None and error[0].get(ASSET_META_JOB_ID) == spec.job_id


def _metadata(s3: Any, bucket: str, key: str) -> tuple[dict[str, str], int] | None:
    """The user metadata and size of ``key``; ``None`` when there is no such object."""
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except Exception as exc:
        if client_error_code(exc) in {"404", "NoSuchKey", "NotFound", "403", "AccessDenied"}:
            return None
        raise
    metadata = {str(k).lower(): str(v) for k, v in (head.get("Metadata") or {}).items()}
    return metadata, int(head.get("ContentLength") or 0)
