"""The job record as ingest writes it: submit leases, the outbox, duplicates.

A data-access object beside :class:`lambdas.ingest.service.Ingestor`, which decides what
happens to an upload; this decides how the record and its events get written so nothing is
lost or done twice. Lease times come from the caller's :class:`~lambdas.ingest.access.Clock`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, cast

from boto3.dynamodb.conditions import Attr

from meshdrop_contract import DetailType, JobState, base_detail

from ..common.jobstore import PENDING_EVENT, SUBMIT_LEASE_UNTIL, SUBMIT_OWNER, JobStore
from ..common.observability import MetricName, logger, metrics
from ..common.settings import IngestSettings
from .access import Clock
from .outcomes import LeaseHeldError, Outcome
from .shapes import is_valid

#: ``emit(detail_type, detail, bus)`` of :mod:`lambdas.common.eventbus`, or a stand-in.
Publish = Callable[[DetailType, Mapping[str, Any], str], object]


def invalid_record(what: str, item: Mapping[str, Any] | None) -> None:
    metrics.add_metric(MetricName.INVALID_RECORDS, "Count", 1)
    logger.warning(f"stored {what} fails its schema; not used", extra={"item": str(item)[:500]})


class JobRecords:
    """Lease, outbox and duplicate handling of one invocation's job records."""

    def __init__(
        self,
        store: JobStore,
        settings: IngestSettings,
        clock: Clock,
        owner: str,
        publish: Publish,
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.owner = owner
        self.publish = publish

    def lease_attrs(self) -> dict[str, Any]:
        until = int(self.clock.now()) + self.settings.submit_lease_seconds
        return {SUBMIT_OWNER: self.owner, SUBMIT_LEASE_UNTIL: until}

    def release(self, job_id: str) -> None:
        try:
            if self.store.release_lease(job_id, self.owner):
                logger.info("released the submit lease after a failure")
        except Exception as err:  # the lease then runs out on its own, before the next delivery
            logger.warning("could not release the submit lease", extra={"error": str(err)})

    def take_over(self, job_id: str, existing: Mapping[str, Any] | None) -> Outcome | None:
        """After a failed create: ``None`` once this caller holds the lease, else the outcome.

        A record still ACCEPTED means another delivery holds the lease (it is working), or
        held it and failed (it released it) or died (then it runs out before SQS delivers the
        message again, see ``IngestSettings.submit_lease_seconds``): this delivery takes over.
        """
        if existing is None:
            # The record vanished between the failed create and now (TTL): a retry recreates it.
            raise LeaseHeldError(f"job {job_id} changed while it was being created; retrying")
        if not is_valid("JOB_RECORD", existing):
            invalid_record("job record", existing)
            return Outcome.DUPLICATE
        if existing.get("state") != JobState.ACCEPTED:
            return self.duplicate(existing)
        now = int(self.clock.now())
        until = now + self.settings.submit_lease_seconds
        taken = self.store.take_lease_at(job_id, self.owner, now=now, until=until)
        if taken.applied:
            logger.info("took over the submit lease of a job left ACCEPTED")
            return None
        current = taken.item or {}
        if current.get("state") not in (None, JobState.ACCEPTED):
            return self.duplicate(current)
        raise LeaseHeldError(f"job {job_id} is being submitted by another delivery")

    def duplicate(self, item: Mapping[str, Any]) -> Outcome:
        metrics.add_metric(MetricName.DUPLICATE_DELIVERIES, "Count", 1)
        logger.info("duplicate delivery", extra={"state": item.get("state")})
        # A delivery that crashed (or whose PutEvents failed) after its write left the event.
        if pending := item.get(PENDING_EVENT):
            job_id = str(item["job_id"])
            try:
                event = json.loads(str(pending))
            except ValueError:
                event = None
            if event is None or not is_valid("PENDING_EVENT", event):
                invalid_record("pending event", item)
                self.store.clear_pending_event(job_id)
                return Outcome.DUPLICATE
            self.emit_pending(job_id, cast("dict[str, Any]", event))
        return Outcome.DUPLICATE

    def gone(self, job_id: str, reason: str) -> Outcome:
        # The object is gone, but an earlier delivery may have recorded the job and left its
        # event pending; that event must still go out. Only this rare path pays the read.
        existing = self.store.get(job_id)
        if existing is not None and existing.get("state") != JobState.ACCEPTED:
            return self.duplicate(existing)
        if existing is not None:
            return self._close_gone(job_id, existing, reason)
        logger.info("the photo is gone; ignoring its notification", extra={"reason": reason})
        return Outcome.GONE

    def _close_gone(self, job_id: str, existing: Mapping[str, Any], reason: str) -> Outcome:
        """A job left ACCEPTED by a delivery that failed, whose photo is gone: end it.

        Nothing can be generated from a deleted photo, so the job would otherwise wait for
        the reconciler. SUPERSEDED (the delete superseded the upload) sends no notification.
        """
        blocked = self.take_over(job_id, existing)
        if blocked is not None:
            return blocked
        detail = base_detail(
            job_id=job_id,
            bucket=str(existing.get("bucket", "")),
            source_key=str(existing.get("source_key", "")),
            asset_key=None,
            options=None,
        ) | {"reason": f"the photo was deleted before it was processed ({reason})"}
        event = {"detail_type": DetailType.SUPERSEDED.value, "detail": detail}
        result = self.store.transition(
            job_id,
            JobState.SUPERSEDED,
            {"reason": detail["reason"], "source_deleted": True},
            remove=(SUBMIT_OWNER,),
            require=Attr(SUBMIT_OWNER).eq(self.owner),
            pending_event=event,
        )
        if not result.applied:
            return self.duplicate(result.item or {})
        metrics.add_metric(MetricName.JOBS_SUPERSEDED, "Count", 1)
        self.emit_pending(job_id, event)
        return Outcome.SUPERSEDED

    def emit_then_record(
        self, job_id: str, target: JobState, attrs: Mapping[str, Any], event: Mapping[str, Any]
    ) -> bool:
        """Publish ``event``, then write the transition it reports; whether the write applied.

        Why emitting first is safe (and saves the outbox's third call, clearing the pending
        event):

        * The event reports a fact that is already true before the write (the Batch job
          exists, or the reused asset is in place), and stays true whatever happens to the
          write. Consumers do not need the record to have moved first: the state function
          ignores Job Accepted for an existing record, and all its transitions are
          conditional on the state, in whatever order events and writes arrive.
        * The write is conditional on this caller still holding the submit lease of an
          ACCEPTED record. No other delivery can move the record meanwhile: the lease
          outlives the invocation (``IngestSettings.submit_lease_seconds`` > the function
          timeout) and every other ingest write to an ACCEPTED record needs the lease. A
          delivery that takes over a lease later first looks for the Batch job by name
          (:meth:`BatchGateway.find_job`), so it adopts a job submitted here. Only the state
          function may get there first, with an event of the Batch job just submitted (it
          started running before this write landed); the record is then further on, which
          the published event does not contradict.
        * Nothing is lost. If PutEvents fails, the write carries the event as pending (the
          outbox) and the error is raised after it: SQS redelivers, and the redelivery finds
          the record no longer ACCEPTED and publishes the pending event (:meth:`duplicate`).
          If the process dies after PutEvents but before the write, the record is still
          ACCEPTED and leased: a redelivery takes over once the lease is released or expires,
          finds the Batch job and records it, so the event may go out twice (EventBridge is
          at-least-once anyway and the state function is idempotent), never zero times.
        """
        publish_error: Exception | None = None
        try:
            self.publish_event(event)
        except Exception as err:  # whatever failed, the outbox below keeps the event
            logger.warning("publishing failed; the event stays pending", extra={"error": str(err)})
            publish_error = err
        pending = event if publish_error is not None else None
        result = self.store.transition(
            job_id,
            target,
            attrs,
            require=Attr(SUBMIT_OWNER).eq(self.owner),
            pending_event=pending,
        )
        ours = (result.item or {}).get(SUBMIT_OWNER) == self.owner
        if not result.applied and ours and pending is not None:
            # The Batch job got ahead of the write; the event must still not be lost.
            self.store.update(
                job_id,
                {PENDING_EVENT: json.dumps(pending)},
                condition=Attr(SUBMIT_OWNER).eq(self.owner),
            )
        if publish_error is not None:
            raise publish_error
        if not result.applied and ours:
            logger.info("the job moved on before its submission was recorded", extra=attrs)
            return True
        return result.applied

    def publish_event(self, event: Mapping[str, Any]) -> None:
        self.publish(
            DetailType(event["detail_type"]), event["detail"], self.settings.event_bus_name
        )

    def emit_pending(self, job_id: str, event: Mapping[str, Any]) -> None:
        self.publish_event(event)
        self.store.clear_pending_event(job_id)
