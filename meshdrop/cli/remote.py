"""``meshdrop upload|status|watch|get|ls|history|gallery``: the bucket's people's commands.

Every command finds the deployment the same way (``--stack``/``--bucket``/``--table``, the
``MESHDROP_*`` environment, the stack's outputs) and turns known AWS failures into one line on
stderr and exit status 1.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from meshdrop.cli.options import FormatOption, NoTextureOption, PresetOption, job_options
from meshdrop.remote import DEFAULT_WORKERS, RemoteError
from meshdrop_contract import Category, JobState, Preset
from meshdrop_contract.wiring import CLI_ENV_BUCKET, CLI_ENV_STACK, CLI_ENV_TABLE

if TYPE_CHECKING:
    from meshdrop.remote.client import Remote
    from meshdrop.remote.jobs import JobRecord
    from meshdrop.remote.upload import UploadResult

# boto3 (and so meshdrop.remote's AWS modules) is imported inside the commands, so that
# `meshdrop --help` and the local commands do not pay for it.

out = Console()
err = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])

StackOpt = Annotated[
    str | None,
    typer.Option(
        "--stack", envvar=CLI_ENV_STACK, help="CloudFormation stack name (default: meshdrop)."
    ),
]
BucketOpt = Annotated[
    str | None, typer.Option("--bucket", envvar=CLI_ENV_BUCKET, help="Bucket (skips the stack).")
]
TableOpt = Annotated[
    str | None, typer.Option("--table", envvar=CLI_ENV_TABLE, help="Job table (skips the stack).")
]
RegionOpt = Annotated[str | None, typer.Option("--region", help="AWS region.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]
IntervalOpt = Annotated[float, typer.Option(min=0.1, help="Seconds between polls.")]
TimeoutOpt = Annotated[float, typer.Option(help="Give up after this many seconds.")]


def _handled(func: F) -> F:
    """One line on stderr and exit 1 for failures a person can fix; no traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        from meshdrop.remote.errors import explain

        try:
            return func(*args, **kwargs)
        except RemoteError as e:
            message = str(e)
        except (BotoCoreError, ClientError) as e:
            # Raised outside a guarded call (client creation: no region, say).
            known = explain(e)
            if known is None:
                raise
            message = str(known)
        err.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)

    return wrapper  # type: ignore[return-value]


def _connect(
    stack: str | None, bucket: str | None, table: str | None, region: str | None
) -> Remote:
    from meshdrop.remote.client import Remote as Client

    return Client.connect(stack=stack, bucket=bucket, table=table, region=region)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


_STATE_STYLE = {
    JobState.SUCCEEDED: "green",
    JobState.FAILED: "red",
    JobState.REJECTED: "red",
    JobState.RUNNING: "cyan",
    JobState.SUBMITTED: "blue",
    JobState.ACCEPTED: "yellow",
}


def _state(state: JobState) -> str:
    return f"[{_STATE_STYLE[state]}]{state.value}[/]"


def _jobs_table(jobs: list[JobRecord], title: str | None = None) -> Table:
    table = Table(title=title)
    for column in ("job", "source", "state", "asset", "seconds", "updated", "error"):
        table.add_column(column, overflow="fold")
    for job in jobs:
        table.add_row(
            job.job_id[:12],
            escape(job.source_key),
            _state(job.state),
            escape(job.asset_key or ""),
            f"{job.seconds:.1f}" if job.seconds is not None else "",
            job.updated_at or "",
            escape(job.error or ""),
        )
    return table


# -- upload ---------------------------------------------------------------------------------


@_handled
def upload_cmd(
    paths: Annotated[list[Path], typer.Argument(help="Image files and/or folders (recursive).")],
    category: Annotated[Category, typer.Option(help="Category folder under images/.")] = (
        Category.UPLOADED
    ),
    preset: PresetOption = Preset.BALANCED,
    fmt: FormatOption = None,
    no_texture: NoTextureOption = False,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Parallel uploads.")] = (
        DEFAULT_WORKERS
    ),
    wait: Annotated[
        bool, typer.Option("--wait", help="Then follow the jobs until all are finished.")
    ] = False,
    interval: IntervalOpt = 2.0,
    timeout: TimeoutOpt = 3600.0,
    as_json: JsonOpt = False,
    stack: StackOpt = None,
    bucket: BucketOpt = None,
    table: TableOpt = None,
    region: RegionOpt = None,
) -> None:
    """Upload photos; each becomes a job. Options travel as object metadata."""
    from meshdrop.remote.upload import collect, upload

    found = collect(paths)
    if not found.items and not found.rejected:
        raise RemoteError("No images found (extensions: jpg, jpeg, png, bmp, tiff, webp).")
    remote = _connect(stack, bucket, table, region)
    remote.check_bucket()
    options = job_options(preset, fmt, no_texture)
    total_bytes = sum(i.size for i in found.items)
    progress = Progress(
        TextColumn("[bold]uploading"),
        BarColumn(),
        MofNCompleteColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,  # the summary below replaces it; an error leaves one line only
    )
    with progress:
        files = progress.add_task("files", total=len(found.items))
        sizes = progress.add_task("bytes", total=total_bytes, visible=False)

        def advance(result: UploadResult) -> None:
            progress.update(files, advance=1)
            progress.update(sizes, advance=result.item.size)

        results = upload(
            remote,
            found.items,
            category=category,
            options=options,
            workers=workers,
            on_done=advance,
        )
    rejected = [(str(p), reason) for p, reason in found.rejected]
    failures = rejected + [(str(r.item.path), r.error or "") for r in results if not r.ok]
    if as_json:
        _print_json(
            {
                "bucket": remote.bucket,
                "uploads": [
                    {
                        "path": str(r.item.path),
                        "key": r.key,
                        "job_id": r.job_id,
                        "version_id": r.version_id,
                        "error": r.error,
                    }
                    for r in results
                ],
                "rejected": [{"path": p, "error": e} for p, e in rejected],
                "skipped": found.skipped,
            }
        )
    else:
        done = [r for r in results if r.ok]
        for r in done[:20]:
            out.print(f"{escape(r.key or '')}  job {r.job_id}", highlight=False)
        if len(done) > 20:
            out.print(f"... and {len(done) - 20} more", highlight=False)
        skipped = f", {found.skipped} non-images skipped" if found.skipped else ""
        out.print(
            f"uploaded {len(done)} to s3://{remote.bucket}, {len(failures)} failed{skipped}",
            highlight=False,
        )
        if failures:
            table = Table(title="failed uploads")
            table.add_column("file", overflow="fold")
            table.add_column("reason", overflow="fold")
            for path, reason in failures:
                table.add_row(escape(path), escape(reason))
            err.print(table)
    succeeded = True
    if wait and (keys := [r.key for r in results if r.ok and r.key]):
        # Follow by key: the key finds its job whichever way ingest derived the job id.
        succeeded = _follow(remote, keys, interval, timeout)
    if failures or not succeeded:
        raise typer.Exit(1)


# -- status / watch -------------------------------------------------------------------------


@_handled
def status_cmd(
    ref: Annotated[
        str | None, typer.Argument(help="Job id, source/asset key or S3 URL; none: summary.")
    ] = None,
    as_json: JsonOpt = False,
    recent: Annotated[int, typer.Option(help="Recent jobs in the summary.")] = 10,
    stack: StackOpt = None,
    bucket: BucketOpt = None,
    table: TableOpt = None,
    region: RegionOpt = None,
) -> None:
    """One job's record, or a summary of all jobs by state."""
    from meshdrop.remote.jobs import count_by_state, find_job, jobs_by_state

    remote = _connect(stack, bucket, table, region)
    if ref is not None:
        job = find_job(remote, ref)
        if job is None:
            raise RemoteError(f"No job record for {ref} yet (ingest may still be running).")
        if as_json:
            _print_json(job.to_json())
            return
        grid = Table.grid(padding=(0, 2))
        for name, value in job.to_json().items():
            if value in (None, {}, ""):
                continue
            shown = _state(job.state) if name == "state" else json.dumps(value, default=str)
            grid.add_row(f"[bold]{name}[/]", shown if name == "state" else escape(shown.strip('"')))
        out.print(grid)
        return
    counts = count_by_state(remote)
    latest: list[JobRecord] = []
    for state in JobState:
        latest += jobs_by_state(remote, state, limit=recent)
    latest = sorted(latest, key=lambda j: j.updated_at or "", reverse=True)[:recent]
    if as_json:
        _print_json(
            {
                "counts": {s.value: n for s, n in counts.items()},
                "recent": [j.to_json() for j in latest],
            }
        )
        return
    summary = Table(title=f"jobs in {remote.names.table}")
    for state in JobState:
        summary.add_column(_state(state), justify="right")
    summary.add_row(*(str(counts[s]) for s in JobState))
    out.print(summary)
    if latest:
        out.print(_jobs_table(latest, title="most recent"))


def _follow(remote: Remote, refs: list[str], interval: float, timeout: float) -> bool:
    """Show ``refs``' jobs live until all are terminal; whether all succeeded.

    Raises
    ------
    RemoteError
        ``timeout`` seconds passed first.
    """
    from meshdrop.remote.jobs import find_job

    deadline = time.monotonic() + timeout
    jobs: dict[str, JobRecord | None] = {}

    def render() -> Table:
        table = Table()
        for column in ("ref", "state", "asset", "seconds", "error"):
            table.add_column(column, overflow="fold")
        for ref in refs:
            job = jobs.get(ref)
            if job is None:
                table.add_row(escape(ref), "[dim]waiting for a record[/]", "", "", "")
                continue
            seconds = f"{job.seconds:.1f}" if job.seconds is not None else ""
            shown = _state(job.state)
            if not job.terminal and job.raw.get("stage"):
                # Progress events from the generator: stage and fraction done.
                shown += f" {job.raw['stage']} {float(job.raw.get('progress', 0)):.0%}"
            table.add_row(
                escape(ref), shown, escape(job.asset_key or ""), seconds, escape(job.error or "")
            )
        return table

    with Live(render(), console=err, refresh_per_second=4) as live:
        while True:
            for ref in refs:
                current = jobs.get(ref)
                if current is None or not current.terminal:
                    jobs[ref] = find_job(remote, ref)
            live.update(render())
            if all(j is not None and j.terminal for j in jobs.values()):
                break
            if time.monotonic() >= deadline:
                raise RemoteError(f"Gave up after {timeout:.0f} s; jobs are still running.")
            time.sleep(interval)
    if not sys.stderr.isatty():
        # Live shows only the last frame off a terminal; scripts want the table on stdout.
        out.print(render())
    return all(j is not None and j.state is JobState.SUCCEEDED for j in jobs.values())


@_handled
def watch_cmd(
    refs: Annotated[
        list[str] | None,
        typer.Argument(help="Job ids, keys or URLs; none: every job not yet finished."),
    ] = None,
    interval: IntervalOpt = 2.0,
    timeout: TimeoutOpt = 3600.0,
    stack: StackOpt = None,
    bucket: BucketOpt = None,
    table: TableOpt = None,
    region: RegionOpt = None,
) -> None:
    """Follow jobs live until all are finished. Exit 0 only if all succeeded."""
    from meshdrop.remote.jobs import jobs_by_state

    remote = _connect(stack, bucket, table, region)
    if not refs:
        pending = [JobState.ACCEPTED, JobState.SUBMITTED, JobState.RUNNING]
        refs = [j.job_id for s in pending for j in jobs_by_state(remote, s)]
        if not refs:
            out.print("no unfinished jobs")
            return
    if not _follow(remote, refs, interval, timeout):
        raise typer.Exit(1)


# -- get / ls / history ---------------------------------------------------------------------


@_handled
def get_cmd(
    ref: Annotated[str, typer.Argument(help="Job id, source or asset key, s3:// or https:// URL.")],
    out_dir: Annotated[Path, typer.Option("-o", "--out", help="Folder to write into.")] = Path(),
    version: Annotated[
        str | None, typer.Option(help="Asset version id, or the job id that wrote it.")
    ] = None,
    stack: StackOpt = None,
    bucket: BucketOpt = None,
    table: TableOpt = None,
    region: RegionOpt = None,
) -> None:
    """Download an asset (through a presigned URL)."""
    from meshdrop.remote.assets import download, resolve_asset

    remote = _connect(stack, bucket, table, region)
    target = resolve_asset(remote, ref, version)
    path = download(remote, target, out_dir)
    typer.echo(str(path))


@_handled
def ls_cmd(
    state: Annotated[JobState | None, typer.Option(help="Only jobs in this state.")] = None,
    assets: Annotated[bool, typer.Option("--assets", help="List assets instead of jobs.")] = False,
    prefix: Annotated[str, typer.Option(help="With --assets: under 3d_assets/<prefix>.")] = "",
    limit: Annotated[int, typer.Option(min=1, help="At most this many per state.")] = 50,
    as_json: JsonOpt = False,
    stack: StackOpt = None,
    bucket: BucketOpt = None,
    table: TableOpt = None,
    region: RegionOpt = None,
) -> None:
    """List jobs by state (newest first), or the assets in the bucket."""
    from meshdrop.remote.assets import list_assets
    from meshdrop.remote.jobs import jobs_by_state

    remote = _connect(stack, bucket, table, region)
    if assets:
        found = list(list_assets(remote, prefix))
        if as_json:
            _print_json(
                [{"key": a.key, "size": a.size, "last_modified": a.last_modified} for a in found]
            )
            return
        listing = Table(title=f"assets in s3://{remote.bucket}")
        for column in ("key", "size", "modified"):
            listing.add_column(column, overflow="fold")
        for a in found:
            listing.add_row(
                escape(a.key), f"{a.size:,}", a.last_modified.isoformat(timespec="seconds")
            )
        out.print(listing)
        return
    states = [state] if state else list(JobState)
    jobs = [j for s in states for j in jobs_by_state(remote, s, limit=limit)]
    if as_json:
        _print_json([j.to_json() for j in jobs])
        return
    out.print(_jobs_table(jobs, title=f"jobs in {remote.names.table}"))


@_handled
def history_cmd(
    ref: Annotated[str, typer.Argument(help="Source key, asset key, job id or S3 URL.")],
    as_json: JsonOpt = False,
    stack: StackOpt = None,
    bucket: BucketOpt = None,
    table: TableOpt = None,
    region: RegionOpt = None,
) -> None:
    """Every upload (job) of one source key and every version of its asset."""
    from meshdrop.remote.assets import asset_versions
    from meshdrop.remote.jobs import jobs_for_source, source_key_of

    remote = _connect(stack, bucket, table, region)
    bucket_name, source_key = source_key_of(remote, ref)
    jobs = jobs_for_source(remote, source_key)
    asset_keys = sorted({j.asset_key for j in jobs if j.asset_key})
    versions = [v for key in asset_keys for v in asset_versions(remote, bucket_name, key)]
    by_job = {v.job_id: v for v in versions if v.job_id}
    if as_json:
        _print_json(
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
            _state(j.state),
            shown,
            escape(j.error or ""),
        )
    out.print(listing)


# -- gallery --------------------------------------------------------------------------------


@_handled
def gallery_cmd(
    out_dir: Annotated[Path, typer.Option("-o", "--out", help="Folder for index.html.")],
    limit: Annotated[int, typer.Option(min=1, help="At most this many jobs per state.")] = 100,
    stack: StackOpt = None,
    bucket: BucketOpt = None,
    table: TableOpt = None,
    region: RegionOpt = None,
) -> None:
    """Write an offline gallery page of the finished jobs (assets, thumbnails, photos)."""
    from meshdrop.gallery.remote import gallery_from_stack

    remote = _connect(stack, bucket, table, region)
    with err.status("downloading assets, thumbnails and photos"):
        page = gallery_from_stack(remote, out_dir, limit=limit)
    typer.echo(str(page))


COMMANDS: list[tuple[str, Callable[..., Any]]] = [
    ("upload", upload_cmd),
    ("status", status_cmd),
    ("watch", watch_cmd),
    ("get", get_cmd),
    ("ls", ls_cmd),
    ("history", history_cmd),
    ("gallery", gallery_cmd),
]


def register(parent: typer.Typer) -> None:
    """Add the remote commands to ``parent`` (the ``meshdrop`` app)."""
    for name, func in COMMANDS:
        parent.command(name)(func)


app = typer.Typer(help="Work with a deployed (or local) meshdrop stack.", no_args_is_help=True)
register(app)


if __name__ == "__main__":
    app()
