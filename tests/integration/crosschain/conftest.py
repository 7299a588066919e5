"""Real-component harness for the cross-chain exchange of paper 003 (anvil, litecoind, MQTT).

``evm_world`` / ``litecoin_world``: one :func:`~pervasive.apps.dataexchange.exchange_world`
per test module (B_u on anvil; B_d a second anvil chain or litecoind regtest; a 4-member
committee, t = 3, with ``publish_window`` = :data:`WINDOW` seconds). Tests in one module
share it, so each test measures the balances it asserts on around its own actions.

Helpers (plain functions, also loaded by ``tests/faults/crosschain/conftest.py``):
``set_automine`` (hold B_u's blocks so a pay stays pending), ``undelivered_challenge``
(C pays and P never posts), ``submit`` / ``status`` (the members' HTTP), ``wait_settled``,
``restart_member`` (a member killed and started again on its SQLite file).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from pervasive.apps.dataexchange import exchange_world
from pervasive.apps.dataexchange.world import DataChainKind, ExchangeWorld
from pervasive.chain import Ledger
from pervasive.config import Settings
from pervasive.contracts.notary import NOTARY, Notary
from pervasive.crosschain.challenge import Challenge, ChallengeKind
from pervasive.crosschain.exchange import Consumer
from pervasive.crosschain.notary import NotaryService
from pervasive.messaging import MqttClient
from pervasive.platform import Platform

# Test modules import the helpers as ``crosschain_harness`` (several conftest modules share
# the name ``conftest``, so importing that name would be ambiguous).
sys.modules.setdefault("crosschain_harness", sys.modules[__name__])

WINDOW = 3
BUILD_TIMEOUT = 75.0
"""Seconds a world may take to build (it takes 3-15 s) before the fixture fails."""
"""T, the provider's publish window, in seconds (short: the tests wait it out)."""


@contextlib.asynccontextmanager
async def open_world(
    root: Path, artifacts: Path, data: DataChainKind = "evm", *, period: int = 3600
) -> AsyncIterator[ExchangeWorld]:
    """A whole exchange world on anvil + the embedded broker, torn down on exit."""
    settings = Settings(home=root, backend="anvil", broker="embedded", password="pw")
    Notary.artifact(artifacts)  # compile C_sp into the shared cache (the world passes it on)
    async with contextlib.AsyncExitStack() as stack:
        platform = await stack.enter_async_context(Platform(settings, persist=False))
        # a world builds in seconds: a stall fails here, with the await it hung in
        async with asyncio.timeout(BUILD_TIMEOUT):
            world = await stack.enter_async_context(
                exchange_world(
                    platform, root=root / "dx", data=data, publish_window=WINDOW,
                    period=period, artifacts=artifacts,
                )
            )  # fmt: skip
        yield world


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def evm_world(
    tmp_path_factory: pytest.TempPathFactory, artifacts: Path
) -> AsyncIterator[ExchangeWorld]:
    """B_u and B_d on two anvil chains (see the module docstring)."""
    async with open_world(tmp_path_factory.mktemp("evm-world"), artifacts) as world:
        yield world


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def litecoin_world(
    tmp_path_factory: pytest.TempPathFactory, artifacts: Path
) -> AsyncIterator[ExchangeWorld]:
    """B_u on anvil, B_d litecoind regtest (see the module docstring)."""
    async with open_world(tmp_path_factory.mktemp("ltc-world"), artifacts, "litecoin") as world:
        yield world


# ---------------------------------------------------------------------------- helpers


def fresh_consumer(world: ExchangeWorld) -> Consumer:
    """C's client reading its next counter from the chain (after a test dropped a pay)."""
    return Consumer(
        signer=world.consumer_signer, ledger=world.user_ledger, user_contract=world.user,
        members=world.committee.urls, threshold=world.committee.spec.threshold,
        session=world.session,
    )  # fmt: skip


async def set_automine(ledger: Ledger, on: bool) -> None:
    """Switch anvil's auto-mining on B_u (off: sent transactions wait in the pool)."""
    provider: Any = ledger.rpc.w3.provider
    reply = await provider.make_request("evm_setAutomine", [on])
    assert "error" not in reply, reply


async def mine(ledger: Ledger) -> None:
    """Mine one block on B_u now."""
    await ledger.rpc.mine(1)


async def undelivered_challenge(world: ExchangeWorld) -> tuple[Challenge, int]:
    """C pays P through C_u (mined) and P never posts: the challenge and ``required``."""
    consumer = fresh_consumer(world)
    pending = await consumer.pay(world.provider.address, world.price)
    receipt = await world.user_ledger.transactor(world.consumer_signer).wait(pending)
    assert receipt.status
    (paid,) = world.user.payments(receipt)
    evidence = bytes.fromhex(receipt.transaction_hash.removeprefix("0x"))
    return Challenge(ChallengeKind.UNDELIVERED, paid.payment_id, evidence), paid.required


async def submit(world: ExchangeWorld, member: int, body: Any) -> tuple[int, dict[str, Any]]:
    """``POST /challenge`` at member ``member`` (1-based); ``body`` a Challenge or raw JSON."""
    url = world.committee.urls[member - 1] + "/challenge"
    payload = body.to_json() if isinstance(body, Challenge) else body
    kwargs: dict[str, Any] = (
        {"data": payload} if isinstance(payload, (bytes, str)) else {"json": payload}
    )
    async with world.session.post(url, **kwargs) as reply:
        return reply.status, await reply.json(content_type=None)


async def status(world: ExchangeWorld, member: int, challenge_id: str) -> tuple[int, Any]:
    """``GET /challenge?id=`` at member ``member`` (1-based)."""
    url = world.committee.urls[member - 1] + "/challenge"
    async with world.session.get(url, params={"id": challenge_id}) as reply:
        return reply.status, await reply.json(content_type=None)


async def wait_settled(world: ExchangeWorld, challenge: Challenge, timeout: float = 40) -> None:
    """Until C_sp records the challenge as settled."""
    async with asyncio.timeout(timeout):
        while not await world.notary.is_settled(challenge.id):
            await asyncio.sleep(0.2)


async def wait_outcome(
    world: ExchangeWorld, member: int, challenge: Challenge, outcome: str, timeout: float = 20
) -> dict[str, Any]:
    """Until member ``member`` reports ``outcome`` for ``challenge``; its status body."""
    last: Any = None
    try:
        async with asyncio.timeout(timeout):
            while True:
                code, last = await status(world, member, "0x" + challenge.id.hex())
                if code == 200 and last["outcome"] == outcome:
                    return dict(last)
                await asyncio.sleep(0.2)
    except TimeoutError:
        raise AssertionError(f"member {member} never said {outcome!r}; last: {last}") from None


async def deposits(world: ExchangeWorld) -> tuple[int, int]:
    """(C's deposit, P's deposit) in C_sp."""
    return (
        await world.notary.deposit_of(world.consumer_signer.address),
        await world.notary.deposit_of(world.provider.address),
    )


async def stop_member(world: ExchangeWorld, index: int) -> None:
    """Kill member ``index`` (1-based): its tasks and HTTP server stop, its file stays."""
    await world.committee.members[index - 1].stop()


async def restart_member(
    world: ExchangeWorld,
    index: int,
    stack: contextlib.AsyncExitStack,
    *,
    keep_session: bool = True,
) -> NotaryService:
    """Start member ``index`` again on the same SQLite file, key and port (a new process would).

    The old MQTT client is closed first (the broker allows one session per identity).
    ``keep_session``: reconnect with the same durable outbox, so the broker hands over
    what it kept for the member; False: a clean session (what the member missed while
    down is lost, as when the broker itself restarted). The new service is stopped when
    ``stack`` closes.
    """
    old = world.committee.members[index - 1]
    await old.stop()
    outbox = old.connection.options.outbox if keep_session else None  # type: ignore[attr-defined]
    with contextlib.suppress(Exception):
        await old.connection.close()  # type: ignore[attr-defined]
    database = _database_of(old)
    platform = world.platform
    client = MqttClient(platform.client_options(f"svc:notary.m{index}", outbox=outbox))
    await client.connect()
    stack.push_async_callback(client.close)
    service = NotaryService(
        key=old.key, spec=old.spec, connection=client, user_ledger=old.user_ledger,
        data_chain=old.data_chain, database=database, content=old.content,
        port=int(old.url.rsplit(":", 1)[1]), artifacts=old.artifacts,
    )  # fmt: skip
    await service.start()
    stack.push_async_callback(service.stop)
    world.committee.members[index - 1] = service
    return service


def _database_of(service: NotaryService) -> Path:
    """The path of a member's SQLite file."""
    row = service._db.execute("PRAGMA database_list").fetchone()
    return Path(row[2])


__all__ = [
    "NOTARY",
    "WINDOW",
    "deposits",
    "fresh_consumer",
    "mine",
    "open_world",
    "restart_member",
    "set_automine",
    "status",
    "stop_member",
    "submit",
    "undelivered_challenge",
    "wait_outcome",
    "wait_settled",
]
