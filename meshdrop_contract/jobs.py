"""Job identity, the job record layout in DynamoDB, and what a generator job is handed."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast

from .events import PACK_JOB_NAME_PREFIX
from .keys import parse_source_key
from .options import JobOptions

#: DynamoDB layout. One table; items are told apart by the prefix of ``pk``.
TABLE_PK = "pk"
JOB_PK_PREFIX = "job#"
#: Item remembering which asset a given content + options produced, for reuse.
CONTENT_PK_PREFIX = "content#"
#: Sparse GSI over job items: list jobs by state, newest first.
GSI_BY_STATE = "by_state"
GSI_BY_STATE_PK = "state"
GSI_BY_STATE_SK = "updated_at"
#: Sparse GSI over job items: every job (so every version) of one source key.
GSI_BY_SOURCE = "by_source"
GSI_BY_SOURCE_PK = "source_key"
GSI_BY_SOURCE_SK = "created_at"
#: Epoch-seconds attribute DynamoDB TTL expires items on.
TTL_ATTRIBUTE = "expires_at"


def from_dynamo(value: Any) -> Any:
    """A value as boto3's DynamoDB resource returns it -> plain JSON-able Python.

    The resource layer hands numbers back as ``Decimal``; every reader of job records (the
    Lambdas, the CLI, the local pipeline) wants ints and floats.
    """
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        items = cast(Mapping[Any, Any], value)
        return {str(k): from_dynamo(v) for k, v in items.items()}
    if isinstance(value, list | tuple | set):
        members = cast(Iterable[Any], value)
        return [from_dynamo(v) for v in members]
    return value


def job_id_for(bucket: str, key: str, version: str) -> str:
    """Deterministic job id for one stored version of one object.

    ``version`` is the S3 version id when the bucket is versioned, else the ETag, so every
    redelivery of the same upload maps to the same job, and a re-upload to a new one.
    """
    blob = "\x1f".join((bucket, key, version)).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


def job_pk(job_id: str) -> str:
    return f"{JOB_PK_PREFIX}{job_id}"


def content_pk(content_sha256: str, options: JobOptions) -> str:
    return f"{CONTENT_PK_PREFIX}{content_sha256}#{options.digest()}"


#: Environment variables through which a generator job receives its work.
ENV_BUCKET = "MESHDROP_BUCKET"
ENV_KEY = "MESHDROP_SOURCE_KEY"
ENV_JOB_ID = "MESHDROP_JOB_ID"
ENV_OPTIONS = "MESHDROP_OPTIONS"
ENV_SOURCE_VERSION = "MESHDROP_SOURCE_VERSION"
ENV_SOURCE_SHA256 = "MESHDROP_SOURCE_SHA256"
ENV_EVENT_BUS = "MESHDROP_EVENT_BUS"
#: A pack (several photos in one Batch job): JSON list of :meth:`JobSpec.to_dict`, in pack order.
ENV_PACK = "MESHDROP_PACK"
#: SubmitJob parameter (carried by every Batch state change event) listing a pack's job ids,
#: comma-separated in pack order.
PACK_PARAMETER = "job_ids"
#: Set in the generator container image, not per job: local path of the rembg ONNX model used
#: for background removal (never downloaded at run time; without it a classical method is used).
ENV_REMBG_MODEL = "MESHDROP_REMBG_MODEL"
#: Optional, per deployment: local directory or ``s3://`` prefix of the generator's weights
#: (the container entrypoint resolves it; unset means the weight-free backend).
ENV_WEIGHTS = "MESHDROP_WEIGHTS"


@dataclass(frozen=True, slots=True)
class JobSpec:
    """Everything a generator job needs to know about its work."""

    job_id: str
    bucket: str
    source_key: str
    options: JobOptions = field(default_factory=JobOptions)
    source_version: str | None = None
    source_sha256: str | None = None

    @property
    def asset_key(self) -> str:
        return parse_source_key(self.source_key).asset_key(self.options.format.value)

    @property
    def thumbnail_key(self) -> str:
        return parse_source_key(self.source_key).thumbnail_key()

    def to_env(self) -> dict[str, str]:
        env = {
            ENV_JOB_ID: self.job_id,
            ENV_BUCKET: self.bucket,
            ENV_KEY: self.source_key,
            ENV_OPTIONS: json.dumps(self.options.to_dict(), sort_keys=True),
        }
        if self.source_version:
            env[ENV_SOURCE_VERSION] = self.source_version
        if self.source_sha256:
            env[ENV_SOURCE_SHA256] = self.source_sha256
        return env

    def to_dict(self) -> dict[str, Any]:
        """The spec as one JSON object (a pack member); :meth:`from_dict` reads it back."""
        out: dict[str, Any] = {
            "job_id": self.job_id,
            "bucket": self.bucket,
            "source_key": self.source_key,
            "options": self.options.to_dict(),
        }
        if self.source_version:
            out["source_version"] = self.source_version
        if self.source_sha256:
            out["source_sha256"] = self.source_sha256
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> JobSpec:
        """Read :meth:`to_dict`'s form; ``KeyError``/``ValueError`` when malformed."""
        options: object = raw.get("options") or {}
        if not isinstance(options, Mapping):
            raise ValueError("a pack member's options must be an object")
        return cls(
            job_id=str(raw["job_id"]),
            bucket=str(raw["bucket"]),
            source_key=str(raw["source_key"]),
            options=JobOptions.from_dict(cast("Mapping[str, Any]", options)),
            source_version=str(raw.get("source_version") or "") or None,
            source_sha256=str(raw.get("source_sha256") or "") or None,
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> JobSpec:
        """Read a job from the environment; ``KeyError`` names a missing variable."""
        return cls(
            job_id=env[ENV_JOB_ID],
            bucket=env[ENV_BUCKET],
            source_key=env[ENV_KEY],
            options=JobOptions.from_dict(json.loads(env.get(ENV_OPTIONS) or "{}")),
            source_version=env.get(ENV_SOURCE_VERSION) or None,
            source_sha256=env.get(ENV_SOURCE_SHA256) or None,
        )


def pack_job_name(job_ids: Iterable[str]) -> str:
    """Deterministic Batch job name of the pack of ``job_ids`` (in any order)."""
    blob = "\n".join(sorted(job_ids)).encode()
    return f"{PACK_JOB_NAME_PREFIX}{hashlib.sha256(blob).hexdigest()[:32]}"


def is_pack_job_name(name: str) -> bool:
    return name.startswith(PACK_JOB_NAME_PREFIX)


#: Job record attributes naming a packed photo's pack: its Batch job name (written before the
#: pack's SubmitJob, so a takeover adopts the pack), the photo's place (0-based) and the size.
RECORD_PACK_NAME = "pack_name"
RECORD_PACK_INDEX = "pack_index"
RECORD_PACK_SIZE = "pack_size"


def pack_to_env(specs: Iterable[JobSpec]) -> dict[str, str]:
    """The container environment of a pack: the photos' specs, in pack order."""
    members = [spec.to_dict() for spec in specs]
    return {ENV_PACK: json.dumps(members, sort_keys=True, separators=(",", ":"))}


def pack_parameters(job_ids: Iterable[str]) -> dict[str, str]:
    """SubmitJob ``parameters`` of a pack (Batch's events carry them)."""
    return {PACK_PARAMETER: ",".join(job_ids)}


def pack_job_ids(parameters: object) -> list[str]:
    """The job ids a Batch job's ``parameters`` name as its pack; empty if none."""
    if not isinstance(parameters, Mapping):
        return []
    value: object = cast("Mapping[str, Any]", parameters).get(PACK_PARAMETER)
    if not isinstance(value, str):
        return []
    return [part for part in value.split(",") if part]


def specs_from_env(env: Mapping[str, str]) -> list[JobSpec]:
    """The photos a generator job is handed: a pack's members, else the one job's spec.

    Raises ``KeyError``/``ValueError`` when the environment is malformed.
    """
    raw = env.get(ENV_PACK)
    if not raw:
        return [JobSpec.from_env(env)]
    members: object = json.loads(raw)
    if not isinstance(members, list) or not members:
        raise ValueError(f"{ENV_PACK} must be a non-empty JSON list")
    specs: list[JobSpec] = []
    for member in cast("list[object]", members):
        if not isinstance(member, Mapping):
            raise ValueError(f"{ENV_PACK} members must be objects")
        specs.append(JobSpec.from_dict(cast("Mapping[str, Any]", member)))
    return specs


#: Object metadata written on each asset (provenance), names as S3 user metadata.
ASSET_META_JOB_ID = "meshdrop-job-id"
ASSET_META_SOURCE_KEY = "meshdrop-source-key"
ASSET_META_SOURCE_ETAG = "meshdrop-source-etag"
ASSET_META_SOURCE_SHA256 = "meshdrop-source-sha256"
ASSET_META_GENERATOR = "meshdrop-generator-version"
ASSET_META_PRESET = "meshdrop-preset"
