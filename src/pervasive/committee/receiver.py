"""Admission of inbound envelopes: who sent it, was it seen before, what does it say.

Every envelope a member receives goes through one :class:`EnvelopeReceiver` before any
protocol logic sees it:

1. decode the wire form (``malformed`` otherwise);
2. the session must be this one, the sender another member (or an allowed outsider,
   e.g. a party asking for data), the signature the sender's (``signature``);
3. its digest must not have been seen in its round (``replay``): nonces never repeat
   for an honest member (:mod:`pervasive.committee.nonces`), so a second copy is a
   duplicate delivery or a replay attack;
4. the body is decoded **once** into the subsystem's typed body (``malformed``), and the
   protocol gets :class:`Received` with both.

Each refusal raises (:class:`InvalidInput`, :class:`InvalidSignature`,
:class:`ReplayedMessage`) and is counted in :attr:`EnvelopeReceiver.rejected` by reason.
Replay sets are kept for the last ``retained_rounds`` rounds; an envelope for a round
older than that is refused as ``late``.

Example::

    receiver = EnvelopeReceiver(domain, session, members=nodes, me=me, decode_body=decode)
    received = receiver.accept(payload)       # Received(envelope, body)
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from pervasive.committee.envelope import Envelope, decode_envelope
from pervasive.errors import InvalidInput, InvalidSignature, ReplayedMessage

__all__ = ["EnvelopeReceiver", "Received"]

B = TypeVar("B")


@dataclass(frozen=True)
class Received(Generic[B]):
    """An admitted envelope and its body, decoded once."""

    envelope: Envelope
    body: B

    @property
    def sender(self) -> str:
        """The member that signed it."""
        return self.envelope.sender

    @property
    def round(self) -> int:
        """The protocol round it belongs to."""
        return self.envelope.round


class EnvelopeReceiver(Generic[B]):
    """Checks, deduplicates and decodes the envelopes of one session for one member."""

    def __init__(
        self,
        domain: bytes,
        session: str,
        *,
        senders: Iterable[str],
        decode_body: Callable[[Envelope], B],
        retained_rounds: int = 256,
    ) -> None:
        self.domain = domain
        self.session = session
        self.senders = frozenset(senders)
        self._decode_body = decode_body
        self._retained = retained_rounds
        self._seen: dict[int, set[bytes]] = {}
        self._newest = -1
        self.received = 0
        self.rejected: collections.Counter[str] = collections.Counter()
        """Envelopes refused, by reason: ``malformed``, ``signature``, ``replay``, ``late``."""

    def accept(self, data: bytes | Envelope) -> Received[B]:
        """Admit one envelope (wire bytes or decoded) and decode its body; raise otherwise."""
        self.received += 1
        try:
            envelope = decode_envelope(data) if isinstance(data, bytes) else data
            if envelope.session != self.session:
                raise InvalidInput(f"message is for session {envelope.session}, not this one")
            if envelope.sender not in self.senders:
                raise InvalidSignature(f"{envelope.sender} may not send in this session")
            digest = envelope.verify(self.domain)
        except InvalidSignature:
            self.rejected["signature"] += 1
            raise
        except InvalidInput:
            self.rejected["malformed"] += 1
            raise
        seen = self._seen_in(envelope.round)
        if digest in seen:
            self.rejected["replay"] += 1
            raise ReplayedMessage(
                f"message {digest.hex()[:16]} from {envelope.sender} was seen before"
            )
        seen.add(digest)
        try:
            body = self._decode_body(envelope)
        except InvalidInput:
            self.rejected["malformed"] += 1
            raise
        return Received(envelope, body)

    def _seen_in(self, round_: int) -> set[bytes]:
        if round_ < self._newest - self._retained:
            self.rejected["late"] += 1
            raise ReplayedMessage(f"round {round_} is too old to be accepted again")
        if round_ > self._newest:
            self._newest = round_
            for old in [r for r in self._seen if r < round_ - self._retained]:
                del self._seen[old]
        return self._seen.setdefault(round_, set())
