"""Per-window state of a node, and how a node's messages for a window are signed and kept.

A node runs one round per window ``t`` (paper 002, section 3). :class:`Round` is what
it knows of that round; :class:`RoundMessenger` signs each outgoing message in the
committee envelope (fresh nonce, see :class:`~pervasive.committee.EnvelopeSigner`),
counts it, and keeps what a round sent so that retries and late answers resend the
same bodies. Both are plain state: the phases (``commit_reveal.py``, ``compact.py``,
``update_exchange.py``) change them and return actions.
"""

from __future__ import annotations

import collections
import enum
from dataclasses import dataclass, field

from pervasive.committee import EnvelopeSigner, Received, Send
from pervasive.offchain.bodies import Body, MessageKind
from pervasive.offchain.journal import JournalEntry
from pervasive.offchain.outcomes import Agreed
from pervasive.offchain.signed import SignedProof, SignedReveal
from pervasive.offchain.window import WindowArray

__all__ = ["MessageStats", "Outgoing", "Phase", "Round", "RoundMessenger"]


class Phase(enum.Enum):
    """Where a node is in window ``t``."""

    WAITING = "waiting"
    """The node has not built ``w_i[t]`` yet; inbound messages are buffered."""
    COMMITTING = "committing"
    """Proof of computation: collecting every node's signature on every proof."""
    REVEALING = "revealing"
    """Agreement checking: own reveal sent, waiting for everyone else's."""
    AGREED = "agreed"
    DISPUTED = "disputed"


@dataclass
class MessageStats:
    """Counters for the benchmark and for operators."""

    sent: collections.Counter[str] = field(default_factory=collections.Counter)
    """Messages sent, by kind (a broadcast counts once per recipient: point-to-point)."""
    received: int = 0
    rejected: collections.Counter[str] = field(default_factory=collections.Counter)
    """Inbound messages refused: ``malformed``, ``signature``, ``replay``, ``late``."""
    retries: int = 0

    @property
    def deliveries(self) -> int:
        """Total point-to-point messages sent."""
        return sum(self.sent.values())


Outgoing = tuple[tuple[str, ...], MessageKind, bytes]
"""``(recipients, kind, body)`` of a message a round sent (resent on retries)."""


@dataclass
class Round:
    """What a node knows of window ``t``."""

    t: int
    phase: Phase = Phase.WAITING
    entry: JournalEntry | None = None
    """The journalled commitment (secret, result, window hash) once the window is built."""
    window: WindowArray | None = None
    proofs: dict[str, SignedProof] = field(default_factory=dict)
    reveals: dict[str, SignedReveal] = field(default_factory=dict)
    buffered: list[Received[Body]] = field(default_factory=list)
    """Messages that arrived before ``w_i[t]`` was built."""
    outbox: list[Outgoing] = field(default_factory=list)
    bundle_sent: bool = False
    complete_sent: bool = False
    answered: set[str] = field(default_factory=set)
    """Peers already answered once after this round closed."""
    retries: int = 0
    deadline: float = 0.0
    agreed: Agreed | None = None
    """The agreement reached in this process, once every reveal matched."""
    packed: bytes = b""
    """``w[t]`` packed for the contract under on-chain proof of storage, else empty."""

    @property
    def closed(self) -> bool:
        """Agreed or disputed."""
        return self.phase in (Phase.AGREED, Phase.DISPUTED)


class RoundMessenger:
    """Signs a node's messages, counts them, and remembers what each round sent."""

    def __init__(self, signer: EnvelopeSigner, stats: MessageStats) -> None:
        self.signer = signer
        self.stats = stats

    def send(
        self, round_: Round, recipients: tuple[str, ...], kind: MessageKind, body: bytes
    ) -> list[Send]:
        """Send a message of ``round_`` and keep it for retries."""
        round_.outbox.append((recipients, kind, body))
        return [self.emit(round_.t, recipients, kind, body)]

    def resend(self, round_: Round, outgoing: Outgoing, to: tuple[str, ...] | None = None) -> Send:
        """Sign a kept message again (fresh nonce), to its recipients or to ``to``."""
        recipients, kind, body = outgoing
        return self.emit(round_.t, recipients if to is None else to, kind, body)

    def emit(self, t: int, recipients: tuple[str, ...], kind: MessageKind, body: bytes) -> Send:
        """Sign a message for window ``t`` with a fresh nonce and count it (not kept)."""
        self.stats.sent[kind.name] += len(recipients)
        return Send(recipients, self.signer.sign(t, kind, body))
