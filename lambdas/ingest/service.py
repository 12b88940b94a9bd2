"""Ingest logic: one S3 object-created notification -> one job (submitted, reused or rejected).

Idempotent by construction: the job id is derived from bucket, key and version, the record is
created with a conditional put, and only the holder of a conditional "submit lease" on the
record may call SubmitJob. Any number of (concurrent) deliveries make one job and one Batch job.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from aws_lambda_powertools.utilities.data_classes import S3Event
from boto3.dynamodb.conditions import Attr
from botocore.exceptions import ClientError

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
    decode_event_key,
    is_asset_key,
    job_id_for,
    parse_options,
    parse_source_key,
)
from meshdrop_contract.events import now_iso
from meshdrop_contract.options import METADATA_NAMES, JobOptions

from ..common.clients import client
from ..common.eventbus import emit
from ..common.jobstore import PENDING_EVENT, SOURCE_KEY, SUBMIT_OWNER, JobStore
from ..common.observability import MetricName, logger, metrics
from ..common.settings import IngestSettings
from .validation import RejectedInputError, check_size, inspect_image, read_checked

#: How long a submit lease holds; longer than the function timeout (at most 900 s) so a slow
#: holder is never overtaken while it may still call SubmitJob.
SUBMIT_LEASE_SECONDS = 960
_READ_CHUNK = 256 * 1024


class Outcome(StrEnum):
    IGNORED = "ignored"  # test events, writes under 3d_assets/
    GONE = "gone"  # object deleted or replaced before we read it
    DUPLICATE = "duplicate"  # another delivery already handled this upload
    REJECTED = "rejected"
    REUSED = "reused"
    SUBMITTED = "submitted"


class LeaseHeldError(RuntimeError):
    """Another invocation is submitting this job; the message is retried later."""


@dataclass(frozen=True, slots=True)
class Upload:
    """One object-created notification, key decoded."""

    bucket: str
    key: str
    etag: str | None
    version_id: str | None

    @property
    def version(self) -> str:
        return self.version_id or self.etag or ""


def uploads_from_body(body: str) -> list[Upload] | None:
    """The uploads in an SQS message body; ``None`` for S3's ``s3:TestEvent``."""
    payload = json.loads(body)
    if payload.get("Event") == "s3:TestEvent":
        return None
    uploads: list[Upload] = []
    for record in S3Event(payload).records:
        obj = record.s3.get_object
        etag = obj.etag.strip('"') or None
        uploads.append(
            Upload(
                bucket=record.s3.bucket.name,
                key=decode_event_key(obj.key),
                etag=etag,
                version_id=obj.version_id or None,
            )
        )
    return uploads


def _options_as_sent(metadata: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in metadata.items() if k.lower() in METADATA_NAMES}


@dataclass(slots=True)
class _Opened:
    """A GetObject response whose body has not been read yet."""

    metadata: dict[str, str]
    size: int
    body: Any  # botocore StreamingBody

    def close(self) -> None:
        # An unread body holds its HTTP connection; closing it drops the connection at once.
        self.body.close()


class Ingestor:
    """Turns uploads into jobs. Clients and settings are per container; one instance per call.

    The common path (a new, valid upload) costs six AWS calls, in this order:

    1. ``GetObject`` (headers first: metadata and length; the body is read only after step 2),
    2. ``PutItem`` creating the record ACCEPTED *with* the submit lease, conditional on no
       record existing (a failure returns the existing record: no separate read),
    3. ``GetItem`` of the content item (reuse of an asset made from the same bytes),
    4. ``SubmitJob``,
    5. ``PutEvents`` (Job Accepted),
    6. ``UpdateItem`` to SUBMITTED, conditional on still holding the lease.

    Step 5 before step 6 is what saves the outbox's extra write; see :meth:`_emit_then_record`.
    """

    def __init__(self, settings: IngestSettings, store: JobStore | None = None) -> None:
        self.settings = settings
        self.store = store or JobStore(settings.table_name, settings.job_ttl_days)
        self.s3 = client("s3")
        self.batch = client("batch")
        # Unique per invocation, so the lease tells this caller from a concurrent duplicate.
        self.owner = uuid.uuid4().hex

    def handle_body(self, body: str) -> list[Outcome]:
        uploads = uploads_from_body(body)
        if uploads is None:
            logger.info("ignoring s3:TestEvent")
            return [Outcome.IGNORED]
        return [self.handle_upload(upload) for upload in uploads]

    def handle_upload(self, upload: Upload) -> Outcome:
        if is_asset_key(upload.key):
            # Our own outputs (assets, thumbnails): never a job, not even a rejected one.
            logger.info(
                "ignoring a write under the asset prefix",
                extra={"bucket": upload.bucket, "key": upload.key},
            )
            return Outcome.IGNORED
        if not upload.version:
            raise ValueError(f"notification for {upload.key!r} has neither versionId nor eTag")
        job_id = job_id_for(upload.bucket, upload.key, upload.version)
        logger.append_keys(job_id=job_id)
        try:
            return self._handle(job_id, upload)
        finally:
            logger.remove_keys(["job_id"])

    def _handle(self, job_id: str, upload: Upload) -> Outcome:
        base: dict[str, Any] = {"bucket": upload.bucket, SOURCE_KEY: upload.key}
        if upload.version_id:
            base["source_version"] = upload.version_id
        if upload.etag:
            base["etag"] = upload.etag

        try:
            # Keys outside images/ land here too: rejected with the contract's reason.
            source = parse_source_key(upload.key)
        except InvalidKeyError as err:
            return self._reject_new(job_id, upload, base, None, str(err))

        opened = self._open(upload)
        if opened is None:
            return self._gone(job_id)
        try:
            return self._handle_opened(job_id, upload, source, opened, base)
        finally:
            opened.close()

    def _handle_opened(
        self,
        job_id: str,
        upload: Upload,
        source: SourceKey,
        opened: _Opened,
        base: dict[str, Any],
    ) -> Outcome:
        base["size"] = opened.size
        try:
            options = parse_options(opened.metadata)
        except InvalidOptionsError as err:
            sent = _options_as_sent(opened.metadata)
            return self._reject_new(job_id, upload, base | {"options": sent}, sent, str(err))

        asset_key = source.asset_key(options.format.value)
        attrs = base | {"options": options.to_dict(), "asset_key": asset_key}
        try:
            # From the length alone: an oversized body is never downloaded.
            check_size(opened.size, self.settings.max_image_bytes)
        except RejectedInputError as err:
            return self._reject_new(job_id, upload, attrs, options.to_dict(), str(err))

        created = self.store.create(
            job_id, JobState.ACCEPTED, attrs, lease=(self.owner, SUBMIT_LEASE_SECONDS)
        )
        if not created.applied:
            blocked = self._take_over(job_id, created.item)
            if blocked is not None:
                return blocked

        try:
            data, sha256 = read_checked(
                opened.body.iter_chunks(_READ_CHUNK), self.settings.max_image_bytes
            )
            info = inspect_image(data, sha256, max_pixels=self.settings.max_image_pixels)
        except RejectedInputError as err:
            return self._reject_leased(job_id, upload, options.to_dict(), str(err))
        logger.info(
            "image accepted",
            extra={"format": info.format, "width": info.width, "height": info.height},
        )

        reused = self._try_reuse(job_id, upload, options, asset_key, sha256)
        if reused is not None:
            return reused
        return self._submit(job_id, upload, options, asset_key, sha256)

    # -- steps -------------------------------------------------------------------------------

    def _take_over(self, job_id: str, existing: Mapping[str, Any] | None) -> Outcome | None:
        """After a failed create: ``None`` once this caller holds the lease, else the outcome.

        A record still ACCEPTED means another delivery holds the lease (it is working, or died
        before submitting: then its lease expires and this delivery takes over).
        """
        if existing is None:
            # The record vanished between the failed create and now (TTL): a retry recreates it.
            raise LeaseHeldError(f"job {job_id} changed while it was being created; retrying")
        if existing.get("state") != JobState.ACCEPTED:
            return self._duplicate(existing)
        taken = self.store.take_lease(job_id, self.owner, SUBMIT_LEASE_SECONDS)
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
            self._emit_pending(str(item["job_id"]), json.loads(pending))
        return Outcome.DUPLICATE

    def _gone(self, job_id: str) -> Outcome:
        # The object is gone, but an earlier delivery may have recorded the job and left its
        # event pending; that event must still go out. Only this rare path pays the read.
        existing = self.store.get(job_id)
        if existing is not None and existing.get("state") != JobState.ACCEPTED:
            return self._duplicate(existing)
        logger.warning("object no longer exists or was replaced; dropping the notification")
        return Outcome.GONE

    def _open(self, upload: Upload) -> _Opened | None:
        """GetObject of exactly the notified version; ``None`` if it is gone or was replaced.

        One call gives metadata, length and the body stream (HeadObject + GetObject before).
        """
        kwargs: dict[str, Any] = {"Bucket": upload.bucket, "Key": upload.key}
        if upload.version_id:
            kwargs["VersionId"] = upload.version_id
        elif upload.etag:
            # Unversioned bucket: only the content this notification is about.
            kwargs["IfMatch"] = upload.etag
        try:
            response = self.s3.get_object(**kwargs)
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code")
            if code in {"404", "NoSuchKey", "NoSuchVersion", "PreconditionFailed", "412"}:
                return None
            raise
        return _Opened(
            metadata=response.get("Metadata") or {},
            size=int(response.get("ContentLength", 0)),
            body=response["Body"],
        )

    def _rejection_event(
        self, job_id: str, upload: Upload, options: Mapping[str, Any] | None, reason: str
    ) -> dict[str, Any]:
        detail = base_detail(
            job_id=job_id,
            bucket=upload.bucket,
            source_key=upload.key,
            asset_key=None,
            options=options,
        ) | {"reason": reason, "error_kind": ErrorKind.BAD_INPUT.value}
        return {"detail_type": DetailType.REJECTED.value, "detail": detail}

    def _reject_new(
        self,
        job_id: str,
        upload: Upload,
        attrs: Mapping[str, Any],
        options: Mapping[str, Any] | None,
        reason: str,
    ) -> Outcome:
        """Reject before any record exists: one conditional create, REJECTED from the start."""
        logger.info("upload rejected", extra={"reason": reason})
        event = self._rejection_event(job_id, upload, options, reason)
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
                return self._reject_leased(job_id, upload, options, reason)
            return self._duplicate(result.item or {})
        metrics.add_metric(MetricName.JOBS_REJECTED, "Count", 1)
        self._emit_pending(job_id, event)
        return Outcome.REJECTED

    def _reject_leased(
        self, job_id: str, upload: Upload, options: Mapping[str, Any] | None, reason: str
    ) -> Outcome:
        """Reject a record this caller created ACCEPTED and holds the lease of."""
        logger.info("upload rejected", extra={"reason": reason})
        event = self._rejection_event(job_id, upload, options, reason)
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
        metrics.add_metric(MetricName.JOBS_REJECTED, "Count", 1)
        self._emit_pending(job_id, event)
        return Outcome.REJECTED

    def _try_reuse(
        self,
        job_id: str,
        upload: Upload,
        options: JobOptions,
        asset_key: str,
        sha256: str,
    ) -> Outcome | None:
        content = self.store.get_content(sha256, options)
        if not content:
            return None
        source_asset = str(content.get("asset_key", ""))
        source_bucket = str(content.get("bucket", upload.bucket))
        if not self._exists(source_bucket, source_asset):
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
            "faces": int(content.get("faces", 0)),
            "vertices": int(content.get("vertices", 0)),
            "bytes": int(content.get("bytes", 0)),
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

    def _exists(self, bucket: str, key: str) -> bool:
        if not key:
            return False
        try:
            self.s3.head_object(Bucket=bucket, Key=key)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in {"404", "NoSuchKey"}:
                return False
            raise
        return True

    def _submit(
        self,
        job_id: str,
        upload: Upload,
        options: JobOptions,
        asset_key: str,
        sha256: str,
    ) -> Outcome:
        spec = JobSpec(
            job_id=job_id,
            bucket=upload.bucket,
            source_key=upload.key,
            options=options,
            source_version=upload.version_id,
            source_sha256=sha256,
        )
        environment = [{"name": k, "value": v} for k, v in sorted(spec.to_env().items())]
        # Throttling and 5xx are retried with backoff by the client's standard retry mode.
        response = self.batch.submit_job(
            jobName=batch_job_name(job_id),
            jobQueue=self.settings.job_queue,
            jobDefinition=self.settings.job_definition,
            parameters={"job_id": job_id},
            containerOverrides={"environment": environment},
            tags={"meshdrop:job-id": job_id, "meshdrop:preset": options.preset.value},
            propagateTags=True,
        )
        batch_job_id = str(response["jobId"])
        detail = base_detail(
            job_id=job_id,
            bucket=upload.bucket,
            source_key=upload.key,
            asset_key=asset_key,
            options=options.to_dict(),
        ) | {
            "source_version": upload.version_id,
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
          outlives the invocation (:data:`SUBMIT_LEASE_SECONDS` > the 900 s Lambda maximum)
          and every other ingest write to an ACCEPTED record needs the lease. Only the state
          function may get there first, with an event of the Batch job just submitted (it
          started running before this write landed); the record is then further on, which
          the published event does not contradict.
        * Nothing is lost. If PutEvents fails, the write carries the event as pending (the
          outbox) and the error is raised after it: SQS redelivers, and the redelivery finds
          the record no longer ACCEPTED and publishes the pending event (:meth:`_duplicate`).
          If the process dies after PutEvents but before the write, the record is still
          ACCEPTED and leased: a redelivery takes over once the lease expires and does the
          work again, so the event may go out twice (EventBridge is at-least-once anyway and
          the state function is idempotent), never zero times.
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
