"""Pure mapping from AWS Batch "Batch Job State Change" details to job state changes.

No AWS calls here, so every rule (what is ignored, what is final, the reason text) is unit-tested
on plain dictionaries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from meshdrop_contract import (
    ErrorKind,
    ExitCode,
    JobState,
    is_pack_job_name,
    job_id_from_batch_job_name,
    pack_job_ids,
)

SPOT_RECLAIM_PREFIX = "Host EC2"
TIMEOUT_REASON = "Job attempt duration exceeded timeout"
#: ECS puts this in ``container.reason`` when the kernel killed the container (exit code 137);
#: Batch's own ``statusReason`` then only says "Essential container in task exited".
OUT_OF_MEMORY_MARKER = "OutOfMemoryError"
#: ``statusReason`` of a job the job queue's ``jobStateTimeLimitActions`` cancelled in RUNNABLE;
#: the rest is the blocking reason (``CAPACITY:...`` or ``MISCONFIGURATION:...``).
TIME_LIMIT_PREFIX = "Canceled by JobStateTimeLimit action due to reason:"
CAPACITY_PREFIX = "CAPACITY:"
#: Batch statuses before the container runs; the job record already says SUBMITTED. Seen again
#: with a longer ``attempts`` list, they are how Batch shows a retry.
IGNORED_STATUSES = frozenset({"SUBMITTED", "PENDING", "RUNNABLE", "STARTING"})
ESSENTIAL_EXIT = "Essential container in task exited"

_KIND_TEXT = {
    ErrorKind.BAD_INPUT: "the photo cannot be turned into a 3D asset",
    ErrorKind.QUALITY: "the generated asset failed the quality check",
    ErrorKind.TRANSIENT: "a transient error stopped the job",
    ErrorKind.TIMEOUT: "the job ran longer than its time limit",
    ErrorKind.INTERNAL: "the generator failed with an internal error",
    ErrorKind.OUT_OF_MEMORY: "out of memory: the generator needed more memory than the job has",
    ErrorKind.CAPACITY: "no GPU capacity became available before the job queue's time limit",
    ErrorKind.CONFIGURATION: "no compute environment can run the job as configured",
}


@dataclass(frozen=True, slots=True)
class BatchFailure:
    """Why a Batch job (attempt) failed, and whether Batch will try again."""

    reason: str
    error_kind: ErrorKind
    exit_code: int | None
    attempts: int
    final: bool


@dataclass(frozen=True, slots=True)
class BatchChange:
    """What a Batch event means for one meshdrop job."""

    job_id: str
    target: JobState | None  # None: nothing to record as a state (see ``failure``)
    attrs: dict[str, Any] = field(default_factory=dict[str, Any])
    failure: BatchFailure | None = None


def _mapping(value: object) -> Mapping[str, Any]:
    """``value`` when it is an object, else empty: Batch details are read, never trusted."""
    return cast("Mapping[str, Any]", value) if isinstance(value, Mapping) else {}


def _attempts(detail: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    attempts: object = detail.get("attempts")
    if not isinstance(attempts, list):
        return []
    return [_mapping(a) for a in cast("list[object]", attempts) if _mapping(a)]


def _last_attempt(detail: Mapping[str, Any]) -> Mapping[str, Any]:
    attempts = _attempts(detail)
    return attempts[-1] if attempts else {}


def _exit_code(detail: Mapping[str, Any]) -> int | None:
    for source in (_last_attempt(detail).get("container"), detail.get("container")):
        code = _mapping(source).get("exitCode")
        if isinstance(code, int) and not isinstance(code, bool):
            return code
    return None


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _container_reasons(detail: Mapping[str, Any]) -> list[str]:
    last = _last_attempt(detail)
    found = (
        _mapping(last.get("container")).get("reason"),
        _mapping(detail.get("container")).get("reason"),
    )
    return [t for t in map(_text, found) if t]


def _status_reason(detail: Mapping[str, Any]) -> str:
    """What Batch said about the failure, most specific first.

    The container's own reason ("OutOfMemoryError: Container killed due to memory usage")
    beats the task's generic "Essential container in task exited".
    """
    last = _last_attempt(detail)
    texts = [
        *_container_reasons(detail),
        _text(detail.get("statusReason")),
        _text(last.get("statusReason")),
    ]
    return next((t for t in texts if t), "")


def _time_limit_kind(status_reason: str) -> ErrorKind:
    blocked = status_reason[len(TIME_LIMIT_PREFIX) :].strip()
    return ErrorKind.CAPACITY if blocked.startswith(CAPACITY_PREFIX) else ErrorKind.CONFIGURATION


def error_kind_for(exit_code: int | None, status_reason: str) -> ErrorKind:
    """Classify a failure by exit code first, then by what Batch said."""
    if exit_code == ExitCode.BAD_INPUT:
        return ErrorKind.BAD_INPUT
    if exit_code == ExitCode.QUALITY:
        return ErrorKind.QUALITY
    if OUT_OF_MEMORY_MARKER in status_reason:
        return ErrorKind.OUT_OF_MEMORY
    if exit_code == ExitCode.TRANSIENT or status_reason.startswith(SPOT_RECLAIM_PREFIX):
        return ErrorKind.TRANSIENT
    if status_reason.startswith(TIMEOUT_REASON):
        return ErrorKind.TIMEOUT
    if status_reason.startswith(TIME_LIMIT_PREFIX):
        return _time_limit_kind(status_reason)
    return ErrorKind.INTERNAL


def failure_reason(
    kind: ErrorKind, exit_code: int | None, status_reason: str, attempts: int
) -> str:
    """One readable sentence: what went wrong, the exit code, Batch's words, how many tries."""
    text = _KIND_TEXT[kind]
    if status_reason.startswith(SPOT_RECLAIM_PREFIX):
        text = "the spot instance running the job was reclaimed"
    if exit_code is not None:
        text += f" (exit code {exit_code})"
    if status_reason:
        text += f": {status_reason}"
    if attempts:
        text += f" after {attempts} attempt{'s' if attempts != 1 else ''}"
    return text


def batch_failure(detail: Mapping[str, Any]) -> BatchFailure:
    """Read a FAILED Batch detail.

    Batch's FAILED is final: a retry never shows as FAILED but as the job going back to
    RUNNABLE with one more entry in ``attempts`` (see :func:`batch_change`).
    """
    exit_code = _exit_code(detail)
    status_reason = _status_reason(detail)
    kind = error_kind_for(exit_code, status_reason)
    attempts = len(_attempts(detail))
    return BatchFailure(
        reason=failure_reason(kind, exit_code, status_reason, attempts),
        error_kind=kind,
        exit_code=exit_code,
        attempts=attempts,
        final=True,
    )


def _in_progress(attempt: Mapping[str, Any]) -> bool:
    """An attempt entry for the attempt still running (the local runner lists it early)."""
    container = _mapping(attempt.get("container"))
    ended = attempt.get("stoppedAt"), attempt.get("startedAt")
    stopped = isinstance(ended[0], int | float) and (
        not isinstance(ended[1], int | float) or ended[0] > ended[1]
    )
    said = _text(attempt.get("statusReason")) or _text(container.get("reason"))
    return not (stopped or said or "exitCode" in container)


def finished_attempts(detail: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Attempts that ended; AWS lists only those, the local runner also the running one."""
    attempts = _attempts(detail)
    if attempts and _in_progress(attempts[-1]):
        attempts = attempts[:-1]
    return attempts


def attempt_reason(attempt: Mapping[str, Any]) -> str:
    """Why one attempt ended: "Host EC2 (instance i-...) terminated.", "OutOfMemoryError..."."""
    container = _mapping(attempt.get("container"))
    text = _text(container.get("reason")) or _text(attempt.get("statusReason"))
    code = container.get("exitCode")
    if (
        isinstance(code, int)
        and not isinstance(code, bool)
        and (not text or text == ESSENTIAL_EXIT)
    ):
        text = f"{text or 'container exited'} (exit code {code})"
    return text


def _attempt_attrs(detail: Mapping[str, Any]) -> dict[str, Any]:
    """``attempt`` (1-based number of the attempt now under way) and the previous one's end."""
    done = finished_attempts(detail)
    attrs: dict[str, Any] = {"attempt": len(done) + 1}
    if done and (reason := attempt_reason(done[-1])):
        attrs["previous_attempt_reason"] = reason
    return attrs


def batch_changes(detail: Mapping[str, Any]) -> list[BatchChange]:
    """The job state changes a Batch event asks for: one, or one per photo of a pack.

    A pack's Batch job (``meshdrop-pack-...``, its job ids in ``parameters``) moves each of
    its photos: RUNNING, a retry, a final FAILED (each photo's write is conditional, so photos
    already terminal keep their outcome). Its SUCCEEDED (the container exits 0 only once every
    photo reported its own outcome) asks SUCCEEDED of each photo, but the state function
    grants it only to photos whose asset exists (:meth:`StateApplier` checks), without the
    pack's ``batch_seconds``, which are not the photo's.
    """
    name = _text(detail.get("jobName"))
    if not is_pack_job_name(name):
        change = batch_change(detail)
        return [change] if change is not None else []
    changes = [batch_change(detail, job_id) for job_id in pack_job_ids(detail.get("parameters"))]
    for change in changes:
        if change is not None:
            change.attrs.pop("batch_seconds", None)
    return [c for c in changes if c is not None]


def batch_change(detail: Mapping[str, Any], job_id: str | None = None) -> BatchChange | None:
    """The job state change a Batch event asks for; ``None`` when it does not concern us.

    ``job_id``: the photo of a pack this change is for (else read from the job name).
    """
    job_id = job_id or job_id_from_batch_job_name(_text(detail.get("jobName")))
    if job_id is None:
        return None
    status = _text(detail.get("status"))
    attrs: dict[str, Any] = {}
    if _text(detail.get("jobId")):
        attrs["batch_job_id"] = _text(detail.get("jobId"))
    if status in IGNORED_STATUSES:
        if not finished_attempts(detail):
            return None  # first time through the queue: the record already says SUBMITTED
        # A retry: note the attempt and why the last one ended; the state does not move.
        return BatchChange(job_id=job_id, target=None, attrs=attrs | _attempt_attrs(detail))
    if status == "RUNNING":
        return BatchChange(
            job_id=job_id, target=JobState.RUNNING, attrs=attrs | _attempt_attrs(detail)
        )
    if status == "SUCCEEDED":
        return _succeeded(job_id, detail, attrs)
    if status == "FAILED":
        return _failed(job_id, detail, attrs)
    return None


def _succeeded(job_id: str, detail: Mapping[str, Any], attrs: dict[str, Any]) -> BatchChange:
    attrs["attempts"] = len(_attempts(detail))
    seconds = _batch_seconds(detail)
    if seconds is not None:
        attrs["batch_seconds"] = seconds
    return BatchChange(job_id=job_id, target=JobState.SUCCEEDED, attrs=attrs)


def _failed(job_id: str, detail: Mapping[str, Any], attrs: dict[str, Any]) -> BatchChange:
    failure = batch_failure(detail)
    if failure.exit_code == ExitCode.SUPERSEDED:
        # The generator found a newer upload of the key and wrote nothing: not a failure.
        attrs |= {
            "reason": "a newer upload of the same key owns it",
            "exit_code": failure.exit_code,
        }
        return BatchChange(job_id=job_id, target=JobState.SUPERSEDED, attrs=attrs)
    attrs |= {
        "error": failure.reason,
        "error_kind": failure.error_kind.value,
        "exit_code": failure.exit_code,
        "attempts": failure.attempts,
    }
    return BatchChange(job_id=job_id, target=JobState.FAILED, attrs=attrs, failure=failure)


def _batch_seconds(detail: Mapping[str, Any]) -> float | None:
    started, stopped = detail.get("startedAt"), detail.get("stoppedAt")
    if isinstance(started, int | float) and isinstance(stopped, int | float) and stopped >= started:
        return round((stopped - started) / 1000.0, 3)
    return None
