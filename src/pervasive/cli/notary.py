"""``pervasive notary``: a member of paper 003's notary committee, as its own process.

- ``notary key``: print a keystore account's secp256k1 public key, which the member
  gives the committee's convener;
- ``notary init``: write the committee file (members' keys and endpoints, ``t``, ``T``,
  the deposit period and coefficient, the agreed DKG start);
- ``notary run``: run one member until Ctrl-C: the DKG at the agreed start (member 1
  then deploys C_sp, C_o and C_u on the user chain and the others check them), then the
  deposit check, challenges and penalties. Its state lives in
  ``<home>/notary/<session>/m<index>.sqlite``: killed at any moment, it resumes;
- ``notary status``: ask every member of a committee file how it is doing.

The user chain B_u is the configured ledger (``--backend``/``--rpc-url``); the data chain
B_d is ``--data-rpc-url`` with ``--data-index`` (a second EVM chain) or ``--litecoin-url``
(a litecoind, its RPC password in ``PERVASIVE_LITECOIN_PASSWORD``).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
import urllib.error
import urllib.request
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from pervasive.cli.session import CliState, run_until_stopped, session, state_of
from pervasive.errors import ConfigError, InvalidInput

if TYPE_CHECKING:
    from pervasive.chain import Ledger
    from pervasive.config import Settings
    from pervasive.crosschain.chains import DataChain

__all__ = ["app", "init_committee", "member_key", "run_member", "status"]

app = typer.Typer(
    help="The notary committee of cross-chain payments (paper 003).", no_args_is_help=True
)


@app.command("key")
def member_key(
    ctx: typer.Context,
    *,
    account: Annotated[str, typer.Option(help="Keystore account of the member.")],
) -> None:
    """Print the public key of ``--account`` (give it to the committee's convener).

    Example: ``pervasive notary key --account notary-1``.
    """
    from pervasive.crypto import PrivateKey

    state = state_of(ctx)
    signer = state.keystore().load(account, state.password())
    public = PrivateKey(signer.private_key).public_key.to_bytes()
    state.console.print(f"0x{public.hex()}", highlight=False, soft_wrap=True)


@app.command("init")
def init_committee(
    ctx: typer.Context,
    *,
    member: Annotated[
        list[str] | None,
        typer.Option(help="A member as PUBLIC_KEY=URL (repeat, in index order)."),
    ] = None,
    dev_members: Annotated[
        int, typer.Option(help="Use development accounts 1..N on ports 8701.. (local runs).")
    ] = 0,
    threshold: Annotated[int, typer.Option(help="t: partial signatures that sign.")] = 3,
    publish_window: Annotated[int, typer.Option(help="T: seconds P has to post.")] = 30,
    period: Annotated[int, typer.Option(help="Seconds deposits stay locked.")] = 86_400,
    coef: Annotated[int, typer.Option(help="Deposit coefficient in percent.")] = 150,
    start_in: Annotated[float, typer.Option(help="Seconds until the DKG starts.")] = 20.0,
    dkg_step: Annotated[float, typer.Option(help="Seconds per DKG phase deadline.")] = 10.0,
    out: Annotated[Path, typer.Option(help="Committee file to write.")] = Path("committee.json"),
) -> None:
    """Write the committee file every member and party agrees on before setup.

    Example: ``pervasive --backend anvil notary init --dev-members 4 --threshold 3``.
    """
    from pervasive.chain import anvil_dev_keys
    from pervasive.crosschain.committee_spec import CommitteeMember, CommitteeSpec
    from pervasive.crypto import PrivateKey, PublicKey

    state = state_of(ctx)
    members: list[CommitteeMember] = []
    for i, text in enumerate(member or (), 1):
        key, sep, url = text.partition("=")
        if not sep or not url.startswith("http"):
            raise InvalidInput(f"--member {text!r}: write PUBLIC_KEY=http://host:port")
        members.append(CommitteeMember(i, PublicKey.from_bytes(_hex(key)), url))
    if dev_members:
        if members:
            raise InvalidInput("give either --member or --dev-members, not both")
        keys = anvil_dev_keys()[1 : dev_members + 1]
        members = [
            CommitteeMember(i, PrivateKey(k).public_key, f"http://127.0.0.1:{8700 + i}")
            for i, k in enumerate(keys, 1)
        ]
    if not members:
        raise InvalidInput("name the members: --member PUBLIC_KEY=URL (repeat) or --dev-members")
    chain_id = asyncio.run(_chain_id(state_of(ctx)))
    spec = CommitteeSpec(
        chain_id=chain_id, threshold=threshold, setup_nonce=secrets.token_bytes(32),
        publish_window=publish_window, period_end=int(time.time()) + period,
        coef_percent=coef, dkg_start=time.time() + start_in, dkg_step=dkg_step,
        members=tuple(members),
    )  # fmt: skip
    spec.save(out)
    state.console.print(
        f"committee of {spec.n} (t = {threshold}) on chain {chain_id} written to {out}; "
        f"the DKG starts in {start_in:.0f} s: start every member with `pervasive notary run`",
        highlight=False,
    )


async def _chain_id(state: CliState) -> int:
    async with session(state) as s:
        return s.ledger.chain_id


def _hex(text: str) -> bytes:
    try:
        return bytes.fromhex(text.removeprefix("0x"))
    except ValueError as exc:
        raise InvalidInput(f"{text[:20]!r}… is not hex") from exc


@app.command("run")
def run_member(
    ctx: typer.Context,
    *,
    committee: Annotated[Path, typer.Option(help="The committee file.")],
    account: Annotated[str | None, typer.Option(help="Keystore account of this member.")] = None,
    dev_account: Annotated[
        int | None, typer.Option(help="Development account 0-9 (embedded and anvil).")
    ] = None,
    data_rpc_url: Annotated[
        str | None, typer.Option(help="JSON-RPC endpoint of the EVM data chain B_d.")
    ] = None,
    data_index: Annotated[
        str | None, typer.Option(help="Address of the DataIndex contract on B_d.")
    ] = None,
    litecoin_url: Annotated[
        str | None, typer.Option(help="litecoind RPC URL when B_d is Litecoin.")
    ] = None,
    litecoin_user: Annotated[str, typer.Option(help="litecoind RPC user.")] = "pervasive",
    mqtt_port: Annotated[int | None, typer.Option(help="Broker port (default: settings).")] = None,
) -> None:
    """Run this member of the notary committee until Ctrl-C (or SIGTERM).

    Example: ``pervasive --backend anvil notary run --committee committee.json
    --dev-account 1 --data-rpc-url http://127.0.0.1:8546 --data-index 0x...``.
    """
    from pervasive.crosschain.committee_spec import CommitteeSpec
    from pervasive.crosschain.notary import NotaryService
    from pervasive.crypto import PrivateKey
    from pervasive.messaging import MqttClient
    from pervasive.storage import ContentStore

    state = state_of(ctx)
    spec = CommitteeSpec.load(committee)

    async def go() -> None:
        async with session(state) as s, AsyncExitStack() as stack:
            signer = s.signer(account, dev_account)
            index = spec.index_of(signer.address)
            if s.ledger.chain_id != spec.chain_id:
                raise ConfigError(
                    f"the committee serves chain {spec.chain_id}, the ledger is chain "
                    f"{s.ledger.chain_id}: give the user chain's --backend/--rpc-url"
                )
            data_chain = await _data_chain(
                stack, s.state.settings, data_rpc_url, data_index, litecoin_url, litecoin_user
            )
            settings = state.settings
            identity = f"svc:notary.m{index}"
            options = s.platform.client_options(
                identity, port=mqtt_port or settings.mqtt_port,
                outbox=settings.path("notary", f"m{index}-outbox.sqlite"),
            )  # fmt: skip
            client = MqttClient(options)
            await client.connect()
            stack.push_async_callback(client.close)
            url = spec.member(index).url
            service = NotaryService(
                key=PrivateKey(signer.private_key), spec=spec, connection=client,
                user_ledger=s.ledger, data_chain=data_chain,
                database=settings.path("notary", f"m{index}.sqlite"),
                content=ContentStore(settings.home / "content"),
                host=url.split("//", 1)[1].rsplit(":", 1)[0], port=int(url.rsplit(":", 1)[1]),
                artifacts=s.artifacts,
            )  # fmt: skip
            async with service:
                state.console.print(
                    f"notary member {index} of {spec.n} ({signer.address}) on chain "
                    f"{spec.chain_id}, data chain {data_chain.name}; Ctrl-C stops it",
                    highlight=False,
                )
                await service.wait_ready(timeout=spec.dkg_start - time.time() + 600)
                notary = service.contracts.notary if service.contracts else "-"
                state.console.print(f"serving at {service.url}; notary {notary}", highlight=False)
                await asyncio.Event().wait()

    run_until_stopped(go())


async def _data_chain(  # noqa: PLR0917 - the command's options, passed on
    stack: AsyncExitStack,
    settings: Settings,
    rpc_url: str | None,
    index: str | None,
    litecoin_url: str | None,
    litecoin_user: str,
) -> DataChain:
    from dataclasses import replace

    from pervasive.chain import open_ledger
    from pervasive.contracts.data_index import DataIndex
    from pervasive.crosschain.evm_chain import EvmDataChain
    from pervasive.crosschain.litecoin import LitecoinDataChain, LitecoinRpc

    if litecoin_url:
        password = os.environ.get("PERVASIVE_LITECOIN_PASSWORD", "")
        if not password:
            raise ConfigError("set PERVASIVE_LITECOIN_PASSWORD to litecoind's RPC password")
        rpc = LitecoinRpc(litecoin_url, litecoin_user, password)
        stack.push_async_callback(rpc.close)
        return LitecoinDataChain(rpc)
    if not rpc_url or not index:
        raise ConfigError(
            "name the data chain: --data-rpc-url and --data-index (EVM) or --litecoin-url"
        )
    ledger: Ledger = await open_ledger(replace(settings, backend="rpc", rpc_url=rpc_url))
    stack.push_async_callback(ledger.close)
    return EvmDataChain(ledger, DataIndex.at(ledger, index))


@app.command("status")
def status(
    ctx: typer.Context,
    *,
    committee: Annotated[Path, typer.Option(help="The committee file.")],
) -> None:
    """Ask every member of ``--committee`` for its health; exit 1 if fewer than t answer.

    Example: ``pervasive notary status --committee committee.json``.
    """
    from pervasive.crosschain.committee_spec import CommitteeSpec

    state = state_of(ctx)
    spec = CommitteeSpec.load(committee)
    table = Table(title=f"Notary committee (n = {spec.n}, t = {spec.threshold})")
    for column in ("member", "address", "endpoint", "state"):
        table.add_column(column)
    serving = 0
    for member in spec.members:
        try:
            with urllib.request.urlopen(f"{member.url}/health", timeout=2) as reply:  # noqa: S310
                health = json.loads(reply.read())
            text = f"serving, B_u head {health.get('head')}"
            serving += 1
        except (urllib.error.URLError, OSError, ValueError) as exc:
            text = f"not answering ({getattr(exc, 'reason', exc)})"
        table.add_row(str(member.index), member.address, member.url, text)
    state.console.print(table)
    if serving < spec.threshold:
        state.console.print(f"only {serving} of {spec.n} members answer; t = {spec.threshold}")
        raise typer.Exit(1)
