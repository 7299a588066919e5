"""The ``pervasive`` command line (typer + rich): the top layer, a composition root.

It turns flags into settings, opens the ledger through ``chain/`` and talks to the
contracts through ``contracts/``; it never imports web3 or eth-* itself. See
``README.md`` in this folder.
"""

from pervasive.cli.app import app, main

__all__ = ["app", "main"]
