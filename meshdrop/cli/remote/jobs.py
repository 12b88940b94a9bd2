"""``meshdrop status|watch|ls|history``: what the job table says about the uploads."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import typer
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from meshdrop.remote import RemoteError
from meshdrop_contract import JobState

from .common import (
    Connection,
    IntervalOpt,
    JsonOpt,
    TimeoutOpt,
    err,
    jobs_table,
    out,
    print_json,
    remote_command,
    styled_state,
)

if TYPE_CHECKING:
    from meshdrop.remote.client import Remote
    from meshdrop.remote.jobs import JobRecord


@dataclass(frozen=True)
class Clock:
    """Time as :func:`follow` sees it; tests swap in one they control."""

    now: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


CLOCK = Clock()


@remote_command
def status_cmd(
    conn: Connection,
    ref: Annotated[
        str | None, typer.Argument(help="Job id, source/asset key or S3 URL; none: summary.")
    ] = None,
    as_json: JsonOpt = False,
    recent: Annotated[int, typer.Option(help="Recent jobs in the summary.")] = 10,
) -> None:
    """One job's record, or a summary of all jobs by state."""
    remote = conn.connect()
    if ref is None:
        _summary(remote, recent, as_json)
        return
    from meshdrop.remote.jobs import find_job

    job = find_job(remote, ref)
    if job is None:
        raise RemoteError(f"No job record for {ref} yet (ingest may still be running).")
    if as_json:
        print_json(job.to_json())
        return
    grid = Table.grid(padding=(0, 2))
    for name, value in job.to_json().items():
        if value in (None, {}, ""):
            continue
        shown = json.dumps(value, default=str)
        grid.add_row(
            f"[bold]{name}[/]",
            styled_state(job.state) if name == "state" else escape(shown.strip('"')),
        )
    out.print(grid)


def _summary(remote: Remote, recent: int, as_json: bool) -> None:
    from meshdrop.remote.jobs import count_by_state, jobs_by_state

    counts = count_by_state(remote)
    latest: list[JobRecord] = []
    for state in JobState:
        latest += jobs_by_state(remote, state, limit=recent)
    latest = sorted(latest, key=lambda j: j.updated_at or "", reverse=True)[:recent]
    if as_json:
        print_json(
            {
                "counts": {s.value: n for s, n in counts.items()},
                "recent": [j.to_json() for j in latest],
            }
        )
        return
    summary = Table(title=f"jobs in {remote.names.table}")
    for state in JobState:
        summary.add_column(styled_state(state), justify="right")
    summary.add_row(*(str(counts[s]) for s in JobState))
    out.print(summary)
    if latest:
        out.print(jobs_table(latest, title="most recent"))


def _follow_table(refs: list[str], jobs: dict[str, JobRecord | None]) -> Table:
    table = Table()
    for column in ("ref", "state", "asset", "seconds", "error"):
        table.add_column(column, overflow="fold")
    for ref in refs:
        job = jobs.get(ref)
        if job is None:
            table.add_row(escape(ref), "[dim]waiting for a record[/]", "", "", "")
            continue
        seconds = f"{job.seconds:.1f}" if job.seconds is not None else ""
        shown = styled_state(job.state)
        if not job.terminal and job.raw.get("stage"):
            # Progress events from the generator: stage and fraction done.
            shown += f" {job.raw['stage']} {float(job.raw.get('progress', 0)):.0%}"
        table.add_row(
            escape(ref), shown, escape(job.asset_key or ""), seconds, escape(job.error or "")
        )
    return table


def follow(remote: Remote, refs: list[str], interval: float, timeout: float) -> bool:
    """Show ``refs``' jobs live until all are terminal; whether all succeeded.

    Raises
    ------
    RemoteError
        ``timeout`` seconds passed first.
    """
    from meshdrop.remote.jobs import find_job

    clock = CLOCK
    deadline = clock.now() + timeout
    jobs: dict[str, JobRecord | None] = {}
    with Live(_follow_table(refs, jobs), console=err, refresh_per_second=4) as live:
        while True:
            for ref in refs:
                current = jobs.get(ref)
                if current is None or not current.terminal:
                    jobs[ref] = find_job(remote, ref)
            live.update(_follow_table(refs, jobs))
            if all(j is not None and j.terminal for j in jobs.values()):
                break
            if clock.now() >= deadline:
                raise RemoteError(f"Gave up after {timeout:.0f} s; jobs are still running.")
            clock.sleep(interval)
    if not sys.stderr.isatty():
        # Live shows only the last frame off a terminal; scripts want the table on stdout.
        out.print(_follow_table(refs, jobs))
    return all(j is not None and j.state is JobState.SUCCEEDED for j in jobs.values())


@remote_command
def watch_cmd(
    conn: Connection,
    refs: Annotated[
        list[str] | None,
        typer.Argument(help="Job ids, keys or URLs; none: every job not yet finished."),
    ] = None,
    interval: IntervalOpt = 2.0,
    timeout: TimeoutOpt = 3600.0,
) -> None:
    """Follow jobs live until all are finished. Exit 0 only if all succeeded."""
    from meshdrop.remote.jobs import jobs_by_state

    remote = conn.connect()
    if not refs:
        pending = [JobState.ACCEPTED, JobState.SUBMITTED, JobState.RUNNING]
        refs = [j.job_id for s in pending for j in jobs_by_state(remote, s)]
        if not refs:
            out.print("no unfinished jobs")
            return
    if not follow(remote, refs, interval, timeout):
        raise typer.Exit(1)


@remote_command
def ls_cmd(
    conn: Connection,
    state: Annotated[JobState | None, typer.Option(help="Only jobs in this state.")] = None,
    assets: Annotated[bool, typer.Option("--assets", help="List assets instead of jobs.")] = False,
    prefix: Annotated[str, typer.Option(help="With --assets: under 3d_assets/<prefix>.")] = "",
    limit: Annotated[int, typer.Option(min=1, help="At most this many per state.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """List jobs by state (newest first), or the assets in the bucket."""
    from meshdrop.remote.jobs import jobs_by_state

    remote = conn.connect()
    if assets:
        _list_assets(remote, prefix, as_json)
        return
    states = [state] if state else list(JobState)
    jobs = [j for s in states for j in jobs_by_state(remote, s, limit=limit)]
    if as_json:
        print_json([j.to_json() for j in jobs])
        return
    out.print(jobs_table(jobs, title=f"jobs in {remote.names.table}"))


def _list_assets(remote: Remote, prefix: str, as_json: bool) -> None:
    from meshdrop.remote.assets import list_assets

    found = list(list_assets(remote, prefix))
    if as_json:
        print_json(
            [{"key": a.key, "size": a.size, "last_modified": a.last_modified} for a in found]
        )
        return
    listing = Table(title=f"assets in s3://{remote.bucket}")
    for column in ("key", "size", "modified"):
        listing.add_column(column, overflow="fold")
    for a in found:
        listing.add_row(escape(a.key), f"{a.size:,}", a.last_modified.isoformat(timespec="seconds"))
    out.print(listing)
