"""What every remote command shares: finding the stack, one-line errors, printing.

Every command finds the deployment the same way (``--stack``/``--bucket``/``--table``/
``--region``, the ``MESHDROP_*`` environment, the stack's outputs). Those four options are
declared once, here, and added to each command by :func:`remote_command`.
"""

from __future__ import annotations

import functools
import inspect
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from meshdrop.remote import RemoteError
from meshdrop_contract import JobState
from meshdrop_contract.wiring import CLI_ENV_BUCKET, CLI_ENV_STACK, CLI_ENV_TABLE

if TYPE_CHECKING:
    from meshdrop.remote.client import Remote
    from meshdrop.remote.jobs import JobRecord

# boto3 (and so meshdrop.remote's AWS modules) is imported inside the commands, so that
# `meshdrop --help` and the local commands do not pay for it.

out = Console()
err = Console(stderr=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]
IntervalOpt = Annotated[float, typer.Option(min=0.1, help="Seconds between polls.")]
TimeoutOpt = Annotated[float, typer.Option(help="Give up after this many seconds.")]

_CONNECTION_PARAMETERS = (
    inspect.Parameter(
        "stack",
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[
            str | None,
            typer.Option(
                "--stack",
                envvar=CLI_ENV_STACK,
                help="CloudFormation stack name (default: meshdrop).",
            ),
        ],
    ),
    inspect.Parameter(
        "bucket",
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[
            str | None,
            typer.Option("--bucket", envvar=CLI_ENV_BUCKET, help="Bucket (skips the stack)."),
        ],
    ),
    inspect.Parameter(
        "table",
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[
            str | None,
            typer.Option("--table", envvar=CLI_ENV_TABLE, help="Job table (skips the stack)."),
        ],
    ),
    inspect.Parameter(
        "region",
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[str | None, typer.Option("--region", help="AWS region.")],
    ),
)


@dataclass(frozen=True)
class Connection:
    """Where the deployment is, as the person named it; :meth:`connect` resolves it."""

    stack: str | None = None
    bucket: str | None = None
    table: str | None = None
    region: str | None = None

    def connect(self) -> Remote:
        from meshdrop.remote.client import Remote as Client

        return Client.connect(
            stack=self.stack, bucket=self.bucket, table=self.table, region=self.region
        )


def remote_command(func: Callable[..., None]) -> Callable[..., None]:
    """A command that talks to the stack: connection options added, errors made one line.

    ``func`` takes a first parameter ``conn: Connection``; the command line sees
    ``--stack/--bucket/--table/--region`` in its place (typer reads ``__signature__``).
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        conn = Connection(**{p.name: kwargs.pop(p.name) for p in _CONNECTION_PARAMETERS})
        _run_handled(func, conn, *args, **kwargs)

    own = list(inspect.signature(func, eval_str=True).parameters.values())[1:]
    wrapper.__signature__ = inspect.Signature([*own, *_CONNECTION_PARAMETERS])  # type: ignore[attr-defined]
    return wrapper


def _run_handled(func: Callable[..., None], *args: Any, **kwargs: Any) -> None:
    """One line on stderr and exit 1 for failures a person can fix; no traceback."""
    from botocore.exceptions import BotoCoreError, ClientError

    from meshdrop.remote.errors import explain

    try:
        func(*args, **kwargs)
        return
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


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


_STATE_STYLE = {
    JobState.SUCCEEDED: "green",
    JobState.FAILED: "red",
    JobState.REJECTED: "red",
    JobState.SUPERSEDED: "dim",
    JobState.RUNNING: "cyan",
    JobState.SUBMITTED: "blue",
    JobState.ACCEPTED: "yellow",
}


def styled_state(state: JobState) -> str:
    return f"[{_STATE_STYLE.get(state, 'white')}]{state.value}[/]"


def jobs_table(jobs: list[JobRecord], title: str | None = None) -> Table:
    table = Table(title=title)
    for column in ("job", "source", "state", "asset", "seconds", "updated", "error"):
        table.add_column(column, overflow="fold")
    for job in jobs:
        table.add_row(
            job.job_id[:12],
            escape(job.source_key),
            styled_state(job.state),
            escape(job.asset_key or ""),
            f"{job.seconds:.1f}" if job.seconds is not None else "",
            job.updated_at or "",
            escape(job.error or ""),
        )
    return table
