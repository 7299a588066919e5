"""``pervasive account create|list|import``: keys encrypted in the data directory's keystore.

Keys are Ethereum keystore v3 files (``<home>/keystore/<name>.json``). The password
comes from ``PERVASIVE_PASSWORD`` (or the config file), else a hidden prompt. A key is
never printed; only its address is.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from pervasive.cli.session import state_of
from pervasive.errors import KeystoreError

__all__ = ["Name", "app", "create", "import_key", "list_accounts"]

app = typer.Typer(
    help="Manage the accounts (encrypted keys) in the keystore.", no_args_is_help=True
)

Name = Annotated[str, typer.Argument(help="Account name: letters, digits, '-', '_' or '.'.")]


@app.command("create")
def create(ctx: typer.Context, name: Name) -> None:
    """Generate a key and store it encrypted. Example: ``pervasive account create alice``."""
    state = state_of(ctx)
    keystore = state.keystore()
    if name in keystore.names():
        raise KeystoreError(f"an account named {name!r} already exists in {keystore.folder}")
    signer = keystore.create(name, state.password(confirm=True))
    state.console.print(f"created account [bold]{name}[/bold]: {signer.address}")


@app.command("import")
def import_key(ctx: typer.Context, name: Name) -> None:
    """Store an existing private key, asked at a hidden prompt.

    Example: ``pervasive account import bob``.
    """
    state = state_of(ctx)
    if name in state.keystore().names():
        raise KeystoreError(f"an account named {name!r} already exists; pick another name")
    from pervasive.chain import Signer

    secret: str = typer.prompt("Private key (hex)", hide_input=True)
    signer = Signer.from_key(secret.strip())
    state.keystore().store(name, signer, state.password(confirm=True))
    state.console.print(f"imported account [bold]{name}[/bold]: {signer.address}")


@app.command("list")
def list_accounts(ctx: typer.Context) -> None:
    """List the keystore's accounts with their addresses (an unreadable file says why).

    Example: ``pervasive account list``.
    """
    state = state_of(ctx)
    keystore = state.keystore()
    table = Table(title=f"Accounts in {keystore.folder}")
    table.add_column("name", no_wrap=True)
    table.add_column("address", no_wrap=True)
    problems: list[str] = []
    for name in keystore.names():
        try:
            address = keystore.address_of(name)
        except KeystoreError as exc:  # one bad file must not hide the others
            address = "[red]unreadable (see below)[/red]"
            problems.append(str(exc))
        table.add_row(name, address)
    state.console.print(table)
    for problem in problems:
        state.console.print(f"warning: {escape(problem)}", highlight=False, soft_wrap=True)
