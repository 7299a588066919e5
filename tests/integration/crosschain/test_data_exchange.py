"""Sys, P's data exchange system (paper 003, IV-A component 6, V-B), end to end in-process.

A real device (the SDK, signing every reading) publishes through the embedded broker;
Sys follows the broker as ``svc:monitor`` (a read-only role) and answers over real HTTP.
The data chain is :class:`PostedIndices`, the in-memory side of the ``DataChain`` port:
an index is found once the test posts it, as a chain would after mining. The Litecoin
form runs in ``test_data_exchange_litecoin.py``.

Example: ``pytest tests/integration/crosschain/test_data_exchange.py -q``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import statistics
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from pervasive.config import Settings
from pervasive.crosschain.chains import PostedIndex
from pervasive.crosschain.data_exchange import (
    DataExchange,
    DataExchangeServer,
    Refusal,
    fetch_dataset,
)
from pervasive.crosschain.data_index import (
    DatasetSpec,
    data_request_message,
    open_index,
    seal_index,
)
from pervasive.crypto import PrivateKey, keccak256, sign_message
from pervasive.devices import Device, DeviceFolder, SensorSpec
from pervasive.devices.declarations import sensor_topic
from pervasive.messaging import ClientOptions, EmbeddedBroker, MqttClient
from pervasive.platform import Platform
from pervasive.sensing import SensorMessage, sign_sensor_message
from pervasive.sensing.verifier import SensorVerifier

TEMPERATURE = SensorSpec("temp", "temperature", (("celsius", "int64"), ("time", "uint64")))
CONSUMER = PrivateKey(bytes([0xC1]) * 32)
STRANGER = PrivateKey(bytes([0x5E]) * 32)


@dataclass
class PostedIndices:
    """The data chain as Sys sees it, kept in memory: payment id -> posted index."""

    name: str = "memory"
    postings: dict[bytes, PostedIndex] = field(default_factory=dict)

    def post(self, payment_id: bytes, consumer: str, ciphertext: bytes) -> None:
        self.postings[payment_id] = PostedIndex(
            chain=self.name,
            payment_id=payment_id,
            tx_id="0x" + keccak256(payment_id + ciphertext).hex(),
            block_number=len(self.postings) + 1,
            block_hash="0x" + keccak256(bytes(len(self.postings))).hex(),
            block_time=1_900_000_000,
            provider="",
            consumer=consumer,
            ciphertext_digest=hashlib.sha256(ciphertext).digest(),
            ciphertext=ciphertext,
        )

    async def find_index(self, payment_id: bytes) -> PostedIndex | None:
        return self.postings.get(payment_id)


@dataclass
class Clock:
    now: float = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class World:
    platform: Platform
    broker: EmbeddedBroker
    device: Device
    exchange: DataExchange
    server: DataExchangeServer
    chain: PostedIndices
    clock: Clock
    session: aiohttp.ClientSession
    follower: asyncio.Task[None]
    sys_client: MqttClient
    spec: DatasetSpec

    @property
    def url(self) -> str:
        return self.server.url

    async def wait_for_readings(self, count: int, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.exchange.readings(self.spec.digest) or ()) < count:
                await asyncio.sleep(0.02)

    async def nonce(self) -> bytes:
        async with self.session.post(f"{self.url}/nonce") as response:
            assert response.status == 200
            return bytes.fromhex((await response.json())["nonce"][2:])

    async def request(
        self,
        key: PrivateKey,
        payment_id: bytes,
        ciphertext: bytes,
        *,
        nonce: bytes | None = None,
        send_ciphertext: bytes | None = None,
        signature: bytes | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """C's ``POST /data``: sign the (fresh or given) nonce and the ciphertext hash."""
        nonce = nonce if nonce is not None else await self.nonce()
        if signature is None:
            signature = sign_message(key, data_request_message(nonce, ciphertext)).to_bytes()
        body = {"payment_id": payment_id.hex(), "nonce": nonce.hex(), "signature": signature.hex()}
        if send_ciphertext is not None:
            body["ciphertext"] = send_ciphertext.hex()
        async with self.session.post(f"{self.url}/data", json=body) as response:
            return response.status, await response.json()


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    """Sys following a device through the embedded broker; the chain in memory."""
    root = tmp_path
    platform = Platform(Settings(home=root, broker="embedded", password="test password"))
    broker = await platform.broker()
    assert isinstance(broker, EmbeddedBroker)
    ca = platform.authority
    folder = DeviceFolder(root / "devices" / "cold-1")
    ca.write_credentials(ca.issue_device("cold-1"), folder.path)
    device = Device("cold-1", folder, host="127.0.0.1", port=broker.port, sensors=[TEMPERATURE])
    spec = DatasetSpec(
        "cold-room", (sensor_topic("cold-1", "temp"),), (device.declaration("temp"),)
    )
    exchange = DataExchange()
    exchange.register(spec)
    chain, clock = PostedIndices(), Clock()
    server = DataExchangeServer(exchange, chain, clock=clock)
    await server.start()
    creds = ca.client_credentials("svc:monitor", root / "mqtt")
    sys_client = MqttClient(ClientOptions("127.0.0.1", broker.port, creds, ack_timeout=5.0))
    await broker.settle()
    await sys_client.connect()
    follower = asyncio.create_task(server.follow(sys_client))
    async with asyncio.timeout(10):
        await server.subscribed.wait()
    await device.connect()
    session = aiohttp.ClientSession()
    try:
        yield World(
            platform, broker, device, exchange, server, chain, clock, session, follower,
            sys_client, spec,
        )  # fmt: skip
    finally:
        await session.close()
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
        await device.close()
        await sys_client.close()
        await server.stop()
        await platform.stop()


FORGER = PrivateKey(bytes([0xF0]) * 32)
PAYMENT = keccak256(b"pay: consumer C, counter 0")


async def publish_readings(world: World, count: int) -> dict[int, bytes]:
    """``count`` genuine readings through the SDK, plus three that must never be kept."""
    genuine: dict[int, bytes] = {}
    for i in range(count):
        q, wire = world.device.sign("temp", {"celsius": -18 - i, "time": 1_800_000_000 + i})
        await world.device.publish_signed("temp", wire)
        genuine[q] = wire
    declared = world.device.declaration("temp")
    forger_declaration = TEMPERATURE.declaration(FORGER.public_key)
    signed = sign_sensor_message(FORGER, forger_declaration, 10_000, [21, 1_800_000_999])
    # claims the device's key, signed by another: a forged device signature
    forged = SensorMessage(
        declared.public_key, signed.sensor_type, 10_000, signed.values, signed.signature
    ).encode()
    undeclared = signed.encode()  # a real signature by a sensor the dataset does not list
    repeated = next(iter(genuine.values()))  # a replay of a kept reading
    await world.device.publish_signed_many("temp", [forged, undeclared, b"no reading", repeated])
    await world.device.flush(timeout=10)
    return genuine


async def sell(world: World, consumer: PrivateKey = CONSUMER, *, post: bool = True) -> bytes:
    """P seals the index of a paid dataset to ``consumer`` and posts it on the data chain."""
    ciphertext = world.exchange.seal(
        PAYMENT, world.spec.digest, consumer.public_key, 1_800_003_600, sys_url=world.url
    )
    if post:
        world.chain.post(PAYMENT, consumer.address, ciphertext)
    return ciphertext


async def test_the_consumer_gets_exactly_the_verified_readings(world: World) -> None:
    genuine = await publish_readings(world, 12)
    await world.wait_for_readings(12)
    async with world.session.get(f"{world.url}/datasets/0x{world.spec.digest.hex()}") as reply:
        assert reply.status == 200
        assert await reply.json() == {"exists": True, "readings": 12}  # C checks before paying
    await sell(world)

    # C reads the index from the data chain, opens it with its key and follows it
    posted = await world.chain.find_index(PAYMENT)
    assert posted is not None and posted.ciphertext is not None
    index = open_index(posted.ciphertext, CONSUMER, payment_id=PAYMENT)
    assert (index.sys_url, index.dataset_digest) == (world.url, world.spec.digest)
    readings = await fetch_dataset(world.session, index, posted.ciphertext, CONSUMER)

    assert not isinstance(readings, Refusal), readings
    served = {r.sequence: r.message for r in readings}
    assert served == genuine
    verifier = SensorVerifier([world.device.declaration("temp")])
    assert {verifier.verify(wire).sensor for wire in served.values()} == {
        world.device.declaration("temp").address
    }
    assert dict(world.exchange.rejected_readings) == {
        "InvalidSignature": 1,
        "SchemaViolation": 1,
        "InvalidInput": 1,
    }
    assert world.exchange.served == 1 and not world.exchange.refusals


async def test_everyone_but_the_bound_consumer_is_refused_and_counted(world: World) -> None:
    await publish_readings(world, 3)
    await world.wait_for_readings(3)
    ciphertext = await sell(world)
    good = sign_message(CONSUMER, data_request_message(bytes(32), ciphertext)).to_bytes()
    high_s = good[:32] + (2**256 - 1).to_bytes(32, "big") + good[64:]
    nonce = await world.nonce()
    assert (await world.request(CONSUMER, PAYMENT, ciphertext, nonce=nonce))[0] == 200

    attempts = {
        "another key": world.request(STRANGER, PAYMENT, ciphertext),
        "replayed nonce": world.request(CONSUMER, PAYMENT, ciphertext, nonce=nonce),
        "forged signature": world.request(CONSUMER, PAYMENT, ciphertext, signature=good),
        "non-canonical signature": world.request(CONSUMER, PAYMENT, ciphertext, signature=high_s),
        "tampered ciphertext": world.request(
            CONSUMER, PAYMENT, ciphertext, send_ciphertext=ciphertext[:-1] + b"\x00"
        ),
        "unknown payment": world.request(CONSUMER, keccak256(b"never paid"), ciphertext),
        "unissued nonce": world.request(CONSUMER, PAYMENT, ciphertext, nonce=bytes(32)),
    }
    outcomes = {}
    for name, attempt in attempts.items():
        status, body = await attempt
        assert "readings" not in body
        outcomes[name] = (status, body["error"])
    assert outcomes == {
        "another key": (403, "wrong_consumer"),
        "replayed nonce": (403, "unknown_nonce"),
        "forged signature": (403, "wrong_consumer"),  # recovers to some other address
        "non-canonical signature": (403, "bad_signature"),
        "tampered ciphertext": (403, "wrong_ciphertext"),
        "unknown payment": (403, "unknown_payment"),
        "unissued nonce": (403, "unknown_nonce"),
    }
    async with world.session.get(f"{world.url}/metrics") as reply:
        metrics = await reply.json()
    assert metrics["served"] == 1
    assert metrics["refusals"] == {
        "wrong_consumer": 2,
        "unknown_nonce": 2,
        "bad_signature": 1,
        "wrong_ciphertext": 1,
        "unknown_payment": 1,
    }


async def test_no_data_before_the_index_is_on_the_data_chain(world: World) -> None:
    ciphertext = await sell(world, post=False)
    assert await world.request(CONSUMER, PAYMENT, ciphertext) == (
        403,
        {"error": "index_not_posted", "message": "index not on the data chain yet; retry"},
    )
    # a posting for this payment that is not the sealed ciphertext does not count either
    world.chain.post(PAYMENT, CONSUMER.address, seal_index(
        open_index(ciphertext, CONSUMER, payment_id=PAYMENT), CONSUMER.public_key
    ))  # fmt: skip
    assert (await world.request(CONSUMER, PAYMENT, ciphertext))[1]["error"] == "index_mismatch"
    world.chain.post(PAYMENT, CONSUMER.address, ciphertext)
    assert (await world.request(CONSUMER, PAYMENT, ciphertext))[0] == 200


async def test_nonces_and_indices_expire(world: World) -> None:
    ciphertext = await sell(world)
    nonce = await world.nonce()
    world.clock.now += world.exchange.nonce_ttl + 1
    status, body = await world.request(CONSUMER, PAYMENT, ciphertext, nonce=nonce)
    assert (status, body["error"]) == (403, "expired_nonce")
    world.clock.now = 1_800_003_601  # one second after the index's expiry
    status, body = await world.request(CONSUMER, PAYMENT, ciphertext)
    assert (status, body["error"]) == (403, "expired_index")


async def test_malformed_and_oversized_requests_get_one_line_errors(world: World) -> None:
    ciphertext = await sell(world)
    cases = [
        (b"{not json", 400),
        (b'{"payment_id": "00", "nonce": "00", "signature": "00"}', 400),
        (b"[]", 400),
        (b"[" * 15_000, 400),
        (b'{"payment_id": "' + b"0" * 20_000 + b'"}', 413),
    ]
    for payload, expected in cases:
        async with world.session.post(f"{world.url}/data", data=payload) as reply:
            body = await reply.json()
            assert reply.status == expected, body
            assert "\n" not in body["message"] and "Traceback" not in body["message"]
    async with world.session.get(f"{world.url}/datasets/xyz") as reply:
        assert reply.status == 400
    async with world.session.get(f"{world.url}/datasets/{keccak256(b'x').hex()}") as reply:
        assert (reply.status, await reply.json()) == (404, {"exists": False})
    assert world.exchange.refusals == {"malformed": 5, "too_large": 1}
    assert (await world.request(CONSUMER, PAYMENT, ciphertext))[0] == 200


async def test_a_data_fetch_takes_milliseconds(world: World) -> None:
    await publish_readings(world, 100)
    await world.wait_for_readings(100)
    ciphertext = await sell(world)
    timings = []
    for _ in range(200):
        start = time.perf_counter()
        status, body = await world.request(CONSUMER, PAYMENT, ciphertext)
        timings.append(time.perf_counter() - start)
        assert status == 200 and len(body["readings"]) == 100
    p50 = statistics.median(timings)
    print(f"\ndata fetch (nonce + signed request + 100 readings) p50 {p50 * 1000:.2f} ms")
    assert p50 < 0.25
