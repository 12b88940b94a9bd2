"""Read job records: one job, jobs by state, every job of one source key, and a summary.

The table layout is the contract's (:mod:`meshdrop_contract.jobs`); this module only reads.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import BotoCoreError, ClientError

from meshdrop_contract import ASSET_PREFIX, SOURCE_PREFIX, JobState, job_id_for, job_pk
from meshdrop_contract.jobs import (
    ASSET_META_SOURCE_KEY,
    GSI_BY_SOURCE,
    GSI_BY_SOURCE_PK,
    GSI_BY_SOURCE_SK,
    GSI_BY_STATE,
    GSI_BY_STATE_PK,
    GSI_BY_STATE_SK,
    JOB_PK_PREFIX,
    TABLE_PK,
    from_dynamo,
)
from meshdrop_contract.wiring import S3_NOT_FOUND_CODES

from .client import Remote
from .errors import RemoteError, error_code, explain, guard
from .s3url import S3UrlError, parse_s3_ref

JOB_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True, slots=True)
class JobRecord:
    """One job item, with the attributes the tools show; ``raw`` keeps all of them."""

    job_id: str
    state: JobState
    source_key: str
    bucket: str | None = None
    asset_key: str | None = None
    thumbnail_key: str | None = None
    error: str | None = None
    seconds: float | None = None
    created_at: str | None = None
    updated_at: str | None = None
    source_version: str | None = None
    faces: int | None = None
    vertices: int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def terminal(self) -> bool:
        return self.state.terminal

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> JobRecord:
        data = from_dynamo(item)
        job_id = data.get("job_id") or str(data.get(TABLE_PK, "")).removeprefix(JOB_PK_PREFIX)
        # A superseded or deleted photo's job says why in ``reason``: no error, but the why.
        error = data.get("error") or data.get("reason")
        if isinstance(error, Mapping):
            # Writers may store a structured error; people want its reason.
            error = error.get("reason") or error.get("message") or str(error)
        return cls(
            job_id=job_id,
            state=JobState(data[GSI_BY_STATE_PK]),
            source_key=data.get(GSI_BY_SOURCE_PK, ""),
            bucket=data.get("bucket"),
            asset_key=data.get("asset_key"),
            thumbnail_key=data.get("thumbnail_key"),
            error=error,
            seconds=data.get("seconds"),
            created_at=data.get(GSI_BY_SOURCE_SK),
            updated_at=data.get(GSI_BY_STATE_SK),
            source_version=data.get("source_version"),
            faces=data.get("faces"),
            vertices=data.get("vertices"),
            options=data.get("options") or {},
            metrics=data.get("metrics") or {},
            raw=data,
        )

    def to_json(self) -> dict[str, Any]:
        """The record as printed by ``--json`` (stable names, no DynamoDB internals)."""
        return {
            "job_id": self.job_id,
            "state": self.state.value,
            "source_key": self.source_key,
            "bucket": self.bucket,
            "asset_key": self.asset_key,
            "thumbnail_key": self.thumbnail_key,
            "error": self.error,
            "seconds": self.seconds,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "source_version": self.source_version,
            "faces": self.faces,
            "vertices": self.vertices,
            "options": self.options,
            "metrics": self.metrics,
        }


def get_job(remote: Remote, job_id: str) -> JobRecord | None:
    with guard(f"table {remote.names.table}"):
        item = remote.table.get_item(Key={TABLE_PK: job_pk(job_id)}).get("Item")
    return JobRecord.from_item(item) if item else None


def _query(remote: Remote, **kwargs: Any) -> Iterator[dict[str, Any]]:
    with guard(f"table {remote.names.table}"):
        while True:
            page = remote.table.query(**kwargs)
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _complete(remote: Remote, items: list[dict[str, Any]]) -> list[JobRecord]:
    """Records from index items, fetching full items when the index projects keys only."""
    partial = [i for i in items if "job_id" not in i or GSI_BY_STATE_PK not in i]
    if partial:
        full = {}
        for item in partial:
            fetched = remote.table.get_item(Key={TABLE_PK: item[TABLE_PK]}).get("Item")
            if fetched:
                full[item[TABLE_PK]] = fetched
        items = [full.get(i[TABLE_PK], i) for i in items]
    return [JobRecord.from_item(i) for i in items if GSI_BY_STATE_PK in i]


def jobs_by_state(remote: Remote, state: JobState, limit: int | None = None) -> list[JobRecord]:
    """Jobs in ``state``, most recently updated first."""
    items: list[dict[str, Any]] = []
    query = {
        "IndexName": GSI_BY_STATE,
        "KeyConditionExpression": Key(GSI_BY_STATE_PK).eq(state.value),
        "ScanIndexForward": False,
    }
    for item in _query(remote, **query):
        items.append(item)
        if limit is not None and len(items) >= limit:
            break
    return _complete(remote, items)


def jobs_for_source(remote: Remote, source_key: str) -> list[JobRecord]:
    """Every job (so every uploaded version) of one source key, oldest first."""
    query = {
        "IndexName": GSI_BY_SOURCE,
        "KeyConditionExpression": Key(GSI_BY_SOURCE_PK).eq(source_key),
        "ScanIndexForward": True,
    }
    return _complete(remote, list(_query(remote, **query)))


def count_by_state(remote: Remote) -> dict[JobState, int]:
    """How many jobs are in each state."""
    counts: dict[JobState, int] = {}
    with guard(f"table {remote.names.table}"):
        for state in JobState:
            total, kwargs = 0, {}
            while True:
                page = remote.table.query(
                    IndexName=GSI_BY_STATE,
                    KeyConditionExpression=Key(GSI_BY_STATE_PK).eq(state.value),
                    Select="COUNT",
                    **kwargs,
                )
                total += page["Count"]
                if "LastEvaluatedKey" not in page:
                    break
                kwargs = {"ExclusiveStartKey": page["LastEvaluatedKey"]}
            counts[state] = total
    return counts


def current_job_ids(remote: Remote, bucket: str, source_key: str) -> list[str]:
    """Possible job ids of the object's current version (empty when the object is gone).

    The ingest function derives the id from the notification's version id, or from the ETag
    when the notification has none (unversioned buckets; moto's S3 notifications), so both
    candidates are returned, version first.
    """
    try:
        head = remote.s3.head_object(Bucket=bucket, Key=source_key)
    except ClientError as err:
        if error_code(err) in S3_NOT_FOUND_CODES:
            return []
        raise (explain(err, what=f"s3://{bucket}/{source_key}") or err) from None
    except BotoCoreError as err:
        raise (explain(err) or err) from None
    stamps = [head.get("VersionId"), head["ETag"].strip('"')]
    return [job_id_for(bucket, source_key, s) for s in stamps if s and s != "null"]


def source_key_of(remote: Remote, ref: str) -> tuple[str, str]:
    """``(bucket, source key)`` for a job id, source key, asset key or S3 URL.

    Raises
    ------
    RemoteError
        Unknown job, or an address that is neither under ``images/`` nor ``3d_assets/``.
    """
    if JOB_ID.match(ref):
        job = get_job(remote, ref)
        if job is None:
            raise RemoteError(f"No job {ref} in table {remote.names.table}.")
        return job.bucket or remote.bucket, job.source_key
    try:
        parsed = parse_s3_ref(ref, endpoint_url=remote.s3.meta.endpoint_url)
    except S3UrlError as err:
        raise RemoteError(str(err)) from None
    bucket = parsed.bucket or remote.bucket
    if parsed.key.startswith(SOURCE_PREFIX):
        return bucket, parsed.key
    if parsed.key.startswith(ASSET_PREFIX):
        # Assets carry their source in provenance metadata; the extension alone cannot tell.
        with guard(f"s3://{bucket}/{parsed.key}"):
            head = remote.s3.head_object(Bucket=bucket, Key=parsed.key)
        source = head.get("Metadata", {}).get(ASSET_META_SOURCE_KEY)
        if not source:
            raise RemoteError(f"s3://{bucket}/{parsed.key} has no source key in its metadata.")
        return bucket, source
    raise RemoteError(
        f"{ref!r} is not a job id, nor a key under {SOURCE_PREFIX} or {ASSET_PREFIX}."
    )


def find_job(remote: Remote, ref: str) -> JobRecord | None:
    """The job a person means by ``ref``: the job id itself, or the current version's job.

    For a key whose current version has no record yet (ingest not done), ``None``; for a key
    whose object is gone, its newest recorded job.
    """
    if JOB_ID.match(ref):
        return get_job(remote, ref)
    bucket, source_key = source_key_of(remote, ref)
    candidates = current_job_ids(remote, bucket, source_key)
    for job_id in candidates:
        if (job := get_job(remote, job_id)) is not None:
            return job
    if candidates:
        return None  # uploaded, not yet ingested
    jobs = jobs_for_source(remote, source_key)
    return jobs[-1] if jobs else None
