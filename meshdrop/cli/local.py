"""``meshdrop local run``: the whole pipeline on an embedded AWS (moto), no account needed."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO

import typer

from meshdrop_contract import Backend, JobState, Preset

from .options import BackendOption, FormatOption, NoTextureOption, PresetOption, job_options

if TYPE_CHECKING:
    from collections.abc import Callable

    from rich.console import Console
    from rich.live import Live
    from rich.table import Table

    from meshdrop.local.pipeline import JobReport, RunSummary
    from meshdrop.local.replay import ReplayEntry

local_app = typer.Typer(
    help="Run the pipeline on this machine: moto for AWS, the real functions and generator.",
    no_args_is_help=True,
)

_STATUS_STYLE = {
    JobState.SUCCEEDED.value: "green",
    JobState.FAILED.value: "red",
    JobState.REJECTED.value: "yellow",
    JobState.SUPERSEDED.value: "dim",
}


def _progress_table(reports: list[JobReport]) -> Table:
    from rich.progress_bar import ProgressBar
    from rich.table import Table

    table = Table(title="meshdrop local run", expand=False)
    table.add_column("photo")
    table.add_column("state")
    table.add_column("stage")
    table.add_column("progress", width=22)
    for r in reports:
        done = 1.0 if r.status == JobState.SUCCEEDED else float(r.progress or 0.0)
        style = _STATUS_STYLE.get(r.status, "cyan")
        table.add_row(
            Path(r.file).name,
            f"[{style}]{r.status}[/{style}]",
            r.stage or "",
            ProgressBar(total=1.0, completed=done, width=20),
        )
    return table


def _result_table(reports: list[JobReport]) -> Table:
    from rich.table import Table

    table = Table(title="results")
    table.add_column("key", overflow="fold")
    table.add_column("status")
    table.add_column("asset", overflow="fold")
    table.add_column("seconds", justify="right")
    table.add_column("error", overflow="fold")
    for r in reports:
        style = _STATUS_STYLE.get(r.status, "magenta")
        table.add_row(
            r.key,
            f"[{style}]{r.status}[/{style}]",
            _shown_path(r.local_asset) or r.asset_key or "",
            f"{r.seconds:.1f}" if r.seconds is not None else "",
            r.error or "",
        )
    return table


def _shown_path(path: str | None) -> str | None:
    """``path`` relative to the working directory when it lies below it (shorter to read)."""
    if not path:
        return None
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


def _live(err: Console, quiet: bool) -> contextlib.AbstractContextManager[Live | None]:
    if quiet or not err.is_terminal:
        return contextlib.nullcontext(None)
    from rich.live import Live

    return Live(console=err, refresh_per_second=4, transient=False)


#: Not ``exists=True``: a path that cannot be a job is a REJECTED row, not a usage error.
ImagesArg = Annotated[
    list[Path],
    typer.Argument(
        help="Photos to upload. A path that cannot be a job (missing, a directory, "
        "unreadable, an unsupported type) gets its own REJECTED row; the run goes on."
    ),
]


OutOption = Annotated[
    Path, typer.Option("--out", "-o", help="Folder for the assets (mirrors 3d_assets/).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print only a JSON report on stdout.")]
TimeoutOption = Annotated[
    float, typer.Option("--timeout", help="Give up on unfinished jobs after this many s.")
]
JobsOption = Annotated[int, typer.Option("--jobs", "-j", min=1, help="Generator jobs at once.")]
PackSizeOption = Annotated[
    int,
    typer.Option(
        "--pack-size",
        min=1,
        max=20,
        help="Photos per Batch job, as the deployed pack_size setting (default 10): one "
        "generator process per pack, the model loaded once; 1: a job per photo.",
    ),
]
ServeOption = Annotated[
    bool, typer.Option("--serve", help="Then serve the gallery on localhost (Ctrl-C stops).")
]


@local_app.command("run")
def run(
    images: ImagesArg,
    out: OutOption = Path("meshdrop-out"),
    as_json: JsonOption = False,
    preset: PresetOption = Preset.BALANCED,
    fmt: FormatOption = None,
    no_texture: NoTextureOption = False,
    backend: BackendOption = Backend.AUTO,
    timeout: TimeoutOption = 1800.0,
    jobs: JobsOption = 1,
    pack_size: PackSizeOption = 10,
    serve: ServeOption = False,
) -> None:
    """Upload IMAGES to a local bucket and run them through the pipeline.

    Exits 0 when every photo got an asset, 1 otherwise (the report lists why, one row per
    path given).
    """
    from rich.console import Console

    from meshdrop.local.pipeline import run_local

    err = Console(stderr=True)
    stdout = sys.stdout
    options = job_options(preset, fmt, no_texture, backend)
    # The handlers log (Powertools writes to stdout): keep stdout for the report alone.
    with contextlib.redirect_stdout(sys.stderr), _live(err, as_json) as live:
        err.print(f"[dim]starting the local pipeline for {len(images)} photo(s)…[/dim]")
        summary = run_local(
            images,
            out,
            options=options,
            timeout_s=timeout,
            concurrency=jobs,
            on_update=_progress_printer(err, live, quiet=as_json),
            pack_size=pack_size,
        )
    _print_summary(summary, out, pack_size, stdout=stdout, as_json=as_json)
    if serve and summary.gallery is not None:
        from meshdrop.gallery.serve import serve as serve_gallery

        serve_gallery(summary.gallery.parent)
    if not all(r.status == JobState.SUCCEEDED for r in summary.reports):
        raise typer.Exit(1)


def _progress_printer(
    err: Console, live: Live | None, *, quiet: bool
) -> Callable[[list[JobReport]], None]:
    """What the pipeline calls on every change: a live table on a terminal, else one line per
    change of the states (none with ``--json``)."""
    last: list[str] = []

    def on_update(reports: list[JobReport]) -> None:
        if live is not None:
            live.update(_progress_table(reports))
            return
        states = [f"{Path(r.file).name}:{r.status}" for r in reports]
        if states != last and not quiet:
            last[:] = states
            err.print("[dim]" + "  ".join(states) + "[/dim]")

    return on_update


def _print_summary(
    summary: RunSummary, out: Path, pack_size: int, *, stdout: TextIO, as_json: bool
) -> None:
    from rich.console import Console

    if as_json:
        stdout.write(json.dumps(_json_report(summary, pack_size)) + "\n")
        stdout.flush()
        return
    console = Console(file=stdout)
    console.print(_result_table(summary.reports))
    console.print(_summary_line(summary, out, pack_size))
    if summary.gallery is not None:
        console.print(f"gallery: {summary.gallery}")


_OUTCOME_STYLE = {
    "accepted": "green",
    "applied": "green",
    "rejected": "yellow",
    "ignored": "dim",
    "invalid": "magenta",
    "error": "red",
}


@local_app.command("replay")
def replay(
    event_files: Annotated[
        list[Path],
        typer.Argument(
            exists=True,
            dir_okay=False,
            readable=True,
            metavar="EVENT_FILE...",
            help="Files, each one delivery as AWS delivers it (S3 notification, SNS envelope, "
            "SQS body, EventBridge event, Lambda failure record), replayed in order.",
        ),
    ],
    seed: Annotated[
        Path | None,
        typer.Option(
            "--seed",
            exists=True,
            file_okay=False,
            help="Upload every file under DIR first (key: its path relative to DIR), "
            "without processing it.",
            metavar="DIR",
        ),
    ] = None,
    run_jobs: Annotated[
        bool, typer.Option("--run", help="Also run the generator for accepted uploads.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print only a JSON list, one entry per file.")
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Give up waiting on one file after this many s.")
    ] = 1800.0,
) -> None:
    """Replay captured AWS deliveries on a fresh local stack, each to the consumer that would
    receive it in AWS (ingest or state).

    The bucket named in an event is taken to be the local stack's. Exits 0 when the replay
    ran, whatever the outcomes (accepted, rejected, applied, ignored, invalid, error).
    """
    from rich.console import Console

    from meshdrop.local.replay import replay_files

    stdout = sys.stdout
    err = Console(stderr=True)
    with contextlib.redirect_stdout(sys.stderr):
        if not as_json:
            err.print(f"[dim]replaying {len(event_files)} file(s) on a fresh local stack…[/dim]")
        entries = replay_files(event_files, seed=seed, run=run_jobs, timeout_s=timeout)
    if as_json:
        stdout.write(json.dumps([e.to_json() for e in entries], default=str) + "\n")
        stdout.flush()
        return
    Console(file=stdout).print(_replay_table(entries))


def _replay_table(entries: list[ReplayEntry]) -> Table:
    from rich.table import Table

    table = Table(title="meshdrop local replay")
    for column in ("file", "consumer", "outcome", "jobs", "reason"):
        table.add_column(column, overflow="fold")
    for entry in entries:
        style = _OUTCOME_STYLE.get(entry.outcome, "cyan")
        jobs = ", ".join(f"{j.get('job_id', '?')[:8]} {j.get('state', '')}" for j in entry.jobs)
        table.add_row(
            Path(entry.file).name,
            entry.consumer,
            f"[{style}]{entry.outcome}[/{style}]",
            jobs,
            entry.reason,
        )
    return table


def _json_report(summary: RunSummary, pack_size: int) -> dict[str, object]:
    report: dict[str, object] = {"jobs": [r.to_json() for r in summary.reports]}
    if pack_size > 1:  # without packs the report stays as it was
        report |= {"batch_jobs": summary.batch_jobs, "packs": summary.packs}
    return report


def _summary_line(summary: RunSummary, out: Path, pack_size: int) -> str:
    succeeded = sum(r.status == JobState.SUCCEEDED for r in summary.reports)
    packs = (
        f"{summary.batch_jobs} Batch job(s), {summary.packs} of them pack(s); "
        if pack_size > 1
        else ""
    )
    return (
        f"{succeeded}/{len(summary.reports)} succeeded in {summary.wall_seconds:.1f}s; "
        f"{len(summary.notifications)} notification(s); {packs}assets under {out}/"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(local_app, name="local")
