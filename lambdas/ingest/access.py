"""Ingest's S3 and Batch calls, kept out of :class:`lambdas.ingest.service.Ingestor`.

* :class:`SourceReader` opens the key's *current* object, which both reads the upload and
  answers "is this notification still about the key's current photo?" in one GetObject (its
  headers are HeadObject's), so newest-photo-wins costs no extra call.
* :class:`BatchGateway` looks for an existing Batch job of a job before submitting (so a crash
  between SubmitJob and the SUBMITTED write never submits twice) and submits with a bounded
  backoff on throttling inside the invocation.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from meshdrop_contract import batch_job_name
from meshdrop_contract.wiring import S3_NOT_FOUND_CODES

from ..common.observability import logger
from .notices import Notice

#: GetObject without a version answers 404 when the key's current version is a delete marker;
#: a GET of a delete marker's own version answers 405. Both mean: the photo is gone.
_GONE_CODES = S3_NOT_FOUND_CODES | {"405", "MethodNotAllowed", "NoSuchBucket"}
#: What Batch (through botocore) says when it throttles; botocore already retried these.
THROTTLE_CODES = frozenset(
    {"TooManyRequestsException", "ThrottlingException", "Throttling", "RequestLimitExceeded"}
)


def error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


@dataclass(frozen=True, slots=True)
class Clock:
    """Time as ingest sees it; tests pass their own to move time without sleeping."""

    now: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep


@dataclass(slots=True)
class Opened:
    """A GetObject response of the key's current object whose body has not been read yet."""

    metadata: dict[str, str]
    size: int
    body: Any  # botocore StreamingBody
    version_id: str | None
    etag: str | None

    def is_current_for(self, notice: Notice) -> bool:
        """Whether ``notice`` is about this object (else a newer upload superseded it)."""
        if notice.version_id and self.version_id:
            return notice.version_id == self.version_id
        return bool(notice.etag) and notice.etag == self.etag

    @property
    def current_version(self) -> str:
        return self.version_id or self.etag or "?"

    def close(self) -> None:
        # An unread body holds its HTTP connection; closing it drops the connection at once.
        self.body.close()


@dataclass(frozen=True, slots=True)
class Gone:
    """The key has no current object (deleted, a delete marker, or the bucket is gone)."""

    reason: str


class SourceReader:
    def __init__(self, s3: Any) -> None:
        self.s3 = s3

    def open_current(self, notice: Notice) -> Opened | Gone:
        """GetObject of the key as it stands now: metadata, length, version and body stream."""
        try:
            response = self.s3.get_object(Bucket=notice.bucket, Key=notice.key)
        except ClientError as err:
            code = error_code(err)
            if code in _GONE_CODES:
                return Gone(f"S3 answered {code} for the key: the photo was deleted")
            raise
        version = response.get("VersionId")
        return Opened(
            metadata=response.get("Metadata") or {},
            size=int(response.get("ContentLength", 0)),
            body=response["Body"],
            version_id=version if version and version != "null" else None,
            etag=str(response.get("ETag", "")).strip('"') or None,
        )

    def exists(self, bucket: str, key: str) -> bool:
        if not key:
            return False
        try:
            self.s3.head_object(Bucket=bucket, Key=key)
        except ClientError as err:
            if error_code(err) in _GONE_CODES:
                return False
            raise
        return True

    def version_exists(self, bucket: str, key: str, version_id: str) -> bool:
        """Whether this version of the key is still stored (405: it is a delete marker)."""
        try:
            self.s3.head_object(Bucket=bucket, Key=key, VersionId=version_id)
        except ClientError as err:
            if error_code(err) in _GONE_CODES | {"400", "InvalidArgument"}:
                return False
            raise
        return True

    def current_version(self, bucket: str, key: str) -> str | None:
        """Version id (else ETag) of the key's current object; ``None`` if it has none."""
        try:
            head = self.s3.head_object(Bucket=bucket, Key=key)
        except ClientError as err:
            if error_code(err) in _GONE_CODES:
                return None
            raise
        version = head.get("VersionId")
        if version and version != "null":
            return str(version)
        return str(head.get("ETag", "")).strip('"') or None


#: Longest time one invocation spends backing off a throttled SubmitJob.
BACKOFF_BUDGET_SECONDS = 10.0


class SubmitThrottledError(RuntimeError):
    """Batch kept throttling SubmitJob past the invocation's backoff budget; retry the record."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """SubmitJob retries inside one invocation, on top of botocore's own (bounded in total)."""

    attempts: int = 4
    base_seconds: float = 0.5
    cap_seconds: float = 4.0
    #: Never sleep past this much of the invocation's remaining time.
    budget_seconds: float = BACKOFF_BUDGET_SECONDS

    def delay(self, attempt: int) -> float:
        # Full jitter: concurrent ingesters throttled together do not retry together.
        return random.uniform(0, min(self.cap_seconds, self.base_seconds * 2**attempt))


class BatchGateway:
    def __init__(self, batch: Any, job_queue: str, clock: Clock, backoff: Backoff) -> None:
        self.batch = batch
        self.job_queue = job_queue
        self.clock = clock
        self.backoff = backoff

    def find_job(self, job_id: str) -> str | None:
        """The Batch job id of an already submitted ``meshdrop-<job_id>``, in any status.

        With a ``JOB_NAME`` filter ListJobs ignores ``jobStatus`` and lists every status.
        """
        return self.find_named(batch_job_name(job_id))

    def find_named(self, name: str) -> str | None:
        """The Batch job id of an already submitted job named ``name`` (a pack's), if any."""
        kwargs: dict[str, Any] = {
            "jobQueue": self.job_queue,
            "filters": [{"name": "JOB_NAME", "values": [name]}],
        }
        while True:
            response: Mapping[str, Any] = self.batch.list_jobs(**kwargs)
            for summary in response.get("jobSummaryList", []):
                if summary.get("jobName") == name and summary.get("jobId"):
                    return str(summary["jobId"])
            token = response.get("nextToken")
            if not token:
                return None
            kwargs["nextToken"] = token

    def submit(self, **kwargs: Any) -> str:
        """SubmitJob; on throttling back off and try again, within :class:`Backoff`'s bounds."""
        started = self.clock.now()
        for attempt in range(self.backoff.attempts):
            try:
                return str(self.batch.submit_job(**kwargs)["jobId"])
            except ClientError as err:
                if error_code(err) not in THROTTLE_CODES:
                    raise
                delay = self.backoff.delay(attempt)
                spent = self.clock.now() - started
                last = attempt == self.backoff.attempts - 1
                if last or spent + delay > self.backoff.budget_seconds:
                    break
                logger.info("SubmitJob throttled; backing off", extra={"delay": delay})
                self.clock.sleep(delay)
        raise SubmitThrottledError("Batch throttled SubmitJob; the record is retried later")
