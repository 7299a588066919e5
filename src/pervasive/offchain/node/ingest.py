"""The node's sensor side, sans I/O: verify, order, and cut messages into windows ``w[t]``.

Paper 002, section 3: an intermediate node checks every ``m_{s,q}`` (signature,
declaration, sequence), then organises each sensor's trace ``Y_s`` into the windows
``w_s(t) = w(s, q_0 + t*sl, z)`` and the arrays ``w[t]``. :class:`SensorPipeline` chains

    SensorVerifier  ->  SequenceTracker  ->  WindowBuilder

and counts what it refuses. A missing message is waited for up to ``gap_timeout``
seconds (time is an input, :meth:`SensorPipeline.tick`), then reported as a gap and
left out of its window (its leaf becomes ``bytes32(0)``, so the window hash tells the
other nodes). A replay or a forgery is rejected and counted, never applied.

A restarted node resumes at window ``first_t`` (the first one it has not closed):
the tracker starts each sensor at that window's first sequence number, and the
messages it had logged are fed in again with :meth:`SensorPipeline.receive`.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from dataclasses import dataclass, field

from pervasive.errors import InvalidInput, InvalidSignature, ReplayedMessage, SchemaViolation
from pervasive.offchain.agreement import AgreementSpec
from pervasive.offchain.window import WindowArray, WindowBuilder
from pervasive.sensing.sequence import GapEvent, SequenceTracker
from pervasive.sensing.verifier import SensorVerifier, VerifiedSensorMessage

__all__ = ["REJECTION_REASONS", "IngestResult", "SensorPipeline"]

REJECTION_REASONS = ("schema", "signature", "replay", "malformed")


@dataclass(frozen=True)
class IngestResult:
    """What a batch produced: messages accepted now, windows completed, gaps reported."""

    accepted: tuple[VerifiedSensorMessage, ...] = ()
    windows: tuple[WindowArray, ...] = ()
    gaps: tuple[GapEvent, ...] = ()
    rejected: tuple[tuple[str, str], ...] = ()
    """``(reason, text)`` of every refused input (reasons as in ``SensorPipeline.rejections``)."""


@dataclass
class _Batch:
    accepted: list[VerifiedSensorMessage] = field(default_factory=list)
    windows: list[WindowArray] = field(default_factory=list)
    gaps: list[GapEvent] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)

    def result(self) -> IngestResult:
        return IngestResult(
            tuple(self.accepted), tuple(self.windows), tuple(self.gaps), tuple(self.rejected)
        )


class SensorPipeline:
    """Verify, order and window the sensor messages of one agreement.

    ``rejections`` counts ``schema`` (undeclared sensor, wrong kind or values),
    ``signature`` (forgery), ``replay`` (a sequence number seen before) and
    ``malformed`` (undecodable bytes).

    Example::

        pipeline = SensorPipeline(spec, gap_timeout=5.0)
        result = pipeline.receive_many(payloads, now=clock())
        for w in result.windows:
            node.start_window(w, now=clock())
    """

    def __init__(self, agreement: AgreementSpec, *, gap_timeout: float, first_t: int = 0) -> None:
        if gap_timeout <= 0:
            raise InvalidInput("the gap timeout must be positive")
        self.agreement = agreement
        spec = agreement.window
        starts = {s: spec.range_of(i, first_t).start for i, s in enumerate(spec.sensors)}
        self.verifier = SensorVerifier(agreement.sensors)
        self.tracker = SequenceTracker(starts, gap_timeout=gap_timeout)
        self.builder = WindowBuilder(spec, next_t=first_t)
        self.accepted = 0
        self.rejections: collections.Counter[str] = collections.Counter(
            dict.fromkeys(REJECTION_REASONS, 0)
        )
        self.gaps: list[GapEvent] = []

    @property
    def next_t(self) -> int:
        """The next window the builder will emit."""
        return self.builder.next_t

    def receive(self, payload: bytes, now: float) -> IngestResult:
        """Take one message in wire form (rejections are counted and listed, not raised).

        Example: ``pipeline.receive(m.encode(), now=0.0).accepted``.
        """
        return self.receive_many((payload,), now)

    def receive_many(self, payloads: Iterable[bytes], now: float) -> IngestResult:
        """Take a batch of wire-form messages; return what they produced.

        Example: ``len(pipeline.receive_many(batch, now).windows)``.
        """
        batch = _Batch()
        for payload in payloads:
            try:
                message = self.verifier.verify(payload)
                delivered = self.tracker.accept(message, now)
            except SchemaViolation as exc:
                self._reject(batch, "schema", exc)
                continue
            except InvalidSignature as exc:
                self._reject(batch, "signature", exc)
                continue
            except ReplayedMessage as exc:
                self._reject(batch, "replay", exc)
                continue
            except InvalidInput as exc:
                self._reject(batch, "malformed", exc)
                continue
            self.accepted += 1
            batch.accepted.append(message)
            for ready in delivered:
                batch.windows.extend(self.builder.add(ready))
        return batch.result()

    def tick(self, now: float) -> IngestResult:
        """Advance time: report gaps older than the timeout and close the windows they held.

        Example: ``pipeline.tick(now=clock()).gaps``.
        """
        batch = _Batch()
        gaps, released = self.tracker.expire(now)
        for gap in gaps:
            self.gaps.append(gap)
            batch.gaps.append(gap)
            batch.windows.extend(
                self.builder.mark_missing(gap.sensor, range(gap.first, gap.last + 1))
            )
        for message in released:
            batch.windows.extend(self.builder.add(message))
        return batch.result()

    def _reject(self, batch: _Batch, reason: str, exc: Exception) -> None:
        self.rejections[reason] += 1
        batch.rejected.append((reason, str(exc)))
