"""``meshdrop history``: every upload of one source key and every version of its asset."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from meshdrop.remote import RemoteError

from .common import Connection, JsonOpt, out, print_json, remote_command, styled_state

if TYPE_CHECKING:
    from meshdrop.remote.assets import AssetVersion
    from meshdrop.remote.jobs import JobRecord


@remote_command
def history_cmd(
    conn: Connection,
    ref: Annotated[str, typer.Argument(help="Source key, asset key, job id or S3 URL.")],
    as_json: JsonOpt = False,
) -> None:
    """Every upload (job) of one source key and every version of its asset."""
    from meshdrop.remote.assets import asset_versions
    from meshdrop.remote.jobs import jobs_for_source, source_key_of

    remote = conn.connect()
    bucket_name, source_key = source_key_of(remote, ref)
    jobs = jobs_for_source(remote, source_key)
    asset_keys = sorted({j.asset_key for j in jobs if j.asset_key})
    versions = [v for key in asset_keys for v in asset_versions(remote, bucket_name, key)]
    by_job = {v.job_id: v for v in versions if v.job_id}
    if as_json:
        _print_history_json(source_key, jobs, versions, by_job)
        return
    if not jobs:
        raise RemoteError(f"No jobs recorded for {source_key}.")
    listing = Table(title=f"history of {escape(source_key)}")
    for column in ("created", "job", "source version", "state", "asset version", "error"):
        listing.add_column(column, overflow="fold")
    for j in jobs:
        v = by_job.get(j.job_id)
        shown = (v.version_id + (" (latest)" if v.is_latest else "")) if v else ""
        listing.add_row(
            j.created_at or "",
            j.job_id,
            j.source_version or "",
            styled_state(j.state),
            shown,
            escape(j.error or ""),
        )
    out.print(listing)


def _print_history_json(
    source_key: str,
    jobs: list[JobRecord],
    versions: list[AssetVersion],
    by_job: dict[str, AssetVersion],
) -> None:
    print_json(
        {
            "source_key": source_key,
            "jobs": [
                j.to_json()
                | {"asset_version": by_job[j.job_id].version_id if j.job_id in by_job else None}
                for j in jobs
            ],
            "asset_versions": [
                {
                    "key": v.key,
                    "version_id": v.version_id,
                    "job_id": v.job_id,
                    "size": v.size,
                    "last_modified": v.last_modified,
                    "latest": v.is_latest,
                }
                for v in versions
            ],
        }
    )
