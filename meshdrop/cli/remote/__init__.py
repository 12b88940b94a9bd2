"""``meshdrop upload|status|watch|get|ls|history|gallery|dlq``: the deployed stack's commands.

Every command finds the deployment the same way (:mod:`.common`) and turns known AWS failures
into one line on stderr and exit status 1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer

from .assets import gallery_cmd, get_cmd
from .dlq import dlq_app
from .history import history_cmd
from .jobs import ls_cmd, status_cmd, watch_cmd
from .upload import upload_cmd

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
    parent.add_typer(dlq_app, name="dlq")


app = typer.Typer(help="Work with a deployed (or local) meshdrop stack.", no_args_is_help=True)
register(app)
