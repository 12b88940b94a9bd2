"""One job end to end: download, generate, check the photo is still current, write, report.

Every outcome maps to an exit code (:class:`meshdrop_contract.ExitCode`) that drives Batch's
retry strategy, and to at most one terminal event.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from meshdrop_contract import DetailType, ErrorKind, ExitCode, JobSpec, Stage

from .events import EventEmitter, ProgressReporter
from .failures import SourceError, SupersededError, is_transient
from .storage import asset_metadata, download_source, ensure_current, write_outputs

log = logging.getLogger("meshdrop.entrypoint")

#: Asset metadata of a packed photo: what its "Job Succeeded" said, for a retry to say again.
ASSET_META_FACES = "meshdrop-faces"
ASSET_META_VERTICES = "meshdrop-vertices"

#: Overall progress reported around the stages the generator does not see.
PROGRESS_DOWNLOADED = 0.05
PROGRESS_UPLOADING = 0.95


@dataclass
class JobOutcome:
    """What one job run ended with; ``exit_code`` is the process exit status."""

    exit_code: int
    detail_type: DetailType | None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Job:
    """One run's collaborators, so the steps below stay short."""

    spec: JobSpec
    s3: Any
    emitter: EventEmitter
    progress: ProgressReporter
    attempt: int
    device: Mapping[str, Any] | None
    #: In a pack: note faces and vertices on the asset, so a retry can report it again.
    counts_in_metadata: bool = False
    started: float = field(default_factory=time.perf_counter)

    def seconds(self) -> float:
        return round(time.perf_counter() - self.started, 3)

    def failed(
        self, kind: ErrorKind, code: int, reason: str, metrics: dict[str, Any] | None = None
    ) -> JobOutcome:
        detail = self.emitter.detail(
            None,
            reason=reason[:2000] or kind.value,
            error_kind=kind.value,
            exit_code=code,
            attempts=self.attempt,
            seconds=self.seconds(),
            metrics=metrics or None,
        )
        try:
            self.emitter.emit(DetailType.FAILED, detail)
        except Exception as exc:
            # Without the terminal event the job would hang in RUNNING: let Batch retry; its
            # own FAILED state change is the backstop once attempts run out.
            log.error("could not emit Job Failed (%s); exiting transient", exc)
            return JobOutcome(ExitCode.TRANSIENT, None)
        return JobOutcome(code, DetailType.FAILED, detail)

    def superseded(self, reason: str) -> JobOutcome:
        detail = self.emitter.detail(None, reason=reason[:2000] or "superseded")
        try:
            self.emitter.emit(DetailType.SUPERSEDED, detail)
        except Exception as exc:
            # Nothing was written; a retry re-checks and says it again.
            log.error("could not emit Job Superseded (%s); exiting transient", exc)
            return JobOutcome(ExitCode.TRANSIENT, None)
        return JobOutcome(ExitCode.SUPERSEDED, DetailType.SUPERSEDED, detail)


def run_job(
    spec: JobSpec,
    *,
    s3: Any,
    events: Any,
    bus: str,
    generator_loader: Callable[[], Any],
    attempt: int = 1,
    progress_interval_s: float = 1.0,
    batch_job_id: str | None = None,
    device: Mapping[str, Any] | None = None,
    counts_in_metadata: bool = False,
) -> JobOutcome:
    """Run one job end to end; never raises (except ``KeyboardInterrupt``).

    Parameters
    ----------
    spec
        The job, as the ingest function submitted it.
    s3, events
        boto3 clients.
    bus
        Event bus name for every event of this job.
    generator_loader
        Returns the (cached) generator; called after the download so that a missing source
        fails fast without loading a model.
    attempt, batch_job_id
        Batch attempt number (1-based) and Batch job id, carried by every event.
    device
        :meth:`gpu_container.selfcheck.DeviceFacts.to_dict`, recorded in the success metrics.
    counts_in_metadata
        Also write the asset's faces and vertices as metadata (packs: see
        :mod:`gpu_container.job.pack`).
    """
    emitter = EventEmitter(events, bus, spec, batch_job_id=batch_job_id, attempt=attempt)
    progress = ProgressReporter(
        emitter, spec.asset_key, attempt, min_interval_s=progress_interval_s
    )
    job = _Job(spec, s3, emitter, progress, attempt, device, counts_in_metadata)
    try:
        return _produce(job, generator_loader)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        if isinstance(exc, SystemExit):
            raise
        return _outcome_of(job, exc)


def _produce(job: _Job, generator_loader: Callable[[], Any]) -> JobOutcome:
    spec, progress = job.spec, job.progress
    progress(Stage.DOWNLOAD, 0.0)
    source, source_etag = download_source(job.s3, spec)
    source_sha256 = spec.source_sha256 or hashlib.sha256(source).hexdigest()
    progress(Stage.DOWNLOAD, PROGRESS_DOWNLOADED)

    result = generator_loader().generate(source, spec.options, on_stage=progress)

    progress(Stage.UPLOAD, PROGRESS_UPLOADING)
    # The conditional check at the end: minutes went by since the download, and a newer
    # upload of the key must never lose its asset to this older one.
    ensure_current(job.s3, spec, source_etag)
    metadata = {
        **asset_metadata(spec, source_etag, source_sha256),
        **result.provenance.to_metadata(),
    }
    if job.counts_in_metadata:
        metadata[ASSET_META_FACES] = str(int(result.faces))
        metadata[ASSET_META_VERTICES] = str(int(result.vertices))
    thumbnail_key = write_outputs(job.s3, spec, result, metadata)
    progress(Stage.UPLOAD, 1.0)
    timings = {**{k: float(v) for k, v in (result.timings or {}).items()}, **progress.finish()}
    metrics = jsonable(result.metrics or {})
    if job.device is not None:
        metrics = {**metrics, "device": jsonable(job.device)}
    detail = job.emitter.detail(
        spec.asset_key,
        thumbnail_key=thumbnail_key,
        faces=int(result.faces),
        vertices=int(result.vertices),
        bytes=len(result.data),
        seconds=job.seconds(),
        timings={k: round(max(v, 0.0), 4) for k, v in timings.items()},
        metrics=metrics,
        provenance=result.provenance.to_dict(),
    )
    job.emitter.emit(DetailType.SUCCEEDED, detail)
    return JobOutcome(ExitCode.OK, DetailType.SUCCEEDED, detail)


def _outcome_of(job: _Job, exc: BaseException) -> JobOutcome:
    """Map what a job raised to its outcome (and its one terminal event, if any)."""
    from gpu_container.meshgen.errors import BadInputError, QualityError

    if isinstance(exc, SupersededError):
        log.warning("superseded, nothing written: %s", exc)
        return job.superseded(str(exc))
    if isinstance(exc, BadInputError | SourceError):
        log.warning("bad input: %s", exc)
        return job.failed(ErrorKind.BAD_INPUT, ExitCode.BAD_INPUT, str(exc))
    if isinstance(exc, QualityError):
        log.warning("quality gate: %s", exc)
        return job.failed(ErrorKind.QUALITY, ExitCode.QUALITY, str(exc), jsonable(exc.metrics))
    if is_transient(exc):
        log.warning("transient failure, Batch will retry: %r", exc)
        return JobOutcome(ExitCode.TRANSIENT, None)
    log.error("internal error", exc_info=exc)
    return job.failed(ErrorKind.INTERNAL, ExitCode.INTERNAL, f"{type(exc).__name__}: {exc}")


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars/arrays and other odd types made JSON-friendly."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}  # type: ignore[misc]
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]  # type: ignore[misc]
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if hasattr(value, "tolist"):
        return jsonable(value.tolist())
    return str(value)
