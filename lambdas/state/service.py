"""State logic: apply one event to the job record, then notify once when the job is terminal.

Every write is conditional (see :class:`lambdas.common.jobstore.JobStore`): an event that would
move a job backwards fails its condition and is logged as stale; it is never an error, because
EventBridge delivers at least once and in no particular order. Events reach this module already
checked against their schemas (:mod:`.validation`); meshdrop's own events are handled in
:mod:`.meshdrop_events`, the notification in :mod:`.notify`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from boto3.dynamodb.conditions import Attr

from meshdrop_contract import (
    BATCH_DETAIL_TYPE,
    BATCH_SOURCE,
    EVENT_SOURCE,
    TERMINAL_STATES,
    DetailType,
    JobState,
    is_pack_job_name,
)

from ..common.clients import client
from ..common.jobstore import STATE, JobStore, WriteResult
from ..common.observability import MetricName, logger, metrics
from ..common.settings import StateSettings
from .generator import asset_problem
from .mapping import BatchChange, batch_changes
from .meshdrop_events import apply_meshdrop
from .notify import (
    SILENT_STATES,
    Notifier,
    derived_keys,
    notification_message,
    notification_subject,
)
from .outcome import Applied, ignored, pack_applied

__all__ = ["Applied", "StateApplier", "notification_message", "notification_subject"]

_TERMINAL = sorted(s.value for s in TERMINAL_STATES)


class StateApplier:
    def __init__(self, settings: StateSettings, store: JobStore | None = None) -> None:
        self.settings = settings
        self.store = store or JobStore(settings.table_name, settings.job_ttl_days)
        self.sns = client("sns")
        self.s3 = client("s3")
        self.notifier = Notifier(settings, self.store, self.sns, self.s3)

    def apply(self, source: str, detail_type: str, detail: Mapping[str, Any]) -> Applied:
        """Apply a (schema-valid) event; see :func:`.validation.check_event`."""
        if source == BATCH_SOURCE and detail_type == BATCH_DETAIL_TYPE:
            return self._apply_batch(detail)
        if source == EVENT_SOURCE and detail_type in {t.value for t in DetailType}:
            return apply_meshdrop(self, DetailType(detail_type), detail)
        return ignored(f"not an event this function handles: {source!r} / {detail_type!r}")

    def notify_once(self, job_id: str) -> bool:
        return self.notifier.notify_once(job_id)

    # -- Batch -------------------------------------------------------------------------------

    def _apply_batch(self, detail: Mapping[str, Any]) -> Applied:
        changes = batch_changes(detail)
        if not changes:
            logger.debug("Batch event ignored", extra={"status": detail.get("status")})
            return ignored(f"Batch status {detail.get('status')!r} of {detail.get('jobName')!r}")
        if len(changes) == 1 and not is_pack_job_name(str(detail.get("jobName") or "")):
            return self._apply_change(changes[0])
        # A pack: each photo on its own, as if the Batch job were its alone.
        return pack_applied([self._apply_pack_change(change) for change in changes])

    def _apply_pack_change(self, change: BatchChange) -> Applied:
        """One photo of a pack: its asset, not the pack's end, says whether it succeeded.

        * The pack SUCCEEDED: each photo reported its own outcome; a photo still open gets
          SUCCEEDED only if its asset exists with its job id (its event was lost or is late),
          else it waits for its own event (or the reconciler).
        * The pack FAILED for good: a photo still open whose asset exists succeeded (its
          "Job Succeeded" is still on its way: EventBridge keeps no order), like a single
          job's Batch SUCCEEDED; the others fail.
        """
        if change.target not in (JobState.SUCCEEDED, JobState.FAILED):
            return self._apply_change(change)
        written = self._asset_written(change.job_id)
        if written:
            attrs = {k: v for k, v in change.attrs.items() if k in ("batch_job_id", "attempts")}
            return self._apply_change(BatchChange(change.job_id, JobState.SUCCEEDED, attrs))
        if change.target is JobState.SUCCEEDED:
            return ignored("the photo reports its own outcome", change.job_id)
        return self._apply_change(change)

    def _asset_written(self, job_id: str) -> bool:
        """Whether an open photo's asset exists, written by this job."""
        record = self.store.get(job_id) or {}
        if record.get(STATE) in _TERMINAL or not record.get("asset_key"):
            return False
        detail = {"asset_key": record.get("asset_key"), "bucket": record.get("bucket")}
        return asset_problem(self.s3, record, detail, job_id) is None

    def _apply_change(self, change: BatchChange) -> Applied:
        job_id = change.job_id
        record = self.store.get(job_id)
        if record is None:
            return self.finish(job_id, WriteResult(applied=False, item=None), changed=False)
        recorded = record.get("batch_job_id")
        batch_job_id = change.attrs.get("batch_job_id")
        if recorded and batch_job_id and recorded != batch_job_id:
            # Another Batch job with the job's name (a double submission): not this record's.
            reason = f"Batch job {batch_job_id} is not the job's Batch job {recorded}"
            logger.warning("Batch event of another Batch job", extra={"reason": reason})
            return ignored(reason, job_id)
        if change.target is None:
            return self._record_attempt(job_id, change)
        return self._batch_transition(job_id, change, record)

    def _record_attempt(self, job_id: str, change: BatchChange) -> Applied:
        """A retry (RUNNABLE/STARTING again): note the attempt; the state stays as it is."""
        attempt = int(change.attrs["attempt"])
        logger.info("Batch retries the job", extra={"job_id": job_id, "attrs": change.attrs})
        newer = Attr("attempt").not_exists() | Attr("attempt").lt(attempt)
        result = self.store.update(
            job_id, change.attrs, condition=~Attr(STATE).is_in(_TERMINAL) & newer
        )
        return self.finish(job_id, result, changed=result.applied)

    def _batch_transition(
        self, job_id: str, change: BatchChange, record: Mapping[str, Any]
    ) -> Applied:
        assert change.target is not None
        attrs = dict(change.attrs)
        or_when = None
        remove: tuple[str, ...] = ()
        if change.target is JobState.SUCCEEDED:
            # Batch's SUCCEEDED may come before the generator's event: the keys are known anyway.
            attrs.update(derived_keys(record))
        elif change.target is JobState.RUNNING:
            attempt = int(attrs["attempt"])
            # RUNNING again with a higher attempt is a retry under way: record it, and let the
            # new attempt's progress start over.
            or_when = Attr(STATE).eq(JobState.RUNNING.value) & (
                Attr("attempt").not_exists() | Attr("attempt").lt(attempt)
            )
            remove = ("progress", "stage") if attempt > 1 else ()
        result = self.store.transition(job_id, change.target, attrs, or_when=or_when, remove=remove)
        return self.finish(job_id, result, changed=result.applied)

    # -- outcome and notification ------------------------------------------------------------

    def finish(self, job_id: str, result: WriteResult, *, changed: bool) -> Applied:
        if result.item is None:
            metrics.add_metric(name=MetricName.UNKNOWN_JOBS, unit="Count", value=1)
            logger.warning("event for an unknown job", extra={"job_id": job_id})
            return Applied(job_id=job_id, state=None, changed=False, reason="unknown job")
        state = result.state
        if not result.applied:
            metrics.add_metric(name=MetricName.STALE_EVENTS, unit="Count", value=1)
            logger.info("stale or duplicate event left the job as it is", extra={"state": state})
        notified = False
        if state is not None and state.terminal and state not in SILENT_STATES:
            notified = self.notify_once(job_id)
        return Applied(job_id=job_id, state=state, changed=changed, notified=notified)

    def notify_if_terminal(self, job_id: str) -> bool:
        """After an event was dropped: a terminal, unnotified job still gets its notification."""
        record = self.store.get(job_id)
        if record is None or record.get(STATE) not in _TERMINAL:
            return False
        return self.notify_once(job_id)
