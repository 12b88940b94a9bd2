"""``python -m meshdrop.cli``: the ``meshdrop`` command from a checkout (no install needed)."""

from meshdrop.cli import main

main()
