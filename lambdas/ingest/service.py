"""Ingest logic: one S3 object-created notification -> one job (submitted, reused or rejected).

Idempotent by construction: the job id is derived from bucket, key and version, the record is
created with a conditional put, and only the holder of a conditional "submit lease" on the
record may call SubmitJob. Any number of (concurrent) deliveries make one job and one Batch job.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

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
    is_asset_key,
    job_id_for,
    parse_options,
    parse_source_key,
)
from meshdrop_contract.events import now_iso
from meshdrop_contract.keys import is_folder_placeholder
from meshdrop_contract.options import METADATA_NAMES, JobOptions

from ..common import batchjobs
from ..common.clients import client
from ..common.errorfile import write_error_file
from ..common.eventbus import emit
from ..common.jobstore import (
    SOURCE_KEY,
    SUBMIT_OWNER,
    JobStore,
)
from ..common.observability import MetricName, logger, metrics
from ..common.settings import IngestSettings
from .access import Backoff, BatchGateway, Clock, Gone, Opened, SourceReader
from .notices import Action, InvalidEventError, Notice, parse_body
from .outcomes import LeaseHeldError, Outcome
from .packs import HeldPhoto, group, note_places, place_of, submit_pack
from .records import JobRecords, invalid_record
from .removal import remove_source
from .shapes import is_valid
from .validation import RejectedInputError, check_size, inspect_image, read_checked

_READ_CHUNK = 256 * 1024


__all__ = ["Ingestor", "LeaseHeldError", "Outcome", "uploads_from_body"]


def _publish(detail_type: DetailType, detail: Mapping[str, Any], bus: str) -> object:
    # Looked up at call time, so ``lambdas.ingest.service.emit`` stays the one to patch.
    return emit(detail_type, detail, bus)


#: Kept for callers of the previous name: an upload is a notice of an object created.
Upload = Notice


def uploads_from_body(body: str) -> list[Notice] | None:
    """The notices in an SQS message body; ``None`` for S3's ``s3:TestEvent``."""
    notices = parse_body(body)
    return notices or None


def _options_as_sent(metadata: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in metadata.items() if k.lower() in METADATA_NAMES}


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

    Step 5 before step 6 is what saves the outbox's extra write (see
    :meth:`JobRecords.emit_then_record`).
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
        self.records = JobRecords(self.store, settings, self.clock, self.owner, _publish)
        #: Photos accepted and waiting for their pack (``pack_size`` > 1), see :mod:`.packs`.
        self.held: list[HeldPhoto] = []
        #: The SQS message being handled, so a held photo's failure retries its message.
        self.message_id: str | None = None

    def handle_body(self, body: object) -> list[Outcome]:
        try:
            notices = parse_body(body)
        except InvalidEventError as err:
            # No retry can make a malformed body valid: count it, say why, drop it.
            metrics.add_metric(MetricName.INVALID_EVENTS, "Count", 1)
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
            metrics.add_metric(MetricName.IGNORED_EVENTS, "Count", 1)
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
            metrics.add_metric(MetricName.IGNORED_EVENTS, "Count", 1)
            return Outcome.IGNORED
        metrics.add_metric(MetricName.SOURCES_DELETED, "Count", 1)
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
            return self.records.gone(job_id, opened.reason)
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

        created = self.store.create(job_id, JobState.ACCEPTED, attrs | self.records.lease_attrs())
        prior: Mapping[str, Any] | None = None
        if not created.applied:
            blocked = self.records.take_over(job_id, created.item)
            if blocked is not None:
                return blocked
            prior = created.item or {}
        try:
            return self._leased(job_id, upload, source, opened, options, prior)
        except BaseException:
            # Whatever failed, give the lease back so the next delivery proceeds at once.
            self.records.release(job_id)
            raise

    def _leased(
        self,
        job_id: str,
        upload: Notice,
        source: SourceKey,
        opened: Opened,
        options: JobOptions,
        prior: Mapping[str, Any] | None,
    ) -> Outcome:
        """The steps only the lease holder may take: read, check, then reuse or submit.

        ``prior`` is the record as a previous delivery left it, when this one took it over.
        """
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
        if prior is not None and (found := self._find_submitted(job_id, prior)) is not None:
            # A previous holder submitted, then died before recording it: adopt its job.
            batch_job_id, place = found
            metrics.add_metric(MetricName.SUBMITS_ADOPTED, "Count", 1)
            logger.warning("found the job already submitted", extra={"batch_job_id": batch_job_id})
            return self._record_submitted(
                job_id, upload, options, asset_key, sha256, batch_job_id, place
            )
        reused = self._try_reuse(job_id, upload, options, asset_key, sha256)
        if reused is not None:
            return reused
        return self._submit(job_id, upload, options, asset_key, sha256)

    def _find_submitted(
        self, job_id: str, prior: Mapping[str, Any]
    ) -> tuple[str, Mapping[str, Any]] | None:
        """The Batch job a previous holder submitted for ``job_id``, alone or in a pack."""
        if (batch_job_id := self.gateway.find_job(job_id)) is not None:
            return batch_job_id, {}
        placed = place_of(prior)
        if placed is not None and (batch_job_id := self.gateway.find_named(placed[0])):
            return batch_job_id, placed[1]
        return None

    # -- packs ---------------------------------------------------------------------------------

    def submit_packs(self) -> list[str]:
        """Submit the held photos in packs; the SQS message ids to retry (their photos failed).

        Called once every record of the invocation was handled. A pack that fails before its
        SubmitJob went through (a failed place write or SubmitJob) gives its photos' leases
        back, so their redeliveries submit them again at once.
        """
        held, self.held = self.held, []
        retry: list[str] = []
        for planned in group(held, self.settings.pack_size):
            try:
                pack = note_places(self.store, self.owner, planned)
                retry += [p.message_id or "" for p in planned.photos if p not in pack.photos]
                if not pack.photos:
                    continue
                batch_job_id = submit_pack(
                    self.gateway, self.settings.job_queue, self.settings.job_definition, pack
                )
            except Exception:
                logger.exception("pack submission failed", extra={"pack": planned.name})
                for photo in planned.photos:
                    self.records.release(photo.spec.job_id)
                retry += [p.message_id or "" for p in planned.photos]
                continue
            logger.info("pack submitted", extra={"pack": pack.name, "size": len(pack.photos)})
            retry += self._record_pack(pack.photos, batch_job_id, pack.place)
        return [m for m in dict.fromkeys(retry) if m]

    def _record_pack(
        self,
        photos: tuple[HeldPhoto, ...],
        batch_job_id: str,
        place: Any,
    ) -> list[str]:
        """Each photo of a submitted pack recorded SUBMITTED; the messages whose write failed."""
        failed: list[str] = []
        for photo in photos:
            spec = photo.spec
            try:
                self._record_submitted(
                    spec.job_id,
                    photo.upload,
                    spec.options,
                    photo.asset_key,
                    spec.source_sha256 or "",
                    batch_job_id,
                    place(photo),
                )
            except Exception:
                # The record keeps its place: the redelivery adopts the pack by name.
                logger.exception("recording a packed photo failed", extra={"job": spec.job_id})
                failed.append(photo.message_id or "")
        return failed

    # -- steps -------------------------------------------------------------------------------

    def _not_current(
        self, job_id: str, notice: Notice, base: Mapping[str, Any], current: str
    ) -> Outcome:
        """The key holds another photo: a newer one (superseded), or this version was deleted."""
        version = notice.version_id
        if version and not self.reader.version_exists(notice.bucket, notice.key, version):
            # Deleted (an older version is current again): the photo is gone, not replaced.
            return self.records.gone(job_id, f"version {version} of the key no longer exists")
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
        fields = {"reason": reason}
        other = self._end_early(job_id, JobState.SUPERSEDED, {**base, **fields}, fields, event)
        if other is not None:
            return other
        metrics.add_metric(MetricName.JOBS_SUPERSEDED, "Count", 1)
        self.records.emit_pending(job_id, event)
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
        other = self._end_early(job_id, JobState.REJECTED, {**attrs, **fields}, fields, event)
        if other is not None:
            return other
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
        fields = {"error": reason, "error_kind": ErrorKind.BAD_INPUT.value}
        other = self._move_leased(job_id, JobState.REJECTED, fields, event)
        if other is not None:
            return other
        return self._rejected(job_id, upload, event, reason, source)

    def _end_early(
        self,
        job_id: str,
        state: JobState,
        attrs: Mapping[str, Any],
        fields: Mapping[str, Any],
        event: Mapping[str, Any],
    ) -> Outcome | None:
        """Record ``state`` (REJECTED, SUPERSEDED) for a job that never reaches Batch: created so
        with ``attrs``, or, for a record an earlier delivery left ACCEPTED (it failed before
        submitting, or other limits applied then), moved there with ``fields`` under this
        caller's lease. ``None`` once written; else what the record another writer made means.

        Outbox order (write with the event pending, then emit): the write can lose to another
        delivery, and the event must only go out for the record that was written.
        """
        result = self.store.create(job_id, state, attrs, pending_event=event)
        if result.applied:
            return None
        if (result.item or {}).get("state") != JobState.ACCEPTED:
            return self.records.duplicate(result.item or {})
        blocked = self.records.take_over(job_id, result.item)
        if blocked is not None:
            return blocked
        return self._move_leased(job_id, state, fields, event)

    def _move_leased(
        self, job_id: str, state: JobState, fields: Mapping[str, Any], event: Mapping[str, Any]
    ) -> Outcome | None:
        """Move a record this caller holds the lease of to ``state``; ``None`` once moved."""
        moved = self.store.transition(
            job_id,
            state,
            dict(fields),
            remove=(SUBMIT_OWNER,),
            require=Attr(SUBMIT_OWNER).eq(self.owner),
            pending_event=event,
        )
        return None if moved.applied else self.records.duplicate(moved.item or {})

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
        self.records.emit_pending(job_id, event)
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
            invalid_record("content record", content)
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
        applied = self.records.emit_then_record(
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
        if self.settings.pack_size > 1:
            if all(p.spec.job_id != job_id for p in self.held):
                self.held.append(HeldPhoto(spec, upload, asset_key, self.message_id))
            return Outcome.PACKED
        # Throttling and 5xx: the client's standard retry mode, then Backoff (access.py).
        batch_job_id = self.gateway.submit(
            **batchjobs.submit_arguments(
                self.settings.job_queue, self.settings.job_definition, spec
            )
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
        place: Mapping[str, Any] | None = None,
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
        applied = self.records.emit_then_record(
            job_id,
            JobState.SUBMITTED,
            {
                "batch_job_id": batch_job_id,
                "source_sha256": sha256,
                "submitted_at": now_iso(),
                **(place or {}),
            },
            event,
        )
        if not applied:
            # Cannot happen while the lease holds; if it does, say so loudly: a Batch job runs.
            logger.error("submitted a Batch job but lost the job record", extra=detail)
            return Outcome.DUPLICATE
        metrics.add_metric(MetricName.JOBS_ACCEPTED, "Count", 1)
        return Outcome.SUBMITTED
