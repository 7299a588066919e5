"""Members following a real B_u (anvil, auto-mining off): a pay counts the moment the node
pools it, once, and stops counting when it is mined or dropped (paper 003 Algorithm 2)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import aiohttp
import pytest

from pervasive.chain import ContractCall, Ledger, open_ledger
from pervasive.config import Settings
from pervasive.contracts.deposit_oracle import DepositOracle, pack_signatures
from pervasive.contracts.notary import Notary, NotaryTerms, penalty_message
from pervasive.contracts.user_contract import UserContract
from pervasive.crosschain.check_server import CheckService
from pervasive.crosschain.deposit_check import DepositCheck
from pervasive.crosschain.pool_view import PoolView
from pervasive.crypto import PrivateKey, keccak256
from pervasive.crypto.bls import bls_public_key, bls_sign
from pervasive.http.server import HttpServer

pytestmark = pytest.mark.anvil

ETHER = 10**18
COEF = 150
GROUP_SECRET = 0x5EED  # a one-member "committee": enough to sign a penalty here
MEMBER_KEYS = [PrivateKey(bytes([0x30 + i]) * 32) for i in range(3)]


@dataclass
class Member:
    state: DepositCheck
    view: PoolView
    server: HttpServer


@dataclass
class World:
    ledger: Ledger
    notary: Notary
    oracle: DepositOracle
    user: UserContract
    members: list[Member]
    session: aiohttp.ClientSession

    async def refresh(self) -> None:
        await asyncio.gather(*(m.view.refresh() for m in self.members))

    async def attest(
        self, member: Member, amount: int, counter: int
    ) -> tuple[int, dict[str, object]]:
        body = {
            "consumer": self.ledger.dev_signer(1).address,
            "provider": self.ledger.dev_signer(2).address,
            "amount": amount,
            "counter": counter,
        }
        url = f"http://127.0.0.1:{member.server.port}/attest"
        async with self.session.post(url, json=body) as answer:
            return answer.status, json.loads(await answer.read())

    async def check(self, member: Member, amount: int) -> dict[str, object]:
        consumer, provider = self.ledger.dev_signer(1).address, self.ledger.dev_signer(2).address
        url = f"http://127.0.0.1:{member.server.port}/check"
        query = {"consumer": consumer, "provider": provider, "amount": str(amount)}
        async with self.session.get(url, params=query) as answer:
            assert answer.status == 200
            result: dict[str, object] = json.loads(await answer.read())
            return result

    async def send_pay(self, amount: int, counter: int, attested: list[Member]) -> str:
        """Attest with ``attested`` over HTTP and send the pay; return without waiting."""
        signed = {}
        expiry = 0
        for member in attested:
            status, answer = await self.attest(member, amount, counter)
            assert status == 200, answer
            signed[str(answer["signer"])] = bytes.fromhex(str(answer["signature"])[2:])
            expiry = int(str(answer["expiry"]))
        data = self.user.contract.encode(
            "pay", self.ledger.dev_signer(2).address, counter, expiry, pack_signatures(signed)
        )
        manager = self.ledger.transactor(self.ledger.dev_signer(1))
        pending = await manager.send(ContractCall(self.user.address, data, value=amount))
        return pending.hashes[0]


@pytest.fixture
async def world(tmp_settings: Settings, artifacts: Path) -> AsyncIterator[World]:
    ledger = await open_ledger(replace(tmp_settings, backend="anvil"), persist=False)
    admin, consumer = ledger.dev_signer(0), ledger.dev_signer(1)
    block = await ledger.w3.eth.get_block("latest")
    terms = NotaryTerms(
        group_key=bls_public_key(GROUP_SECRET),
        threshold=1,
        members=tuple(k.address for k in MEMBER_KEYS),
        period_end=int(block["timestamp"]) + 3600,
        publish_window=600,
        transcript="bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy",
    )
    notary = await Notary.deploy(ledger, admin, terms, artifacts=artifacts)
    members = [k.address for k in MEMBER_KEYS]
    oracle = await DepositOracle.deploy(
        ledger, admin, members, 2, notary.address, artifacts=artifacts
    )
    user = await UserContract.deploy(ledger, admin, oracle.address, COEF, artifacts=artifacts)
    await notary.with_signer(consumer).deposit(ETHER)
    followers = []
    for key in MEMBER_KEYS:
        state = DepositCheck(coef_percent=COEF, validity_blocks=20)
        view = PoolView(ledger, state, notary=notary, user_contract=user)
        service = CheckService(state, key, chain_id=ledger.chain_id, oracle=oracle.address)
        server = await HttpServer(service.routes(), rejections=service.rejections).start()
        followers.append(Member(state, view, server))
    async with aiohttp.ClientSession() as session:
        world = World(ledger, notary, oracle, user, followers, session)
        await world.refresh()
        await ledger.w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
        try:
            yield world
        finally:
            for member in followers:
                await member.server.close()
            await ledger.close()


async def test_a_pooled_pay_counts_once_until_it_is_mined(world: World) -> None:
    first, second, bystander = world.members
    consumer = world.ledger.dev_signer(1).address
    assert first.state.balance(consumer) == ETHER

    await world.send_pay(4 * ETHER // 10, 0, attested=[first, second])
    await world.refresh()

    # reserved and pooled: counted once by the attesting members, and from the pool
    # alone by the member that never attested
    for member in world.members:
        assert member.state.exposure(consumer) == 6 * ETHER // 10
    answer = await world.check(bystander, 3 * ETHER // 10)  # 0.6 + 0.45 > 1 ether
    assert answer == {"ok": False, "balance": ETHER, "pending": 6 * ETHER // 10,
                      "required": 45 * ETHER // 100}  # fmt: skip
    assert (await world.check(first, 2 * ETHER // 10))["ok"]  # 0.6 + 0.3 < 1 ether

    await world.ledger.mine(1)
    await world.refresh()

    assert await world.user.counter(consumer) == 1
    for member in world.members:
        assert member.state.counter(consumer) == 1
        assert member.state.exposure(consumer) == 0
    assert (await world.check(bystander, 6 * ETHER // 10))["ok"]


async def test_a_dropped_pay_stops_counting_but_a_reservation_holds(world: World) -> None:
    first, second, bystander = world.members
    consumer = world.ledger.dev_signer(1).address
    tx_hash = await world.send_pay(2 * ETHER // 10, 0, attested=[first, second])
    await world.refresh()
    assert bystander.state.exposure(consumer) == 3 * ETHER // 10

    await world.ledger.w3.provider.make_request("anvil_dropTransaction", [tx_hash])  # type: ignore[arg-type]
    await world.refresh()

    assert bystander.state.exposure(consumer) == 0
    # the attestation could still be replayed in a new pay until its expiry
    assert first.state.exposure(consumer) == 3 * ETHER // 10
    await world.ledger.mine(21)
    await world.refresh()
    assert first.state.exposure(consumer) == 0
    assert await world.user.counter(consumer) == 0


async def test_the_running_follower_sees_a_pay_and_a_penalty_without_confirmations(
    world: World,
) -> None:
    first, second, bystander = world.members
    consumer, provider = world.ledger.dev_signer(1).address, world.ledger.dev_signer(2).address
    task = asyncio.create_task(bystander.view.run())
    try:
        await world.send_pay(ETHER // 10, 0, attested=[first, second])
        for _ in range(50):  # the follower polls every 100 ms
            if bystander.state.exposure(consumer):
                break
            await asyncio.sleep(0.05)
        assert bystander.state.exposure(consumer) == 15 * ETHER // 100

        await world.ledger.w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
        await world.ledger.mine(1)
        challenge = keccak256(b"unpaid")
        message = penalty_message(
            world.ledger.chain_id, world.notary.address, challenge, consumer, provider, ETHER // 4
        )
        penalty = bls_sign(GROUP_SECRET, message)
        notary = world.notary.with_signer(world.ledger.dev_signer(0))
        await notary.penalize(challenge, consumer, provider, ETHER // 4, penalty)
        for _ in range(50):
            if bystander.state.balance(consumer) != ETHER:
                break
            await asyncio.sleep(0.05)
        assert bystander.state.balance(consumer) == 3 * ETHER // 4
        assert bystander.state.exposure(consumer) == 0
        assert bystander.view.failures == 0
    finally:
        task.cancel()


async def test_a_reorganisation_that_unmines_a_pay_makes_it_count_again(world: World) -> None:
    first, second, bystander = world.members
    consumer = world.ledger.dev_signer(1).address
    await world.send_pay(2 * ETHER // 10, 0, attested=[first, second])
    await world.ledger.mine(1)
    await world.refresh()
    assert first.state.exposure(consumer) == 0
    assert first.state.counter(consumer) == 1

    # the block holding the pay is rolled back (anvil drops its transactions) and
    # two empty blocks take its place: the pay is undone, its attestation still valid
    await world.ledger.w3.provider.make_request("anvil_rollback", [1])  # type: ignore[arg-type]
    await world.ledger.mine(2)
    await world.refresh()

    assert await world.user.counter(consumer) == 0
    for member in (first, second):
        assert member.view.reorganisations == 1
        assert member.state.counter(consumer) == 0
        assert member.state.exposure(consumer) == 3 * ETHER // 10
    assert bystander.state.exposure(consumer) == 0  # it never reserved, the pool is empty
    answer = await world.check(first, 5 * ETHER // 10)  # 0.3 + 0.75 > 1 ether
    assert answer["ok"] is False
