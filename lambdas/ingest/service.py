"""Ingest logic: one S3 object-created notification -> one job (submitted, reused or rejected).

Idempotent by construction: the job id is derived from bucket, key and version, the record is
created with a conditional put, and only the holder of a conditional "submit lease" on the
record may call SubmitJob. Any number of (concurrent) deliveries make one job and one Batch job.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, cast

from boto3.dynamodb.conditions import Attr

from meshdrop_contract import (
    DetailType,
    ErrorKind,
    InvalidKeyError,
    InvalidOptionsError,
    JobSpec,
    JobState,
    SourceKey,
    base_detail,
    batch_job_name,
    is_asset_key,
    job_id_for,
    parse_options,
    parse_source_key,
)
from meshdrop_contract.events import now_iso
from meshdrop_contract.keys import is_folder_placeholder
from meshdrop_contract.options import METADATA_NAMES, JobOptions

from ..common.clients import client
from ..common.errorfile import write_error_file
from ..common.eventbus import emit
from ..common.jobstore import (
    PENDING_EVENT,
    SOURCE_KEY,
    SUBMIT_LEASE_UNTIL,
    SUBMIT_OWNER,
    JobStore,
)
from ..common.observability import MetricName, logger, metrics
from ..common.settings import IngestSettings
from .access import Backoff, BatchGateway, Clock, Gone, Opened, SourceReader
from .notices import Action, InvalidEventError, Notice, parse_body
from .removal import remove_source
from .shapes import is_valid
from .validation import RejectedInputError, check_size, inspect_image, read_checked

_READ_CHUNK = 256 * 1024


class IngestMetric:
    """Ingest's own metric names, beside :class:`MetricName` (dashboards and alarms key on them)."""

    INVALID_EVENTS = "InvalidEvents"  # malformed or unrecognised bodies, dropped
    INVALID_RECORDS = "InvalidRecords"  # stored items that fail their schema, not used
    IGNORED_EVENTS = "IgnoredEvents"  # folders, removals of unknown keys, other S3 events
    JOBS_SUPERSEDED = "JobsSuperseded"
    SOURCES_DELETED = "SourcesDeleted"
    SUBMITS_ADOPTED = "SubmitsAdopted"  # a Batch job found already submitted for the job


class Outcome(StrEnum):
    IGNORED = "ignored"  # test events, writes under 3d_assets/, folder placeholders
    INVALID = "invalid"  # a body that is not a valid S3 delivery: logged, counted, dropped
    GONE = "gone"  # object deleted before we read it
    DUPLICATE = "duplicate"  # another delivery already handled this upload
    REJECTED = "rejected"
    REUSED = "reused"
    SUBMITTED = "submitted"
    SUPERSEDED = "superseded"  # a newer upload of the key came first: never submitted
    SOURCE_DELETED = "source_deleted"  # ObjectRemoved: the key's jobs marked, assets per setting


class LeaseHeldError(RuntimeError):
    """Another invocation is submitting this job; the message is retried later."""


#: Kept for callers of the previous name: an upload is a notice of an object created.
Upload = Notice


def uploads_from_body(body: str) -> list[Notice] | None:
    """The notices in an SQS message body; ``None`` for S3's ``s3:TestEvent``."""
    notices = parse_body(body)
    return notices or None


def _options_as_sent(metadata: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in metadata.items() if k.lower() in METADATA_NAMES}


def _invalid_record(what: str, item: Mapping[str, Any] | None) -> None:
    metrics.add_metric(IngestMetric.INVALID_RECORDS, "Count", 1)
    logger.warning(f"stored {what} fails its schema; not used", extra={"item": str(item)[:500]})


class Ingestor:
    """Turns S3 notices into jobs. Clients and settings are per container; one instance per call.

    The common path (a new, valid upload) costs six AWS calls, in this order:

    1. ``GetObject`` of the key's current object (headers first: metadata, length and version,
       which also tell a stale notification from the current photo; the body is read only
       after step 2),
    2. ``PutItem`` creating the record ACCEPTED *with* the submit lease, conditional on no
       record existing (a failure returns the existing record: no separate read),
    3. ``GetItem`` of the content item (reuse of an asset made from the same bytes),
    4. ``SubmitJob``,
    5. ``PutEvents`` (Job Accepted),
    6. ``UpdateItem`` to SUBMITTED, conditional on still holding the lease.

    Step 5 before step 6 is what saves the outbox's extra write; see :meth:`_emit_then_record`.
    A delivery that takes over the lease of a record left ACCEPTED first asks Batch whether the
    job was submitted already (``ListJobs`` by name), so a crash between steps 4 and 6 never
    makes a second Batch job.
    """

    def __init__(
        self,
        settings: IngestSettings,
        store: JobStore | None = None,
        *,
        clock: Clock | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self.settings = settings
        self.store = store or JobStore(settings.table_name, settings.job_ttl_days)
        self.s3 = client("s3")
        self.clock = clock or Clock()
        self.reader = SourceReader(self.s3)
        self.gateway = BatchGateway(
            client("batch"), settings.job_queue, self.clock, backoff or Backoff()
        )
        # Unique per invocation, so the lease tells this caller from a concurrent duplicate.
        self.owner = uuid.uuid4().hex

    def handle_body(self, body: object) -> list[Outcome]:
        try:
            notices = parse_body(body)
        except InvalidEventError as err:
            # No retry can make a malformed body valid: count it, say why, drop it.
            metrics.add_metric(IngestMetric.INVALID_EVENTS, "Count", 1)
            logger.warning("invalid event dropped", extra={"reason": str(err)})
            return [Outcome.INVALID]
        if not notices:
            logger.info("ignoring s3:TestEvent")
            return [Outcome.IGNORED]
        return [self.handle_notice(notice) for notice in notices]

    def handle_upload(self, upload: Notice) -> Outcome:
        return self.handle_notice(upload)

    def handle_notice(self, notice: Notice) -> Outcome:
        where = {"bucket": notice.bucket, "key": notice.key, "event": notice.event_name}
        if is_asset_key(notice.key):
            # Our own outputs (assets, thumbnails, error files): never a job, not even rejected.
            logger.info("ignoring a write under the asset prefix", extra=where)
            return Outcome.IGNORED
        if is_folder_placeholder(notice.key, notice.size):
            # The console's "Create folder": not an upload; no record, no notification.
            logger.debug("ignoring a folder placeholder", extra=where)
            return Outcome.IGNORED
        if notice.action is Action.REMOVED:
            return self._removed(notice)
        if notice.action is not Action.CREATED:
            metrics.add_metric(IngestMetric.IGNORED_EVENTS, "Count", 1)
            logger.info("ignoring an S3 event that creates nothing", extra=where)
            return Outcome.IGNORED
        job_id = job_id_for(notice.bucket, notice.key, notice.version)
        logger.append_keys(job_id=job_id)
        try:
            return self._handle(job_id, notice)
        finally:
            logger.remove_keys(["job_id"])

    def _removed(self, notice: Notice) -> Outcome:
        marked = remove_source(
            notice, self.store, self.reader, delete_assets=self.settings.delete_assets_with_source
        )
        if marked is None:
            metrics.add_metric(IngestMetric.IGNORED_EVENTS, "Count", 1)
            return Outcome.IGNORED
        metrics.add_metric(IngestMetric.SOURCES_DELETED, "Count", 1)
        return Outcome.SOURCE_DELETED

    def _handle(self, job_id: str, notice: Notice) -> Outcome:
        base: dict[str, Any] = {"bucket": notice.bucket, SOURCE_KEY: notice.key}
        base["source_version"] = notice.version
        if notice.etag:
            base["etag"] = notice.etag
        if notice.sequencer:
            base["sequencer"] = notice.sequencer

        try:
            # Cheap checks first: keys outside images/ or with another extension are rejected
            # with the contract's reason before any S3 call.
            source = parse_source_key(notice.key)
        except InvalidKeyError as err:
            return self._reject_new(job_id, notice, base, None, str(err), None)

        opened = self.reader.open_current(notice)
        if isinstance(opened, Gone):
            return self._gone(job_id, opened.reason)
        try:
            if not opened.is_current_for(notice):
                return self._not_current(job_id, notice, base, opened.current_version)
            return self._handle_opened(job_id, notice, source, opened, base)
        finally:
            opened.close()

    def _handle_opened(
        self,
        job_id: str,
        upload: Notice,
        source: SourceKey,
        opened: Opened,
        base: dict[str, Any],
    ) -> Outcome:
        base["size"] = opened.size
        try:
            options = parse_options(opened.metadata)
        except InvalidOptionsError as err:
            sent = _options_as_sent(opened.metadata)
            attrs = base | {"options": sent}
            return self._reject_new(job_id, upload, attrs, sent, str(err), source)

        asset_key = source.asset_key(options.format.value)
        attrs = base | {"options": options.to_dict(), "asset_key": asset_key}
        try:
            # From the length alone: an oversized body is never downloaded.
            check_size(opened.size, self.settings.max_image_bytes)
        except RejectedInputError as err:
            return self._reject_new(job_id, upload, attrs, options.to_dict(), str(err), source)

        created = self.store.create(job_id, JobState.ACCEPTED, attrs | self._lease())
        took_over = False
        if not created.applied:
            blocked = self._take_over(job_id, created.item)
            if blocked is not None:
                return blocked
            took_over = True
        try:
            return self._leased(job_id, upload, source, opened, options, took_over)
        except BaseException:
            # Whatever failed, give the lease back so the next delivery proceeds at once.
            self._release(job_id)
            raise

    def _leased(
        self,
        job_id: str,
        upload: Notice,
        source: SourceKey,
        opened: Opened,
        options: JobOptions,
        took_over: bool,
    ) -> Outcome:
        """The steps only the lease holder may take: read, check, then reuse or submit."""
        asset_key = source.asset_key(options.format.value)
        try:
            data, sha256 = read_checked(
                opened.body.iter_chunks(_READ_CHUNK), self.settings.max_image_bytes
            )
            info = inspect_image(data, sha256, max_pixels=self.settings.max_image_pixels)
        except RejectedInputError as err:
            return self._reject_leased(job_id, upload, options.to_dict(), str(err), source)
        logger.info(
            "image accepted",
            extra={"format": info.format, "width": info.width, "height": info.height},
        )
        if took_over and (batch_job_id := self.gateway.find_job(job_id)) is not None:
            # A previous holder submitted, then died before recording it: adopt its job.
            metrics.add_metric(IngestMetric.SUBMITS_ADOPTED, "Count", 1)
            logger.warning("found the job already submitted", extra={"batch_job_id": batch_job_id})
            return self._record_submitted(job_id, upload, options, asset_key, sha256, batch_job_id)
        reused = self._try_reuse(job_id, upload, options, asset_key, sha256)
        if reused is not None:
            return reused
        return self._submit(job_id, upload, options, asset_key, sha256)

    # -- steps -------------------------------------------------------------------------------

    def _lease(self) -> dict[str, Any]:
        until = int(self.clock.now()) + self.settings.submit_lease_seconds
        return {SUBMIT_OWNER: self.owner, SUBMIT_LEASE_UNTIL: until}

    def _release(self, job_id: str) -> None:
        try:
            if self.store.release_lease(job_id, self.owner):
                logger.info("released the submit lease after a failure")
        except Exception as err:  # the lease then runs out on its own, before the next delivery
            logger.warning("could not release the submit lease", extra={"error": str(err)})

    def _take_over(self, job_id: str, existing: Mapping[str, Any] | None) -> Outcome | None:
        """After a failed create: ``None`` once this caller holds the lease, else the outcome.

        A record still ACCEPTED means another delivery holds the lease (it is working), or
        held it and failed (it released it) or died (then it runs out before SQS delivers the
        message again, see ``IngestSettings.submit_lease_seconds``): this delivery takes over.
        """
        if existing is None:
            # The record vanished between the failed create and now (TTL): a retry recreates it.
            raise LeaseHeldError(f"job {job_id} changed while it was being created; retrying")
        if not is_valid("JOB_RECORD", existing):
            _invalid_record("job record", existing)
            return Outcome.DUPLICATE
        if existing.get("state") != JobState.ACCEPTED:
            return self._duplicate(existing)
        now = int(self.clock.now())
        until = now + self.settings.submit_lease_seconds
        taken = self.store.take_lease_at(job_id, self.owner, now=now, until=until)
        if taken.applied:
            logger.info("took over the submit lease of a job left ACCEPTED")
            return None
        current = taken.item or {}
        if current.get("state") not in (None, JobState.ACCEPTED):
            return self._duplicate(current)
        raise LeaseHeldError(f"job {job_id} is being submitted by another delivery")

    def _duplicate(self, item: Mapping[str, Any]) -> Outcome:
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
                _invalid_record("pending event", item)
                self.store.clear_pending_event(job_id)
                return Outcome.DUPLICATE
            self._emit_pending(job_id, cast("dict[str, Any]", event))
        return Outcome.DUPLICATE

    def _gone(self, job_id: str, reason: str) -> Outcome:
        # The object is gone, but an earlier delivery may have recorded the job and left its
        # event pending; that event must still go out. Only this rare path pays the read.
        existing = self.store.get(job_id)
        if existing is not None and existing.get("state") != JobState.ACCEPTED:
            return self._duplicate(existing)
        logger.info("the photo is gone; ignoring its notification", extra={"reason": reason})
        return Outcome.GONE

    def _not_current(
        self, job_id: str, notice: Notice, base: Mapping[str, Any], current: str
    ) -> Outcome:
        """The key holds another photo: a newer one (superseded), or this version was deleted."""
        version = notice.version_id
        if version and not self.reader.version_exists(notice.bucket, notice.key, version):
            # Deleted (an older version is current again): the photo is gone, not replaced.
            return self._gone(job_id, f"version {version} of the key no longer exists")
        return self._supersede(job_id, notice, base, current)

    def _supersede(
        self, job_id: str, notice: Notice, base: Mapping[str, Any], current: str
    ) -> Outcome:
        """The key's current photo is another one: record this job SUPERSEDED, never submit it."""
        reason = (
            f"a newer upload of {notice.key} (version {current}) replaced version "
            f"{notice.version} before it was processed"
        )
        logger.info("stale notification: superseded", extra={"current": current})
        event = self._terminal_event(DetailType.SUPERSEDED, job_id, notice, None, reason)
        attrs = {**base, "reason": reason}
        result = self.store.create(job_id, JobState.SUPERSEDED, attrs, pending_event=event)
        if not result.applied:
            if (result.item or {}).get("state") != JobState.ACCEPTED:
                return self._duplicate(result.item or {})
            # Left ACCEPTED by a delivery that failed before submitting: finish it here.
            blocked = self._take_over(job_id, result.item)
            if blocked is not None:
                return blocked
            moved = self.store.transition(
                job_id,
                JobState.SUPERSEDED,
                {"reason": reason},
                remove=(SUBMIT_OWNER,),
                require=Attr(SUBMIT_OWNER).eq(self.owner),
                pending_event=event,
            )
            if not moved.applied:
                return self._duplicate(moved.item or {})
        metrics.add_metric(IngestMetric.JOBS_SUPERSEDED, "Count", 1)
        self._emit_pending(job_id, event)
        return Outcome.SUPERSEDED

    def _terminal_event(
        self,
        detail_type: DetailType,
        job_id: str,
        upload: Notice,
        options: Mapping[str, Any] | None,
        reason: str,
    ) -> dict[str, Any]:
        detail = base_detail(
            job_id=job_id,
            bucket=upload.bucket,
            source_key=upload.key,
            asset_key=None,
            options=options,
        ) | {"reason": reason}
        if detail_type is DetailType.REJECTED:
            detail["error_kind"] = ErrorKind.BAD_INPUT.value
        return {"detail_type": detail_type.value, "detail": detail}

    def _reject_new(
        self,
        job_id: str,
        upload: Notice,
        attrs: Mapping[str, Any],
        options: Mapping[str, Any] | None,
        reason: str,
        source: SourceKey | None,
    ) -> Outcome:
        """Reject before any record exists: one conditional create, REJECTED from the start."""
        logger.info("upload rejected", extra={"reason": reason})
        event = self._terminal_event(DetailType.REJECTED, job_id, upload, options, reason)
        fields = {"error": reason, "error_kind": ErrorKind.BAD_INPUT.value}
        # Outbox order (write with the event pending, then emit): the create can lose to
        # another delivery, and the event must only go out for the record that was written.
        result = self.store.create(
            job_id, JobState.REJECTED, {**attrs, **fields}, pending_event=event
        )
        if not result.applied:
            if (result.item or {}).get("state") == JobState.ACCEPTED:
                # Created ACCEPTED under other rules (a limit changed between deliveries):
                # move it on like any leased rejection.
                blocked = self._take_over(job_id, result.item)
                if blocked is not None:
                    return blocked
                return self._reject_leased(job_id, upload, options, reason, source)
            return self._duplicate(result.item or {})
        return self._rejected(job_id, upload, event, reason, source)

    def _reject_leased(
        self,
        job_id: str,
        upload: Notice,
        options: Mapping[str, Any] | None,
        reason: str,
        source: SourceKey | None,
    ) -> Outcome:
        """Reject a record this caller created ACCEPTED and holds the lease of."""
        logger.info("upload rejected", extra={"reason": reason})
        event = self._terminal_event(DetailType.REJECTED, job_id, upload, options, reason)
        result = self.store.transition(
            job_id,
            JobState.REJECTED,
            {"error": reason, "error_kind": ErrorKind.BAD_INPUT.value},
            remove=(SUBMIT_OWNER,),
            require=Attr(SUBMIT_OWNER).eq(self.owner),
            pending_event=event,
        )
        if not result.applied:
            return self._duplicate(result.item or {})
        return self._rejected(job_id, upload, event, reason, source)

    def _rejected(
        self,
        job_id: str,
        upload: Notice,
        event: Mapping[str, Any],
        reason: str,
        source: SourceKey | None,
    ) -> Outcome:
        """After the REJECTED write: the error file where the asset would be, then the event."""
        metrics.add_metric(MetricName.JOBS_REJECTED, "Count", 1)
        if source is not None and self.settings.error_files:
            write_error_file(
                upload.bucket,
                source,
                job_id=job_id,
                reason=reason,
                error_kind=ErrorKind.BAD_INPUT.value,
                state=JobState.REJECTED.value,
                s3=self.s3,
            )
        self._emit_pending(job_id, event)
        return Outcome.REJECTED

    def _try_reuse(
        self,
        job_id: str,
        upload: Notice,
        options: JobOptions,
        asset_key: str,
        sha256: str,
    ) -> Outcome | None:
        content = self.store.get_content(sha256, options)
        if not content:
            return None
        if not is_valid("CONTENT_RECORD", content):
            # Written from an event nobody validated (e.g. faces: "many"): generate again.
            _invalid_record("content record", content)
            return None
        source_asset = str(content["asset_key"])
        source_bucket = str(content.get("bucket", upload.bucket))
        if not self.reader.exists(source_bucket, source_asset):
            logger.info("reusable asset is gone; generating again", extra={"asset": source_asset})
            return None
        if (source_bucket, source_asset) != (upload.bucket, asset_key):
            self.s3.copy_object(
                Bucket=upload.bucket,
                Key=asset_key,
                CopySource={"Bucket": source_bucket, "Key": source_asset},
                MetadataDirective="COPY",
            )
        stats = {
            "faces": int(content["faces"]),
            "vertices": int(content.get("vertices", 0)),
            "bytes": int(content["bytes"]),
        }
        detail = base_detail(
            job_id=job_id,
            bucket=upload.bucket,
            source_key=upload.key,
            asset_key=asset_key,
            options=options.to_dict(),
        ) | {"faces": stats["faces"], "bytes": stats["bytes"], "seconds": 0.0, "reused": True}
        if stats["vertices"] > 0:
            detail["vertices"] = stats["vertices"]
        event = {"detail_type": DetailType.SUCCEEDED.value, "detail": detail}
        # The asset is in place (copied above), so the event is true before the write.
        applied = self._emit_then_record(
            job_id,
            JobState.SUCCEEDED,
            {
                **stats,
                "reused": True,
                "reused_from": content.get("job_id"),
                "source_sha256": sha256,
                "seconds": 0,
            },
            event,
        )
        if not applied:
            return Outcome.DUPLICATE
        metrics.add_metric(MetricName.JOBS_REUSED, "Count", 1)
        return Outcome.REUSED

    def _submit(
        self,
        job_id: str,
        upload: Notice,
        options: JobOptions,
        asset_key: str,
        sha256: str,
    ) -> Outcome:
        spec = JobSpec(
            job_id=job_id,
            bucket=upload.bucket,
            source_key=upload.key,
            options=options,
            source_version=upload.version,
            source_sha256=sha256,
        )
        environment = [{"name": k, "value": v} for k, v in sorted(spec.to_env().items())]
        # Throttling and 5xx: the client's standard retry mode, then Backoff (access.py).
        batch_job_id = self.gateway.submit(
            jobName=batch_job_name(job_id),
            jobQueue=self.settings.job_queue,
            jobDefinition=self.settings.job_definition,
            parameters={"job_id": job_id},
            containerOverrides={"environment": environment},
            tags={"meshdrop:job-id": job_id, "meshdrop:preset": options.preset.value},
            propagateTags=True,
        )
        return self._record_submitted(job_id, upload, options, asset_key, sha256, batch_job_id)

    def _record_submitted(
        self,
        job_id: str,
        upload: Notice,
        options: JobOptions,
        asset_key: str,
        sha256: str,
        batch_job_id: str,
    ) -> Outcome:
        detail = base_detail(
            job_id=job_id,
            bucket=upload.bucket,
            source_key=upload.key,
            asset_key=asset_key,
            options=options.to_dict(),
        ) | {
            "source_version": upload.version,
            "source_sha256": sha256,
            "batch_job_id": batch_job_id,
        }
        event = {"detail_type": DetailType.ACCEPTED.value, "detail": detail}
        # The Batch job exists from here on, so the event is true before the write.
        applied = self._emit_then_record(
            job_id,
            JobState.SUBMITTED,
            {"batch_job_id": batch_job_id, "source_sha256": sha256, "submitted_at": now_iso()},
            event,
        )
        if not applied:
            # Cannot happen while the lease holds; if it does, say so loudly: a Batch job runs.
            logger.error("submitted a Batch job but lost the job record", extra=detail)
            return Outcome.DUPLICATE
        metrics.add_metric(MetricName.JOBS_ACCEPTED, "Count", 1)
        return Outcome.SUBMITTED

    def _emit_then_record(
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
          the record no longer ACCEPTED and publishes the pending event (:meth:`_duplicate`).
          If the process dies after PutEvents but before the write, the record is still
          ACCEPTED and leased: a redelivery takes over once the lease is released or expires,
          finds the Batch job and records it, so the event may go out twice (EventBridge is
          at-least-once anyway and the state function is idempotent), never zero times.
        """
        publish_error: Exception | None = None
        try:
            self._emit(event)
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

    def _emit(self, event: Mapping[str, Any]) -> None:
        emit(DetailType(event["detail_type"]), event["detail"], self.settings.event_bus_name)

    def _emit_pending(self, job_id: str, event: Mapping[str, Any]) -> None:
        self._emit(event)
        self.store.clear_pending_event(job_id)
