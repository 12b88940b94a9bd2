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

from meshdrop.contract import (
    DetailType,
    ErrorKind,
    InvalidKeyError,
    InvalidOptionsError,
    JobSpec,
    JobState,
    base_detail,
    batch_job_name,
    decode_event_key,
    is_asset_key,
    job_id_for,
    parse_options,
    parse_source_key,
)
from meshdrop.contract.events import now_iso
from meshdrop.contract.keys import SOURCE_PREFIX
from meshdrop.contract.options import METADATA_NAMES, JobOptions

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
    IGNORED = "ignored"  # test events, outputs, keys outside images/
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
    uploads = []
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


class Ingestor:
    """Turns uploads into jobs. Clients and settings are per container; one instance per call."""

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
        log = {"bucket": upload.bucket, "key": upload.key}
        if is_asset_key(upload.key):
            logger.info("ignoring a write under the asset prefix", extra=log)
            return Outcome.IGNORED
        if not upload.key.startswith(SOURCE_PREFIX):
            # Only a misconfigured notification sends these; a rejection event needs an images/
            # key (schema), so say it in the log and go on.
            logger.warning("ignoring a key outside the source prefix", extra=log)
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
        base = {"bucket": upload.bucket, SOURCE_KEY: upload.key}
        if upload.version_id:
            base["source_version"] = upload.version_id
        if upload.etag:
            base["etag"] = upload.etag

        existing = self.store.get(job_id)
        if existing is not None and existing.get("state") != JobState.ACCEPTED:
            return self._duplicate(existing)

        try:
            source = parse_source_key(upload.key)
        except InvalidKeyError as err:
            return self._reject(job_id, upload, base, None, str(err), existing)

        head = self._head(upload)
        if head is None:
            return Outcome.GONE
        metadata: dict[str, str] = head.get("Metadata") or {}
        size = int(head.get("ContentLength", 0))
        base["size"] = size
        try:
            options = parse_options(metadata)
        except InvalidOptionsError as err:
            sent = _options_as_sent(metadata)
            return self._reject(job_id, upload, base | {"options": sent}, sent, str(err), existing)

        asset_key = source.asset_key(options.format.value)
        attrs = base | {"options": options.to_dict(), "asset_key": asset_key}
        if existing is None:
            created = self.store.create(job_id, JobState.ACCEPTED, attrs)
            if not created.applied and created.state != JobState.ACCEPTED:
                return self._duplicate(created.item or {})
        if not self.store.claim_submit(job_id, self.owner, SUBMIT_LEASE_SECONDS):
            current = self.store.get(job_id) or {}
            if current.get("state") not in (None, JobState.ACCEPTED):
                return self._duplicate(current)
            raise LeaseHeldError(f"job {job_id} is being submitted by another delivery")

        try:
            check_size(size, self.settings.max_image_bytes)
            data, sha256 = self._read(upload)
            info = inspect_image(data, sha256, max_pixels=self.settings.max_image_pixels)
        except RejectedInputError as err:
            return self._reject(job_id, upload, attrs, options.to_dict(), str(err), existing={})
        except _ObjectGoneError:
            return Outcome.GONE
        logger.info(
            "image accepted",
            extra={"format": info.format, "width": info.width, "height": info.height},
        )

        reused = self._try_reuse(job_id, upload, options, asset_key, sha256, attrs)
        if reused is not None:
            return reused
        return self._submit(job_id, upload, options, asset_key, sha256, attrs)

    # -- steps -------------------------------------------------------------------------------

    def _duplicate(self, item: Mapping[str, Any]) -> Outcome:
        metrics.add_metric(MetricName.DUPLICATE_DELIVERIES, "Count", 1)
        logger.info("duplicate delivery", extra={"state": item.get("state")})
        # A delivery that crashed between its write and its event left the event behind.
        if pending := item.get(PENDING_EVENT):
            self._emit_pending(str(item["job_id"]), json.loads(pending))
        return Outcome.DUPLICATE

    def _head(self, upload: Upload) -> dict[str, Any] | None:
        kwargs: dict[str, Any] = {"Bucket": upload.bucket, "Key": upload.key}
        if upload.version_id:
            kwargs["VersionId"] = upload.version_id
        try:
            head: dict[str, Any] = self.s3.head_object(**kwargs)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NoSuchVersion"}:
                logger.warning("object no longer exists; dropping the notification")
                return None
            raise
        if not upload.version_id and upload.etag and head.get("ETag", "").strip('"') != upload.etag:
            logger.warning("object was replaced since this notification; its own one follows")
            return None
        return head

    def _read(self, upload: Upload) -> tuple[bytes, str]:
        kwargs: dict[str, Any] = {"Bucket": upload.bucket, "Key": upload.key}
        if upload.version_id:
            kwargs["VersionId"] = upload.version_id
        elif upload.etag:
            kwargs["IfMatch"] = upload.etag
        try:
            body = self.s3.get_object(**kwargs)["Body"]
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code")
            if code in {"404", "NoSuchKey", "NoSuchVersion", "PreconditionFailed", "412"}:
                raise _ObjectGoneError from err
            raise
        try:
            return read_checked(body.iter_chunks(_READ_CHUNK), self.settings.max_image_bytes)
        finally:
            body.close()

    def _reject(
        self,
        job_id: str,
        upload: Upload,
        attrs: Mapping[str, Any],
        options: Mapping[str, Any] | None,
        reason: str,
        existing: Mapping[str, Any] | None,
    ) -> Outcome:
        logger.info("upload rejected", extra={"reason": reason})
        detail = base_detail(
            job_id=job_id,
            bucket=upload.bucket,
            source_key=upload.key,
            asset_key=None,
            options=options,
        ) | {"reason": reason, "error_kind": ErrorKind.BAD_INPUT.value}
        event = {"detail_type": DetailType.REJECTED.value, "detail": detail}
        fields = {"error": reason, "error_kind": ErrorKind.BAD_INPUT.value}
        if existing is None:
            result = self.store.create(
                job_id, JobState.REJECTED, {**attrs, **fields}, pending_event=event
            )
        else:
            result = self.store.transition(
                job_id,
                JobState.REJECTED,
                fields,
                remove=(SUBMIT_OWNER,),
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
        attrs: Mapping[str, Any],
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
        result = self.store.transition(
            job_id,
            JobState.SUCCEEDED,
            {
                **stats,
                "reused": True,
                "reused_from": content.get("job_id"),
                "source_sha256": sha256,
                "seconds": 0,
            },
            require=Attr(SUBMIT_OWNER).eq(self.owner),
            pending_event=event,
        )
        if not result.applied:
            return self._duplicate(result.item or {})
        metrics.add_metric(MetricName.JOBS_REUSED, "Count", 1)
        self._emit_pending(job_id, event)
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
        attrs: Mapping[str, Any],
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
        result = self.store.transition(
            job_id,
            JobState.SUBMITTED,
            {"batch_job_id": batch_job_id, "source_sha256": sha256, "submitted_at": now_iso()},
            require=Attr(SUBMIT_OWNER).eq(self.owner),
            pending_event=event,
        )
        if not result.applied:
            # Cannot happen while the lease holds; if it does, say so loudly: a Batch job runs.
            logger.error(
                "submitted a Batch job but lost the job record",
                extra={"batch_job_id": batch_job_id, "state": result.state},
            )
            return Outcome.DUPLICATE
        metrics.add_metric(MetricName.JOBS_ACCEPTED, "Count", 1)
        self._emit_pending(job_id, event)
        return Outcome.SUBMITTED

    def _emit_pending(self, job_id: str, event: Mapping[str, Any]) -> None:
        emit(DetailType(event["detail_type"]), event["detail"], self.settings.event_bus_name)
        self.store.clear_pending_event(job_id)


class _ObjectGoneError(Exception):
    """The object vanished or changed between HeadObject and GetObject."""
