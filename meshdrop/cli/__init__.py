"""The ``meshdrop`` command line.

Each module in this package adds its commands through a ``register(app)`` function, called
once below; to add commands, write a module and add it to :data:`COMMAND_MODULES`.
Heavy imports (moto, torch, boto3) happen inside the commands so ``--help`` stays fast.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="meshdrop",
    help="Drop a photo, get a 3D asset: run the pipeline locally or talk to a deployed stack.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: Modules (relative to this package) whose ``register(app)`` adds commands.
COMMAND_MODULES: tuple[str, ...] = (".local", ".generate", ".remote")


def _register_commands() -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(name, __name__).register(app)


_register_commands()


def main() -> None:
    """Console-script entry point (``meshdrop``)."""
    app()


__all__ = ["app", "main"]
