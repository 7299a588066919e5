"""Shadow changes as CloudEvents: a :class:`~pervasive.shadow.ShadowService` listener.

Not a chain event: ``source`` is ``urn:pervasive:shadow:<thing>``, ``id`` the shadow
(``classic`` or its name) and its version zero-padded (``classic/000000000007``), so ids
sort by version and a redelivered change is ignored by ``UNIQUE (source, id)``; ``time``
is the change's time. The listener appends to the event log at once (a short SQLite
write on the listener's own connection) and returns; if the follower holds the write
lock just then (its transaction spans an await), the change waits in memory and is
appended a few milliseconds later; ``on_append`` (the publisher's wake-up) is called
after the commit; a change whose data fails the
built-in schema is refused and counted like a chain event.

Example::

    events = ShadowEvents(store, origin="platform")
    shadow_service.add_listener(events.shadow_changed)
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import sqlite3
from collections import Counter
from collections.abc import Callable

from cloudevents.core.v1.event import CloudEvent

from pervasive.interop.declarations import compile_shadow_mapping
from pervasive.interop.envelope import event_topic, shadow_source
from pervasive.interop.errors import EventRefused
from pervasive.interop.mapping import CompiledMapping
from pervasive.interop.store import EventStore, is_locked
from pervasive.shadow import ShadowRecord
from pervasive.store import transaction

__all__ = ["ShadowEvents"]

_log = logging.getLogger(__name__)


class ShadowEvents:
    """Appends each shadow change to ``store`` as a CloudEvent (built-in mapping by default)."""

    def __init__(
        self,
        store: EventStore,
        mapping: CompiledMapping | None = None,
        *,
        on_append: Callable[[], None] | None = None,
        origin: str = "interop",
    ) -> None:
        self.store = store
        self.mapping = mapping or compile_shadow_mapping()
        self.origin = origin
        """The feed's name, stored with each change (its publisher's filter)."""
        self._on_append = on_append
        self._pending: list[tuple[CloudEvent, str]] = []
        self._closed = False
        self.counters: Counter[str] = Counter()
        """``mapped``, ``duplicate``."""
        self.refusals: Counter[str] = Counter()
        """Refused changes by reason (``schema``, ``unmappable``)."""

    def shadow_changed(self, record: ShadowRecord) -> None:
        """The listener: map ``record`` and append it (refusals counted, never raised)."""
        if self._closed:
            return
        fields = {
            "thing": record.key.thing,
            "shadow": record.key.shadow,
            "version": record.version,
            "exists": record.exists,
            "desired": record.desired,
            "reported": record.reported,
            "updated_at": record.updated_at,
        }
        try:
            event = self.mapping.build(
                fields,
                id=f"{record.key.shadow or 'classic'}/{record.version:012d}",
                source=shadow_source(record.key.thing),
                time=dt.datetime.fromtimestamp(record.updated_at, dt.UTC),
            )
        except EventRefused as exc:
            self.refusals[exc.reason] += 1
            _log.warning("interop: %s", exc)
            return
        self._pending.append((event, event_topic("shadow", record.key.thing, self.mapping.type)))
        self.flush()

    def flush(self) -> bool:
        """Append the changes not yet appended; ``False`` when the log is locked (retried soon).

        Example: ``events.flush()`` (the listener calls it; tests after a locked write).
        """
        if self._closed:
            return False
        if not self._pending:
            return True
        try:
            with transaction(self.store.db) as db:
                appended = [
                    EventStore.append(db, e, topic=t, origin=self.origin) for e, t in self._pending
                ]
        except sqlite3.OperationalError as exc:
            if not is_locked(exc):
                raise
            self._retry_soon()
            return False
        self._pending.clear()
        for seq in appended:
            self.counters["mapped" if seq is not None else "duplicate"] += 1
        if any(seq is not None for seq in appended) and self._on_append is not None:
            self._on_append()
        return True

    def close(self) -> None:
        """Stop appending (the store is closing); changes still waiting are dropped.

        Example: ``events.close(); store.close()``.
        """
        self._closed = True
        self._pending.clear()

    def _retry_soon(self) -> None:
        with contextlib.suppress(RuntimeError):  # no running loop: the next change flushes
            asyncio.get_running_loop().call_later(0.01, self.flush)
