"""meshdrop's own events (source ``meshdrop``) applied to the job record.

Details arrive valid against the contract's schemas (:mod:`.validation`), so fields have their
types; generator events are believed only about their own job (:mod:`.generator`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.conditions import Attr, ConditionBase

from meshdrop_contract import DetailType, ErrorKind, JobOptions, JobState

from ..common.jobstore import STATE, WriteResult, to_dynamo
from ..common.observability import MetricName, logger, metrics
from .generator import GENERATOR_TYPES, asset_problem, batch_job_problem, reuse_problem
from .outcome import Applied, ignored

if TYPE_CHECKING:
    from .service import StateApplier

_SUCCESS_FIELDS = (
    "asset_key",
    "thumbnail_key",
    "faces",
    "vertices",
    "bytes",
    "seconds",
    "timings",
    "metrics",
    "reused",
    "provenance",
)


def _pick(detail: Mapping[str, Any], *names: str) -> dict[str, Any]:
    return {n: detail[n] for n in names if detail.get(n) is not None}


def apply_meshdrop(applier: StateApplier, kind: DetailType, detail: Mapping[str, Any]) -> Applied:
    job_id = str(detail["job_id"])
    ours = applier.settings.bucket_name
    if ours is not None and detail.get("bucket") not in (None, ours):
        # Any role that may put events on the bus could name any bucket: nothing outside this
        # stack's bucket is looked at, recorded or recreated.
        return _not_believed(job_id, f"the event names bucket {detail['bucket']!r}, not {ours!r}")
    if kind is DetailType.ACCEPTED:
        return _accepted(applier, job_id, detail)
    if kind is DetailType.REJECTED:
        # Ingest already wrote it; this keeps a lost write from going unseen.
        attrs = {"error": detail.get("reason"), "error_kind": detail.get("error_kind")}
        result = applier.store.transition(job_id, JobState.REJECTED, attrs)
        return applier.finish(job_id, result, changed=result.applied)
    record = applier.store.get(job_id)
    if record is None:
        return applier.finish(job_id, WriteResult(applied=False, item=None), changed=False)
    problem = _distrust(applier, kind, record, detail, job_id)
    if problem is not None:
        return _not_believed(job_id, problem)
    return _apply_generator(applier, kind, detail, job_id)


def _not_believed(job_id: str, problem: str) -> Applied:
    metrics.add_metric(name=MetricName.UNTRUSTED_EVENTS, unit="Count", value=1)
    logger.warning("meshdrop event not believed", extra={"job_id": job_id, "reason": problem})
    return ignored(problem, job_id)


def _distrust(
    applier: StateApplier,
    kind: DetailType,
    record: Mapping[str, Any],
    detail: Mapping[str, Any],
    job_id: str,
) -> str | None:
    if kind not in GENERATOR_TYPES:
        return None
    if kind is DetailType.SUCCEEDED and detail.get("reused"):
        return reuse_problem(record)
    problem = batch_job_problem(record, detail)
    if problem is None and kind is DetailType.SUCCEEDED:
        problem = asset_problem(applier.s3, record, detail, job_id)
    return problem


def _apply_generator(
    applier: StateApplier, kind: DetailType, detail: Mapping[str, Any], job_id: str
) -> Applied:
    store = applier.store
    if kind is DetailType.PROGRESS:
        attrs = _pick(detail, "stage", "attempt", "timings") | {"progress": detail["progress"]}
        result = store.transition(
            job_id, JobState.RUNNING, attrs, or_when=_progress_moves_on(detail)
        )
    elif kind is DetailType.SUCCEEDED:
        attrs = _pick(detail, *_SUCCESS_FIELDS)
        # Batch's SUCCEEDED may come first; the generator's details still belong on the job.
        late_details = Attr(STATE).eq(JobState.SUCCEEDED.value) & Attr("faces").not_exists()
        result = store.transition(job_id, JobState.SUCCEEDED, attrs, or_when=late_details)
        if result.applied and result.state is JobState.SUCCEEDED and not detail.get("reused"):
            _remember_content(applier, result.item or {})
    elif kind is DetailType.FAILED:
        return _failed(applier, detail, job_id)
    else:  # SUPERSEDED: the generator saw a newer upload and wrote nothing
        result = store.transition(job_id, JobState.SUPERSEDED, {"reason": detail["reason"]})
    return applier.finish(job_id, result, changed=result.applied)


def _progress_moves_on(detail: Mapping[str, Any]) -> ConditionBase:
    """Same-state progress: forward within an attempt, or any progress of a newer attempt."""
    moves = Attr("progress").not_exists() | Attr("progress").lt(to_dynamo(detail["progress"]))
    running = Attr(STATE).eq(JobState.RUNNING.value)
    attempt = detail.get("attempt")
    if not isinstance(attempt, int):
        return running & moves
    same = Attr("attempt").not_exists() | Attr("attempt").eq(attempt)
    return running & (Attr("attempt").lt(attempt) | (same & moves))


def _failed(applier: StateApplier, detail: Mapping[str, Any], job_id: str) -> Applied:
    attrs: dict[str, Any] = {"error": detail["reason"], "error_kind": detail["error_kind"]}
    attrs |= _pick(detail, "exit_code", "attempts", "seconds", "metrics")
    if detail["error_kind"] == ErrorKind.TRANSIENT.value:
        # Batch retries transient exits; its final FAILED event ends the job if needed.
        terminal = Attr(STATE).is_in(
            [
                JobState.SUCCEEDED.value,
                JobState.FAILED.value,
                JobState.REJECTED.value,
                JobState.SUPERSEDED.value,
            ]
        )
        result = applier.store.update(job_id, {"last_error": attrs["error"]}, condition=~terminal)
        return applier.finish(job_id, result, changed=False)
    result = applier.store.transition(job_id, JobState.FAILED, attrs)
    return applier.finish(job_id, result, changed=result.applied)


def _accepted(applier: StateApplier, job_id: str, detail: Mapping[str, Any]) -> Applied:
    store = applier.store
    if store.get(job_id) is not None:
        return Applied(job_id=job_id, state=None, changed=False)
    logger.warning("Job Accepted for a job without a record; recreating it")
    attrs = _pick(detail, "bucket", "source_key", "asset_key", "options", "source_sha256")
    if detail.get("source_version"):
        attrs["source_version"] = detail["source_version"]
    result = store.create(job_id, JobState.ACCEPTED, attrs)
    if result.applied and detail.get("batch_job_id"):
        result = store.transition(
            job_id, JobState.SUBMITTED, {"batch_job_id": detail["batch_job_id"]}
        )
    return applier.finish(job_id, result, changed=result.applied)


def _remember_content(applier: StateApplier, item: Mapping[str, Any]) -> None:
    sha = item.get("source_sha256")
    if not sha or not item.get("faces") or not item.get("asset_key"):
        return
    options = JobOptions.from_dict(item.get("options") or {})
    applier.store.put_content(
        str(sha),
        options,
        {
            "job_id": item["job_id"],
            "bucket": item.get("bucket"),
            "asset_key": item["asset_key"],
            "thumbnail_key": item.get("thumbnail_key"),
            "faces": item.get("faces"),
            "vertices": item.get("vertices"),
            "bytes": item.get("bytes"),
        },
    )
