"""EventBridge events: what meshdrop emits and the AWS Batch events it consumes.

Every meshdrop event has ``source = "meshdrop"``, one of the ``DetailType`` values, and a
``detail`` that validates against ``schemas/<detail-type slug>.json``. ``schema_version``
changes its major number only for breaking changes; consumers should match on it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any

from .states import JobState

EVENT_SOURCE = "meshdrop"
#: 1.1: "Job Succeeded" carries ``provenance``; options may carry ``backend``.
#: 1.2: "Job Superseded"; generator events carry ``batch_job_id`` and ``attempt``; error kinds
#: ``out_of_memory``, ``capacity``, ``configuration`` (changelog: docs/events.md).
SCHEMA_VERSION = "1.2"

BATCH_SOURCE = "aws.batch"
BATCH_DETAIL_TYPE = "Batch Job State Change"
#: Prefix of every Batch job name; the rest is the meshdrop job id.
BATCH_JOB_NAME_PREFIX = "meshdrop-"


class DetailType(StrEnum):
    ACCEPTED = "Job Accepted"
    PROGRESS = "Job Progress"
    SUCCEEDED = "Job Succeeded"
    FAILED = "Job Failed"
    REJECTED = "Job Rejected"
    SUPERSEDED = "Job Superseded"

    @property
    def slug(self) -> str:
        return self.value.lower().replace(" ", "-")

    @property
    def state(self) -> JobState:
        """The job state an event of this type moves the job to."""
        return _STATE_OF[self]


_STATE_OF = {
    DetailType.ACCEPTED: JobState.ACCEPTED,
    DetailType.PROGRESS: JobState.RUNNING,
    DetailType.SUCCEEDED: JobState.SUCCEEDED,
    DetailType.FAILED: JobState.FAILED,
    DetailType.REJECTED: JobState.REJECTED,
    DetailType.SUPERSEDED: JobState.SUPERSEDED,
}


class Stage(StrEnum):
    """Generator stages reported in progress events, in order."""

    DOWNLOAD = "download"
    BACKGROUND = "background"
    RECONSTRUCT = "reconstruct"
    EXPORT = "export"
    UPLOAD = "upload"


class ErrorKind(StrEnum):
    """Why a job failed; consumers decide on it whether a re-upload can help."""

    BAD_INPUT = "bad_input"
    QUALITY = "quality"
    TRANSIENT = "transient"
    INTERNAL = "internal"
    TIMEOUT = "timeout"
    #: The container was killed for using more memory than the job has (since 1.2).
    OUT_OF_MEMORY = "out_of_memory"
    #: Batch found no instance capacity in time and the job queue cancelled it (since 1.2).
    CAPACITY = "capacity"
    #: No compute environment can ever run the job as configured (since 1.2).
    CONFIGURATION = "configuration"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def base_detail(
    *,
    job_id: str,
    bucket: str,
    source_key: str,
    asset_key: str | None,
    options: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """Fields every meshdrop event carries."""
    return {
        "schema_version": SCHEMA_VERSION,
        "job_id": job_id,
        "bucket": bucket,
        "source_key": source_key,
        "asset_key": asset_key,
        "options": dict(options) if options is not None else None,
        "emitted_at": now_iso(),
    }


def put_events_entry(
    detail_type: DetailType, detail: Mapping[str, Any], bus: str
) -> dict[str, str]:
    """One ``PutEvents`` entry for boto3's ``events.put_events(Entries=[...])``."""
    return {
        "Source": EVENT_SOURCE,
        "DetailType": detail_type.value,
        "Detail": json.dumps(detail, separators=(",", ":")),
        "EventBusName": bus,
    }


@cache
def schema(detail_type: DetailType) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``detail`` for ``detail_type``."""
    text = (
        resources.files("meshdrop_contract")
        .joinpath(f"schemas/{detail_type.slug}.json")
        .read_text()
    )
    return json.loads(text)


#: Batch job names of packs: ``meshdrop-pack-<hash of the sorted job ids>`` (see jobs.py).
PACK_JOB_NAME_PREFIX = "meshdrop-pack-"


def job_id_from_batch_job_name(name: str) -> str | None:
    """The meshdrop job id inside a Batch job name, or ``None`` for other jobs (and packs)."""
    if not name.startswith(BATCH_JOB_NAME_PREFIX) or name.startswith(PACK_JOB_NAME_PREFIX):
        return None
    return name[len(BATCH_JOB_NAME_PREFIX) :] or None


def batch_job_name(job_id: str) -> str:
    return f"{BATCH_JOB_NAME_PREFIX}{job_id}"
