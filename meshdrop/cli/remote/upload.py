"""``meshdrop upload``: photos into the bucket, each a job; ``--wait`` follows them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
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
from meshdrop_contract import Category, JobOptions, Preset

from .common import (
    Connection,
    IntervalOpt,
    JsonOpt,
    TimeoutOpt,
    err,
    out,
    print_json,
    remote_command,
)
from .jobs import follow

if TYPE_CHECKING:
    from meshdrop.remote.client import Remote
    from meshdrop.remote.upload import Collected, UploadItem, UploadResult

#: Uploads listed one by one in the summary; the rest are counted.
SHOWN_UPLOADS = 20

Failures = list[tuple[str, str]]


@remote_command
def upload_cmd(
    conn: Connection,
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
) -> None:
    """Upload photos; each becomes a job. Options travel as object metadata."""
    from meshdrop.remote.upload import collect

    found = collect(paths)
    if not found.items and not found.rejected:
        raise RemoteError("No images found (extensions: jpg, jpeg, png, bmp, tiff, webp).")
    remote = conn.connect()
    remote.check_bucket()
    options = job_options(preset, fmt, no_texture)
    results = _upload_with_progress(remote, found.items, category, options, workers)
    rejected = [(str(p), reason) for p, reason in found.rejected]
    failures = rejected + [(str(r.item.path), r.error or "") for r in results if not r.ok]
    if as_json:
        _print_uploads_json(remote, results, rejected, found)
    else:
        _print_uploads(remote, results, failures, found.skipped)
    succeeded = True
    if wait and (keys := [r.key for r in results if r.ok and r.key]):
        # Follow by key: the key finds its job whichever way ingest derived the job id.
        succeeded = follow(remote, keys, interval, timeout)
    if failures or not succeeded:
        raise typer.Exit(1)


def _upload_with_progress(
    remote: Remote,
    items: list[UploadItem],
    category: Category,
    options: JobOptions,
    workers: int,
) -> list[UploadResult]:
    from meshdrop.remote.upload import upload

    progress = Progress(
        TextColumn("[bold]uploading"),
        BarColumn(),
        MofNCompleteColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,  # the summary replaces it; an error leaves one line only
    )
    with progress:
        files = progress.add_task("files", total=len(items))
        sizes = progress.add_task("bytes", total=sum(i.size for i in items), visible=False)

        def advance(result: UploadResult) -> None:
            progress.update(files, advance=1)
            progress.update(sizes, advance=result.item.size)

        return upload(
            remote, items, category=category, options=options, workers=workers, on_done=advance
        )


def _print_uploads_json(
    remote: Remote, results: list[UploadResult], rejected: Failures, found: Collected
) -> None:
    print_json(
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


def _print_uploads(
    remote: Remote, results: list[UploadResult], failures: Failures, skipped: int
) -> None:
    done = [r for r in results if r.ok]
    for r in done[:SHOWN_UPLOADS]:
        out.print(f"{escape(r.key or '')}  job {r.job_id}", highlight=False)
    if len(done) > SHOWN_UPLOADS:
        out.print(f"... and {len(done) - SHOWN_UPLOADS} more", highlight=False)
    skipped_note = f", {skipped} non-images skipped" if skipped else ""
    out.print(
        f"uploaded {len(done)} to s3://{remote.bucket}, {len(failures)} failed{skipped_note}",
        highlight=False,
    )
    if failures:
        table = Table(title="failed uploads")
        table.add_column("file", overflow="fold")
        table.add_column("reason", overflow="fold")
        for path, reason in failures:
            table.add_row(escape(path), escape(reason))
        err.print(table)
