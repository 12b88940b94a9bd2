"""S3 I/O of a job: weights, the source photo, the currency check, the asset and thumbnail."""

from __future__ import annotations

import hashlib
import re
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse

from meshdrop_contract import AssetFormat, JobSpec
from meshdrop_contract.jobs import (
    ASSET_META_GENERATOR,
    ASSET_META_JOB_ID,
    ASSET_META_PRESET,
    ASSET_META_SOURCE_ETAG,
    ASSET_META_SOURCE_KEY,
    ASSET_META_SOURCE_SHA256,
    ENV_WEIGHTS,
)

from .failures import (
    SOURCE_DELETED_CODES,
    SOURCE_GONE_CODES,
    SourceError,
    SupersededError,
    client_error_code,
)
from .generator import generator_version

CONTENT_TYPES: dict[AssetFormat, str] = {
    AssetFormat.GLB: "model/gltf-binary",
    AssetFormat.OBJ: "model/obj",
    AssetFormat.STL: "model/stl",
    AssetFormat.PLY: "application/x-ply",
}
#: A quoted or bare S3 ETag (single part or multipart); anything else is a version id.
_ETAG_RE = re.compile(r'^"?[0-9a-fA-F]{32}(-[0-9]+)?"?$')


def is_etag(version: str) -> bool:
    """Whether a recorded ``source_version`` is an ETag (unversioned bucket), not a version id."""
    return bool(_ETAG_RE.match(version))


def boto_client(service: str) -> Any:
    import boto3
    from botocore.config import Config

    # Standard retry mode already backs off on throttling; a few extra tries keep short
    # blips from costing a whole Batch attempt.
    config = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=10)
    return boto3.client(service, config=config)  # type: ignore[call-overload]


def resolve_weights(location: str | None, s3_client: Any | None = None) -> Path | None:
    """A local directory holding the weights named by ``MESHDROP_WEIGHTS``.

    ``s3://bucket/prefix`` is downloaded once per container into the temporary directory;
    a local path is used as is; nothing means the generator's default.
    """
    if not location:
        return None
    parsed = urlparse(location)
    if parsed.scheme in {"", "file"}:
        path = Path(parsed.path if parsed.scheme == "file" else location)
        if not path.exists():
            raise FileNotFoundError(f"{ENV_WEIGHTS}={location!r} does not exist")
        return path
    if parsed.scheme != "s3":
        raise ValueError(f"{ENV_WEIGHTS} must be a local path or s3:// URI, not {location!r}")
    s3: Any = s3_client if s3_client is not None else boto_client("s3")
    bucket, prefix = parsed.netloc, parsed.path.lstrip("/")
    cache_root = Path(tempfile.gettempdir())  # TMPDIR points it at the instance store
    target = cache_root / "meshdrop-weights" / bucket / prefix
    marker = target / ".complete"
    if marker.exists():
        return target
    target.mkdir(parents=True, exist_ok=True)
    if _download_prefix(s3, bucket, prefix, target) == 0:
        raise FileNotFoundError(f"no weights under {location}")
    marker.touch()
    return target


def _download_prefix(s3: Any, bucket: str, prefix: str, target: Path) -> int:
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            rel = obj["Key"][len(prefix) :].lstrip("/")
            if not rel or rel.endswith("/"):
                continue
            dest = (target / rel).resolve()
            if not dest.is_relative_to(target.resolve()):
                raise ValueError(f"weight key {obj['Key']!r} escapes the cache directory")
            dest.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, obj["Key"], str(dest))
            count += 1
    return count


def download_source(s3: Any, spec: JobSpec) -> tuple[bytes, str]:
    """The exact uploaded version of the source photo and its ETag.

    Raises
    ------
    SourceError
        The object (or that version of it) is gone or its bytes do not match the recorded
        SHA-256: no retry can help.
    """
    kwargs: dict[str, Any] = {"Bucket": spec.bucket, "Key": spec.source_key}
    if spec.source_version:
        if is_etag(spec.source_version):
            kwargs["IfMatch"] = f'"{spec.source_version.strip(chr(34))}"'
        else:
            kwargs["VersionId"] = spec.source_version
    try:
        response = s3.get_object(**kwargs)
        data = response["Body"].read()
    except Exception as exc:
        if client_error_code(exc) in SOURCE_GONE_CODES:
            raise SourceError(
                f"source {spec.source_key} (version {spec.source_version or 'latest'}) "
                f"is gone or was replaced: {client_error_code(exc)}"
            ) from exc
        raise
    if spec.source_sha256:
        digest = hashlib.sha256(data).hexdigest()
        if digest != spec.source_sha256:
            raise SourceError(
                f"source SHA-256 {digest[:12]}… does not match the recorded "
                f"{spec.source_sha256[:12]}…"
            )
    return data, str(response.get("ETag", "")).strip('"')


def ensure_current(s3: Any, spec: JobSpec, downloaded_etag: str) -> None:
    """Raise :class:`SupersededError` unless the key's photo is still the job's own.

    Called right before the asset is written (the generator ran for minutes meanwhile). The
    job's ``source_version`` is a version id (versioned bucket) or an ETag; a job without one
    compares the ETag of the bytes it downloaded. What S3 reports for the key NOW is the
    key's current photo ("newest photo wins").
    """
    expected = (spec.source_version or downloaded_etag or "").strip()
    if not expected:
        return
    try:
        head = s3.head_object(Bucket=spec.bucket, Key=spec.source_key)
    except Exception as exc:
        if client_error_code(exc) in SOURCE_DELETED_CODES:
            raise SupersededError(f"source {spec.source_key} was deleted") from exc
        raise
    if is_etag(expected):
        current = str(head.get("ETag", "")).strip('"')
        expected = expected.strip('"')
    else:
        current = str(head.get("VersionId") or "")
    if current != expected:
        raise SupersededError(
            f"source {spec.source_key} was replaced by a newer upload "
            f"(now {current or 'unknown'}, job made from {expected})"
        )


def _meta_value(value: str) -> str:
    # S3 user metadata travels in HTTP headers: ASCII only, so keys with other characters
    # are percent-encoded (decode with urllib.parse.unquote).
    return quote(value, safe="/-_.~ ") if not value.isascii() else value


def asset_metadata(spec: JobSpec, source_etag: str, source_sha256: str) -> dict[str, str]:
    """Provenance written as user metadata on the asset object."""
    return {
        ASSET_META_JOB_ID: spec.job_id,
        ASSET_META_SOURCE_KEY: _meta_value(spec.source_key),
        ASSET_META_SOURCE_ETAG: source_etag,
        ASSET_META_SOURCE_SHA256: source_sha256,
        ASSET_META_GENERATOR: _meta_value(generator_version()),
        ASSET_META_PRESET: spec.options.preset.value,
    }


def write_outputs(s3: Any, spec: JobSpec, result: Any, metadata: dict[str, str]) -> str | None:
    """Store the asset (with ``metadata``) and the thumbnail; the thumbnail key, if any."""
    fmt = spec.options.format
    s3.put_object(
        Bucket=spec.bucket,
        Key=spec.asset_key,
        Body=result.data,
        ContentType=CONTENT_TYPES.get(fmt, "application/octet-stream"),
        Metadata=metadata,
    )
    if not result.thumbnail_png:
        return None
    s3.put_object(
        Bucket=spec.bucket,
        Key=spec.thumbnail_key,
        Body=result.thumbnail_png,
        ContentType="image/png",
        Metadata={ASSET_META_JOB_ID: spec.job_id},
    )
    return spec.thumbnail_key
