"""The member transport: one inbox per member, publishes in order, several in flight."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from pervasive.committee import EnvelopeSigner, MemberTransport, Publish, Send, member_inbox_topic
from pervasive.crypto import PrivateKey
from pervasive.domain import agreement_domain
from pervasive.errors import InvalidInput, PervasiveError
from pervasive.messaging.port import MqttMessage

SESSION = "0x00000000000000000000000000000000000A11cE"
KEYS = [PrivateKey(bytes([0x11 + i]) * 32) for i in range(3)]


class SlowBroker:
    """An MQTT connection whose PUBACKs take a while; it records the order of the wire."""

    def __init__(self, fail_topic: str | None = None) -> None:
        self.wire: list[tuple[str, bytes]] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.subscriptions: list[str] = []
        self.fail_topic = fail_topic

    @property
    def client_id(self) -> str:
        return "member"

    async def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> None:
        self.wire.append((topic, payload))  # on the wire before the first await
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.01)
            if topic == self.fail_topic:
                raise PervasiveError("broker went away")
        finally:
            self.in_flight -= 1

    async def subscribe(self, topic_filter: str, *, qos: int = 1) -> None:
        self.subscriptions.append(topic_filter)

    async def messages(self) -> AsyncIterator[MqttMessage]:  # pragma: no cover - unused
        if False:
            yield


async def test_sends_leave_in_order_to_each_inbox_with_several_in_flight() -> None:
    broker = SlowBroker(fail_topic=member_inbox_topic("p/n", SESSION, KEYS[2].address))
    me = KEYS[0].address
    transport = MemberTransport(
        broker, prefix="p/n", session=SESSION, member=me, kind_name=lambda k: f"K{k}",
        max_in_flight=3,
    )  # fmt: skip
    await transport.subscribe()
    assert broker.subscriptions == [f"p/n/{SESSION.lower()}/{me.lower()}"]
    signer = EnvelopeSigner(KEYS[0], agreement_domain(1, SESSION), SESSION, epoch=1)
    others = (KEYS[1].address, KEYS[2].address)
    sends = [Send(others, signer.sign(t, 1 + t % 2, bytes([t]))) for t in range(5)]
    for send in sends:
        transport.post(send)
    transport.post_raw(Publish("p/reply", b"raw", "RAW"))
    runner = asyncio.create_task(transport.run())
    async with asyncio.timeout(5):
        while len(broker.wire) < 11 or broker.in_flight:
            await asyncio.sleep(0.01)
    runner.cancel()
    expected = [(transport.inbox_of(r), s.envelope.encode()) for s in sends for r in s.recipients]
    assert broker.wire == [*expected, ("p/reply", b"raw")]
    assert 1 < broker.most_in_flight <= 3
    assert transport.sent == {"K1": 6, "K2": 4, "RAW": 1}
    assert transport.failed == 5  # every publish to the failing inbox, counted, not raised
    assert transport.bytes_sent == sum(len(p) for _, p in broker.wire)


def test_inbox_topics_are_addresses() -> None:
    with pytest.raises(InvalidInput):
        member_inbox_topic("p/n", "not-an-address", KEYS[0].address)
