"""Whether to believe a generator event (Progress, Succeeded, Failed, Superseded).

The generator's role may put any meshdrop event on the bus, so its word is taken only about its
own job: the event must come from the Batch job the record names (``batch_job_id``), from no
older attempt than the record knows, and a success must point at an asset that exists and says,
in its S3 metadata, that this job wrote it. Events without ``batch_job_id`` (schema 1.1 and
older, or a local run) are believed only for records that name no Batch job either.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from botocore.exceptions import ClientError

from meshdrop_contract import DetailType
from meshdrop_contract.jobs import ASSET_META_JOB_ID
from meshdrop_contract.wiring import S3_NOT_FOUND_CODES

#: No asset there: not found, or no such bucket (a record recreated from an event may name one).
_NO_ASSET_CODES = S3_NOT_FOUND_CODES | {"NoSuchBucket"}
#: Events the generator emits; ingest emits Accepted/Rejected (and reused successes).
GENERATOR_TYPES = frozenset(
    {DetailType.PROGRESS, DetailType.SUCCEEDED, DetailType.FAILED, DetailType.SUPERSEDED}
)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def batch_job_problem(record: Mapping[str, Any], detail: Mapping[str, Any]) -> str | None:
    """Why the event is not from the record's Batch job and attempt, or ``None`` when it is."""
    recorded, claimed = record.get("batch_job_id"), detail.get("batch_job_id")
    if claimed is None:
        if recorded:
            return f"the event names no Batch job; the job runs as Batch job {recorded}"
        return None
    if recorded and claimed != recorded:
        return f"the event comes from Batch job {claimed}; the job runs as Batch job {recorded}"
    attempt, current = _int(detail.get("attempt")), _int(record.get("attempt"))
    if attempt is not None and current is not None and attempt < current:
        return f"the event comes from attempt {attempt}; the job is on attempt {current}"
    return None


def asset_problem(
    s3: Any, record: Mapping[str, Any], detail: Mapping[str, Any], job_id: str
) -> str | None:
    """Why a "Job Succeeded" cannot be believed about its asset, or ``None``.

    A transient S3 error (throttling, 5xx) raises, so the event is retried.
    """
    bucket = record.get("bucket") or detail.get("bucket")
    key = record.get("asset_key") or detail.get("asset_key")
    if detail.get("asset_key") != key:
        return f"the event names asset {detail.get('asset_key')!r}; the job's is {key!r}"
    if detail.get("bucket") not in (None, bucket):
        return f"the event names bucket {detail.get('bucket')!r}; the job's is {bucket!r}"
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as err:
        if str(err.response.get("Error", {}).get("Code")) in _NO_ASSET_CODES:
            return f"asset s3://{bucket}/{key} does not exist"
        raise
    metadata = cast("Mapping[str, str]", head.get("Metadata") or {})
    owner = metadata.get(ASSET_META_JOB_ID)
    if owner != job_id:
        return f"asset s3://{bucket}/{key} was written by job {owner!r}, not by this one"
    return None


def reuse_problem(record: Mapping[str, Any]) -> str | None:
    """A reused success comes from ingest, which wrote the record as reused itself."""
    if record.get("reused") is True:
        return None
    return "the event says the asset was reused, but ingest did not record a reuse"
