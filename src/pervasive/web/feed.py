"""The live dashboard's feed: the whole platform as rows, and each change as it happens.

Four sources fill the tables of :mod:`~pervasive.web.feed_rows`:

- **devices**: every thing's shadows, pushed the moment the shadow service stores a
  change (:meth:`ShadowService.add_listener` → :meth:`DashboardFeed.shadow_changed`),
  with each device's certificate status from the CA (its listener). Every ``resync``
  seconds the shadow store and the CA index are read again for what other processes
  of the data directory wrote (a shadow service of its own, ``pervasive device register``);
- **agreements** and **orders**: the chain sources of :mod:`~pervasive.web.feed_chain`,
  read every ``interval`` seconds from the block after the last one read, never from
  the start again, except after a reorganisation, which clears their tables and
  rebuilds them from the contracts' deployment blocks.

A node that is down or a reorganisation shows as a line of the ``status`` table; the
feed retries at the next interval. Every change gets an id ``<epoch>.<sequence>``. A
subscriber receives a full :class:`~pervasive.web.feed_rows.Snapshot` first, then
:class:`~pervasive.web.feed_rows.Change` s; one that comes back with the id it saw last
(an EventSource reconnecting) receives only what it missed while the feed still holds
it. Each subscriber has a bounded queue: one that does not read never slows the
platform or the other subscribers; its queue is dropped, and it reads a fresh snapshot
when it reads again.

Example::

    feed = DashboardFeed(ledger, authority=ca, shadows=service.store, book=book,
                         interval=settings.web.dashboard_interval)
    service.add_listener(feed.shadow_changed)
    async with feed, feed.subscribe() as subscription:
        snapshot = await subscription.next()      # then Change after Change
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from pervasive.chain import BlockRef, Ledger
from pervasive.contracts import DeploymentBook
from pervasive.errors import ChainUnavailable, PervasiveError
from pervasive.pki import CertificateAuthority, CertificateKind
from pervasive.shadow import ShadowRecord, ShadowStore
from pervasive.web.feed_chain import AgreementSource, ChainSource, Effect, Note, OrderSource
from pervasive.web.feed_rows import (
    Change,
    EventRow,
    Row,
    Snapshot,
    StatusRow,
    Table,
    clock_text,
    describe_shadow,
    device_key,
    device_row,
)

__all__ = ["DashboardFeed", "FeedLimits", "Subscription"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeedLimits:
    """How much the feed keeps, whatever the size of the platform."""

    rows: int = 500
    """Agreements and sale orders kept (the most recently changed)."""
    devices: int = 2000
    """Rows of shadows and devices; more are counted in ``counters["devices beyond the table"]``."""
    events: int = 200
    """Lines of the recent-events log."""
    history: int = 2000
    """Changes kept for subscribers that come back with their last id."""
    queue: int = 500
    """Changes waiting for one subscriber before it is switched to a fresh snapshot."""
    batch_blocks: int = 2000
    """Blocks per ``eth_getLogs`` range."""


class Subscription:
    """One subscriber: a snapshot first, then changes; it never makes the feed wait."""

    def __init__(self, feed: DashboardFeed, missed: Iterable[Change] | None) -> None:
        self._feed = feed
        self._pending: deque[Change] = deque(missed or ())
        self._resync = missed is None
        self._wake = asyncio.Event()
        self._wake.set()
        self.closed = False

    def offer(self, change: Change) -> None:
        """Queue ``change`` (the feed calls this); a full queue turns into a resync."""
        if self.closed or self._resync:
            return
        if len(self._pending) >= self._feed.limits.queue:
            self.resync()
            self._feed.counters["slow subscriber resynced"] += 1
            return
        self._pending.append(change)
        self._wake.set()

    def resync(self) -> None:
        """Drop what is queued: the next read is a fresh snapshot."""
        self._pending.clear()
        self._resync = True
        self._wake.set()

    async def next(self, timeout: float | None = None) -> Snapshot | Change | None:
        """The next snapshot or change; ``None`` after ``timeout`` seconds, or once closed.

        Example: ``message = await subscription.next(timeout=15)`` (``None``: a keep-alive).
        """
        while not self.closed:
            if self._resync:
                self._resync = False
                return self._feed.snapshot()
            if self._pending:
                return self._pending.popleft()
            self._wake.clear()
            try:
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            except TimeoutError:
                return None
        return None

    def close(self) -> None:
        """Stop receiving; a waiting :meth:`next` returns ``None``."""
        self.closed = True
        self._pending.clear()
        self._wake.set()
        self._feed.unsubscribe(self)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class DashboardFeed:
    """Rows of devices, agreements and sale orders kept up to date; see the module docstring."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        authority: CertificateAuthority | None = None,
        shadows: ShadowStore | None = None,
        book: DeploymentBook | None = None,
        artifacts: Path | None = None,
        interval: float = 0.5,
        resync: float = 5.0,
        limits: FeedLimits | None = None,
    ) -> None:
        self.ledger = ledger
        self.authority = authority
        self.shadows = shadows
        self.interval = interval
        self.resync_interval = resync
        self.limits = limits or FeedLimits()
        self.counters: Counter[str] = Counter()
        """Changes, subscriptions, resyncs, chain failures, reorganisations, refused input."""
        self.sources: tuple[ChainSource, ...] = (
            AgreementSource(ledger, book, artifacts=artifacts),
            OrderSource(ledger, book, artifacts=artifacts, limit=self.limits.rows),
        )
        self._next_block: dict[str, int] = {}
        self._head: BlockRef | None = None
        self._epoch = secrets.token_hex(4)
        self._sequence = 0
        self._history: deque[Change] = deque(maxlen=self.limits.history)
        self._subscriptions: set[Subscription] = set()
        self._tables: dict[Table, OrderedDict[str, Any]] = {
            name: OrderedDict() for name in ("devices", "agreements", "orders", "events", "status")
        }
        self._records: dict[str, ShadowRecord] = {}
        self._certificates: dict[str, str] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._polling = asyncio.Lock()

    # -- life ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Read devices and chain once, then follow them in a task until :meth:`close`.

        Example: ``await feed.start()``.
        """
        if self.authority is not None:
            self.authority.add_listener(self._certificates_changed)
        self.resync()
        await self._poll_guarded()
        self._task = asyncio.create_task(self._run(), name="dashboard feed")

    async def close(self) -> None:
        """Stop following and end every subscription.

        Example: ``await feed.close()``.
        """
        self._stopping.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for subscription in list(self._subscriptions):
            subscription.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _run(self) -> None:
        resynced = time.monotonic()
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval)
            await self._poll_guarded()
            if time.monotonic() - resynced >= self.resync_interval:
                resynced = time.monotonic()
                self.resync()

    # -- subscribers ----------------------------------------------------------------------
    def subscribe(self, last_event_id: str | None = None) -> Subscription:
        """A subscriber: a snapshot first, or just what it missed after ``last_event_id``.

        An id of another feed (a restarted server), older than what the feed holds or
        malformed (counted) gives a snapshot.

        Example: ``feed.subscribe(request.headers.get("last-event-id"))``.
        """
        missed = self._missed(last_event_id) if last_event_id else None
        subscription = Subscription(self, missed)
        self._subscriptions.add(subscription)
        self.counters["subscriptions"] += 1
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Forget ``subscription`` (its :meth:`Subscription.close` calls this)."""
        self._subscriptions.discard(subscription)

    @property
    def subscribers(self) -> int:
        """How many subscriptions are open."""
        return len(self._subscriptions)

    def _missed(self, last_event_id: str) -> list[Change] | None:
        epoch, _, number = last_event_id.partition(".")
        if not number.isdigit() or len(number) > 18:
            self.counters["malformed last event id"] += 1
            return None
        seq = int(number)
        if epoch != self._epoch or seq > self._sequence:
            return None
        if seq == self._sequence:
            return []
        if not self._history or self._history[0].sequence > seq + 1:
            return None  # older than what the feed still holds
        missed = [change for change in self._history if change.sequence > seq]
        return missed if len(missed) <= self.limits.queue else None

    def snapshot(self) -> Snapshot:
        """Every table now: devices by name, the others newest first.

        Example: ``[row.door for row in feed.snapshot().devices]``.
        """
        tables = self._tables
        return Snapshot(
            id=f"{self._epoch}.{self._sequence}",
            devices=tuple(tables["devices"][key] for key in sorted(tables["devices"])),
            agreements=tuple(reversed(tables["agreements"].values())),
            orders=tuple(reversed(tables["orders"].values())),
            events=tuple(reversed(tables["events"].values())),
            status=tuple(tables["status"][key] for key in sorted(tables["status"])),
        )

    def _publish(self, table: Table, key: str, row: Row | None) -> None:
        rows = self._tables[table]
        if row is None:
            if rows.pop(key, None) is None:
                return
        else:
            rows[key] = row
            rows.move_to_end(key)
        self._sequence += 1
        change = Change(f"{self._epoch}.{self._sequence}", table, key, row)
        self._history.append(change)
        self.counters["changes"] += 1
        for subscription in list(self._subscriptions):
            subscription.offer(change)
        if table == "events" and len(rows) > self.limits.events:
            rows.popitem(last=False)  # a log line scrolls away in every browser by itself
        elif table in ("agreements", "orders") and len(rows) > self.limits.rows:
            oldest = next(iter(rows))
            for source in self.sources:
                if source.name == table:
                    source.forget(oldest)
            self._publish(table, oldest, None)

    def _note(self, source: str, subject: str, text: str, block: int | None = None) -> None:
        key = f"e{self._sequence + 1}"
        self._publish("events", key, EventRow(key, clock_text(), source, subject, text, block))

    def _status(self, key: str, ok: bool, text: str) -> None:
        current = self._tables["status"].get(key)
        if current is None or (current.ok, current.text) != (ok, text):
            self._publish("status", key, StatusRow(key, ok, text, clock_text()))

    # -- devices and shadows ---------------------------------------------------------------
    def shadow_changed(self, record: ShadowRecord) -> None:
        """Show a record the shadow service just stored (a shadow service listener).

        Example: ``service.add_listener(feed.shadow_changed)``.
        """
        if self._stopping.is_set():
            return
        key = device_key(record.key)
        previous = self._records.get(key)
        if previous is not None and _order(previous) >= _order(record):
            return  # already shown: the store was read first
        if not self._room_for(key):
            return
        self._records[key] = record
        self._show_device(key)
        self._note("shadow", key, describe_shadow(previous, record))

    def resync(self) -> None:
        """Read the shadow store and the CA again for changes made by other processes.

        Example: ``feed.resync()`` after another process registered a device.
        """
        if self.shadows is not None:
            present = set()
            for shadow_key in self.shadows.things():
                key = device_key(shadow_key)
                present.add(key)
                known = self._records.get(key)
                record = self.shadows.load(shadow_key)
                if record is not None and (known is None or known.version != record.version):
                    self.shadow_changed(record)
            for key in [k for k, r in self._records.items() if r.exists and k not in present]:
                del self._records[key]  # deleted by another process
                self._show_device(key)
            self._status("devices", True, f"shadows in the store: {len(present)}")
        self._certificates_changed()

    def _certificates_changed(self) -> None:
        if self.authority is None or self._stopping.is_set():
            return
        now = datetime.now(UTC)
        latest = {  # certificates() is oldest first: a device's newest certificate wins
            record.common_name: record.status(now).value
            for record in self.authority.certificates()
            if record.kind is CertificateKind.DEVICE
        }
        for thing in sorted(latest):
            status = latest[thing]
            if self._certificates.get(thing) == status or not self._room_for(thing):
                continue
            self._certificates[thing] = status
            keys = [k for k, row in self._tables["devices"].items() if row.thing == thing]
            for key in keys or [thing]:
                self._show_device(key)
            self._note("device", thing, f"certificate {status}")

    def _room_for(self, key: str) -> bool:
        if key in self._tables["devices"] or len(self._tables["devices"]) < self.limits.devices:
            return True
        self.counters["devices beyond the table"] += 1
        return False

    def _show_device(self, key: str) -> None:
        record = self._records.get(key)
        thing, _, shadow = key.partition("/")
        certificate = self._certificates.get(thing, "none")
        if (record is None or not record.exists) and (shadow or certificate == "none"):
            self._publish("devices", key, None)  # neither a shadow nor a certificate now
        else:
            self._publish("devices", key, device_row(key, record, certificate))

    # -- the chain ---------------------------------------------------------------------------
    async def _poll_guarded(self) -> None:
        try:
            await self.poll()
        except ChainUnavailable as exc:
            self.counters["chain unavailable"] += 1
            self._status("chain", False, f"node unreachable, retrying: {exc}")
        except PervasiveError as exc:
            self.counters["chain read failed"] += 1
            _log.warning("dashboard: reading the chain failed: %s", exc)
            self._status("chain", False, f"reading the chain failed, retrying: {exc}")

    async def poll(self) -> None:
        """Read the chain from the block after the last one read up to the head.

        Raises :class:`ChainUnavailable` when the node does not answer; a range only
        counts as read once every request for it answered. Safe to call while the
        feed's task runs (one look at a time).

        Example: ``await feed.poll()`` (the task does this every ``interval`` seconds).
        """
        async with self._polling:
            await self._poll()

    async def _poll(self) -> None:
        head = await self.ledger.block("latest")
        seen = self._head
        if seen is not None:
            still = await self.ledger.block(seen.number) if seen.number <= head.number else None
            if still is None or still.hash != seen.hash:
                self._reorganised(seen.number)
        for source in self.sources:
            await self._follow(source, head.number)
        self._head = head
        self._status("chain", True, f"following block {head.number} (chain {self.ledger.chain_id})")

    async def _follow(self, source: ChainSource, head: int) -> None:
        first = self._next_block.get(source.name)
        if first is None:
            first = await source.locate()
            self._status(source.name, True, source.description)
            if first is None:
                return
        while first <= head:
            last = min(first + self.limits.batch_blocks - 1, head)
            self._apply(await source.read(first, last))
            first = self._next_block[source.name] = last + 1
        self._next_block[source.name] = first

    def _apply(self, effects: Iterable[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Note):
                self._note(effect.source, effect.subject, effect.text, effect.block)
            else:
                self._publish(effect.table, effect.key, effect.row)

    def _reorganised(self, below: int) -> None:
        self.counters["reorganisations"] += 1
        _log.info("dashboard: the chain reorganised at block %d; rebuilding its tables", below)
        for source in self.sources:
            self._tables[source.name].clear()
            source.reset()
        self._next_block.clear()
        self._history.clear()  # a reconnecting browser cannot resume across the rebuild
        for subscription in self._subscriptions:
            subscription.resync()
        self._note("chain", "chain", f"reorganisation at block {below}: tables rebuilt")


def _order(record: ShadowRecord) -> tuple[int, bool]:
    """Which of two records of a shadow is newer: a delete keeps the version it deletes."""
    return record.version, not record.exists
