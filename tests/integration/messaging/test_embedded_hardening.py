"""The embedded broker as an attacker and an operator meet it (issue 11, items 1, 2, 4, 6b).

- the client id is the certificate's identity: another id is refused before the
  broker touches any session, so a victim's queued messages and live connection survive;
- revoking a certificate closes its live connection at once;
- limits: packet size, offline queue (messages and bytes), time to send CONNECT;
- a durable session opened right after a clean one with the same client id keeps what
  is queued for it (the same cases run on mosquitto).

Sessions with a chosen client id and clean-session flag are opened with
:class:`~pervasive.messaging.link.Link` (``MqttClient`` always connects as its identity).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from messaging_platform import Platform, _platform

from device_platform import receive
from pervasive.config import MqttSettings
from pervasive.messaging import (
    ClientCredentials,
    ConnectionRefused,
    EmbeddedBroker,
    MqttClient,
    MqttMessage,
    device_topic,
    shadow_topic,
)
from pervasive.messaging.link import Link

DELTA = "update/delta"


@pytest.fixture
async def embedded(tmp_path: Path) -> AsyncIterator[Platform]:
    async for value in _platform("embedded", tmp_path):
        yield value


class Session:
    """One raw MQTT connection with a chosen client id; what it receives lands in ``inbox``."""

    def __init__(self, port: int, credentials: ClientCredentials) -> None:
        self.port = port
        self.credentials = credentials
        self.inbox: asyncio.Queue[MqttMessage] = asyncio.Queue()

    async def open(self, client_id: str, *, clean: bool) -> Link:
        return await Link.open(
            "127.0.0.1",
            self.port,
            self.credentials.ssl_context(),
            client_id=client_id,
            clean_session=clean,
            keepalive=30,
            timeout=5,
            deliver=self.inbox.put_nowait,
        )

    async def take(self, count: int, timeout: float = 5.0) -> list[bytes]:
        async with asyncio.timeout(timeout):
            return [(await self.inbox.get()).payload for _ in range(count)]

    async def nothing_more(self, wait: float = 0.5) -> None:
        await asyncio.sleep(wait)
        assert self.inbox.empty(), f"unexpected {self.inbox.get_nowait()!r}"


async def _queue_deltas(platform: Platform, thing: str, payloads: list[bytes]) -> None:
    """Publish shadow deltas for ``thing`` as ``svc:shadow`` (each acknowledged)."""
    async with MqttClient(await platform.options("svc:shadow")) as shadow:
        for payload in payloads:
            await shadow.publish(shadow_topic(thing, "update", "delta"), payload)


async def _durable_subscriber(platform: Platform, thing: str) -> Session:
    """``thing``'s durable session, subscribed to its deltas, then disconnected."""
    await platform.options("svc:shadow")  # issued first: an ACL change may not end the session
    session = Session(platform.broker.port, platform.credentials(thing))
    await platform.options(thing)
    link = await session.open(thing, clean=False)
    assert await link.subscribe(shadow_topic(thing, "update", "delta"), 1, timeout=5) == (1,)
    await link.close()
    return session


# -- item 1: the client id is the certificate's identity ------------------------


async def test_another_client_id_is_refused_and_the_victims_session_survives(
    embedded: Platform,
) -> None:
    victim = await _durable_subscriber(embedded, "thing-2")
    await _queue_deltas(embedded, "thing-2", [str(i).encode() for i in range(5)])
    thief = Session(embedded.broker.port, embedded.credentials("thing-1"))
    await embedded.options("thing-1")
    for clean in (True, False):
        with pytest.raises(ConnectionRefused, match="rejected the client id"):
            await thief.open("thing-2", clean=clean)

    link = await victim.open("thing-2", clean=False)
    assert await victim.take(5) == [str(i).encode() for i in range(5)]
    await link.close()
    assert embedded.broker.refusals["client id mismatch"] == 2


async def test_taking_the_shadow_services_client_id_leaves_it_connected(
    embedded: Platform,
) -> None:
    thief = Session(embedded.broker.port, embedded.credentials("thing-1"))
    await embedded.options("thing-1")
    async with (
        MqttClient(await embedded.options("svc:shadow")) as shadow,
        MqttClient(await embedded.options("thing-3")) as device,
    ):
        await shadow.subscribe("$aws/things/+/shadow/update")
        for _ in range(3):
            with pytest.raises(ConnectionRefused, match="rejected the client id"):
                await thief.open("svc:shadow", clean=True)
        await device.publish(shadow_topic("thing-3", "update"), b'{"state":{}}')
        (update,) = await receive(shadow, 1)  # still subscribed: its session is untouched
        assert update.topic == "$aws/things/thing-3/shadow/update"
        assert shadow.connected and shadow.reconnects == 0
    assert embedded.broker.refusals["client id mismatch"] == 3


# -- item 2: revocation closes live connections -------------------------------------


async def test_revoking_a_certificate_disconnects_its_live_session(embedded: Platform) -> None:
    options = await embedded.options("thing-1", reconnect_min=0.05, reconnect_max=0.1)
    async with (
        MqttClient(options) as revoked,
        MqttClient(await embedded.options("thing-2")) as other,
    ):
        await revoked.subscribe(device_topic("thing-1", "command"))
        (record,) = [r for r in embedded.ca.certificates() if r.common_name == "thing-1"]
        embedded.ca.revoke(record.serial)
        async with asyncio.timeout(1.0):
            while revoked.connected:
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)  # its reconnects are refused
        assert not revoked.connected
        assert other.connected  # only the revoked identity is closed
        await other.publish(device_topic("thing-2", "telemetry"), b"still here")
    with pytest.raises(ConnectionRefused, match="not authorised"):
        await MqttClient(options).connect()
    assert embedded.broker.refusals["revoked"] == 1
    assert embedded.broker.refusals["not authorized"] >= 2


# -- item 4: limits ------------------------------------------------------------------


@pytest.fixture
async def limited(embedded: Platform) -> AsyncIterator[tuple[Platform, EmbeddedBroker]]:
    """A second embedded broker of the same CA with small limits."""
    for identity in ("thing-1", "thing-2", "svc:shadow"):
        await embedded.options(identity)
    broker = EmbeddedBroker(
        embedded.ca.broker_credentials(),
        embedded.ca.active_identities,
        limits=MqttSettings(
            max_message_bytes=2048,
            max_queued_messages=5,
            max_queued_bytes=3000,
            connect_timeout=0.5,
        ),
    )
    async with broker:
        yield replace(embedded, broker=broker), broker


async def test_a_packet_over_the_size_limit_closes_the_connection(
    limited: tuple[Platform, EmbeddedBroker],
) -> None:
    platform, broker = limited
    subscriber = await _durable_subscriber(platform, "thing-2")
    watching = await subscriber.open("thing-2", clean=False)
    sender = await Session(broker.port, platform.credentials("svc:shadow")).open(
        "svc:shadow", clean=True
    )
    topic = shadow_topic("thing-2", "update", "delta")
    acknowledged = sender.publish(topic, b"x" * 1900, qos=1, retain=False)
    assert acknowledged is not None
    await acknowledged
    sender.publish(topic, b"y" * 4096, qos=1, retain=False)
    async with asyncio.timeout(3):
        await sender.wait_lost()
    assert await subscriber.take(1) == [b"x" * 1900]
    await subscriber.nothing_more()
    assert broker.refusals["oversize packet"] == 1
    await watching.close()


@pytest.mark.parametrize(
    ("size", "kept"), [(100, 5), (1000, 3)], ids=["message-limit", "byte-limit"]
)
async def test_an_offline_queue_stops_at_its_limits(
    limited: tuple[Platform, EmbeddedBroker], size: int, kept: int
) -> None:
    platform, broker = limited
    subscriber = await _durable_subscriber(platform, "thing-2")
    payloads = [bytes([48 + i]) * size for i in range(8)]
    await _queue_deltas(platform, "thing-2", payloads)
    link = await subscriber.open("thing-2", clean=False)
    assert await subscriber.take(kept) == payloads[:kept]  # the oldest kept, newer dropped
    await subscriber.nothing_more()
    await link.close()
    assert broker.refusals["queue full"] == 8 - kept


async def test_a_connection_without_connect_is_closed(
    limited: tuple[Platform, EmbeddedBroker],
) -> None:
    platform, broker = limited
    reader, writer = await asyncio.open_connection("127.0.0.1", broker.port)  # no TLS at all
    context = platform.credentials("thing-1").ssl_context()
    tls_reader, tls_writer = await asyncio.open_connection(
        "127.0.0.1", broker.port, ssl=context, server_hostname="localhost"
    )  # a handshake, then silence
    async with asyncio.timeout(3):
        assert await reader.read() == b""
        with contextlib.suppress(ssl.SSLError, ConnectionError):  # closed, no close_notify
            assert await tls_reader.read() == b""
    for stream in (writer, tls_writer):
        stream.close()
    assert broker.refusals["connect timeout"] == 2


# -- item 6b: a durable session right after a clean one (both brokers) -----------------


async def test_a_durable_session_right_after_a_clean_one_keeps_its_messages(
    platform: Platform,
) -> None:
    await platform.options("svc:shadow")
    session = Session(platform.broker.port, platform.credentials("thing-2"))
    await platform.options("thing-2")
    clean = await session.open("thing-2", clean=True)
    await clean.close()
    durable = await session.open("thing-2", clean=False)  # within milliseconds
    assert await durable.subscribe(shadow_topic("thing-2", "update", "delta"), 1, timeout=5) == (1,)
    await durable.close()
    await asyncio.sleep(1.2)  # past the embedded broker's sweep of ended clean sessions
    await _queue_deltas(platform, "thing-2", [b"1", b"2", b"3", b"4", b"5"])

    again = await session.open("thing-2", clean=False)
    assert await session.take(5) == [b"1", b"2", b"3", b"4", b"5"]
    await again.close()


async def test_a_clean_session_discards_the_durable_one_before_it(platform: Platform) -> None:
    session = await _durable_subscriber(platform, "thing-2")
    await _queue_deltas(platform, "thing-2", [b"lost"])
    clean = await session.open("thing-2", clean=True)  # [MQTT-3.1.2-6]: the state is discarded
    await session.nothing_more()
    await clean.close()
    await _queue_deltas(platform, "thing-2", [b"nobody subscribed"])
    durable = await session.open("thing-2", clean=False)
    await session.nothing_more()
    await durable.close()


async def test_a_durable_session_taking_over_a_live_clean_one_keeps_its_messages(
    platform: Platform,
) -> None:
    await platform.options("svc:shadow")
    session = Session(platform.broker.port, platform.credentials("thing-2"))
    await platform.options("thing-2")
    clean = await session.open("thing-2", clean=True)
    durable = await session.open("thing-2", clean=False)  # takes over the live connection
    async with asyncio.timeout(3):
        await clean.wait_lost()
    assert await durable.subscribe(shadow_topic("thing-2", "update", "delta"), 1, timeout=5) == (1,)
    await durable.close()
    await asyncio.sleep(1.2)
    await _queue_deltas(platform, "thing-2", [b"1", b"2"])
    again = await session.open("thing-2", clean=False)
    assert await session.take(2) == [b"1", b"2"]
    await again.close()
