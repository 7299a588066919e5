"""Paper 003's case study assembled: two chains, a committee, C, P, P's device and Sys.

:func:`exchange_world` builds, on a :class:`~pervasive.platform.Platform`:

1. the user chain B_u (the platform's ledger) and the data chain B_d: a second EVM
   chain with its own chain id and the DataIndex contract, or Litecoin regtest (a real
   ``litecoind``) where P posts OP_RETURN commitments;
2. the notary committee (:func:`~pervasive.apps.dataexchange.committee.start_committee`:
   DKG, C_sp/C_o/C_u deployed and checked);
3. the deposits of C and P locked in C_sp under the group key (V-A step 3);
4. P's device (a cold-room thermometer with its X.509 identity, signing every reading)
   and P's Sys following it over MQTT as ``svc:exchange.<P's address>``, with ``POST /exchange``;
5. C's client.

Example::

    async with exchange_world(platform, root=home / "dataexchange") as world:
        await world.publish_readings(20)
        result = await world.consumer.exchange(world.sys.url, provider=world.provider.address,
                                               dataset=world.dataset.digest, amount=world.price)
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import aiohttp

from pervasive.apps.dataexchange.committee import LocalCommittee, start_committee
from pervasive.chain import Ledger, Signer, open_ledger
from pervasive.contracts.data_index import DataIndex
from pervasive.contracts.notary import Notary
from pervasive.contracts.user_contract import UserContract
from pervasive.crosschain.chains import DataChain
from pervasive.crosschain.data_exchange import DataExchange, DataExchangeServer
from pervasive.crosschain.data_index import DatasetSpec
from pervasive.crosschain.evm_chain import EvmDataChain
from pervasive.crosschain.exchange import Consumer, ExchangeTerms, OwnPostings, ProviderDesk
from pervasive.crosschain.litecoin import LitecoinDataChain, LitecoinNode
from pervasive.devices import Device, DeviceFolder, SensorSpec
from pervasive.devices.declarations import sensor_topic
from pervasive.messaging import BrokerUnavailable, MqttClient
from pervasive.platform import Platform

__all__ = ["THERMOMETER", "DataChainKind", "ExchangeWorld", "exchange_world"]

THERMOMETER = SensorSpec("temp", "temperature", (("celsius", "int64"), ("time", "uint64")))
"""P's device: a cold-room thermometer (°C, unix time), every reading signed."""

DataChainKind = Literal["evm", "litecoin"]


@dataclass
class ExchangeWorld:
    """Everything the case study runs on (see the module docstring)."""

    platform: Platform
    user_ledger: Ledger
    data_chain: DataChain
    committee: LocalCommittee
    notary: Notary
    user: UserContract
    consumer_signer: Signer
    provider: Signer
    consumer: Consumer
    desk: ProviderDesk
    sys: DataExchangeServer
    exchange: DataExchange
    device: Device
    dataset: DatasetSpec
    price: int
    session: aiohttp.ClientSession

    async def publish_readings(self, count: int, *, start: int = 0) -> None:
        """``count`` more readings from P's thermometer, through the broker into Sys.

        ``start`` offsets the values (reading ``i`` is ``-18 - i % 5`` °C at
        ``1_800_000_000 + i``); returns once Sys holds all of them.
        """
        before = len(self.exchange.readings(self.dataset.digest) or ())
        wanted = min(before + count, self.dataset.capacity)
        for i in range(start, start + count):
            await self.device.publish("temp", {"celsius": -18 - i % 5, "time": 1_800_000_000 + i})
        await self.device.flush(timeout=30)
        try:
            async with asyncio.timeout(30):
                while len(self.exchange.readings(self.dataset.digest) or ()) < wanted:
                    await asyncio.sleep(0.02)
        except TimeoutError:
            kept = len(self.exchange.readings(self.dataset.digest) or ())
            raise BrokerUnavailable(
                f"Sys kept {kept} of {wanted} readings after 30 s "
                f"(refused: {dict(self.exchange.rejected_readings)}): is the broker up?"
            ) from None


@asynccontextmanager
async def exchange_world(
    platform: Platform,
    *,
    root: Path,
    data: DataChainKind = "evm",
    n: int = 4,
    threshold: int = 3,
    publish_window: int = 10,
    period: int = 3600,
    deposit: int = 10**18,
    price: int = 10**15,
    artifacts: Path | None = None,
) -> AsyncIterator[ExchangeWorld]:
    """Build the case study's world on ``platform`` (see the module docstring)."""
    user_ledger = await platform.ledger()
    broker = await platform.broker()
    consumer, provider = user_ledger.dev_signer(5), user_ledger.dev_signer(6)
    async with contextlib.AsyncExitStack() as stack:
        data_chain = await stack.enter_async_context(
            _data_chain(
                platform,
                user_ledger,
                kind=data,
                root=root,
                provider=provider,
                artifacts=artifacts,
            )
        )
        committee = await stack.enter_async_context(
            start_committee(
                platform, user_ledger, data_chain, root=root / "notary", n=n,
                threshold=threshold, publish_window=publish_window, period=period,
                artifacts=artifacts,
            )
        )  # fmt: skip
        contracts = committee.contracts
        notary = Notary.at(user_ledger, contracts.notary)
        for party in (consumer, provider):
            await notary.with_signer(party).deposit(deposit)
        await _deposits_seen(committee, (consumer.address, provider.address), deposit)
        user = UserContract.at(user_ledger, contracts.user_contract)
        authority = platform.authority
        folder = DeviceFolder(root / "devices" / "cold-room-1")
        authority.write_credentials(authority.issue_device("cold-room-1"), folder.path)
        device = Device(
            "cold-room-1", folder, host="127.0.0.1", port=broker.port, sensors=[THERMOMETER]
        )
        dataset = DatasetSpec(
            "cold-room", (sensor_topic("cold-room-1", "temp"),), (device.declaration("temp"),)
        )
        exchange = DataExchange()
        exchange.register(dataset)
        postings = OwnPostings(data_chain, provider.address)
        sys = DataExchangeServer(exchange, postings)
        terms = ExchangeTerms(
            chain_id=user_ledger.chain_id, user_contract=contracts.user_contract,
            oracle=contracts.oracle, members=committee.spec.addresses,
            threshold=threshold, coef_percent=committee.spec.coef_percent,
        )  # fmt: skip
        desk = ProviderDesk(
            exchange=exchange, postings=postings, user_ledger=user_ledger, terms=terms,
            prices={dataset.digest: price}, sys_url="",
        )  # fmt: skip
        desk.install(sys.app)
        desk.sys_url = await sys.start()
        stack.push_async_callback(sys.stop)
        stack.push_async_callback(postings.drain)
        # a durable session: readings published while Sys's link is down wait at the broker
        follower_client = MqttClient(
            platform.client_options(
                f"svc:exchange.{provider.address.lower().removeprefix('0x')}",
                outbox=root / "sys-outbox.sqlite",
            )
        )  # fmt: skip
        await follower_client.connect()
        stack.push_async_callback(follower_client.close)
        follower = asyncio.create_task(sys.follow(follower_client))
        stack.callback(follower.cancel)
        async with asyncio.timeout(30):
            await sys.subscribed.wait()
        await device.connect()
        stack.push_async_callback(device.close)
        session = await stack.enter_async_context(aiohttp.ClientSession())
        client = Consumer(
            signer=consumer, ledger=user_ledger, user_contract=user,
            members=committee.urls, threshold=threshold, session=session,
        )  # fmt: skip
        yield ExchangeWorld(
            platform, user_ledger, data_chain, committee, notary, user, consumer, provider,
            client, desk, sys, exchange, device, dataset, price, session,
        )  # fmt: skip


@asynccontextmanager
async def _data_chain(
    platform: Platform,
    user_ledger: Ledger,
    *,
    kind: DataChainKind,
    root: Path,
    provider: Signer,
    artifacts: Path | None,
) -> AsyncIterator[DataChain]:
    if kind == "litecoin":
        node = LitecoinNode(root / "litecoin")
        await node.start()
        try:
            # Fund with blocks dated an hour back: 101 blocks mined at once would push
            # regtest's block times ~17 s ahead of the wall clock (each must pass the median
            # of the last 11), and the committee compares B_d's block times with B_u's (an
            # honest posting would look late by more than T).
            await node.rpc.call("setmocktime", int(time.time()) - 3600)
            await node.fund()
            await node.rpc.call("setmocktime", 0)
            yield LitecoinDataChain(node.rpc)
        finally:
            await node.stop()
        return
    # B_d: the same backend as B_u, its own chain id and data directory
    settings = replace(platform.settings, home=root / "datachain")
    ledger = await open_ledger(settings, persist=False, chain_id=user_ledger.chain_id + 1)
    try:
        index = await DataIndex.open(ledger, ledger.dev_signer(6), artifacts=artifacts)
        assert ledger.dev_signer(6).address == provider.address  # one key, both chains
        yield EvmDataChain(ledger, index)
    finally:
        await ledger.close()


async def _deposits_seen(
    committee: LocalCommittee, accounts: tuple[str, ...], at_least: int
) -> None:
    """Wait until every member's deposit check follows the new deposits (within ~0.1 s)."""

    def seen() -> bool:
        return all(
            member.check is not None
            and all((member.check.balance(a) or 0) >= at_least for a in accounts)
            for member in committee.members
        )

    async with asyncio.timeout(30):
        while not seen():
            await asyncio.sleep(0.05)
