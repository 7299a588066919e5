"""The notary committee's threshold-signing session, sans I/O (paper 003, section V, eq. 6-7).

When the committee must sign something (a penalty for a challenge, a release of a
deposit), each member decides on its own which 32-byte message it is: the request id
names the decision (the challenge id, the release id), the message is what the
contract will check. Each member then

1. signs with its share (eq. 6): :meth:`ThresholdSigner.sign` returns its
   :class:`PartialSignature`, the body of an envelope of kind :data:`PARTIAL_SIGNATURE`.
   It is written to the :class:`SignatureJournal` **before** it is returned, so a member
   that restarts sends the same partial again and never signs a second, different
   message under the same request id (two messages would let the committee be played
   against itself: a penalty and its opposite);
2. admits the other members' partials with :meth:`ThresholdSigner.accept`: each is
   checked against the sender's public share (``e(sigma_j, g2) = e(H(m), pk_j)``), so a
   forged partial is refused alone and never spoils the combination;
3. after ``t`` valid partials for the message it agreed to, combines them by Lagrange
   interpolation at zero (eq. 6) and checks the result under the group key (eq. 7).

Refusals raise and are counted in :attr:`ThresholdSigner.refused` by reason:
``unknown_sender`` (:class:`InvalidSignature`), ``duplicate`` (:class:`ReplayedMessage`),
``wrong_message`` (:class:`InvalidInput`: a partial of another message than the one this
member agreed to), ``invalid_partial`` (:class:`PartialSignatureInvalid`), ``overflow``
(:class:`InvalidInput`: too many requests one sender opened first) and, from
:meth:`ThresholdSigner.sign`, ``conflicting_request`` (:class:`ReplayedMessage`).
Partials that arrive before this member signs the request are verified and kept until
it does. Malformed bodies never get here: the envelope receiver decodes them with
:meth:`PartialSignature.decode` and counts them.

Example::

    signer = ThresholdSigner(key, MemorySignatureJournal())
    body = signer.sign(SigningRequest(challenge_id, penalty_message))   # broadcast it
    signature = signer.accept(2, other_body)   # the group signature once t are in, else None
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Protocol

from pervasive.crosschain.errors import PartialSignatureInvalid
from pervasive.crypto import (
    abi_decode,
    abi_encode,
    bls_public_key,
    bls_sign,
    bls_verify,
    combine_signatures,
    verify_public_shares,
)
from pervasive.errors import InternalError, InvalidInput, InvalidSignature, ReplayedMessage
from pervasive.store import attach, transaction

__all__ = [
    "PARTIAL_SIGNATURE",
    "MemorySignatureJournal",
    "PartialSignature",
    "SQLiteSignatureJournal",
    "SignatureJournal",
    "SigningRequest",
    "ThresholdKey",
    "ThresholdSigner",
]

PARTIAL_SIGNATURE: Final = 10
"""The committee envelope kind whose body is a :class:`PartialSignature`."""

_BODY = ["bytes32", "bytes", "bytes"]


@dataclass(frozen=True)
class SigningRequest:
    """What the committee is asked to sign: ``message`` under the 32-byte ``request_id``."""

    request_id: bytes
    message: bytes

    def __post_init__(self) -> None:
        if len(self.request_id) != 32:
            raise InvalidInput(f"a request id is 32 bytes, got {len(self.request_id)}")


@dataclass(frozen=True)
class PartialSignature:
    """A member's partial signature (eq. 6), the body of a :data:`PARTIAL_SIGNATURE` envelope.

    ABI form: ``(bytes32 request_id, bytes message, bytes partial)``.
    """

    request_id: bytes
    message: bytes
    partial: bytes

    def __post_init__(self) -> None:
        if len(self.request_id) != 32:
            raise InvalidInput(f"a request id is 32 bytes, got {len(self.request_id)}")
        if len(self.partial) != 48:
            raise InvalidInput(f"a partial signature is 48 bytes (G1), got {len(self.partial)}")

    @property
    def request(self) -> SigningRequest:
        """The request this partial answers."""
        return SigningRequest(self.request_id, self.message)

    def encode(self) -> bytes:
        """The envelope body. Example: ``PartialSignature.decode(p.encode()) == p``."""
        return abi_encode(_BODY, [self.request_id, self.message, self.partial])

    @classmethod
    def decode(cls, body: bytes) -> PartialSignature:
        """Parse an envelope body; :class:`InvalidInput` unless canonical ABI of the right sizes.

        Example: ``PartialSignature.decode(envelope.body)``.
        """
        request_id, message, partial = abi_decode(_BODY, body)
        return cls(request_id, message, partial)


@dataclass(frozen=True)
class ThresholdKey:
    """One member's view of the group key after the DKG (paper 003 eq. 4-5).

    ``public_shares`` maps every member index (1..n) to ``g2 * sk_index``. Construction
    checks that the share matches this member's public share and that the public shares
    lie on one polynomial of degree ``t-1`` through the group key, so a combination of
    partials that each verify always verifies under ``group_key``.
    """

    index: int
    share: int = field(repr=False)
    public_shares: Mapping[int, bytes]
    threshold: int
    group_key: bytes

    def __post_init__(self) -> None:
        n = len(self.public_shares)
        if not 1 <= self.threshold <= n:
            raise InvalidInput(f"the threshold must be in [1, {n}], got {self.threshold}")
        if set(self.public_shares) != set(range(1, n + 1)):
            raise InvalidInput("public shares must be given for member indices 1..n exactly")
        if self.index not in self.public_shares:
            raise InvalidInput(f"member index {self.index} is not one of 1..{n}")
        if bls_public_key(self.share) != self.public_shares[self.index]:
            raise InvalidInput(f"the share does not match member {self.index}'s public share")
        if not verify_public_shares(self.public_shares, self.threshold, self.group_key):
            raise InvalidInput(
                "the public shares and the group key do not fit one polynomial of degree t-1: "
                "use this committee's DKG result"
            )


class SignatureJournal(Protocol):
    """Durable record of the partials a member gave: one message per request id, forever."""

    def load(self, request_id: bytes) -> tuple[bytes, bytes] | None:
        """``(message, partial)`` signed under ``request_id``, or ``None`` if never signed."""

    def record(self, request_id: bytes, message: bytes, partial: bytes) -> tuple[bytes, bytes]:
        """Store the partial unless the id has one; return the stored ``(message, partial)``."""


class MemorySignatureJournal:
    """A journal that forgets on restart: for tests and members without a disk.

    Example: ``ThresholdSigner(key, MemorySignatureJournal())``.
    """

    def __init__(self) -> None:
        self._rows: dict[bytes, tuple[bytes, bytes]] = {}

    def load(self, request_id: bytes) -> tuple[bytes, bytes] | None:
        """``(message, partial)`` under ``request_id``, if any."""
        return self._rows.get(request_id)

    def record(self, request_id: bytes, message: bytes, partial: bytes) -> tuple[bytes, bytes]:
        """First write wins."""
        return self._rows.setdefault(request_id, (message, partial))


_SCHEMA = """
CREATE TABLE IF NOT EXISTS crosschain_partial_signatures (
    request_id BLOB PRIMARY KEY,
    message BLOB NOT NULL,
    partial BLOB NOT NULL
);
"""


class SQLiteSignatureJournal:
    """The journal in a SQLite table (its own file, or a connection the member shares).

    Example: ``SQLiteSignatureJournal(settings.path("notary.sqlite"))``.
    """

    def __init__(self, database: Path | str | sqlite3.Connection) -> None:
        self._db = attach(database, _SCHEMA)

    def load(self, request_id: bytes) -> tuple[bytes, bytes] | None:
        """``(message, partial)`` under ``request_id``, if any."""
        row = self._db.execute(
            "SELECT message, partial FROM crosschain_partial_signatures WHERE request_id = ?",
            (request_id,),
        ).fetchone()
        return None if row is None else (bytes(row[0]), bytes(row[1]))

    def record(self, request_id: bytes, message: bytes, partial: bytes) -> tuple[bytes, bytes]:
        """First write wins, atomically: two processes racing on one id store one row."""
        with transaction(self._db):
            self._db.execute(
                "INSERT OR IGNORE INTO crosschain_partial_signatures VALUES (?, ?, ?)",
                (request_id, message, partial),
            )
            stored = self.load(request_id)
        if stored is None:
            raise InternalError("a journal row vanished inside its own transaction")
        return stored


@dataclass
class _Session:
    """Partials collected for one request id: by message, so early ones wait for ours."""

    message: bytes | None = None
    partials: dict[bytes, dict[int, bytes]] = field(default_factory=dict)
    signature: bytes | None = None


class ThresholdSigner:
    """One member's threshold-signing sessions (eq. 6-7), keyed by request id.

    ``max_pending`` bounds, per sender, the requests it may open before this member does:
    without it a member could make another one hold unbounded partials.
    """

    def __init__(
        self, key: ThresholdKey, journal: SignatureJournal, *, max_pending: int = 256
    ) -> None:
        self.key = key
        self._journal = journal
        self._max_pending = max_pending
        self._sessions: dict[bytes, _Session] = {}
        self.refused: collections.Counter[str] = collections.Counter()
        """Partials and requests refused, by reason (see the module docstring)."""

    def sign(self, request: SigningRequest) -> PartialSignature:
        """This member's partial for ``request``, journaled before it is returned.

        The same request again (after a restart too) returns the same partial; another
        message under a request id already signed raises :class:`ReplayedMessage` (counted
        as ``conflicting_request``). If this completes ``t`` partials, :meth:`signature`
        returns the group signature.

        Example: ``envelope_body = signer.sign(SigningRequest(rid, message)).encode()``.
        """
        stored = self._journal.load(request.request_id)
        if stored is None:
            partial = bls_sign(self.key.share, request.message)
            stored = self._journal.record(request.request_id, request.message, partial)
        message, partial = stored
        if message != request.message:
            self.refused["conflicting_request"] += 1
            raise ReplayedMessage(
                f"request {request.request_id.hex()} was signed with another message; "
                "a request id is signed once: use a new id for a new decision"
            )
        session = self._sessions.setdefault(request.request_id, _Session())
        if session.message is None:
            session.message = message
            # Partials received early for another message are now known to be wrong.
            for other, by_sender in list(session.partials.items()):
                if other != message:
                    self.refused["wrong_message"] += len(by_sender)
                    del session.partials[other]
        session.partials.setdefault(message, {})[self.key.index] = partial
        self._try_complete(request.request_id, session)
        return PartialSignature(request.request_id, message, partial)

    def accept(self, sender_index: int, body: PartialSignature) -> bytes | None:
        """Admit member ``sender_index``'s partial; the group signature when it completes ``t``.

        Returns the verified group signature exactly once, on the partial that completes
        the set; ``None`` otherwise (also for valid partials that arrive after that).
        Raises on a refusal (see the module docstring), which is counted by reason.

        Example: ``signature = signer.accept(3, PartialSignature.decode(envelope.body))``.
        """
        public_share = self.key.public_shares.get(sender_index)
        if public_share is None or sender_index == self.key.index:
            self.refused["unknown_sender"] += 1
            raise InvalidSignature(
                f"member index {sender_index} is not another member of this committee"
            )
        session = self._sessions.get(body.request_id)
        if session is None:
            if self._pending_from(sender_index) >= self._max_pending:
                self.refused["overflow"] += 1
                raise InvalidInput(
                    f"member {sender_index} has {self._max_pending} requests open that this "
                    "member has not signed: its partial is dropped; it may resend later"
                )
            session = _Session()
        if any(sender_index in by_sender for by_sender in session.partials.values()):
            self.refused["duplicate"] += 1
            raise ReplayedMessage(
                f"member {sender_index} already sent a partial for {body.request_id.hex()}"
            )
        if session.message is not None and body.message != session.message:
            self.refused["wrong_message"] += 1
            raise InvalidInput(
                f"member {sender_index} signs another message for request "
                f"{body.request_id.hex()} than this member agreed to"
            )
        if not bls_verify(public_share, body.message, body.partial):
            self.refused["invalid_partial"] += 1
            raise PartialSignatureInvalid(
                f"the partial of member {sender_index} does not verify against its public share"
            )
        self._sessions[body.request_id] = session
        session.partials.setdefault(body.message, {})[sender_index] = body.partial
        if session.signature is not None:
            return None
        return self._try_complete(body.request_id, session)

    def signature(self, request_id: bytes) -> bytes | None:
        """The group signature of ``request_id`` once ``t`` partials combined, else ``None``.

        Example: ``signer.signature(challenge_id)``.
        """
        session = self._sessions.get(request_id)
        return None if session is None else session.signature

    def _pending_from(self, sender_index: int) -> int:
        return sum(
            1
            for session in self._sessions.values()
            if session.message is None
            and any(sender_index in by_sender for by_sender in session.partials.values())
        )

    def _try_complete(self, request_id: bytes, session: _Session) -> bytes | None:
        if session.message is None or session.signature is not None:
            return None
        partials = session.partials.get(session.message, {})
        if len(partials) < self.key.threshold:
            return None
        chosen = dict(sorted(partials.items())[: self.key.threshold])
        combined = combine_signatures(chosen)
        if not bls_verify(self.key.group_key, session.message, combined):
            # Each partial verified against a public share and the public shares were
            # checked against the group key: reaching this is a bug, not an attack.
            raise InternalError(
                f"verified partials for {request_id.hex()} combine to an invalid signature"
            )
        session.signature = combined
        return combined
