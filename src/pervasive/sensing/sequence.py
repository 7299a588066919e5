"""Per-sensor sequence tracking: replays, gaps, and rejection counters (paper 002, section 3).

"A sequence number is used to totally order the sensor messages": the trace
``Y_s = m_{s,0} ... m_{s,q} ...`` of each sensor. An intermediate node accepts each
``q`` at most once (a second copy raises :class:`ReplayedMessage`). A message that
arrives ahead of a missing one is held; if the missing one has not come after
``gap_timeout`` seconds, a :class:`GapEvent` reports it and the held messages are
released. Time is an explicit input (``now``), so the tracker never waits on its own.

:class:`SensorInbox` puts verification (schema, signature) and tracking together and
counts every rejection by reason.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from pervasive.errors import InvalidInput, InvalidSignature, ReplayedMessage, SchemaViolation
from pervasive.sensing.declaration import SensorDeclaration
from pervasive.sensing.message import SensorMessage, decode_sensor_message, verify_sensor_message

__all__ = ["GapEvent", "InboxResult", "SensorInbox", "SequenceTracker"]


@dataclass(frozen=True)
class GapEvent:
    """Messages ``first..last`` (inclusive) of ``sensor`` never arrived within the timeout."""

    sensor: str
    first: int
    last: int


@dataclass
class _Trace:
    start: int
    next_sequence: int
    held: dict[int, SensorMessage] = field(default_factory=dict)
    waiting_since: float | None = None
    skipped: list[tuple[int, int]] = field(default_factory=list)


class SequenceTracker:
    """Orders each sensor's messages by ``q``, starting at the agreement's start point ``q_{s,0}``.

    Example::

        tracker = SequenceTracker({sensor: 0}, gap_timeout=5.0)
        tracker.accept(m0, now=0.0)   # [m0]
        tracker.accept(m2, now=1.0)   # [] (held: m1 missing)
        tracker.expire(now=6.0)       # ([GapEvent(sensor, 1, 1)], [m2])
    """

    def __init__(
        self, start_points: Mapping[str, int], *, gap_timeout: float, max_ahead: int = 100_000
    ):
        self._traces = {sensor: _Trace(q0, q0) for sensor, q0 in start_points.items()}
        self.gap_timeout = gap_timeout
        self.max_ahead = max_ahead
        self.late = 0
        """Messages that arrived after their gap had been reported (dropped, counted)."""
        self.before_start = 0
        """Messages older than the agreement's start point ``q_{s,0}`` (ignored, counted)."""

    def next_sequence(self, sensor: str) -> int:
        """The next ``q`` expected from ``sensor``."""
        return self._trace(sensor).next_sequence

    def _trace(self, sensor: str) -> _Trace:
        try:
            return self._traces[sensor]
        except KeyError:
            raise SchemaViolation(f"sensor {sensor} is not part of this agreement") from None

    def accept(self, message: SensorMessage, now: float) -> list[SensorMessage]:
        """Take one (already verified) message; return the messages now deliverable in order.

        Raises :class:`ReplayedMessage` if ``q`` was accepted (or is held) already.
        A message below the start point, or inside a reported gap, returns ``[]``.
        """
        trace = self._trace(message.sensor)
        q = message.sequence
        if q < trace.start:
            self.before_start += 1
            return []
        if q < trace.next_sequence and self._in_gap(trace, q):
            self.late += 1
            return []
        if q < trace.next_sequence or q in trace.held:
            raise ReplayedMessage(f"sensor {message.sensor} already sent sequence number {q}")
        if q - trace.next_sequence > self.max_ahead:
            raise InvalidInput(
                f"sensor {message.sensor} jumped to q={q}, expected {trace.next_sequence}"
            )
        trace.held[q] = message
        if q != trace.next_sequence and trace.waiting_since is None:
            trace.waiting_since = now
        return self._release(trace)

    @staticmethod
    def _in_gap(trace: _Trace, q: int) -> bool:
        return any(first <= q <= last for first, last in trace.skipped)

    def _release(self, trace: _Trace) -> list[SensorMessage]:
        out = []
        while trace.next_sequence in trace.held:
            out.append(trace.held.pop(trace.next_sequence))
            trace.next_sequence += 1
        trace.waiting_since = None if not trace.held else trace.waiting_since
        return out

    def expire(self, now: float) -> tuple[list[GapEvent], list[SensorMessage]]:
        """Report gaps older than ``gap_timeout`` and release the messages held behind them.

        Example: ``gaps, released = tracker.expire(now=clock())``.
        """
        gaps: list[GapEvent] = []
        released: list[SensorMessage] = []
        for sensor, trace in self._traces.items():
            while trace.held and trace.waiting_since is not None:
                if now - trace.waiting_since < self.gap_timeout:
                    break
                first_held = min(trace.held)
                gap = GapEvent(sensor, trace.next_sequence, first_held - 1)
                gaps.append(gap)
                trace.skipped.append((gap.first, gap.last))
                trace.next_sequence = first_held
                released.extend(self._release(trace))
                if trace.held:
                    trace.waiting_since = now
        return gaps, released


@dataclass(frozen=True)
class InboxResult:
    """What one input produced: messages now in order, and gaps now reported."""

    delivered: tuple[SensorMessage, ...] = ()
    gaps: tuple[GapEvent, ...] = ()


class SensorInbox:
    """Verify, de-duplicate and order sensor messages; count rejections by reason.

    ``rejections`` counts ``"schema"``, ``"signature"``, ``"replay"`` and ``"malformed"``.

    Example::

        inbox = SensorInbox([decl], {decl.address: 0}, gap_timeout=5.0)
        inbox.receive(raw_bytes, now=0.0).delivered
    """

    def __init__(
        self,
        declarations: Iterable[SensorDeclaration],
        start_points: Mapping[str, int],
        *,
        gap_timeout: float,
    ) -> None:
        self.declarations = {d.address: d for d in declarations}
        self.tracker = SequenceTracker(start_points, gap_timeout=gap_timeout)
        self.rejections: collections.Counter[str] = collections.Counter()
        self.accepted = 0

    def receive(self, message: SensorMessage | bytes, now: float) -> InboxResult:
        """Verify one message and track it; re-raises the rejection after counting it.

        Raises :class:`SchemaViolation`, :class:`InvalidSignature`, :class:`ReplayedMessage`
        or :class:`InvalidInput` (undecodable bytes).
        """
        try:
            parsed = decode_sensor_message(message) if isinstance(message, bytes) else message
            declaration = self.declarations.get(parsed.sensor)
            if declaration is None:
                raise SchemaViolation(f"sensor {parsed.sensor} is not declared in this agreement")
            verify_sensor_message(parsed, declaration)
            delivered = self.tracker.accept(parsed, now)
        except SchemaViolation:
            self.rejections["schema"] += 1
            raise
        except InvalidSignature:
            self.rejections["signature"] += 1
            raise
        except ReplayedMessage:
            self.rejections["replay"] += 1
            raise
        except InvalidInput:
            self.rejections["malformed"] += 1
            raise
        self.accepted += 1
        return InboxResult(delivered=tuple(delivered))

    def tick(self, now: float) -> InboxResult:
        """Advance time: report expired gaps and deliver what was held behind them."""
        gaps, released = self.tracker.expire(now)
        return InboxResult(delivered=tuple(released), gaps=tuple(gaps))
