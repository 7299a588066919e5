"""``python -m pervasive``: the same as the ``pervasive`` command."""

from pervasive.cli import main

__all__: list[str] = []

main()
