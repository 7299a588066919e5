"""The member transport over MQTT: one inbox per member, pipelined publishes.

Member ``m`` of session ``s`` reads its point-to-point inbox ``<prefix>/<s>/<m>``
(lower-case addresses) under its own service identity; the broker's ACL lets only
that committee's role use ``<prefix>/#``. A :class:`~pervasive.committee.actions.Send`
is one QoS 1 publish per recipient of the same encoded envelope.

The transport does not trust the broker: every envelope is signed and checked by the
receiver (:mod:`pervasive.committee.receiver`). Publishes are started in queue order
but not awaited one by one: a QoS 1 publish waits for its PUBACK, and a round trip per
message (per recipient) was most of a window's latency in paper 002's protocol. The
client puts each publish on the wire before its first await, so they leave in order;
up to ``max_in_flight`` await their PUBACK at once. A failed publish is counted and
logged: protocols retry on their own timers, so a lost send is a delayed send.

Example::

    transport = MemberTransport(connection, prefix="pervasive/nodes", session=a, member=me)
    await transport.subscribe()
    runner = asyncio.create_task(transport.run())
    transport.post(send_action)
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable
from dataclasses import dataclass

from pervasive.committee.actions import Send
from pervasive.errors import InvalidInput, PervasiveError
from pervasive.messaging.port import MqttConnection
from pervasive.messaging.topics import validate_topic_filter

__all__ = ["MemberTransport", "Publish", "member_inbox_topic"]

_log = logging.getLogger(__name__)


def member_inbox_topic(prefix: str, session: str, member: str) -> str:
    """The inbox of ``member`` in ``session`` under ``prefix``.

    Example: ``member_inbox_topic("pervasive/nodes", "0xAb..", "0xCd..")
    == "pervasive/nodes/0xab../0xcd.."``.
    """
    for value in (session, member):
        if not (value.startswith("0x") and len(value) == 42):
            raise InvalidInput(f"{value!r} is not an address")
    return f"{prefix}/{session.lower()}/{member.lower()}"


@dataclass(frozen=True)
class Publish:
    """One publish of a member: topic, payload and the message kind it counts as."""

    topic: str
    payload: bytes
    kind: str


class MemberTransport:
    """A member's MQTT side: its inbox subscription and an ordered, pipelined send queue."""

    def __init__(
        self,
        connection: MqttConnection,
        *,
        prefix: str,
        session: str,
        member: str,
        kind_name: Callable[[int], str] = str,
        max_in_flight: int = 8,
    ) -> None:
        if max_in_flight < 1:
            raise InvalidInput("max_in_flight must be at least 1")
        self.connection = connection
        self.prefix = prefix
        self.session = session
        self.member = member
        self.inbox = member_inbox_topic(prefix, session, member)
        validate_topic_filter(self.inbox)
        self.max_in_flight = max_in_flight
        self._kind_name = kind_name
        self._queue: asyncio.Queue[Publish] = asyncio.Queue()
        self.sent: collections.Counter[str] = collections.Counter()
        """Publishes started, by message kind (one per recipient)."""
        self.bytes_sent = 0
        self.failed = 0
        """Publishes that failed (the protocol's retries cover them)."""

    def inbox_of(self, member: str) -> str:
        """The inbox topic of another member of this session."""
        return member_inbox_topic(self.prefix, self.session, member)

    async def subscribe(self) -> None:
        """Subscribe to this member's inbox (QoS 1)."""
        await self.connection.subscribe(self.inbox, qos=1)

    def publishes(self, send: Send) -> list[Publish]:
        """The publishes of ``send``: its envelope, encoded once, to each recipient's inbox."""
        payload = send.envelope.encode()
        kind = self._kind_name(send.envelope.kind)
        return [Publish(self.inbox_of(r), payload, kind) for r in send.recipients]

    def post(self, send: Send) -> None:
        """Queue ``send`` (never blocks; :meth:`run` publishes it)."""
        for publish in self.publishes(send):
            self._queue.put_nowait(publish)

    def post_raw(self, publish: Publish) -> None:
        """Queue a publish to any topic the member may write (a reply to an outsider)."""
        self._queue.put_nowait(publish)

    async def run(self) -> None:
        """Publish queued messages in order, ``max_in_flight`` at a time, until cancelled."""
        slots = asyncio.Semaphore(self.max_in_flight)
        in_flight: set[asyncio.Task[None]] = set()

        def finished(task: asyncio.Task[None]) -> None:
            in_flight.discard(task)
            slots.release()
            if task.cancelled():
                return
            error = task.exception()
            if isinstance(error, PervasiveError):
                self.failed += 1
                _log.warning("member %s: a publish failed: %s", self.member, error)
            elif error is not None:
                self.failed += 1
                _log.error("member %s: a publish failed", self.member, exc_info=error)

        try:
            while True:
                publish = await self._queue.get()
                await slots.acquire()
                self.sent[publish.kind] += 1
                self.bytes_sent += len(publish.payload)
                task = asyncio.create_task(
                    self.connection.publish(publish.topic, publish.payload, qos=1)
                )
                in_flight.add(task)
                task.add_done_callback(finished)
        finally:
            for task in in_flight:
                task.cancel()
