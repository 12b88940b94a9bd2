"""Build the gallery of a deployed (or local) stack: download what the page shows, then write it."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from meshdrop.remote.assets import AssetTarget, download
from meshdrop.remote.client import Remote
from meshdrop.remote.errors import RemoteError
from meshdrop.remote.jobs import JobRecord, jobs_by_state
from meshdrop_contract import TERMINAL_STATES, JobState

from . import GalleryEntry, write_gallery


def _fetch(
    remote: Remote, out_dir: Path, bucket: str, key: str, version: str | None
) -> Path | None:
    """Download ``key`` to ``out_dir/<key>``; ``None`` when it is gone (photos get deleted)."""
    dest = out_dir.joinpath(*PurePosixPath(key).parts)
    try:
        return download(remote, AssetTarget(bucket, key, version), dest.parent, filename=dest.name)
    except RemoteError as err:
        if "no such object" in str(err):
            return None
        raise


def latest_per_source(jobs: list[JobRecord]) -> list[JobRecord]:
    """The most recently updated job of each source key, newest first."""
    newest: dict[str, JobRecord] = {}
    for job in jobs:
        seen = newest.get(job.source_key)
        if seen is None or (job.updated_at or "") > (seen.updated_at or ""):
            newest[job.source_key] = job
    return sorted(newest.values(), key=lambda j: j.updated_at or "", reverse=True)


def gallery_from_stack(remote: Remote, out_dir: Path, *, limit: int = 100) -> Path:
    """Write ``out_dir/index.html`` for the finished jobs of a stack.

    The newest finished job of each source key is shown; its asset, thumbnail and source
    photo (the version the job ran on) are downloaded under ``out_dir`` mirroring their keys.
    """
    finished = [
        j for s in JobState if s in TERMINAL_STATES for j in jobs_by_state(remote, s, limit)
    ]
    entries: list[GalleryEntry] = []
    for job in latest_per_source(finished):
        bucket = job.bucket or remote.bucket
        asset = thumb = None
        if job.state is JobState.SUCCEEDED and job.asset_key:
            asset = _fetch(remote, out_dir, bucket, job.asset_key, None)
            if job.thumbnail_key:
                thumb = _fetch(remote, out_dir, bucket, job.thumbnail_key, None)
        photo = _fetch(remote, out_dir, bucket, job.source_key, job.source_version)
        entries.append(
            GalleryEntry(
                name=job.source_key,
                status=job.state,
                asset=asset,
                thumbnail=thumb,
                photo=photo,
                error=job.error,
                job_id=job.job_id,
                faces=job.faces,
                vertices=job.vertices,
                seconds=job.seconds,
                metrics=job.metrics,
            )
        )
    title = f"meshdrop gallery: {remote.names.stack or remote.bucket}"
    return write_gallery(out_dir, entries, title=title)
