"""``pervasive code put|get|verify``: off-chain code (and any file) in the content store.

The store is ``<home>/content``: bytes under their CIDv1 (``raw``, ``keccak-256``),
whose digest is an agreement's ``function_hash`` when the bytes are the normalised
source of its off-chain function. Wherever a CID is asked for, that 32-byte hash
(``0x`` + 64 hex digits) names the same content. Nothing here runs the code.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from pervasive.cli.session import CliState, state_of

if TYPE_CHECKING:
    from pervasive.storage import Cid, ContentStore

__all__ = ["Address", "app", "get", "put", "verify"]

app = typer.Typer(
    help=(
        "Content-addressed off-chain code: put a file, get it back by CID, verify it.\n\n"
        "Examples: `pervasive code put rental.py --function-source`, "
        "`pervasive code get bafkrwi... -o rental.py`, "
        "`pervasive code verify 0x<function_hash>`."
    ),
    no_args_is_help=True,
)

Address = Annotated[
    str,
    typer.Argument(
        help="A CID (bafkrwi...) or a 32-byte keccak-256 hash in hex, e.g. an agreement's "
        "function_hash."
    ),
]


def _store(state: CliState) -> ContentStore:
    from pervasive.storage import ContentStore

    return ContentStore(state.settings.home / "content")


def _cid(text: str) -> Cid:
    """A CID from its text form, or from the 0x-hex digest an agreement stores."""
    from pervasive.errors import InvalidInput
    from pervasive.storage import Cid, cid_for_digest

    if text.lower().startswith("0x"):
        try:
            return cid_for_digest(bytes.fromhex(text[2:]))
        except ValueError as exc:
            raise InvalidInput(f"{text!r} is not a 32-byte hash in hex: {exc}") from exc
    return Cid.parse(text)


def _summary(state: CliState, title: str, cid: Cid, size: int, path: Path) -> None:
    rows = (("cid", str(cid)), ("keccak-256", "0x" + cid.digest.hex()), ("path", str(path)))
    lines = [f"{title} ({size:,} bytes)"] + [f"  {k:<11} {escape(v)}" for k, v in rows]
    state.console.print("\n".join(lines), soft_wrap=True, highlight=False)


@app.command("put")
def put(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="File to store.")
    ],
    *,
    function_source: Annotated[
        bool,
        typer.Option(
            "--function-source",
            help="Store the file as an off-chain function's source, normalised the way the "
            "agreement hashes it (dedented, trailing whitespace stripped), so that the "
            "CID's digest is the function_hash an agreement pins for it.",
        ),
    ] = False,
) -> None:
    """Store a file and print its CID; storing the same bytes again changes nothing.

    Example: ``pervasive code put rental.py --function-source``.
    """
    state = state_of(ctx)
    data = file.read_bytes()
    if function_source:
        from pervasive.errors import InvalidInput
        from pervasive.offchain.functions import normalise_source

        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"{file} is not UTF-8 text: {exc}") from exc
        data = normalise_source(text).encode("utf-8")
    store = _store(state)
    cid = store.put(data)
    _summary(state, f"stored {escape(file.name)}", cid, len(data), store.path_of(cid))


@app.command("get")
def get(
    ctx: typer.Context,
    address: Address,
    *,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", dir_okay=False, help="Write here instead of stdout."),
    ] = None,
) -> None:
    """Print (or write with -o) the content of a CID, checked against its hash.

    Example: ``pervasive code get 0x<an agreement's function_hash> -o rental.py``.
    """
    state = state_of(ctx)
    cid = _cid(address)
    data = _store(state).get(cid)
    if output is None:
        typer.echo(data, nl=False)
        return
    output.write_bytes(data)
    state.console.print(
        f"wrote {len(data):,} bytes of {cid} to {escape(str(output))}",
        soft_wrap=True,
        highlight=False,
    )


@app.command("verify")
def verify(ctx: typer.Context, address: Address) -> None:
    """Check that the stored content of a CID still hashes to it (exit 1 when not).

    Example: ``pervasive code verify 0x<an agreement's function_hash>``.
    """
    state = state_of(ctx)
    cid = _cid(address)
    store = _store(state)
    data = store.get(cid)
    _summary(state, "[green]intact[/green]", cid, len(data), store.path_of(cid))
