"""``pervasive chain info``: which chain the settings reach, and what is deployed there."""

from __future__ import annotations

import typer
from rich.table import Table

from pervasive.cli.session import run, session, state_of
from pervasive.errors import ChainUnavailable

__all__ = ["app", "info"]

app = typer.Typer(help="Inspect the ledger the settings point to.", no_args_is_help=True)


@app.command("info")
def info(ctx: typer.Context) -> None:
    """Backend, chain id, latest block, development accounts and deployments.

    Example: ``pervasive --backend anvil chain info``.
    """
    from pervasive.contracts import REGISTRY

    state = state_of(ctx)

    async def go() -> Table:
        async with session(state) as s:
            ledger = s.ledger
            block = await ledger.block("latest")
            table = Table(title="Chain", show_header=False)
            table.add_column("property", style="bold")
            table.add_column("value", overflow="fold")
            table.add_row("backend", ledger.kind)
            table.add_row("endpoint", ledger.url or "in-process EVM")
            table.add_row("chain id", str(ledger.chain_id))
            table.add_row("latest block", f"{block.number} ({block.hash})")
            table.add_row("data directory", str(state.settings.home))
            try:
                dev = ledger.dev_signer(0)
            except ChainUnavailable:  # an rpc backend has no development accounts
                table.add_row("development accounts", "none (use --account NAME)")
            else:
                balance = await ledger.balance(dev.address)
                table.add_row("development account 0", f"{dev.address} ({balance / 1e18:,.2f} ETH)")
            deployment = s.book.get(ledger.chain_id, REGISTRY)
            table.add_row(
                "registry",
                f"{deployment.address} (block {deployment.block})"
                if deployment
                else "not deployed",
            )
            return table

    state.console.print(run(go()))
