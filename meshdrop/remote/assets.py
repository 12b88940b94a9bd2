"""Assets in the bucket: listing, versions, and downloads through presigned URLs.

Downloads go through a presigned URL rather than ``get_object`` so the same code path serves
people handed only a link, and so large files stream straight to disk.
"""

from __future__ import annotations

import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from meshdrop_contract import ASSET_PREFIX, SOURCE_PREFIX, JobState
from meshdrop_contract.jobs import ASSET_META_JOB_ID
from meshdrop_contract.keys import ERROR_SUFFIX, THUMBNAIL_SUFFIX

from .client import Remote
from .errors import RemoteError, guard
from .jobs import JOB_ID, find_job, jobs_for_source
from .s3url import S3UrlError, parse_s3_ref

PRESIGN_SECONDS = 900
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class AssetObject:
    key: str
    size: int
    last_modified: datetime


@dataclass(frozen=True, slots=True)
class AssetVersion:
    """One stored version of an asset, newest first in listings."""

    key: str
    version_id: str
    size: int
    last_modified: datetime
    is_latest: bool
    job_id: str | None  # from the provenance metadata the generator writes


def list_assets(remote: Remote, prefix: str = "") -> Iterator[AssetObject]:
    """Assets (thumbnails and error files excluded) under ``3d_assets/<prefix>``."""
    full = prefix if prefix.startswith(ASSET_PREFIX) else f"{ASSET_PREFIX}{prefix}"
    with guard(f"bucket {remote.bucket}"):
        pages = remote.s3.get_paginator("list_objects_v2").paginate(
            Bucket=remote.bucket, Prefix=full
        )
        for page in pages:
            for obj in page.get("Contents", []):
                if obj["Key"].endswith((THUMBNAIL_SUFFIX, ERROR_SUFFIX)):
                    continue
                yield AssetObject(obj["Key"], obj["Size"], obj["LastModified"])


def asset_versions(remote: Remote, bucket: str, key: str) -> list[AssetVersion]:
    """Every stored version of one asset object, newest first (delete markers skipped)."""
    versions: list[AssetVersion] = []
    with guard(f"s3://{bucket}/{key}"):
        pages = remote.s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=key)
        for page in pages:
            for v in page.get("Versions", []):
                if v["Key"] != key:
                    continue
                head = remote.s3.head_object(Bucket=bucket, Key=key, VersionId=v["VersionId"])
                versions.append(
                    AssetVersion(
                        key=key,
                        version_id=v["VersionId"],
                        size=v["Size"],
                        last_modified=v["LastModified"],
                        is_latest=v["IsLatest"],
                        job_id=head.get("Metadata", {}).get(ASSET_META_JOB_ID),
                    )
                )
    versions.sort(key=lambda v: v.last_modified, reverse=True)
    return versions


@dataclass(frozen=True, slots=True)
class AssetTarget:
    bucket: str
    key: str
    version_id: str | None = None


def resolve_asset(remote: Remote, ref: str, version: str | None = None) -> AssetTarget:
    """The asset object a person means by ``ref`` (+ ``version``).

    Parameters
    ----------
    ref
        Job id, source key, asset key, or an ``s3://`` / HTTPS URL of either.
    version
        An asset S3 version id, or the id of the job that wrote that version (as
        ``meshdrop history`` shows both). ``None``: the current version.

    Raises
    ------
    RemoteError
        No job or no asset for ``ref``, or no version matching ``version``.
    """
    try:
        parsed = None if JOB_ID.match(ref) else parse_s3_ref(ref, endpoint_url=_endpoint(remote))
    except S3UrlError as err:
        raise RemoteError(str(err)) from None
    if parsed is not None and parsed.key.startswith(ASSET_PREFIX):
        target = AssetTarget(parsed.bucket or remote.bucket, parsed.key, parsed.version_id)
    else:
        if parsed is not None and not parsed.key.startswith(SOURCE_PREFIX):
            raise RemoteError(
                f"{ref!r} is not a job id, nor a key under {SOURCE_PREFIX} or {ASSET_PREFIX}."
            )
        job = find_job(remote, ref)
        if job is None and parsed is not None:
            # The current upload may not have a record yet; its predecessors still have assets.
            done = [j for j in jobs_for_source(remote, parsed.key) if j.asset_key]
            job = done[-1] if done else None
        if job is None:
            raise RemoteError(f"No job found for {ref}: was it uploaded to this stack?")
        if job.state is not JobState.SUCCEEDED and version is None:
            # The object at the asset key, if any, is an older upload's: do not pass it off
            # as this one's.
            reason = f": {job.error}" if job.error else ""
            hint = "" if job.terminal else " Run `meshdrop watch` to wait for it."
            raise RemoteError(
                f"Job {job.job_id} of {job.source_key} is {job.state.value}{reason}; "
                f"it has no asset.{hint}"
            )
        asset_key = job.asset_key or next(
            (j.asset_key for j in reversed(jobs_for_source(remote, job.source_key)) if j.asset_key),
            None,
        )
        if not asset_key:
            raise RemoteError(f"No asset was ever made from {job.source_key}.")
        target = AssetTarget(job.bucket or remote.bucket, asset_key)
    if version is None:
        return target
    for v in asset_versions(remote, target.bucket, target.key):
        if version == v.version_id or (v.job_id and v.job_id.startswith(version)):
            return AssetTarget(target.bucket, target.key, v.version_id)
    raise RemoteError(
        f"No version {version!r} of s3://{target.bucket}/{target.key} "
        "(see `meshdrop history` for version and job ids)."
    )


def _endpoint(remote: Remote) -> str | None:
    return remote.s3.meta.endpoint_url


def presigned_url(remote: Remote, target: AssetTarget, expires: int = PRESIGN_SECONDS) -> str:
    params: dict[str, Any] = {"Bucket": target.bucket, "Key": target.key}
    if target.version_id:
        params["VersionId"] = target.version_id
    with guard(f"s3://{target.bucket}/{target.key}"):
        return remote.s3.generate_presigned_url("get_object", Params=params, ExpiresIn=expires)


def download(
    remote: Remote,
    target: AssetTarget,
    out_dir: Path,
    *,
    filename: str | None = None,
) -> Path:
    """Download ``target`` into ``out_dir`` (created) via a presigned URL; returns the file.

    The file appears only when complete (written beside, then renamed), so an interrupted
    download never leaves a truncated asset that looks fine.

    Raises
    ------
    RemoteError
        HTTP errors (403 access denied, 404 no such object or version) or network failures.
    """
    url = presigned_url(remote, target)
    out_dir.mkdir(parents=True, exist_ok=True)
    dest = out_dir / (filename or PurePosixPath(target.key).name)
    what = f"s3://{target.bucket}/{target.key}"
    if target.version_id:
        what += f" (version {target.version_id})"
    tmp = dest.with_name(f".{dest.name}.part")
    try:
        with (
            urllib.request.urlopen(url, timeout=60) as response,
            tmp.open("wb") as sink,
        ):
            shutil.copyfileobj(response, sink, _CHUNK)
    except urllib.error.HTTPError as err:
        tmp.unlink(missing_ok=True)
        reasons = {403: "access denied", 404: "no such object or version"}
        raise RemoteError(f"Download of {what} failed: {reasons.get(err.code, err)}") from None
    except urllib.error.URLError as err:
        tmp.unlink(missing_ok=True)
        raise RemoteError(f"Download of {what} failed: {err.reason}") from None
    tmp.replace(dest)
    return dest
