"""``python -m meshdrop.cli``: the same as the ``meshdrop`` command."""

from meshdrop.cli import main

main()
