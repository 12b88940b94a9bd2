"""Upload photos into ``images/<category>/`` with the job options as object metadata."""

from __future__ import annotations

import mimetypes
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from meshdrop_contract import (
    IMAGE_EXTENSIONS,
    MAX_IMAGE_BYTES,
    Category,
    InvalidKeyError,
    JobOptions,
    job_id_for,
    source_key_for,
)

from . import DEFAULT_WORKERS
from .client import Remote
from .errors import RemoteError, explain, is_fatal


@dataclass(frozen=True, slots=True)
class UploadItem:
    """One local file and the name (relative path) it gets under its category."""

    path: Path
    name: str
    size: int


@dataclass(frozen=True, slots=True)
class UploadResult:
    item: UploadItem
    key: str | None
    job_id: str | None = None
    version_id: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class Collected:
    items: list[UploadItem]
    #: Files named explicitly that cannot be uploaded, with the reason.
    rejected: list[tuple[Path, str]]
    #: Files inside folders skipped because they are not images.
    skipped: int


def _is_image(path: Path) -> bool:
    return path.suffix[1:].lower() in IMAGE_EXTENSIONS


def collect(paths: Iterable[Path]) -> Collected:
    """Expand files and folders (recursively) into the images to upload.

    A file given by name keeps its base name; files found in a folder keep their path relative
    to that folder, so ``kitchen/mug.jpg`` lands at ``images/<category>/kitchen/mug.jpg``.
    Non-images inside folders are skipped (counted); a non-image named explicitly is rejected
    with a reason, since the person asked for it.
    """
    items: list[UploadItem] = []
    rejected: list[tuple[Path, str]] = []
    skipped = 0
    seen: set[Path] = set()
    for root in paths:
        if root.is_dir():
            found = sorted(p for p in root.rglob("*") if p.is_file())
            pairs = [(p, p.relative_to(root).as_posix()) for p in found]
        elif root.is_file():
            pairs = [(root, root.name)]
        else:
            rejected.append((root, "no such file or folder"))
            continue
        for path, name in pairs:
            resolved = path.resolve()
            if resolved in seen:
                continue
            seen.add(resolved)
            if not _is_image(path):
                if root.is_dir():
                    skipped += 1
                else:
                    allowed = ", ".join(sorted(IMAGE_EXTENSIONS))
                    rejected.append((path, f"not an image extension (allowed: {allowed})"))
                continue
            items.append(UploadItem(path=path, name=name, size=path.stat().st_size))
    return Collected(items=items, rejected=rejected, skipped=skipped)


def _upload_one(
    remote: Remote, item: UploadItem, category: Category, metadata: dict[str, str]
) -> UploadResult:
    try:
        key = source_key_for(category, item.name)
    except InvalidKeyError as err:
        return UploadResult(item, None, error=f"bad key: {err}")
    if item.size > MAX_IMAGE_BYTES:
        limit = MAX_IMAGE_BYTES // (1024 * 1024)
        return UploadResult(item, key, error=f"larger than the {limit} MiB limit")
    if item.size == 0:
        return UploadResult(item, key, error="empty file")
    content_type = mimetypes.guess_type(item.name)[0] or "application/octet-stream"
    try:
        # put_object (not upload_file): images are under the size limit, and its response
        # carries the version id the job id is derived from.
        with item.path.open("rb") as body:
            response = remote.s3.put_object(
                Bucket=remote.bucket,
                Key=key,
                Body=body,
                ContentType=content_type,
                Metadata=metadata,
            )
    except (ClientError, BotoCoreError) as err:
        known = explain(err, what=f"bucket {remote.bucket}")
        if known is not None and is_fatal(err):
            raise known from None
        return UploadResult(item, key, error=str(known or err))
    except OSError as err:
        return UploadResult(item, key, error=f"cannot read: {err.strerror or err}")
    version = response.get("VersionId")
    stamp = version if version and version != "null" else response["ETag"].strip('"')
    return UploadResult(item, key, job_id=job_id_for(remote.bucket, key, stamp), version_id=version)


def upload(
    remote: Remote,
    items: list[UploadItem],
    *,
    category: Category = Category.UPLOADED,
    options: JobOptions | None = None,
    workers: int = DEFAULT_WORKERS,
    on_done: Callable[[UploadResult], None] | None = None,
) -> list[UploadResult]:
    """Upload ``items`` in parallel; every item gets a result, failures carry a reason.

    A failure that will fail every other upload too (no credentials, no bucket, access denied)
    stops the run by raising :class:`RemoteError` instead of repeating itself hundreds of times.
    """
    metadata = (options or JobOptions()).to_metadata()
    results: list[UploadResult] = []
    fatal: RemoteError | None = None
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [pool.submit(_upload_one, remote, i, category, metadata) for i in items]
        for future in as_completed(futures):
            if future.cancelled():
                continue
            try:
                result = future.result()
            except RemoteError as err:
                if fatal is None:
                    fatal = err
                    for other in futures:
                        other.cancel()
                continue
            results.append(result)
            if on_done:
                on_done(result)
    if fatal is not None:
        raise fatal
    order = {id(item): n for n, item in enumerate(items)}
    return sorted(results, key=lambda r: order[id(r.item)])
