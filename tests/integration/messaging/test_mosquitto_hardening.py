"""mosquitto as an attacker and an operator meet it (issue 11, items 1, 2 and 4).

- the client id is the certificate's identity (``use_username_as_clientid``): a device
  that sends another client id can neither close that client's connection nor touch its
  persistent session and queued QoS 1 messages; an offline device keeps its grants (and
  so its queued messages) when another device registers;
- revoking a certificate closes its live sessions at once (the dynamic-security plugin's
  ``deleteClient``), and the CRL refuses the reconnect;
- limits from ``[mqtt]``: an 8 MB packet disconnects its sender; an offline durable
  subscriber's queue stops at ``max_queued_bytes`` (mosquitto's memory stays bounded);
  both refusals are counted from mosquitto's log.

Sessions with a chosen client id are opened with :class:`~pervasive.messaging.link.Link`
(``MqttClient`` always connects as its identity); the victim's reconnect is a raw
CONNECT, so the test reads CONNACK's session-present flag itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from messaging_platform import NO_MOSQUITTO

from pervasive.config import MqttSettings
from pervasive.messaging import ClientCredentials, ConnectionRefused, MqttMessage, find_mosquitto
from pervasive.messaging.link import Link
from pervasive.messaging.mosquitto import BROKER_ADMIN_IDENTITY, MosquittoBroker
from pervasive.messaging.packets import (
    ConnAck,
    PacketDecoder,
    Publish,
    encode_connect,
    encode_disconnect,
    encode_puback,
)
from pervasive.pki import CertificateAuthority

pytestmark = [
    pytest.mark.mosquitto,
    pytest.mark.skipif(find_mosquitto() is None, reason=NO_MOSQUITTO),
    pytest.mark.skipif(shutil.which("mosquitto_pub") is None, reason=NO_MOSQUITTO),
]

MB = 1024 * 1024


@dataclass
class World:
    ca: CertificateAuthority
    broker: MosquittoBroker
    root: Path
    inboxes: dict[str, asyncio.Queue[MqttMessage]] = field(default_factory=dict)

    def credentials(self, identity: str) -> ClientCredentials:
        return self.ca.client_credentials(identity, self.root / "clients")

    async def open(
        self,
        identity: str,
        *,
        client_id: str | None = None,
        clean: bool,
        credentials: ClientCredentials | None = None,
    ) -> Link:
        """A connection with ``identity``'s certificate, sending ``client_id`` (default: it)."""
        credentials = credentials or self.credentials(identity)
        await self.broker.settle()
        inbox = self.inboxes.setdefault(client_id or identity, asyncio.Queue())
        return await Link.open(
            "127.0.0.1",
            self.broker.port,
            credentials.ssl_context(),
            client_id=client_id or identity,
            clean_session=clean,
            keepalive=30,
            timeout=5,
            deliver=inbox.put_nowait,
        )


async def _world(root: Path, limits: MqttSettings) -> AsyncIterator[World]:
    ca = CertificateAuthority.open(root / "pki", "test password")
    admin = ca.client_credentials(BROKER_ADMIN_IDENTITY, root / "clients")
    broker = MosquittoBroker(
        root / "mosquitto",
        ca.broker_credentials(),
        ca.active_identities,
        limits=limits,
        admin=admin,
    )
    async with broker:
        ca.add_listener(broker.refresh)
        yield World(ca, broker, root)
    ca.close()


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async for value in _world(tmp_path, MqttSettings()):
        yield value


@pytest.fixture
async def small_queue(tmp_path: Path) -> AsyncIterator[World]:
    limits = MqttSettings(max_message_bytes=MB, max_queued_bytes=4 * MB)
    async for value in _world(tmp_path, limits):
        yield value


async def _publish(link: Link, topic: str, payloads: list[bytes]) -> None:
    for payload in payloads:
        acknowledged = link.publish(topic, payload, qos=1, retain=False)
        assert acknowledged is not None
        await acknowledged


async def _durable_subscription(world: World, identity: str, topic_filter: str) -> None:
    link = await world.open(identity, clean=False)
    assert await link.subscribe(topic_filter, 1, timeout=5) == (1,)
    await link.close()


async def _reconnect_durably(
    world: World, identity: str, expected: int, *, linger: float = 0.0
) -> tuple[ConnAck, list[bytes]]:
    """The victim's raw reconnect: CONNACK, the ``expected`` queued messages, and any
    more that arrive within ``linger`` seconds."""
    credentials = world.credentials(identity)
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", world.broker.port, ssl=credentials.ssl_context(), server_hostname="127.0.0.1"
    )
    decoder = PacketDecoder()
    connack: ConnAck | None = None
    payloads: list[bytes] = []
    writer.write(encode_connect(identity, clean_session=False, keepalive=30))
    try:
        async with asyncio.timeout(5):
            while connack is None or len(payloads) < expected:
                data = await reader.read(65536)
                assert data, f"the broker closed the connection; got {connack}, {payloads}"
                for packet in decoder.feed(data):
                    if isinstance(packet, ConnAck):
                        connack = packet
                    elif isinstance(packet, Publish):
                        payloads.append(packet.payload)
                        if packet.packet_id:
                            writer.write(encode_puback(packet.packet_id))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(linger):
                while data := await reader.read(65536):
                    for packet in decoder.feed(data):
                        if isinstance(packet, Publish):
                            payloads.append(packet.payload)
                            if packet.packet_id:
                                writer.write(encode_puback(packet.packet_id))
        writer.write(encode_disconnect())
        await writer.drain()
    finally:
        writer.close()
        await writer.wait_closed()
    return connack, payloads


# -- item 1: the client id is the certificate's identity ----------------------------------


async def test_another_devices_certificate_cannot_close_a_service_connection(
    world: World,
) -> None:
    victim = await world.open("svc:shadow", clean=True)
    for clean in (True, False):
        thief = await world.open("thing-1", client_id="svc:shadow", clean=clean)
        await asyncio.sleep(0.3)
        await thief.close()
    await asyncio.sleep(0.5)
    assert victim.lost_reason is None, f"the service was disconnected: {victim.lost_reason}"
    # and it still works: a device's shadow request reaches it
    assert await victim.subscribe("$aws/things/+/shadow/update", 1, timeout=5) == (1,)
    device = await world.open("thing-1", clean=True)
    await _publish(device, "$aws/things/thing-1/shadow/update", [b"{}"])
    async with asyncio.timeout(5):
        message = await world.inboxes["svc:shadow"].get()
    assert message.topic == "$aws/things/thing-1/shadow/update"
    await device.close()
    await victim.close()


async def test_another_devices_certificate_cannot_touch_a_durable_session(world: World) -> None:
    await _durable_subscription(world, "thing-2", "pervasive/devices/thing-2/#")
    service = await world.open("svc:service", clean=True)
    queued = [f"command {n}".encode() for n in range(5)]
    await _publish(service, "pervasive/devices/thing-2/command", queued)
    await service.close()

    for clean in (True, False):
        thief = await world.open("thing-1", client_id="thing-2", clean=clean)
        await thief.close()

    connack, payloads = await _reconnect_durably(world, "thing-2", expected=5)
    assert connack.session_present
    assert payloads == queued


async def test_an_offline_device_keeps_its_grants_when_another_device_registers(
    world: World,
) -> None:
    """mosquitto 2.0 forgets the ``user`` grants of offline certificate clients on reload:
    messages for an offline device were silently not queued after any registration."""
    service = world.credentials("svc:service")
    await _durable_subscription(world, "thing-7", "pervasive/devices/thing-7/#")
    world.credentials("thing-8")  # another device registered while thing-7 is away
    await world.broker.settle()
    publisher = await world.open("svc:service", clean=True, credentials=service)
    queued = [f"command {n}".encode() for n in range(5)]
    await _publish(publisher, "pervasive/devices/thing-7/command", queued)
    await publisher.close()

    connack, payloads = await _reconnect_durably(world, "thing-7", expected=5)
    assert connack.session_present
    assert payloads == queued


# -- item 2: revocation closes live sessions at once --------------------------------------


async def test_revoking_a_certificate_disconnects_its_live_session(world: World) -> None:
    revoked = world.credentials("thing-3")
    subscriber = await world.open("thing-3", clean=False)
    assert await subscriber.subscribe("pervasive/devices/thing-3/#", 1, timeout=5) == (1,)
    bystander = await world.open("thing-4", clean=True)

    world.ca.revoke_identity("thing-3")
    async with asyncio.timeout(1.5):
        reason = await subscriber.wait_lost()
    assert reason

    with pytest.raises(ConnectionRefused, match="revoked"):
        await world.open("thing-3", clean=True, credentials=revoked)
    await asyncio.sleep(0.2)
    assert bystander.lost_reason is None, "another device's session was closed too"
    assert world.broker.closed_sessions["thing-3"] == 1
    refusals = world.broker.refusals
    assert refusals["revoked"] == 1 and refusals["tls refused"] >= 1
    await bystander.close()


# -- item 4: limits --------------------------------------------------------------------------


async def _stock_publish(world: World, identity: str, topic: str, payload_file: Path) -> int:
    """``mosquitto_pub -f``: the stock client sends whatever size it is given."""
    credentials = world.credentials(identity)
    await world.broker.settle()
    process = await asyncio.create_subprocess_exec(
        "mosquitto_pub", "-h", "127.0.0.1", "-p", str(world.broker.port),
        "--cafile", str(credentials.ca_file),
        "--cert", str(credentials.cert_file), "--key", str(credentials.key_file),
        "-t", topic, "-f", str(payload_file), "-q", "1",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    async with asyncio.timeout(20):
        return await process.wait()


async def test_an_8_mb_publish_is_refused_and_counted(world: World, tmp_path: Path) -> None:
    watcher = await world.open("svc:monitor", clean=True)
    assert await watcher.subscribe("pervasive/#", 1, timeout=5) == (1,)
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * (8 * MB))
    await _stock_publish(world, "thing-5", "pervasive/devices/thing-5/blob", big)
    small = tmp_path / "small.bin"
    small.write_bytes(b"sentinel")
    assert await _stock_publish(world, "thing-5", "pervasive/devices/thing-5/blob", small) == 0

    async with asyncio.timeout(5):
        first = await world.inboxes["svc:monitor"].get()
    assert first.payload == b"sentinel", f"received {len(first.payload)} bytes first"
    assert world.broker.refusals["oversize packet"] == 1
    await watcher.close()


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def test_an_offline_subscribers_queue_stops_at_the_byte_limit(small_queue: World) -> None:
    world = small_queue
    await _durable_subscription(world, "thing-6", "pervasive/devices/thing-6/#")
    assert world.broker.pid is not None
    before = _rss_bytes(world.broker.pid)

    service = await world.open("svc:service", clean=True)
    published = [bytes([n]) * 1_000_000 for n in range(24)]  # 24 MB for a 4 MiB queue
    await _publish(service, "pervasive/devices/thing-6/firmware", published)
    await service.close()
    grown = _rss_bytes(world.broker.pid) - before

    _connack, delivered = await _reconnect_durably(world, "thing-6", expected=1, linger=1.0)
    assert grown < 10 * MB, f"mosquitto grew by {grown / MB:.1f} MB for a 4 MiB queue"
    assert world.broker.refusals["queue full"] >= 1
    assert len(delivered) <= 5 and delivered[0] == published[0]
