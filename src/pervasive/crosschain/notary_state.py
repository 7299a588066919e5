"""What a notary member keeps across restarts: its key share and the challenges it knows.

- :class:`KeyRecord`: the outcome of the key generation. The share ``sk_j`` (eq. 4) is
  stored encrypted to the member's own secp256k1 key (ECIES, as the DKG seed is): a
  copied database file does not give the share away. The transcript's CID goes with it.
- :class:`ChallengeRecord`: every challenge the member has seen, with its latest
  verdict, so a restarted member picks up the waiting ones and never decides twice
  what it already signed (the signature journal holds the partials themselves).
- the contracts the committee serves, once deployed and checked.

Tables ``crosschain_keys``, ``crosschain_challenges`` and ``crosschain_contracts``;
all writes go through :func:`pervasive.store.transaction`.

Example::

    state = NotaryState(db, session, key)
    state.save_key(result, transcript_cid)
    record = state.key()            # KeyRecord | None
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from pervasive.crosschain.challenge import Challenge, ChallengeKind, Outcome, Verdict
from pervasive.crosschain.committee_spec import CommitteeContracts
from pervasive.crosschain.dkg_bodies import DkgResult
from pervasive.crypto import PrivateKey
from pervasive.crypto.encryption import decrypt_with, encrypt_to
from pervasive.store import attach, transaction

__all__ = ["ChallengeRecord", "KeyRecord", "NotaryState"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS crosschain_keys (
    session TEXT PRIMARY KEY,
    sealed_share BLOB NOT NULL,
    group_key BLOB NOT NULL,
    threshold INTEGER NOT NULL,
    member_index INTEGER NOT NULL,
    public_shares TEXT NOT NULL,
    qualified TEXT NOT NULL,
    transcript TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS crosschain_contracts (
    session TEXT PRIMARY KEY,
    notary TEXT NOT NULL,
    oracle TEXT NOT NULL,
    user_contract TEXT NOT NULL,
    from_block INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS crosschain_challenges (
    session TEXT NOT NULL,
    id BLOB NOT NULL,
    kind TEXT NOT NULL,
    payment_id BLOB NOT NULL,
    evidence BLOB NOT NULL,
    outcome TEXT,
    reason TEXT NOT NULL DEFAULT '',
    cheater TEXT NOT NULL DEFAULT '',
    victim TEXT NOT NULL DEFAULT '',
    amount TEXT NOT NULL DEFAULT '0',
    ready_at REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (session, id)
);
"""

_SHARE_CONTEXT = b"pervasive.notary.share.v1"
_SELECT = (
    "SELECT kind, payment_id, evidence, outcome, reason, cheater, victim, amount,"
    " ready_at FROM crosschain_challenges WHERE session = ? "
)


@dataclass(frozen=True)
class KeyRecord:
    """A member's key generation outcome and the CID of the published transcript."""

    result: DkgResult
    transcript: str


@dataclass(frozen=True)
class ChallengeRecord:
    """A challenge and this member's latest verdict on it (None: not decided yet)."""

    challenge: Challenge
    verdict: Verdict | None


class NotaryState:
    """One member's durable state in one committee session."""

    def __init__(
        self, database: Path | str | sqlite3.Connection, session: str, key: PrivateKey
    ) -> None:
        self._db = attach(database, _SCHEMA)
        self.session = session
        self._key = key

    # -- the key share --------------------------------------------------------------------
    def save_key(self, result: DkgResult, transcript: str) -> None:
        """Keep the key generation's outcome (the share sealed to the member's own key)."""
        sealed = encrypt_to(
            self._key.public_key, result.share.to_bytes(32, "big"), context=self._context()
        )
        shares = {str(i): pk.hex() for i, pk in result.public_shares.items()}
        with transaction(self._db):
            self._db.execute(
                "INSERT OR IGNORE INTO crosschain_keys VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    self.session,
                    sealed,
                    result.group_key,
                    result.threshold,
                    result.index,
                    json.dumps(shares, sort_keys=True),
                    json.dumps(list(result.qualified)),
                    transcript,
                ),
            )

    def key(self) -> KeyRecord | None:
        """The stored outcome, the share unsealed; None before the key generation ended."""
        row = self._db.execute(
            "SELECT sealed_share, group_key, threshold, member_index, public_shares, qualified,"
            " transcript FROM crosschain_keys WHERE session = ?",
            (self.session,),
        ).fetchone()
        if row is None:
            return None
        sealed, group_key, threshold, index, shares, qualified, transcript = row
        share = int.from_bytes(decrypt_with(self._key, sealed, context=self._context()), "big")
        result = DkgResult(
            group_key=bytes(group_key),
            threshold=int(threshold),
            index=int(index),
            share=share,
            public_shares={int(i): bytes.fromhex(pk) for i, pk in json.loads(shares).items()},
            qualified=tuple(json.loads(qualified)),
        )
        return KeyRecord(result, str(transcript))

    def _context(self) -> bytes:
        return _SHARE_CONTEXT + bytes.fromhex(self.session[2:])

    # -- the contracts ----------------------------------------------------------------------
    def save_contracts(self, contracts: CommitteeContracts) -> None:
        """Remember the (checked) contracts the committee serves."""
        with transaction(self._db):
            self._db.execute(
                "INSERT OR REPLACE INTO crosschain_contracts VALUES (?, ?, ?, ?, ?)",
                (
                    self.session,
                    contracts.notary,
                    contracts.oracle,
                    contracts.user_contract,
                    contracts.from_block,
                ),
            )

    def contracts(self) -> CommitteeContracts | None:
        """The contracts saved by :meth:`save_contracts`, if any."""
        row = self._db.execute(
            "SELECT notary, oracle, user_contract, from_block FROM crosschain_contracts"
            " WHERE session = ?",
            (self.session,),
        ).fetchone()
        return CommitteeContracts(row[0], row[1], row[2], int(row[3])) if row else None

    # -- challenges ---------------------------------------------------------------------------
    def add_challenge(self, challenge: Challenge) -> bool:
        """Record a new challenge; False if this member knows it already."""
        with transaction(self._db):
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO crosschain_challenges (session, id, kind, payment_id,"
                " evidence) VALUES (?, ?, ?, ?, ?)",
                (
                    self.session,
                    challenge.id,
                    challenge.kind.value,
                    challenge.payment_id,
                    challenge.evidence,
                ),
            )
        return cursor.rowcount == 1

    def record_verdict(self, verdict: Verdict) -> None:
        """Store this member's latest verdict on a challenge."""
        with transaction(self._db):
            self._db.execute(
                "UPDATE crosschain_challenges SET outcome = ?, reason = ?, cheater = ?,"
                " victim = ?, amount = ?, ready_at = ? WHERE session = ? AND id = ?",
                (
                    verdict.outcome.value,
                    verdict.reason,
                    verdict.cheater,
                    verdict.victim,
                    str(verdict.amount),
                    verdict.ready_at,
                    self.session,
                    verdict.challenge.id,
                ),
            )

    def challenge(self, challenge_id: bytes) -> ChallengeRecord | None:
        """The record of one challenge."""
        rows = self._challenges("AND id = ?", (challenge_id,))
        return rows[0] if rows else None

    def open_challenges(self) -> list[ChallengeRecord]:
        """Challenges not decided yet or waiting for their deadline."""
        return self._challenges("AND (outcome IS NULL OR outcome = ?)", (Outcome.WAIT.value,))

    def challenges(self) -> list[ChallengeRecord]:
        """Every challenge this member has seen."""
        return self._challenges("", ())

    def _challenges(self, where: str, args: tuple[object, ...]) -> list[ChallengeRecord]:
        # ``where`` is one of this class's literal clauses, never caller input
        query = _SELECT + where + " ORDER BY rowid"
        rows = self._db.execute(query, (self.session, *args)).fetchall()
        out = []
        for kind, payment, evidence, outcome, reason, cheater, victim, amount, ready in rows:
            challenge = Challenge(ChallengeKind(kind), bytes(payment), bytes(evidence))
            verdict = (
                Verdict(
                    challenge,
                    Outcome(outcome),
                    reason,
                    cheater=cheater,
                    victim=victim,
                    amount=int(amount),
                    ready_at=float(ready),
                )
                if outcome
                else None
            )
            out.append(ChallengeRecord(challenge, verdict))
        return out
