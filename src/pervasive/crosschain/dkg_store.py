"""What a key-generation member persists so that a crash never makes it deal twice (paper 003, V-A).

A :class:`~pervasive.crosschain.dkg.DkgMember` stores, before it sends or acts on
anything: its dealing seed, encrypted to its own secp256k1 key (a key at rest is never
in clear), every envelope it sent and every envelope it admitted (the shares it
received travel inside them, encrypted to it), and the phase it entered. A restarted
member replays them: it draws the same polynomial (``Polynomial.from_seed``), resends
the very same envelopes and reaches the same result. :class:`SQLiteDkgStore` is the
durable port, :class:`MemoryDkgStore` the in-memory one; one test suite runs on both.

Example::

    store = SQLiteDkgStore(settings.path("notary.sqlite"))
    sealed = store.keep_seed(session, me, encrypt_to(my_key.public_key, seed, context=c))
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Protocol

from pervasive.store import attach, transaction

__all__ = ["DkgStore", "MemoryDkgStore", "SQLiteDkgStore"]


class DkgStore(Protocol):
    """What a member persists, per ``(session, member)``, before it acts on it."""

    def keep_seed(self, session: str, member: str, sealed: bytes) -> bytes:
        """Store ``sealed`` unless a seed is already stored; return the stored one."""
        ...

    def record(self, session: str, member: str, direction: str, envelope: bytes) -> None:
        """Append an envelope sent (``"out"``) or admitted (``"in"``), in wire form."""
        ...

    def messages(self, session: str, member: str) -> list[tuple[str, bytes]]:
        """Every recorded ``(direction, envelope)``, oldest first."""
        ...

    def set_phase(self, session: str, member: str, phase: str) -> None:
        """Remember the phase the member entered."""
        ...

    def phase(self, session: str, member: str) -> str | None:
        """The last phase entered, or None before the first."""
        ...


class MemoryDkgStore:
    """:class:`DkgStore` in memory: tests, and members that accept redoing a lost DKG."""

    def __init__(self) -> None:
        self._seeds: dict[tuple[str, str], bytes] = {}
        self._messages: dict[tuple[str, str], list[tuple[str, bytes]]] = {}
        self._phases: dict[tuple[str, str], str] = {}

    def keep_seed(self, session: str, member: str, sealed: bytes) -> bytes:
        """See :meth:`DkgStore.keep_seed`."""
        return self._seeds.setdefault((session, member), sealed)

    def record(self, session: str, member: str, direction: str, envelope: bytes) -> None:
        """See :meth:`DkgStore.record`."""
        self._messages.setdefault((session, member), []).append((direction, envelope))

    def messages(self, session: str, member: str) -> list[tuple[str, bytes]]:
        """See :meth:`DkgStore.messages`."""
        return list(self._messages.get((session, member), []))

    def set_phase(self, session: str, member: str, phase: str) -> None:
        """See :meth:`DkgStore.set_phase`."""
        self._phases[(session, member)] = phase

    def phase(self, session: str, member: str) -> str | None:
        """See :meth:`DkgStore.phase`."""
        return self._phases.get((session, member))


_SCHEMA = """
CREATE TABLE IF NOT EXISTS dkg_seeds (
    session TEXT NOT NULL, member TEXT NOT NULL, sealed BLOB NOT NULL,
    PRIMARY KEY (session, member)
);
CREATE TABLE IF NOT EXISTS dkg_messages (
    session TEXT NOT NULL, member TEXT NOT NULL, seq INTEGER NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('in', 'out')), envelope BLOB NOT NULL,
    PRIMARY KEY (session, member, seq)
);
CREATE TABLE IF NOT EXISTS dkg_phases (
    session TEXT NOT NULL, member TEXT NOT NULL, phase TEXT NOT NULL,
    PRIMARY KEY (session, member)
);
"""


class SQLiteDkgStore:
    """:class:`DkgStore` in SQLite; each write is one transaction, durable before it returns.

    Example: ``SQLiteDkgStore(settings.path("notary.sqlite"))``.
    """

    def __init__(self, database: Path | str | sqlite3.Connection) -> None:
        self._db = attach(database, _SCHEMA)

    def keep_seed(self, session: str, member: str, sealed: bytes) -> bytes:
        """See :meth:`DkgStore.keep_seed`."""
        with transaction(self._db):
            self._db.execute(
                "INSERT OR IGNORE INTO dkg_seeds (session, member, sealed) VALUES (?, ?, ?)",
                (session, member, sealed),
            )
            row = self._db.execute(
                "SELECT sealed FROM dkg_seeds WHERE session = ? AND member = ?", (session, member)
            ).fetchone()
        return bytes(row[0])

    def record(self, session: str, member: str, direction: str, envelope: bytes) -> None:
        """See :meth:`DkgStore.record`."""
        with transaction(self._db):
            self._db.execute(
                "INSERT INTO dkg_messages (session, member, seq, direction, envelope) "
                "SELECT ?, ?, COALESCE(MAX(seq), 0) + 1, ?, ? FROM dkg_messages "
                "WHERE session = ? AND member = ?",
                (session, member, direction, envelope, session, member),
            )

    def messages(self, session: str, member: str) -> list[tuple[str, bytes]]:
        """See :meth:`DkgStore.messages`."""
        rows = self._db.execute(
            "SELECT direction, envelope FROM dkg_messages WHERE session = ? AND member = ? "
            "ORDER BY seq",
            (session, member),
        ).fetchall()
        return [(str(d), bytes(e)) for d, e in rows]

    def set_phase(self, session: str, member: str, phase: str) -> None:
        """See :meth:`DkgStore.set_phase`."""
        with transaction(self._db):
            self._db.execute(
                "INSERT INTO dkg_phases (session, member, phase) VALUES (?, ?, ?) "
                "ON CONFLICT (session, member) DO UPDATE SET phase = excluded.phase",
                (session, member, phase),
            )

    def phase(self, session: str, member: str) -> str | None:
        """See :meth:`DkgStore.phase`."""
        row = self._db.execute(
            "SELECT phase FROM dkg_phases WHERE session = ? AND member = ?", (session, member)
        ).fetchone()
        return None if row is None else str(row[0])
