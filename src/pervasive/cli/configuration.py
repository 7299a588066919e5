"""``pervasive config``: the effective settings of this invocation, and where to set them.

Settings come from built-in defaults, ``pervasive.toml``, ``PERVASIVE_*`` variables
and flags, in that order of precedence (``config.py``); this command shows the result
of all four, one row per setting, with the environment variable that sets it.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from pervasive.cli.session import state_of
from pervasive.config import ENV_PREFIX, SECTIONS, settings_table
from pervasive.errors import InvalidInput

__all__ = ["show_config"]


def show_config(
    ctx: typer.Context,
    *,
    section: Annotated[
        str | None,
        typer.Argument(help="Only this section: top (plain keys), node, mqtt or shadow."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print name -> value as JSON.")] = False,
) -> None:
    """Show the effective settings (defaults < pervasive.toml < PERVASIVE_* < flags).

    Each row names the setting as written in pervasive.toml (``[node]`` settings as
    ``node.gap_timeout``; the variable is PERVASIVE_NODE_GAP_TIMEOUT), its value and what
    it does. The password is shown as set or unset only.

    Example: ``pervasive --backend anvil config node``.
    """
    state = state_of(ctx)
    rows = settings_table(state.settings)
    if section is not None:
        if section != "top" and section not in SECTIONS:
            raise InvalidInput(f"no section {section!r}; choose top, {', '.join(SECTIONS)}")
        rows = [r for r in rows if (r[0].partition(".")[0] if "." in r[0] else "top") == section]
    if as_json:
        typer.echo(json.dumps({name: value for name, value, _ in rows}, indent=2))
        return
    table = Table(
        title="Effective settings (defaults < pervasive.toml < PERVASIVE_* < flags)",
        caption=f"environment: {ENV_PREFIX}<SETTING> with '.' as '_', "
        f"e.g. node.gap_timeout = {ENV_PREFIX}NODE_GAP_TIMEOUT",
    )
    table.add_column("setting", no_wrap=True)
    table.add_column("value", no_wrap=True)
    table.add_column("what it does", overflow="fold", ratio=1)
    for name, value, doc in rows:
        table.add_row(escape(name), escape(value), escape(doc))
    state.console.print(table)
