"""Pure mapping from AWS Batch "Batch Job State Change" details to job state changes.

No AWS calls here, so every rule (what is ignored, what is final, the reason text) is unit-tested
on plain dictionaries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from meshdrop_contract import ErrorKind, ExitCode, JobState, job_id_from_batch_job_name

SPOT_RECLAIM_PREFIX = "Host EC2"
TIMEOUT_REASON = "Job attempt duration exceeded timeout"
#: Batch statuses before the container runs; the job record already says SUBMITTED.
IGNORED_STATUSES = frozenset({"SUBMITTED", "PENDING", "RUNNABLE", "STARTING"})

_KIND_TEXT = {
    ErrorKind.BAD_INPUT: "the photo cannot be turned into a 3D asset",
    ErrorKind.QUALITY: "the generated asset failed the quality check",
    ErrorKind.TRANSIENT: "a transient error stopped the job",
    ErrorKind.TIMEOUT: "the job ran longer than its time limit",
    ErrorKind.INTERNAL: "the generator failed with an internal error",
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


def _status_reason(detail: Mapping[str, Any]) -> str:
    last = _last_attempt(detail)
    for text in (
        detail.get("statusReason"),
        last.get("statusReason"),
        _mapping(last.get("container")).get("reason"),
        _mapping(detail.get("container")).get("reason"),
    ):
        if isinstance(text, str) and text.strip():
            return text.strip()
    return ""


def error_kind_for(exit_code: int | None, status_reason: str) -> ErrorKind:
    """Classify a failure by exit code first, then by what Batch said."""
    if exit_code == ExitCode.BAD_INPUT:
        return ErrorKind.BAD_INPUT
    if exit_code == ExitCode.QUALITY:
        return ErrorKind.QUALITY
    if exit_code == ExitCode.TRANSIENT or status_reason.startswith(SPOT_RECLAIM_PREFIX):
        return ErrorKind.TRANSIENT
    if status_reason.startswith(TIMEOUT_REASON):
        return ErrorKind.TIMEOUT
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
    """Read a FAILED Batch detail; ``final`` is false when Batch's retry strategy goes on."""
    exit_code = _exit_code(detail)
    status_reason = _status_reason(detail)
    kind = error_kind_for(exit_code, status_reason)
    attempts = len(_attempts(detail))
    max_attempts = int(_mapping(detail.get("retryStrategy")).get("attempts") or 1)
    # Only transient failures are retried (job definition: evaluateOnExit on exit code 75 and
    # "Host EC2*"); bad input and quality failures are final on the first attempt.
    final = kind is not ErrorKind.TRANSIENT or attempts >= max_attempts
    return BatchFailure(
        reason=failure_reason(kind, exit_code, status_reason, attempts),
        error_kind=kind,
        exit_code=exit_code,
        attempts=attempts,
        final=final,
    )


def batch_change(detail: Mapping[str, Any]) -> BatchChange | None:
    """The job state change a Batch event asks for; ``None`` when it does not concern us."""
    job_id = job_id_from_batch_job_name(str(detail.get("jobName", "")))
    if job_id is None:
        return None
    status = str(detail.get("status", ""))
    attrs: dict[str, Any] = {}
    if detail.get("jobId"):
        attrs["batch_job_id"] = str(detail["jobId"])
    if status in IGNORED_STATUSES:
        return None
    if status == "RUNNING":
        attrs["attempt"] = len(detail.get("attempts") or []) + 1
        return BatchChange(job_id=job_id, target=JobState.RUNNING, attrs=attrs)
    if status == "SUCCEEDED":
        attrs["attempts"] = len(detail.get("attempts") or [])
        seconds = _batch_seconds(detail)
        if seconds is not None:
            attrs["batch_seconds"] = seconds
        return BatchChange(job_id=job_id, target=JobState.SUCCEEDED, attrs=attrs)
    if status == "FAILED":
        failure = batch_failure(detail)
        attrs |= {
            "error": failure.reason,
            "error_kind": failure.error_kind.value,
            "exit_code": failure.exit_code,
            "attempts": failure.attempts,
        }
        target = JobState.FAILED if failure.final else None
        return BatchChange(job_id=job_id, target=target, attrs=attrs, failure=failure)
    return None


def _batch_seconds(detail: Mapping[str, Any]) -> float | None:
    started, stopped = detail.get("startedAt"), detail.get("stoppedAt")
    if isinstance(started, int | float) and isinstance(stopped, int | float) and stopped >= started:
        return round((stopped - started) / 1000.0, 3)
    return None
