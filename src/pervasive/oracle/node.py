"""One oracle node as an asyncio service: the thin I/O around :class:`OracleProtocol`.

```
hub logs ─▶ EventFollower (exactly once, restarts, reorgs) ─▶ oracle_queries table
         ─▶ QueryRequested / QueryRetried ─▶ protocol.query_seen ─▶ Fetch ─▶ SourceFetcher
         ─▶ QueryAnswered / QueryTimedOut ─▶ protocol.finished
inbox (MQTT pervasive/oracle/<hub>/<me>) ─▶ protocol.receive ─▶ Send ─▶ MemberTransport
readings (MQTT pervasive/devices/+/sensors/+) ─▶ ReadingBook.accept (verified, kept)
         DEVICE queries ─▶ ReadingBook.observe   (other kinds ─▶ SourceFetcher.observe)
Submit[Fulfillment] ─▶ Submitter "<hub>/fulfill" ─▶ hub.fulfill   (designated now, stand-ins later)
clock ─▶ protocol.tick ─▶ Submit[Expiry] ─▶ Submitter "<hub>/expire" ─▶ hub.expire
```

Everything the node must not forget is in its SQLite file: the queries it follows
(written in the follower's transaction), its envelope epochs, its submissions and the
last readings of each sensor (when it follows readings: ``declarations`` given). A
node killed at any moment and started again resumes the queries still pending; the
submitter never sends a round twice and the hub refuses a second answer, so nothing
is answered twice.

Example::

    node = OracleNode(key=key, hub=hub.with_signer(signer), connection=mqtt,
                      database=settings.path("oracle", "oracle-1.sqlite"),
                      fetcher=SourceFetcher(allow=[...], fetch_timeout=5, max_response_bytes=65536),
                      settings=settings.oracle)
    await node.run(ready=ready)        # until cancelled
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pervasive.chain import EventFollower, Log, Receipt
from pervasive.committee import (
    EnvelopeSigner,
    Jobs,
    MemberTransport,
    Send,
    SQLiteEpochs,
    Submit,
    Submitter,
)
from pervasive.config import OracleSettings
from pervasive.contracts.oracle_hub import (
    Expiry,
    Fulfillment,
    HubEvent,
    OracleHub,
    OracleSetReplaced,
    QueryAnswered,
    QueryKind,
    QueryRequested,
    QueryRetried,
    QueryState,
    QueryTimedOut,
)
from pervasive.crypto import PrivateKey
from pervasive.errors import ConfigError, NotFound, PervasiveError, TransactionReverted, UserError
from pervasive.messaging.port import MqttConnection
from pervasive.oracle.protocol import Action, Fetch, OracleProtocol, Query
from pervasive.oracle.readings import DEVICE_READINGS, DeclarationsReader, ReadingBook
from pervasive.oracle.reports import committee_domain
from pervasive.oracle.sources import SourceFailed, SourceFetcher, SourceRefused
from pervasive.store import attach

__all__ = ["ORACLE_PREFIX", "AttemptPort", "NodeStats", "OracleNode"]

ORACLE_PREFIX = "pervasive/oracle"
"""MQTT prefix of the members' inboxes: ``pervasive/oracle/<hub>/<member>``."""

_log = logging.getLogger(__name__)
_DEVICES = DEVICE_READINGS.split("+", 1)[0]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS oracle_queries (
    hub TEXT NOT NULL,
    query_id INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    source TEXT NOT NULL,
    path TEXT NOT NULL,
    consumer TEXT NOT NULL,
    deadline INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    state TEXT NOT NULL,
    answer TEXT,
    PRIMARY KEY (hub, query_id)
);
"""
_RETRY_AFTER_FAILURE = 1.0
_MAX_WAITING_READINGS = 1024


@dataclass
class NodeStats:
    """What one node did (tests, ``oracle status``, the bench)."""

    fetched: int = 0
    fetch_failures: int = 0
    fulfilled: list[Receipt] = field(default_factory=list)
    """Receipts of the answers this node sent."""
    expired: list[Receipt] = field(default_factory=list)
    """Receipts of the expiries this node sent."""
    answered: set[int] = field(default_factory=set)
    """Queries the hub answered (by anyone), as followed."""
    timed_out: set[int] = field(default_factory=set)


class AttemptPort:
    """The committee kit's submission port for one attempt of a query (fulfill or expire).

    A round (``query_id << 8 | attempt``) is recorded once the hub has moved past that
    attempt: answered, timed out, or retried into a later one.
    """

    def __init__(
        self,
        hub: OracleHub,
        send: Callable[[Any], Coroutine[Any, Any, Receipt]],
        finished_reasons: Sequence[str],
    ) -> None:
        self.hub = hub
        self._send = send
        self._reasons = tuple(finished_reasons)

    async def recorded(self, round: int) -> bool:
        """Whether the hub is past this attempt."""
        try:
            status = await self.hub.query_status(round >> 8)
        except NotFound:
            return False
        return status.state is not QueryState.PENDING or status.attempt != round & 255

    async def submit(self, transaction: Any) -> Receipt:
        """Send the transaction."""
        return await self._send(transaction)

    def already_recorded(self, error: TransactionReverted) -> bool:
        """Whether the revert says the attempt is over."""
        return any(reason in str(error) for reason in self._reasons)


class OracleNode:
    """One member of the oracle committee of a hub (see the module docstring)."""

    def __init__(
        self,
        *,
        key: PrivateKey,
        hub: OracleHub,
        connection: MqttConnection,
        database: Path | str,
        fetcher: SourceFetcher,
        settings: OracleSettings,
        start_block: int = 0,
        declarations: DeclarationsReader | None = None,
        history: int = 16,
        reread_after: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.key = key
        self.address = key.address
        self.hub = hub
        self.connection = connection
        self.database = Path(database)
        self.fetcher = fetcher
        self.settings = settings
        self.start_block = start_block
        self.clock = clock
        self.declarations = declarations
        """Reads who may sign what (the registry); ``None``: DEVICE queries are refused."""
        self.history = history
        self.reread_after = reread_after
        """Seconds at least between two reads of the registry prompted by readings of
        keys it did not declare (a device registered after the node started)."""
        self.readings: ReadingBook | None = None
        """The verified readings this node answers DEVICE queries from (once running)."""
        self._reread_at = 0.0
        self._waiting: list[tuple[str, bytes, float]] | None = None
        self.stats = NodeStats()
        self.protocol: OracleProtocol | None = None
        self.transport: MemberTransport | None = None
        self._db: sqlite3.Connection | None = None
        self._fulfills: Submitter[Fulfillment] | None = None
        self._expiries: Submitter[Expiry] | None = None
        self._jobs = Jobs(f"oracle {self.address[:10]}")
        self._submitting = asyncio.Lock()
        self._retry_at = 0.0
        self._changed = asyncio.Event()
        self._timeout = 0
        self._chain_offset = 0.0
        """The chain's clock minus ours, learnt from the hub's events: deadlines are judged
        by the chain's time (a dev chain that mines many blocks a second runs ahead)."""

    @property
    def refusals(self) -> collections.Counter[str]:
        """Refused reports, sources and readings, by reason (protocol, fetcher, readings)."""
        total: collections.Counter[str] = collections.Counter(self.fetcher.refusals)
        if self.protocol is not None:
            total.update(self.protocol.refusals)
        if self.readings is not None:
            total.update(self.readings.refusals)
        return total

    async def wait_for(self, predicate: Callable[[OracleNode], bool], timeout: float) -> None:
        """Wait until ``predicate(self)`` holds (checked after each change)."""
        async with asyncio.timeout(timeout):
            while not predicate(self):
                self._changed.clear()
                await self._changed.wait()

    # -- lifecycle ----------------------------------------------------------------------
    async def run(self, *, ready: asyncio.Event | None = None) -> None:
        """Serve until cancelled; ``ready`` is set once subscribed and following the hub."""
        oracles = await self.hub.oracles()
        if self.address not in oracles:
            raise ConfigError(
                f"{self.address} is not a registered oracle of the hub {self.hub.address}: "
                "run `pervasive oracle init` with this account, or use a registered one"
            )
        self._timeout = await self.hub.timeout()
        self.database.parent.mkdir(parents=True, exist_ok=True)
        self._db = db = attach(self.database, _SCHEMA)
        hub = self.hub.address
        chain_id = self.hub.contract.ledger.chain_id
        epoch = SQLiteEpochs(db).next(hub, self.address)
        self.protocol = OracleProtocol(
            key=self.key, chain_id=chain_id, hub=hub, oracles=oracles,
            threshold=await self.hub.threshold(),
            envelopes=EnvelopeSigner(self.key, committee_domain(chain_id, hub), hub, epoch=epoch),
        )  # fmt: skip
        self._fulfills = Submitter(
            db, f"{hub}/fulfill",
            AttemptPort(self.hub, self._send_fulfill, ("not pending", "past its deadline")),
            Fulfillment.decode, takeover_after=self.settings.takeover_after,
        )  # fmt: skip
        self._expiries = Submitter(
            db, f"{hub}/expire", AttemptPort(self.hub, self._send_expiry, ("not pending",)),
            Expiry.decode, takeover_after=self.settings.takeover_after,
        )  # fmt: skip
        self.transport = MemberTransport(
            self.connection, prefix=ORACLE_PREFIX, session=hub, member=self.address
        )
        await self.transport.subscribe()
        if self.declarations is not None:
            self.readings = ReadingBook(
                await self.declarations(), db=db, history=self.history, clock=self.clock
            )
            await self.connection.subscribe(DEVICE_READINGS)
        follower = EventFollower(
            self.hub.contract.ledger, hub, self.database, f"oracle:{hub}",
            _HubLogs(self), poll_interval=self.settings.poll_interval,
            start_block=self.start_block,
        )  # fmt: skip
        for query in self._pending_queries():
            self._act(self.protocol.query_seen(query))
        tasks = [
            asyncio.create_task(job, name=f"oracle-{self.address[:8]}-{name}")
            for name, job in (
                ("follow", follower.run()),
                ("send", self.transport.run()),
                ("inbox", self._read()),
                ("tick", self._tick()),
            )
        ]
        if ready is not None:
            ready.set()
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()  # a task that ended on its own failed: raise its error
        finally:
            follower.stop()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, PervasiveError):
                    await task
            await self._jobs.cancel()
            follower.close()
            await self.fetcher.close()
            db.close()

    # -- chain events -------------------------------------------------------------------
    def record(self, event: HubEvent, db: sqlite3.Connection) -> None:
        """Keep a hub event in the node's table (in the follower's transaction)."""
        hub = self.hub.address
        if isinstance(event, QueryRequested):
            db.execute(
                "INSERT OR IGNORE INTO oracle_queries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                (
                    hub, event.query_id, event.kind, event.source, event.path, event.consumer,
                    event.deadline, event.attempt, QueryState.PENDING.name.lower(),
                ),
            )  # fmt: skip
        elif isinstance(event, QueryRetried):
            db.execute(
                "UPDATE oracle_queries SET attempt = ?, deadline = ? "
                "WHERE hub = ? AND query_id = ? AND attempt < ?",
                (event.attempt, event.deadline, hub, event.query_id, event.attempt),
            )
        elif isinstance(event, QueryAnswered):
            db.execute(
                "UPDATE oracle_queries SET state = ?, answer = ? WHERE hub = ? AND query_id = ?",
                (QueryState.ANSWERED.name.lower(), str(event.value), hub, event.query_id),
            )
        elif isinstance(event, QueryTimedOut):
            db.execute(
                "UPDATE oracle_queries SET state = ? WHERE hub = ? AND query_id = ?",
                (QueryState.TIMED_OUT.name.lower(), hub, event.query_id),
            )

    def take(self, event: HubEvent) -> None:
        """Hand a followed hub event to the protocol."""
        protocol = self.protocol
        assert protocol is not None
        if isinstance(event, QueryRequested | QueryRetried):
            # the block time of the event is its deadline minus the hub's timeout; a chain
            # behind our clock (delivery lag, an idle dev chain) is not waited for
            self._chain_offset = max(0.0, event.deadline - self._timeout - self.clock())
        if isinstance(event, QueryRequested):
            e = event
            self._act(protocol.query_seen(
                Query(e.query_id, e.kind, e.source, e.path, e.deadline, e.attempt)
            ))  # fmt: skip
        elif isinstance(event, QueryRetried):
            # the request was committed by an earlier delivery (this one is still open)
            known = self._query(event.query_id)
            if known is not None:
                self._act(protocol.query_seen(
                    replace(known, deadline=event.deadline, attempt=event.attempt)
                ))  # fmt: skip
        elif isinstance(event, QueryAnswered):
            protocol.finished(event.query_id)
            self.stats.answered.add(event.query_id)
        elif isinstance(event, QueryTimedOut):
            protocol.finished(event.query_id)
            self.stats.timed_out.add(event.query_id)
        elif isinstance(event, OracleSetReplaced):
            protocol.replace_set(event.oracles, event.threshold)
            if not protocol.registered:
                _log.warning("oracle %s: no longer in the hub's oracle set", self.address)
        self._changed.set()

    def _query(self, query_id: int) -> Query | None:
        assert self._db is not None
        row = self._db.execute(
            "SELECT query_id, kind, source, path, deadline, attempt FROM oracle_queries "
            "WHERE hub = ? AND query_id = ? AND state = ?",
            (self.hub.address, query_id, QueryState.PENDING.name.lower()),
        ).fetchone()
        return None if row is None else Query(*row)

    def _pending_queries(self) -> list[Query]:
        assert self._db is not None
        rows = self._db.execute(
            "SELECT query_id, kind, source, path, deadline, attempt FROM oracle_queries "
            "WHERE hub = ? AND state = ? ORDER BY query_id",
            (self.hub.address, QueryState.PENDING.name.lower()),
        ).fetchall()
        return [Query(*row) for row in rows]

    # -- actions ------------------------------------------------------------------------
    def _act(self, actions: Sequence[Action]) -> None:
        protocol = self.protocol
        assert protocol is not None and self.transport is not None
        for action in actions:
            if isinstance(action, Fetch):
                self._spawn(self._fetch(action.query))
            elif isinstance(action, Send):
                self.transport.post(action)
            elif isinstance(action, Submit):
                transaction = action.transaction
                rank = protocol.rank(transaction.query_id)
                now = self.clock()
                if isinstance(transaction, Fulfillment):
                    self._fulfills_().add(
                        action.round, transaction, designated=rank == 0, rank=rank, now=now
                    )
                else:
                    self._expiries_().add(
                        action.round, transaction, designated=rank == 0, rank=rank, now=now
                    )
                self._retry_at = 0.0
                self._spawn(self._submit_due())
        self._changed.set()

    async def _fetch(self, query: Query) -> None:
        try:
            if query.kind == QueryKind.DEVICE and self.readings is not None:
                # the agreement rule: the newest reading from before the attempt's block
                observation = self.readings.observe(
                    query.source, query.path, asked_at=query.deadline - self._timeout
                )
            else:
                observation = await self.fetcher.observe(query.kind, query.source, query.path)
        except (SourceRefused, SourceFailed) as exc:
            self.stats.fetch_failures += 1
            _log.warning("oracle %s: query %d: %s", self.address[:10], query.query_id, exc)
            self._changed.set()
            return
        self.stats.fetched += 1
        assert self.protocol is not None
        self._act(self.protocol.observed(query.query_id, query.attempt, observation))

    async def _read(self) -> None:
        assert self.protocol is not None and self.transport is not None
        async for message in self.connection.messages():
            if self.readings is not None and message.topic.startswith(_DEVICES):
                self._take_reading(message.topic, message.payload)
                continue
            if message.topic != self.transport.inbox:
                continue
            try:
                self._act(self.protocol.receive(message.payload))
            except UserError as exc:
                _log.info("oracle %s: refused a report: %s", self.address[:10], exc)
            self._changed.set()

    def _take_reading(self, topic: str, payload: bytes) -> None:
        book = self.readings
        assert book is not None
        now = self.clock()
        if not book.declares(payload):
            # perhaps registered after the node read the registry: read it again (at most
            # once every `reread_after` seconds), then take what waited, in order
            if self._waiting is None:
                self._waiting = []
                self._spawn(self._reread_declarations(max(0.0, self._reread_at - now)))
            if len(self._waiting) < _MAX_WAITING_READINGS:
                self._waiting.append((topic, payload, now))
                return
        self._accept_reading(topic, payload, now)

    def _accept_reading(self, topic: str, payload: bytes, now: float) -> None:
        assert self.readings is not None
        try:
            self.readings.accept(topic, payload, now=now)
        except UserError as exc:  # counted by the book
            _log.info("oracle %s: refused a reading: %s", self.address[:10], exc)
        self._changed.set()

    async def _reread_declarations(self, delay: float) -> None:
        assert self.readings is not None and self.declarations is not None
        try:
            await asyncio.sleep(delay)
            self._reread_at = self.clock() + self.reread_after
            self.readings.replace_declarations(await self.declarations())
        finally:
            waiting, self._waiting = self._waiting or [], None
            for topic, payload, received in waiting:
                self._accept_reading(topic, payload, received)

    async def _tick(self) -> None:
        assert self.protocol is not None
        interval = max(self.settings.poll_interval, 0.05)
        while True:
            await asyncio.sleep(interval)
            now = self.clock()
            self._act(self.protocol.tick(now + self._chain_offset))
            due = self._fulfills_().any_due(now) or self._expiries_().any_due(now)
            if due and now >= self._retry_at:
                self._spawn(self._submit_due())

    async def _submit_due(self) -> None:
        if self._submitting.locked():
            return  # the running pass picks up what is due
        async with self._submitting:
            for submitter in (self._fulfills_(), self._expiries_()):
                try:
                    await submitter.run_due(self.clock())
                except PervasiveError as exc:
                    self._retry_at = self.clock() + _RETRY_AFTER_FAILURE
                    _log.warning("oracle %s: not sent yet: %s", self.address[:10], exc)
        self._changed.set()

    async def _send_fulfill(self, fulfillment: Fulfillment) -> Receipt:
        receipt = await self.hub.fulfill(fulfillment)
        self.stats.fulfilled.append(receipt)
        return receipt

    async def _send_expiry(self, expiry: Expiry) -> Receipt:
        receipt = await self.hub.expire(expiry.query_id)
        self.stats.expired.append(receipt)
        return receipt

    def _fulfills_(self) -> Submitter[Fulfillment]:
        assert self._fulfills is not None
        return self._fulfills

    def _expiries_(self) -> Submitter[Expiry]:
        assert self._expiries is not None
        return self._expiries

    def _spawn(self, job: Coroutine[Any, Any, None]) -> None:
        self._jobs.spawn(job)


class _HubLogs:
    """The follower's handler: store each hub event, then hand it to the node."""

    def __init__(self, node: OracleNode) -> None:
        self.node = node

    async def deliver(self, log: Log, db: sqlite3.Connection) -> None:
        for event in self.node.hub.decode([log]):
            self.node.record(event, db)
            self.node.take(event)

    async def retract(self, log: Log, db: sqlite3.Connection) -> None:
        # a reorganisation took the event away: a requested query is forgotten, an
        # answered or timed-out one is pending again (the hub's state is the truth)
        for event in self.node.hub.decode([log]):
            if isinstance(event, QueryRequested):
                db.execute(
                    "DELETE FROM oracle_queries WHERE hub = ? AND query_id = ?",
                    (self.node.hub.address, event.query_id),
                )
            elif isinstance(event, QueryAnswered | QueryTimedOut):
                db.execute(
                    "UPDATE oracle_queries SET state = ? WHERE hub = ? AND query_id = ?",
                    (QueryState.PENDING.name.lower(), self.node.hub.address, event.query_id),
                )
