"""Window retention by quality of service (paper 002, section 2), in SQLite.

"In the no-proof of storage service, window data are discarded after the unanimous
off-chain computation is reached. When a dispute is detected data are locally stored
at the intermediate nodes for dispute resolution. [...] In the off-chain proof
storage service, all data are locally stored by the intermediate nodes. When on-chain
proof of storage is used data are stored on the on-chain contract when computation
is not null or a dispute emerges."

:class:`WindowStore` keeps every window a node builds until its fate is known, then:

============== =================== ========================= ===================
QoS            agreed              disputed                  update published
============== =================== ========================= ===================
NO_PROOF       data dropped        kept                      (nothing to do)
OFFCHAIN_PROOF kept, served        kept                      kept
ONCHAIN_PROOF  kept until published kept                      dropped (on-chain)
============== =================== ========================= ===================

A window with a null result is never published, so under ONCHAIN_PROOF it is dropped
as soon as it is agreed. Served windows are checked against ``H(w[t])`` by the asker
with :func:`verify_window`.
"""

from __future__ import annotations

import enum
import sqlite3
from pathlib import Path

from pervasive.domain import QoS
from pervasive.errors import InvalidInput, NotFound
from pervasive.offchain.agreement import AgreementSpec
from pervasive.offchain.outcomes import Action, Agreed, Dispute
from pervasive.offchain.window import WindowArray, decode_window_array
from pervasive.store import attach

__all__ = ["WindowStatus", "WindowStore", "verify_window"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS offchain_windows (
    agreement TEXT NOT NULL,
    t INTEGER NOT NULL,
    window_hash BLOB NOT NULL,
    status TEXT NOT NULL,
    data BLOB,
    PRIMARY KEY (agreement, t)
);
"""


class WindowStatus(enum.StrEnum):
    """Where a stored window stands (the value is what the table holds)."""

    PENDING = "pending"
    """Built here; the round is still running."""
    AGREED = "agreed"
    DISPUTED = "disputed"
    PUBLISHED = "published"
    """Its update is on-chain (ONCHAIN_PROOF then drops the data: the chain has it)."""


def verify_window(windows: WindowArray, expected_hash: bytes) -> WindowArray:
    """Return ``windows`` if ``H(w[t])`` is ``expected_hash``; :class:`InvalidInput` otherwise.

    Example: ``verify_window(served, agreed.window_hash)``.
    """
    if windows.hash != expected_hash:
        raise InvalidInput(
            f"window {windows.t} hashes to 0x{windows.hash.hex()}, expected 0x{expected_hash.hex()}"
        )
    return windows


class WindowStore:
    """The node's windows, kept or dropped according to the agreement's QoS.

    Example::

        store = WindowStore(settings.path("node.sqlite"), spec)
        store.put(window_array)
        for action in node.start_window(window_array, now):
            store.record(action)
    """

    def __init__(self, path: Path | str | sqlite3.Connection, agreement: AgreementSpec) -> None:
        self._db = attach(path, _SCHEMA)
        self.agreement = agreement
        self.qos = agreement.qos

    def put(self, windows: WindowArray) -> None:
        """Store ``w[t]`` as built by this node (a second put of the same ``t`` is ignored)."""
        self._db.execute(
            "INSERT OR IGNORE INTO offchain_windows (agreement, t, window_hash, status, data) "
            "VALUES (?, ?, ?, ?, ?)",
            (
                self.agreement.address, windows.t, windows.hash, WindowStatus.PENDING.value,
                windows.encode(),
            ),
        )  # fmt: skip

    def record(self, action: Action) -> None:
        """Apply the retention rule for a protocol outcome (other actions are ignored)."""
        if isinstance(action, Agreed):
            self.mark_agreed(action.t, published_later=action.result is not None)
        elif isinstance(action, Dispute):
            self.mark_disputed(action.t)

    def mark_agreed(self, t: int, *, published_later: bool = True) -> None:
        """Window ``t`` reached unanimity; ``published_later`` is False for a null result."""
        drop = self.qos is QoS.NO_PROOF or (self.qos is QoS.ONCHAIN_PROOF and not published_later)
        self._set(t, WindowStatus.AGREED, drop=drop)

    def mark_disputed(self, t: int) -> None:
        """Window ``t`` is disputed: its data is kept at every QoS level."""
        self._set(t, WindowStatus.DISPUTED, drop=False)

    def mark_published(self, t: int) -> None:
        """The update of ``t`` is on-chain (call after its receipt); ONCHAIN_PROOF drops it."""
        if self.qos is QoS.ONCHAIN_PROOF:
            self._set(t, WindowStatus.PUBLISHED, drop=True, only_if=WindowStatus.AGREED)

    def _set(
        self,
        t: int,
        status: WindowStatus,
        *,
        drop: bool,
        only_if: WindowStatus | None = None,
    ) -> None:
        """Move ``t`` to ``status`` (a disputed window stays disputed, its data kept)."""
        guard = None if only_if is None else only_if.value
        self._db.execute(
            "UPDATE offchain_windows SET status = ?, data = CASE WHEN ? THEN NULL ELSE data END "
            "WHERE agreement = ? AND t = ? AND status != ? AND (? IS NULL OR status = ?)",
            (
                status.value, int(drop), self.agreement.address, t,
                WindowStatus.DISPUTED.value, guard, guard,
            ),
        )  # fmt: skip

    def status(self, t: int) -> WindowStatus:
        """Where window ``t`` stands; :class:`NotFound` if it was never stored."""
        row = self._db.execute(
            "SELECT status FROM offchain_windows WHERE agreement = ? AND t = ?",
            (self.agreement.address, t),
        ).fetchone()
        if row is None:
            raise NotFound(f"window {t} of {self.agreement.address} was never stored")
        return WindowStatus(str(row[0]))

    def serve(self, t: int) -> WindowArray:
        """The stored ``w[t]`` (to answer a request); :class:`NotFound` if it was dropped.

        Example: ``verify_window(store.serve(7), agreed.window_hash)``.
        """
        row = self._db.execute(
            "SELECT window_hash, data FROM offchain_windows WHERE agreement = ? AND t = ?",
            (self.agreement.address, t),
        ).fetchone()
        if row is None or row[1] is None:
            raise NotFound(
                f"window {t} is not held: it was never built or QoS {self.qos.name} dropped it"
            )
        windows = decode_window_array(row[1], self.agreement.window)
        return verify_window(windows, row[0])

    def held(self) -> list[int]:
        """Windows whose data is still held, in order."""
        rows = self._db.execute(
            "SELECT t FROM offchain_windows WHERE agreement = ? AND data IS NOT NULL ORDER BY t",
            (self.agreement.address,),
        ).fetchall()
        return [int(r[0]) for r in rows]
