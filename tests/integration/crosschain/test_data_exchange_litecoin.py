"""Sys with Litecoin regtest as the data chain: the index is released only once it is mined.

On Litecoin the data chain keeps only ``b"PVX1" + payment_id + sha256(ciphertext)`` in an
OP_RETURN output; the ciphertext itself travels with C's request (or Sys's own record)
and must hash to what was mined.

Example: ``pytest tests/integration/crosschain/test_data_exchange_litecoin.py -q``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from pervasive.crosschain.data_exchange import (
    DataExchange,
    DataExchangeServer,
    Refusal,
    fetch_dataset,
)
from pervasive.crosschain.data_index import (
    DatasetSpec,
    index_commitment,
    open_index,
)
from pervasive.crosschain.litecoin import LitecoinDataChain, LitecoinNode
from pervasive.crypto import PrivateKey, keccak256
from pervasive.devices import SensorSpec
from pervasive.devices.declarations import sensor_topic
from pervasive.sensing import sign_sensor_message

pytestmark = pytest.mark.litecoin

SENSOR_KEY = PrivateKey(bytes([0x51]) * 32)
CONSUMER = PrivateKey(bytes([0xC1]) * 32)
DECLARATION = SensorSpec("hum", "humidity", (("percent", "uint64"),)).declaration(
    SENSOR_KEY.public_key
)
SPEC = DatasetSpec("greenhouse", (sensor_topic("gh-1", "hum"),), (DECLARATION,))
PAYMENT = keccak256(b"litecoin payment")


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[LitecoinNode]:
    started = LitecoinNode(datadir=tmp_path / "litecoin")
    await started.start()
    await started.fund()
    try:
        yield started
    finally:
        await started.stop()


async def test_data_is_released_once_the_index_commitment_is_mined(node: LitecoinNode) -> None:
    chain = LitecoinDataChain(node.rpc, wallet=node.wallet)
    exchange = DataExchange()
    exchange.register(SPEC)
    readings = [
        sign_sensor_message(SENSOR_KEY, DECLARATION, q, [40 + q]).encode() for q in range(5)
    ]
    for wire in readings:
        assert exchange.ingest(SPEC.topics[0], wire) == 1
    server = DataExchangeServer(exchange, chain)
    url = await server.start()
    try:
        ciphertext = exchange.seal(PAYMENT, SPEC.digest, CONSUMER.public_key, 2**40, sys_url=url)
        tx_id = await chain.post_index(PAYMENT, CONSUMER.address, ciphertext)
        async with aiohttp.ClientSession() as session:
            index = open_index(ciphertext, CONSUMER, payment_id=PAYMENT)
            refused = await fetch_dataset(session, index, ciphertext, CONSUMER)
            assert isinstance(refused, Refusal)  # the posting is in the mempool only
            assert (refused.status, refused.reason) == (403, "index_not_posted")

            await node.mine(1)
            raw = await node.rpc.call("getrawtransaction", tx_id, True)
            scripts = [out["scriptPubKey"]["hex"] for out in raw["vout"]]
            # OP_RETURN, a 68-byte push, then exactly this module's commitment
            assert "6a44" + index_commitment(PAYMENT, ciphertext).hex() in scripts

            served = await fetch_dataset(session, index, ciphertext, CONSUMER)
        assert not isinstance(served, Refusal), served
        assert [r.message for r in served] == readings
        assert {r.sensor for r in served} == {DECLARATION.address}
        assert exchange.refusals == {"index_not_posted": 1}
    finally:
        await server.stop()
