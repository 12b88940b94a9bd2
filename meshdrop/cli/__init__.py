"""The ``meshdrop`` command line.

Each module in this package adds its commands through a ``register(app)`` function, called
once below; to add commands, write a module and register it here.
Heavy imports (moto, torch, boto3) happen inside the commands so ``--help`` stays fast.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="meshdrop",
    help="Drop a photo, get a 3D asset: run the pipeline locally or talk to a deployed stack.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register_commands() -> None:
    from meshdrop.cli import cost, generate, local, model, remote, smoke

    for module in (local, generate, remote, model, smoke, cost):
        module.register(app)


_register_commands()


def main() -> None:
    """Console-script entry point (``meshdrop``)."""
    app()


__all__ = ["app", "main"]
