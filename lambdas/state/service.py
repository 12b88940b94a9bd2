"""State logic: apply one event to the job record, then notify once when the job is terminal.

Every write is conditional (see :class:`lambdas.common.jobstore.JobStore`): an event that would
move a job backwards fails its condition and is logged as stale; it is never an error, because
EventBridge delivers at least once and in no particular order.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.conditions import Attr

from meshdrop_contract import (
    BATCH_DETAIL_TYPE,
    BATCH_SOURCE,
    EVENT_SOURCE,
    TERMINAL_STATES,
    DetailType,
    ErrorKind,
    InvalidKeyError,
    JobOptions,
    JobState,
    parse_source_key,
)

from ..common.clients import client
from ..common.jobstore import STATE, JobStore, WriteResult, to_dynamo
from ..common.observability import MetricName, logger, metrics
from ..common.settings import StateSettings
from .mapping import batch_change

_SUBJECT_UNSAFE = re.compile(r"[^\x20-\x7e]")


@dataclass(frozen=True, slots=True)
class Applied:
    """What one event did: the job, its state afterwards, and whether a notification went out."""

    job_id: str | None
    state: JobState | None
    changed: bool
    notified: bool = False


def _pick(detail: Mapping[str, Any], *names: str) -> dict[str, Any]:
    return {n: detail[n] for n in names if detail.get(n) is not None}


class StateApplier:
    def __init__(self, settings: StateSettings, store: JobStore | None = None) -> None:
        self.settings = settings
        self.store = store or JobStore(settings.table_name, settings.job_ttl_days)
        self.sns = client("sns")

    def apply(self, source: str, detail_type: str, detail: Mapping[str, Any]) -> Applied:
        if source == BATCH_SOURCE and detail_type == BATCH_DETAIL_TYPE:
            return self._apply_batch(detail)
        if source == EVENT_SOURCE:
            try:
                kind = DetailType(detail_type)
            except ValueError:
                logger.warning("unknown meshdrop detail type", extra={"detail_type": detail_type})
                return Applied(job_id=None, state=None, changed=False)
            return self._apply_meshdrop(kind, detail)
        logger.warning("event from an unexpected source", extra={"source": source})
        return Applied(job_id=None, state=None, changed=False)

    # -- Batch -------------------------------------------------------------------------------

    def _apply_batch(self, detail: Mapping[str, Any]) -> Applied:
        change = batch_change(detail)
        if change is None:
            logger.debug("Batch event ignored", extra={"status": detail.get("status")})
            return Applied(job_id=None, state=None, changed=False)
        job_id = change.job_id
        if change.target is None:
            # A failed attempt Batch will retry: note it, keep the state.
            logger.info("Batch attempt failed; retry follows", extra={"attrs": change.attrs})
            terminal = sorted(s.value for s in TERMINAL_STATES)
            result = self.store.update(
                job_id,
                {"last_error": change.attrs["error"], "attempts": change.attrs["attempts"]},
                condition=~Attr(STATE).is_in(terminal),
            )
            return self._finish(job_id, result, changed=False)
        attrs = dict(change.attrs)
        if change.target is JobState.SUCCEEDED:
            attrs.update(self._asset_from_record(job_id))
        result = self.store.transition(job_id, change.target, attrs)
        return self._finish(job_id, result, changed=result.applied)

    def _asset_from_record(self, job_id: str) -> dict[str, Any]:
        item = self.store.get(job_id)
        if not item or item.get("asset_key"):
            return {}
        try:
            options = JobOptions.from_dict(item.get("options") or {})
            source = parse_source_key(str(item.get("source_key", "")))
        except (InvalidKeyError, ValueError):
            return {}
        return {
            "asset_key": source.asset_key(options.format.value),
            "thumbnail_key": source.thumbnail_key(),
        }

    # -- meshdrop events ---------------------------------------------------------------------

    def _apply_meshdrop(self, kind: DetailType, detail: Mapping[str, Any]) -> Applied:
        job_id = str(detail.get("job_id", ""))
        if not job_id:
            logger.warning("meshdrop event without a job id", extra={"detail_type": kind.value})
            return Applied(job_id=None, state=None, changed=False)
        if kind is DetailType.ACCEPTED:
            return self._accepted(job_id, detail)
        if kind is DetailType.PROGRESS:
            progress = float(detail.get("progress", 0.0))
            attrs = _pick(detail, "stage", "attempt", "timings") | {"progress": progress}
            moving_on = Attr(STATE).eq(JobState.RUNNING.value) & (
                Attr("progress").not_exists() | Attr("progress").lt(to_dynamo(progress))
            )
            result = self.store.transition(job_id, JobState.RUNNING, attrs, or_when=moving_on)
        elif kind is DetailType.SUCCEEDED:
            attrs = _pick(
                detail,
                "asset_key",
                "thumbnail_key",
                "faces",
                "vertices",
                "bytes",
                "seconds",
                "timings",
                "metrics",
                "reused",
            )
            # Batch's SUCCEEDED may come first; the generator's details still belong on the job.
            late_details = Attr(STATE).eq(JobState.SUCCEEDED.value) & Attr("faces").not_exists()
            result = self.store.transition(job_id, JobState.SUCCEEDED, attrs, or_when=late_details)
            if result.state is JobState.SUCCEEDED and not detail.get("reused"):
                self._remember_content(result.item or {}, detail)
        elif kind is DetailType.FAILED:
            attrs = {"error": detail.get("reason"), "error_kind": detail.get("error_kind")}
            attrs |= _pick(detail, "exit_code", "attempts", "seconds", "metrics")
            if detail.get("error_kind") == ErrorKind.TRANSIENT.value:
                # Batch retries transient exits; its final FAILED event ends the job if needed.
                terminal = sorted(s.value for s in TERMINAL_STATES)
                result = self.store.update(
                    job_id,
                    {"last_error": attrs["error"]},
                    condition=~Attr(STATE).is_in(terminal),
                )
                return self._finish(job_id, result, changed=False)
            result = self.store.transition(job_id, JobState.FAILED, attrs)
        else:  # REJECTED: ingest already wrote it; this keeps a lost write from going unseen
            attrs = {"error": detail.get("reason"), "error_kind": detail.get("error_kind")}
            result = self.store.transition(job_id, JobState.REJECTED, attrs)
        return self._finish(job_id, result, changed=result.applied)

    def _accepted(self, job_id: str, detail: Mapping[str, Any]) -> Applied:
        if self.store.get(job_id) is not None:
            return Applied(job_id=job_id, state=None, changed=False)
        logger.warning("Job Accepted for a job without a record; recreating it")
        attrs = _pick(detail, "bucket", "source_key", "asset_key", "options", "source_sha256")
        if detail.get("source_version"):
            attrs["source_version"] = detail["source_version"]
        result = self.store.create(job_id, JobState.ACCEPTED, attrs)
        if result.applied and detail.get("batch_job_id"):
            result = self.store.transition(
                job_id, JobState.SUBMITTED, {"batch_job_id": detail["batch_job_id"]}
            )
        return self._finish(job_id, result, changed=result.applied)

    def _remember_content(self, item: Mapping[str, Any], detail: Mapping[str, Any]) -> None:
        sha = item.get("source_sha256")
        if not sha or not item.get("faces") or not item.get("asset_key"):
            return
        options = JobOptions.from_dict(item.get("options") or {})
        self.store.put_content(
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

    # -- outcome and notification ------------------------------------------------------------

    def _finish(self, job_id: str, result: WriteResult, *, changed: bool) -> Applied:
        if result.item is None:
            metrics.add_metric(name=MetricName.UNKNOWN_JOBS, unit="Count", value=1)
            logger.warning("event for an unknown job", extra={"job_id": job_id})
            return Applied(job_id=job_id, state=None, changed=False)
        state = result.state
        if not result.applied:
            metrics.add_metric(name=MetricName.STALE_EVENTS, unit="Count", value=1)
            logger.info("stale or duplicate event left the job as it is", extra={"state": state})
        notified = False
        if state is not None and state.terminal:
            notified = self.notify_once(job_id)
        return Applied(job_id=job_id, state=state, changed=changed, notified=notified)

    def notify_once(self, job_id: str) -> bool:
        """Publish the job's final notification unless some delivery already did."""
        item = self.store.claim_notification(job_id)
        if item is None:
            return False
        message = notification_message(item)
        try:
            self.sns.publish(
                TopicArn=self.settings.topic_arn,
                Subject=notification_subject(item),
                Message=json.dumps(message, ensure_ascii=False),
                MessageAttributes={
                    "state": {"DataType": "String", "StringValue": message["state"]},
                    "category": {"DataType": "String", "StringValue": _category(item)},
                },
            )
        except Exception:
            # Give the claim back so EventBridge's retry of this event can notify.
            self.store.release_notification(job_id)
            raise
        state = JobState(message["state"])
        metrics.add_metric(name=MetricName.NOTIFICATIONS_SENT, unit="Count", value=1)
        if state is JobState.SUCCEEDED:
            metrics.add_metric(name=MetricName.JOBS_SUCCEEDED, unit="Count", value=1)
            if isinstance(message.get("seconds"), int | float) and not item.get("reused"):
                metrics.add_metric(
                    name=MetricName.JOB_SECONDS, unit="Seconds", value=message["seconds"]
                )
        elif state is JobState.FAILED:
            metrics.add_metric(name=MetricName.JOBS_FAILED, unit="Count", value=1)
        return True


def _category(item: Mapping[str, Any]) -> str:
    try:
        return parse_source_key(str(item.get("source_key", ""))).category.value
    except InvalidKeyError:
        return "unknown"


def notification_message(item: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON body of the SNS notification for a terminal job record."""
    state = str(item.get(STATE))
    succeeded = state == JobState.SUCCEEDED.value
    seconds = item.get("seconds", item.get("batch_seconds"))
    return {
        "job_id": item.get("job_id"),
        "state": state,
        "bucket": item.get("bucket"),
        "source_key": item.get("source_key"),
        "asset_key": item.get("asset_key") if succeeded else None,
        "thumbnail_key": item.get("thumbnail_key") if succeeded else None,
        "reused": bool(item.get("reused", False)),
        "error": None if succeeded else item.get("error"),
        "error_kind": None if succeeded else item.get("error_kind"),
        "seconds": seconds,
    }


def notification_subject(item: Mapping[str, Any]) -> str:
    """SNS subjects must be ASCII, one line, under 100 characters."""
    name = str(item.get("source_key", "")).rsplit("/", 1)[-1]
    subject = f"meshdrop job {item.get(STATE)}: {name}"
    return _SUBJECT_UNSAFE.sub("?", subject)[:99]
