"""The ``pervasive`` command: global options, sub-commands, and how errors are reported.

Every :class:`~pervasive.errors.UserError` becomes one red line and exit code 1 (the
message says what to fix); an :class:`~pervasive.errors.InternalError` or any other
unexpected exception prints its traceback, asks for an issue, and exits with 70
(``EX_SOFTWARE``). Both are handled once, in :class:`ReportingGroup`, which also
counts the user errors by kind (:attr:`ReportingGroup.refusals`). A file-system error
about a path (a file where the data directory needs a folder, a folder without
permission) is a user error too: one line naming the path.

Example::

    pervasive --home .pervasive chain info
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from collections import Counter
from pathlib import Path
from typing import Annotated, Any, ClassVar

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from pervasive.cli import (
    account,
    chain,
    code,
    configuration,
    demo,
    demo_dataexchange,
    demo_logistics,
    demo_smartlock,
    demo_warehouse,
    device,
    gateway,
    node,
    notary,
    oracle,
    registry,
    service,
    services,
    stack,
    warehouse,
)
from pervasive.cli.session import CliState
from pervasive.errors import UserError

__all__ = ["EXIT_INTERNAL", "EXIT_USER", "ISSUES", "ReportingGroup", "app", "main", "root"]

EXIT_USER = 1
EXIT_INTERNAL = 70
ISSUES = "https://github.com/pervasive-contracts/pervasive/issues"


# a path of the data directory or a flag that is of the wrong kind or off limits
_FILE_MISTAKES = (FileExistsError, IsADirectoryError, NotADirectoryError, PermissionError)


class ReportingGroup(TyperGroup):
    """The root group: turns pervasive's errors into messages and exit codes."""

    refusals: ClassVar[Counter[str]] = Counter()
    """User errors reported in this process, by exception class name."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.TyperException, typer.Exit, typer.Abort):  # usage errors, --help, ^C
            raise
        except BrokenPipeError:
            # the reader went away (`pervasive ... | head`): stop quietly, as Unix tools do
            with contextlib.suppress(OSError):
                sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - stdout's final flush
            raise typer.Exit(0) from None
        except UserError as exc:
            ReportingGroup.refusals[type(exc).__name__] += 1
            Console(stderr=True).print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
            raise typer.Exit(EXIT_USER) from None
        except _FILE_MISTAKES as exc:
            if exc.filename is None:
                raise
            ReportingGroup.refusals[type(exc).__name__] += 1
            Console(stderr=True).print(
                f"[red]error:[/red] cannot use {escape(str(exc.filename))}: "
                f"{escape(exc.strerror or str(exc))} (a file where a folder is needed, the "
                "other way round, or no permission): check --home and the paths you gave",
                soft_wrap=True,
            )
            raise typer.Exit(EXIT_USER) from None
        except Exception as exc:  # an InternalError or a bug we did not foresee
            err = Console(stderr=True)
            err.print(escape("".join(traceback.format_exception(exc))), soft_wrap=True, end="")
            err.print(
                f"[red]internal error:[/red] {escape(str(exc))}\n"
                f"This is a bug in pervasive: please file an issue at {ISSUES} "
                "with the traceback above.",
                soft_wrap=True,
            )
            raise typer.Exit(EXIT_INTERNAL) from None


app = typer.Typer(
    cls=ReportingGroup,
    name="pervasive",
    help=(
        "Pervasive contracts: IoT devices as parties of blockchain smart contracts.\n\n"
        "Everything lives in one data directory (--home, default .pervasive): the "
        "keystore, the embedded chain, compiled contracts and deployments. Start with "
        "`pervasive demo registry`, which registers users, sensors and intermediate "
        "nodes on an in-process chain and prints them."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(account.app, name="account")
app.add_typer(chain.app, name="chain")
app.add_typer(registry.app, name="registry")
app.add_typer(demo.app, name="demo")
app.add_typer(device.app, name="device")
app.add_typer(node.app, name="node")
app.add_typer(notary.app, name="notary")
app.add_typer(gateway.app, name="gateway")
app.add_typer(service.app, name="service")
app.add_typer(oracle.app, name="oracle")
device.app.add_typer(warehouse.app, name="warehouse")
app.add_typer(code.app, name="code")
app.add_typer(services.broker_app, name="broker")
app.add_typer(services.shadow_app, name="shadow")
demo.app.command("smartlock")(demo_smartlock.smartlock)
demo.app.command("dataexchange")(demo_dataexchange.dataexchange)
demo.app.command("warehouse")(demo_warehouse.warehouse)
demo.app.command("logistics")(demo_logistics.logistics)
app.command("up")(stack.up)
app.command("status")(stack.status)
app.command("config")(configuration.show_config)


@app.callback()
def root(
    ctx: typer.Context,
    *,
    home: Annotated[
        Path | None, typer.Option(help="Data directory (keystore, chain state, artifacts).")
    ] = None,
    backend: Annotated[
        str | None,
        typer.Option(help="Ledger: embedded (in-process EVM, default), anvil, or rpc."),
    ] = None,
    rpc_url: Annotated[
        str | None, typer.Option(help="JSON-RPC endpoint for --backend rpc.")
    ] = None,
    block_time: Annotated[
        float | None, typer.Option(help="Seconds between anvil blocks (default: mine at once).")
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="Settings file (default ./pervasive.toml).")
    ] = None,
) -> None:
    """Global options; PERVASIVE_* variables and pervasive.toml set the same settings."""
    flags = {"home": home, "backend": backend, "rpc_url": rpc_url, "block_time": block_time}
    ctx.obj = CliState(flags=flags, config_file=config)


def main() -> None:
    """Entry point of the ``pervasive`` console script."""
    app()
