"""What a committee member's sans-I/O state machine asks its adapter to do.

A protocol object takes envelopes and time and returns actions; the adapter carries
them out: :class:`Send` over the member transport (:mod:`pervasive.committee.transport`),
:class:`Submit` through the exactly-once submitter (:mod:`pervasive.committee.submitter`).
Subsystems add their own outcomes beside these (DIVERSITY's ``Agreed`` and ``Dispute``).

Example::

    for action in protocol.receive(payload, now):
        if isinstance(action, Send):
            transport.post(action)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from pervasive.committee.envelope import Envelope

__all__ = ["Send", "Submit"]

T = TypeVar("T")


@dataclass(frozen=True)
class Send:
    """Deliver ``envelope`` (wire form ``envelope.encode()``) to each of ``recipients``."""

    recipients: tuple[str, ...]
    envelope: Envelope


@dataclass(frozen=True)
class Submit(Generic[T]):
    """Send ``transaction`` on-chain for ``round``, exactly once across the committee."""

    round: int
    transaction: T
