"""An in-memory MQTT neighbour implementing the messaging port, for shadow tests.

Routing follows MQTT 3.1.1 section 4.7: ``+`` matches one level, ``#`` the parent
level and everything below, and filters starting with a wildcard do not match
topics starting with ``$``. Sessions are clean: a disconnected client misses what
is published meanwhile (which is how a device misses a delta while offline).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from pervasive.messaging.port import MqttMessage


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT topic-filter matching."""
    filter_levels = topic_filter.split("/")
    topic_levels = topic.split("/")
    if topic.startswith("$") and filter_levels[0] in ("+", "#"):
        return False
    for index, level in enumerate(filter_levels):
        if level == "#":
            return index == len(filter_levels) - 1
        if index >= len(topic_levels):
            return False
        if level != "+" and level != topic_levels[index]:
            return False
    return len(filter_levels) == len(topic_levels)


class InMemoryBroker:
    """Routes publications between :class:`InMemoryConnection` sessions."""

    def __init__(self) -> None:
        self.sessions: list[InMemoryConnection] = []
        self.published: list[MqttMessage] = []

    def connect(self, client_id: str) -> InMemoryConnection:
        connection = InMemoryConnection(self, client_id)
        self.sessions.append(connection)
        return connection

    def route(self, message: MqttMessage) -> None:
        self.published.append(message)
        for session in self.sessions:
            if any(topic_matches(f, message.topic) for f in session.filters):
                session.queue.put_nowait(message)


class InMemoryConnection:
    """One connected session; implements ``pervasive.messaging.port.MqttConnection``."""

    def __init__(self, broker: InMemoryBroker, client_id: str) -> None:
        self._broker = broker
        self._client_id = client_id
        self.filters: list[str] = []
        self.queue: asyncio.Queue[MqttMessage | None] = asyncio.Queue()
        self.connected = True

    @property
    def client_id(self) -> str:
        return self._client_id

    async def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> None:
        if not self.connected:
            raise ConnectionError(f"{self._client_id} is disconnected")
        if "+" in topic or "#" in topic:
            raise ValueError(f"wildcards are not allowed in a topic name: {topic}")
        self._broker.route(MqttMessage(topic, payload, qos, retain))

    async def subscribe(self, topic_filter: str, *, qos: int = 1) -> None:
        if not self.connected:
            raise ConnectionError(f"{self._client_id} is disconnected")
        self.filters.append(topic_filter)

    async def messages(self) -> AsyncIterator[MqttMessage]:
        while True:
            message = await self.queue.get()
            if message is None:
                return
            yield message

    def disconnect(self) -> None:
        """Drop the session: its stream ends and later publications are not queued."""
        self.connected = False
        self.filters.clear()
        if self in self._broker.sessions:
            self._broker.sessions.remove(self)
        self.queue.put_nowait(None)


async def settle(rounds: int = 50) -> None:
    """Let queued messages be handled by the tasks of the test."""
    for _ in range(rounds):
        await asyncio.sleep(0)
