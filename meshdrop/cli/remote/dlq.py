"""``meshdrop dlq ls|show|redrive``: the deployed stack's dead-letter queues.

The queues come from the stack's outputs (:mod:`meshdrop.remote.dlq` says what each holds).
``show --save DIR`` writes each message as a file ``meshdrop local replay`` takes as it is.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from meshdrop_contract.wiring import DEFAULT_STACK_NAME

from .common import Connection, JsonOpt, err, out, print_json, remote_command

if TYPE_CHECKING:
    from meshdrop.remote.dlq import DlqStack

dlq_app = typer.Typer(
    help="The deployed stack's dead-letter queues: what failed, and sending it back.",
    no_args_is_help=True,
)

QueueArg = Annotated[
    str,
    typer.Argument(
        help="ingest (S3 notifications), events (undeliverable events) or state (failed "
        "state function invocations)."
    ),
]


def _open(conn: Connection) -> tuple[DlqStack, Any]:
    """The stack's dead-letter queues and a boto3 session in its region."""
    import boto3

    from meshdrop.remote.client import stack_outputs
    from meshdrop.remote.dlq import from_outputs
    from meshdrop.remote.errors import guard

    region = conn.region or os.environ.get("AWS_REGION") or None
    session = boto3.Session(region_name=region)
    stack = conn.stack or os.environ.get("MESHDROP_STACK") or DEFAULT_STACK_NAME
    with guard(f"stack {stack}"):
        outputs = stack_outputs(session.client("cloudformation"), stack)
    return from_outputs(outputs), session


def _age(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


@remote_command
def ls_cmd(conn: Connection, as_json: JsonOpt = False) -> None:
    """Each dead-letter queue: messages waiting, and the age of the oldest one seen."""
    from meshdrop.remote.dlq import stats
    from meshdrop.remote.errors import guard

    dlqs, session = _open(conn)
    sqs = session.client("sqs")
    with guard("dead-letter queues"):
        rows = [stats(sqs, queue) for queue in dlqs.queues.values()]
    if as_json:
        print_json([r.to_json() for r in rows])
        return
    table = Table(title="dead-letter queues")
    for column in ("queue", "messages", "in flight", "oldest", "holds"):
        table.add_column(column, overflow="fold")
    for row in rows:
        style = "red" if row.depth else "green"
        table.add_row(
            row.name,
            f"[{style}]{row.depth}[/{style}]",
            str(row.in_flight),
            _age(row.oldest_age_s),
            row.description,
        )
    out.print(table)
    if any(r.depth for r in rows):
        out.print("see them: meshdrop dlq show QUEUE; send them back: meshdrop dlq redrive QUEUE")


@remote_command
def show_cmd(
    conn: Connection,
    queue: QueueArg,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Messages to show.")] = 10,
    save: Annotated[
        Path | None,
        typer.Option(
            help="Also write each message body to DIR (a file `meshdrop local replay` takes).",
            metavar="DIR",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Peek at QUEUE's messages: nothing is deleted, they stay for a redrive."""
    from meshdrop.remote.dlq import peek
    from meshdrop.remote.errors import guard

    dlqs, session = _open(conn)
    target = dlqs.queue(queue)
    with guard(f"queue {queue}"):
        messages = peek(session.client("sqs"), target, limit=limit)
    if save is not None:
        save.mkdir(parents=True, exist_ok=True)
        for message in messages:
            (save / f"{queue}-{message.message_id}.json").write_text(message.body)
    if as_json:
        print_json([m.to_json() for m in messages])
        return
    for message in messages:
        out.rule(f"{escape(message.message_id)}  received {message.receive_count}x")
        body = message.parsed
        text = json.dumps(body, indent=2) if not isinstance(body, str) else body
        out.print(escape(text), highlight=False, soft_wrap=True)
    err.print(f"{len(messages)} message(s) of {queue} shown; none deleted")


@remote_command
def redrive_cmd(
    conn: Connection,
    queue: QueueArg,
    limit: Annotated[
        int, typer.Option(min=1, help="Most messages to send back (one at a time).")
    ] = 1000,
    by_hand: Annotated[
        bool,
        typer.Option(
            "--by-hand",
            help="ingest: move messages one by one instead of an SQS message move task.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Send QUEUE's messages back where they failed.

    ingest: an SQS message move task back to the ingest queue. events and state: the state
    function is invoked again (asynchronously) with each message's event; a message is
    deleted once its event was handed over, and messages without an event stay.
    """
    from meshdrop.remote.dlq import INGEST, redrive_invocations, redrive_sqs
    from meshdrop.remote.errors import guard

    dlqs, session = _open(conn)
    target = dlqs.queue(queue)
    sqs = session.client("sqs")
    with guard(f"queue {queue}"):
        if queue == INGEST:
            result = redrive_sqs(sqs, dlqs, target, limit=limit, by_hand=by_hand)
        else:
            result = redrive_invocations(sqs, session.client("lambda"), dlqs, target, limit=limit)
    if as_json:
        print_json(result.to_json())
        return
    verb = {"message-move-task": "SQS is moving", "moved": "moved", "invoked": "redrove"}
    out.print(f"{verb[result.method]} {result.moved} message(s) of {queue}")
    if result.task_handle:
        out.print(f"move task: {result.task_handle}")
    for skipped in result.skipped:
        err.print(f"[yellow]left in the queue:[/yellow] {escape(skipped)}")


dlq_app.command("ls")(ls_cmd)
dlq_app.command("show")(show_cmd)
dlq_app.command("redrive")(redrive_cmd)
