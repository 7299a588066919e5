"""``InteropFeed``: follow contracts, map their events, store them, publish them.

The one object the service runtime and the platform need. A data directory has one
event log, ``<home>/interop/events.sqlite`` (:func:`events_path`), and every feed of the
directory appends to it under its own ``name`` (the events' ``origin``: ``platform``,
``service-<name>``), in one process or several; the file also holds the followers'
checkpoints, so each event commits with its "delivered" record:

```
EventFollower(s) ──deliver/retract──► MappingHandler ──append(origin)──► EventStore
ShadowService.add_listener(feed.shadow_changed) ──► ShadowEvents ──append──►  │ (one file)
     EventPublisher (this origin's events, after the commit) ◄── after(cursor) ┤
                                              web: /events/stream (every origin) ┘
```

Contracts declared with :meth:`InteropFeed.follow` before the first :meth:`poll` or
:meth:`run` share one follower (checkpoint ``name``; a contract added to that set
later is followed from the checkpoint on). A contract followed with ``start_block``
(any time, also while running: a contract deployed later) gets its own follower,
checkpoint ``<name>:<address>``, from that block.

Several writers, one file: a follower holds its SQLite write transaction across
awaits (block headers), so no writer of this feed waits for the lock with its event
loop blocked (another feed in the same process could then never finish its
transaction). Every write of the feed fails fast when the file is locked and is
retried a few milliseconds later (``counters["lock_waits"]``); a lock held for long
is logged, never raised. The publisher is woken after a poll's transactions commit.

Example::

    feed = InteropFeed(ledger, settings.home, name="service-shipping")
    feed.follow(deployment.address, compiled, start_block=deployment.block)
    shadow_service.add_listener(feed.shadow_changed)
    task = asyncio.create_task(feed.run(connection))      # until cancelled
    feed.counters, feed.refusals                          # mapped, published / refusals by reason
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from pervasive.chain import EventFollower, Ledger
from pervasive.chain.checkpoints import SCHEMA as CHECKPOINT_SCHEMA
from pervasive.errors import ChainUnavailable
from pervasive.interop.declarations import compile_shadow_mapping
from pervasive.interop.handler import MappingHandler
from pervasive.interop.mapping import CompiledMappings
from pervasive.interop.publisher import EventPublisher
from pervasive.interop.schemas import BUILTIN_SCHEMAS, JsonSchema, SchemaRegistry, load_schema
from pervasive.interop.shadow_events import ShadowEvents
from pervasive.interop.store import EventStore, is_locked
from pervasive.messaging.port import MqttConnection
from pervasive.shadow import ShadowRecord

__all__ = ["InteropFeed", "events_path"]

_log = logging.getLogger(__name__)
_LOCK_RETRY = 0.005
"""Seconds between two tries while another writer holds the event log's lock."""
_LOCK_WARNING = 10.0
"""Seconds of waiting for the lock between two warnings."""


def events_path(home: Path) -> Path:
    """The event log of the data directory ``home``: ``<home>/interop/events.sqlite``.

    Example: ``EventStore(events_path(settings.home))`` (what the web app reads).
    """
    return home / "interop" / "events.sqlite"


class InteropFeed:
    """Follows contracts and shadows into the data directory's CloudEvents log, as ``name``.

    ``name`` is the events' ``origin`` and the publisher's: it publishes only what this
    feed appended (cursor ``<name>:mqtt``).
    """

    def __init__(
        self,
        ledger: Ledger,
        home: Path,
        *,
        name: str = "interop",
        confirmations: int = 0,
        poll_interval: float = 0.05,
        start_block: int = 0,
        database: Path | None = None,
    ) -> None:
        self.ledger = ledger
        self.name = name
        self.path = database or events_path(home)
        self.confirmations = confirmations
        self.poll_interval = poll_interval
        self.start_block = start_block
        self.store = EventStore(self.path, wait_for_lock=False)
        # the followers' tables now, while nothing waits: creating them later could need
        # the lock from inside the event loop
        self.store.db.executescript(CHECKPOINT_SCHEMA)
        self.schemas = SchemaRegistry()
        """Every schema of the followed mappings (the web app's ``/schemas``)."""
        self._pending_schemas: dict[str, JsonSchema] = {}
        self._shadow_mapping = compile_shadow_mapping()
        self._keep_schemas([load_schema(BUILTIN_SCHEMAS / "retracted.json")])
        self._keep_schemas([self._shadow_mapping.schema])
        self._handler = MappingHandler(ledger, {}, origin=name)
        self._shared: list[str] = []
        self._own: dict[str, int] = {}
        """Contracts with their own follower: address -> start block."""
        self._follower: EventFollower | None = None
        self._followers: dict[str, EventFollower] = {}
        self._publisher: EventPublisher | None = None
        self._shadows: ShadowEvents | None = None
        self._counters: Counter[str] = Counter()

    # -- declaring ----------------------------------------------------------------------
    def follow(
        self, address: str, mappings: CompiledMappings, *, start_block: int | None = None
    ) -> None:
        """Map the events of the contract at ``address`` with ``mappings``.

        Without ``start_block``: with the other contracts so declared, before the feed
        starts. With it: on its own follower from that block (at any time; following an
        address twice is a no-op).

        Example: ``feed.follow(factory.address, compiled, start_block=deployed.block)``.
        """
        key = address.lower()
        if key in self._own or any(a.lower() == key for a in self._shared):
            return
        if start_block is None:
            if self._follower is not None:
                raise RuntimeError("follow() every contract before the feed starts")
            self._shared.append(address)
        else:
            self._own[address] = start_block
        self._handler.add(address, mappings)
        self.schemas.add(mappings.schemas)
        self._keep_schemas(list(mappings.schemas.values()))

    def follows(self, address: str) -> bool:
        """Whether :meth:`follow` declared ``address``."""
        key = address.lower()
        return key in {a.lower() for a in (*self._shared, *self._own)}

    def shadow_changed(self, record: ShadowRecord) -> None:
        """A :meth:`ShadowService.add_listener` listener: shadow changes into the log.

        Example: ``shadow_service.add_listener(feed.shadow_changed)``.
        """
        if self._shadows is None:
            self._shadows = ShadowEvents(
                self.store, self._shadow_mapping, on_append=self._wake, origin=self.name
            )
        self._shadows.shadow_changed(record)

    def _keep_schemas(self, schemas: list[JsonSchema]) -> None:
        """Register ``schemas`` in the log now, or at the next poll when it is locked."""
        for schema in schemas:
            self._pending_schemas[schema.id] = schema
        if self._pending_schemas and self.store.try_register_schema(
            *self._pending_schemas.values()
        ):
            self._pending_schemas.clear()

    # -- running ------------------------------------------------------------------------
    def _new_follower(self, addresses: list[str], name: str, start_block: int) -> EventFollower:
        follower = EventFollower(
            self.ledger,
            addresses,
            self.path,
            name,
            self._handler,
            confirmations=self.confirmations,
            poll_interval=self.poll_interval,
            start_block=start_block,
        )
        # never wait for another writer inside SQLite (the event loop would stop): fail
        # fast, and _poll_one tries again after a few milliseconds
        follower.store.db.execute("PRAGMA busy_timeout = 0")
        return follower

    def _current_followers(self) -> list[EventFollower]:
        if self._follower is None and self._shared:
            self._follower = self._new_follower(self._shared, self.name, self.start_block)
        for address, start in self._own.items():
            if address not in self._followers:
                self._followers[address] = self._new_follower(
                    [address], f"{self.name}:{address}", start
                )
        followers = [self._follower] if self._follower is not None else []
        return followers + list(self._followers.values())

    def _wake(self) -> None:
        if self._publisher is not None:
            self._publisher.wake()

    async def poll(self) -> int:
        """Follow the chain once: map and store what is new; return how many logs came.

        The publisher is woken once the poll's transactions committed.

        Example: ``await feed.poll()`` (tests; :meth:`run` polls on its own).
        """
        await self._locked_retry(self._register_pending_schemas)
        before = self._handler.appended
        delivered = 0
        try:
            for follower in self._current_followers():
                delivered += await self._poll_one(follower)
        finally:
            if self._handler.appended != before:
                self._wake()
        return delivered

    async def _poll_one(self, follower: EventFollower) -> int:
        waited_since: float | None = None
        while True:
            try:
                return await follower.poll()
            except sqlite3.OperationalError as exc:
                if not is_locked(exc):
                    raise
            # another writer holds the log: what committed stays, the next poll resumes
            waited_since = self._note_lock_wait(waited_since)
            await asyncio.sleep(_LOCK_RETRY)

    def _register_pending_schemas(self) -> bool:
        if not self._pending_schemas:
            return True
        if self.store.try_register_schema(*self._pending_schemas.values()):
            self._pending_schemas.clear()
            return True
        return False

    async def _locked_retry(self, write: Callable[[], bool]) -> None:
        waited_since: float | None = None
        while not write():
            waited_since = self._note_lock_wait(waited_since)
            await asyncio.sleep(_LOCK_RETRY)

    def _note_lock_wait(self, since: float | None) -> float:
        self._counters["lock_waits"] += 1
        now = time.monotonic()
        if since is None:
            return now
        if now - since >= _LOCK_WARNING:
            _log.warning(
                "interop feed %s: another writer has held the event log %s for %.0f s; "
                "still waiting", self.name, self.path, now - since,
            )  # fmt: skip
            return now
        return since

    async def publish(self, connection: MqttConnection) -> int:
        """Publish this feed's stored events not yet published on ``connection``; how many."""
        return await self._publisher_for(connection).publish_pending()

    def _publisher_for(self, connection: MqttConnection) -> EventPublisher:
        if self._publisher is None or self._publisher.connection is not connection:
            self._publisher = EventPublisher(
                self.store,
                connection,
                name=f"{self.name}:mqtt",
                origin=self.name,
                poll_interval=self.poll_interval,
            )
        return self._publisher

    async def run(
        self, connection: MqttConnection | None = None, *, ready: asyncio.Event | None = None
    ) -> None:
        """Follow, map, store and (given a connection) publish until cancelled.

        An unreachable node is retried (logged); a lost broker connection raises.
        """
        tasks = [asyncio.create_task(self._follow(), name=f"{self.name} follower")]
        if connection is not None:
            publisher = self._publisher_for(connection)
            tasks.append(asyncio.create_task(publisher.run(), name=f"{self.name} publisher"))
        if ready is not None:
            ready.set()
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _follow(self) -> None:
        while True:
            try:
                await self.poll()
            except ChainUnavailable as exc:
                _log.warning("interop feed %s: %s; retrying", self.name, exc)
            await asyncio.sleep(self.poll_interval)

    # -- reading ------------------------------------------------------------------------
    @property
    def counters(self) -> Counter[str]:
        """``mapped``, ``unmapped``, ``retracted``, ``published``, ``shadow``, ``lock_waits``."""
        total: Counter[str] = Counter(self._counters)
        total.update(self._handler.counters)
        if self._publisher is not None:
            total.update(self._publisher.counters)
        if self._shadows is not None:
            total["shadow"] += self._shadows.counters["mapped"]
        return total

    @property
    def refusals(self) -> Counter[str]:
        """Refused events by reason (``schema``, ``undecodable``, ``unmappable``)."""
        total: Counter[str] = Counter(self._handler.refusals)
        if self._shadows is not None:
            total.update(self._shadows.refusals)
        return total

    def close(self) -> None:
        """Close the followers' and the store's databases (shadow changes no longer kept)."""
        if self._shadows is not None:
            self._shadows.close()
        for follower in (self._follower, *self._followers.values()):
            if follower is not None:
                follower.close()
        self.store.close()
