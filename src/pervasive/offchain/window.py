"""Windows over sensor traces and their canonical hash (paper 002, section 3).

- ``w(s, q, z)``: the ``z`` messages ``m_{s,q} ... m_{s,q+z-1}`` of sensor ``s``;
- ``W(s, q0, sl, z)``: the windows ``w(s, q0, z), w(s, q0+sl, z), ...`` (sliding factor ``sl``);
- ``w_s(t) = w(s, q0 + t*sl, z)``: the window after ``t`` slidings;
- ``w[t] = [w_{s_1}(t), ..., w_{s_k}(t)]``: the array over the agreement's sensors,
  with per-sensor start points ``Q_0 = {q_{s_1,0}, ..., q_{s_k,0}}``.

Window hash ``H(w[t])``, recomputable by a contract from the messages in calldata:

- leaf of message ``m_{s,q}``: its EIP-712 struct hash (:attr:`SensorMessage.struct_hash`);
  a message the node never received (reported as a gap) has leaf ``bytes32(0)``;
- ``H(w_s(t)) = keccak256(leaf_q || leaf_{q+1} || ... || leaf_{q+z-1})``;
- ``H(w[t]) = keccak256(H(w_{s_1}(t)) || ... || H(w_{s_k}(t)))`` in the agreement's sensor order.

(Concatenating 32-byte words is ``abi_encode(bytes32[z])``, so it is unambiguous.)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from pervasive.crypto import abi_decode, abi_encode, keccak256
from pervasive.errors import InvalidInput, SchemaViolation
from pervasive.sensing.message import SensorMessage, decode_sensor_message

__all__ = [
    "MISSING_LEAF",
    "SensorWindow",
    "WindowArray",
    "WindowBuilder",
    "WindowSpec",
    "decode_window_array",
    "sliding_windows",
    "window",
]

MISSING_LEAF = bytes(32)
"""The leaf that stands for a message a node never received."""


def window(q: int, z: int) -> range:
    """The sequence numbers of ``w(s, q, z)``. Example: ``window(5, 3) == range(5, 8)``."""
    if q < 0 or z < 1:
        raise InvalidInput(f"a window needs q >= 0 and z >= 1, got q={q}, z={z}")
    return range(q, q + z)


def sliding_windows(q0: int, sl: int, z: int) -> Iterator[range]:
    """``W(s, q0, sl, z)``: the endless sequence of windows.

    Example: ``next(sliding_windows(0, 2, 3)) == range(0, 3)``.
    """
    if sl < 1:
        raise InvalidInput(f"the sliding factor must be a positive integer, got {sl}")
    t = 0
    while True:
        yield window(q0 + t * sl, z)
        t += 1


@dataclass(frozen=True)
class WindowSpec:
    """The window parameters of an agreement: sensors (in order), ``Q_0``, ``sl`` and ``z``.

    Example: ``WindowSpec(("0xS1...", "0xS2..."), (0, 100), sliding=10, size=10)``.
    """

    sensors: tuple[str, ...]
    start_points: tuple[int, ...]
    sliding: int
    size: int

    def __post_init__(self) -> None:
        if not self.sensors or len(self.sensors) != len(self.start_points):
            raise InvalidInput("a window spec needs one start point q_{s,0} per sensor")
        if len(set(self.sensors)) != len(self.sensors):
            raise InvalidInput("each sensor may appear only once in an agreement")
        if self.sliding < 1 or self.size < 1 or min(self.start_points) < 0:
            raise InvalidInput("sliding factor and window size must be >= 1, start points >= 0")

    def index(self, sensor: str) -> int:
        """Position of ``sensor`` in the agreement; :class:`SchemaViolation` if absent."""
        try:
            return self.sensors.index(sensor)
        except ValueError:
            raise SchemaViolation(f"sensor {sensor} is not part of this agreement") from None

    def range_of(self, sensor_index: int, t: int) -> range:
        """The sequence numbers of ``w_s(t) = w(s, q0 + t*sl, z)``.

        Example: ``spec.range_of(0, 2)``.
        """
        if t < 0:
            raise InvalidInput(f"window index t must be >= 0, got {t}")
        return window(self.start_points[sensor_index] + t * self.sliding, self.size)

    def windows_containing(self, sensor_index: int, q: int) -> range:
        """Every ``t`` whose window ``w_s(t)`` contains ``m_{s,q}`` (empty if none).

        Example: with ``q0=0, sl=2, z=3``, message 4 is in windows ``range(1, 3)``.
        """
        offset = q - self.start_points[sensor_index]
        if offset < 0:
            return range(0)
        first = max(0, -(-(offset - self.size + 1) // self.sliding))
        last = offset // self.sliding
        return range(first, last + 1) if first <= last else range(0)


@dataclass(frozen=True)
class SensorWindow:
    """``w_s(t)`` as one node holds it: ``None`` marks a message it never received."""

    sensor: str
    start: int
    messages: tuple[SensorMessage | None, ...]

    @property
    def complete(self) -> bool:
        """True when no message is missing."""
        return all(m is not None for m in self.messages)

    @property
    def missing(self) -> tuple[int, ...]:
        """The sequence numbers this node did not receive."""
        return tuple(self.start + i for i, m in enumerate(self.messages) if m is None)

    @property
    def hash(self) -> bytes:
        """``H(w_s(t))`` as defined in the module docstring."""
        leaves = [MISSING_LEAF if m is None else m.struct_hash for m in self.messages]
        return keccak256(b"".join(leaves))


@dataclass(frozen=True)
class WindowArray:
    """``w[t]``: one window per agreement sensor, in the agreement's order."""

    t: int
    windows: tuple[SensorWindow, ...]

    @property
    def complete(self) -> bool:
        """True when every sensor window is complete."""
        return all(w.complete for w in self.windows)

    @property
    def hash(self) -> bytes:
        """``H(w[t])`` as defined in the module docstring."""
        return keccak256(b"".join(w.hash for w in self.windows))

    def messages(self) -> list[SensorMessage]:
        """Every received message of the array, sensor by sensor, in sequence order."""
        return [m for w in self.windows for m in w.messages if m is not None]

    def encode(self) -> bytes:
        """Calldata for on-chain proof of storage: ``abi_encode(uint256 t, bytes[][] messages)``.

        Inner lists are per sensor, each message in its wire form; a missing
        message is the empty ``bytes``.

        Example: ``ledger_payload = w.encode()``.
        """
        nested = [[b"" if m is None else m.encode() for m in w.messages] for w in self.windows]
        return abi_encode(["uint256", "bytes[][]"], [self.t, nested])


class WindowBuilder:
    """Collects verified sensor messages in any order and emits ``w[t]`` when it is complete.

    Windows are emitted in order ``t = 0, 1, 2, ...``. A window whose messages were
    reported missing (:meth:`mark_missing`, after a gap timeout) is emitted with those
    messages as ``None``: the node computes on what it has, and its window hash will
    differ from the other nodes' (a window-hash dispute, as the paper intends).

    Example::

        builder = WindowBuilder(spec)
        for m in messages:            # any order
            for w in builder.add(m):  # zero or more complete arrays
                start_round(w)
    """

    def __init__(self, spec: WindowSpec, *, next_t: int = 0) -> None:
        self.spec = spec
        self.next_t = next_t
        self._messages: list[dict[int, SensorMessage]] = [{} for _ in spec.sensors]
        self._missing: list[set[int]] = [set() for _ in spec.sensors]
        # per sensor, the first q of the current window on that is neither held nor
        # known missing: a window is ready when every frontier passed its end, so a
        # message costs O(1) instead of a scan of the window
        self._frontier = [spec.range_of(i, next_t).start for i in range(len(spec.sensors))]

    def add(self, message: SensorMessage) -> list[WindowArray]:
        """Add one message (a duplicate ``q`` is ignored); return the arrays now complete."""
        index = self.spec.index(message.sensor)
        if message.sequence >= self.spec.range_of(index, self.next_t).start:
            self._messages[index].setdefault(message.sequence, message)
            if message.sequence == self._frontier[index]:
                self._advance(index)
        return self._emit()

    def mark_missing(self, sensor: str, sequences: Sequence[int] | range) -> list[WindowArray]:
        """Record that ``sequences`` of ``sensor`` will never arrive; return arrays now closed."""
        index = self.spec.index(sensor)
        for q in sequences:
            if q not in self._messages[index]:
                self._missing[index].add(q)
        self._advance(index)
        return self._emit()

    def _advance(self, index: int) -> None:
        q = self._frontier[index]
        held, missing = self._messages[index], self._missing[index]
        while q in held or q in missing:
            q += 1
        self._frontier[index] = q

    def _ready(self, t: int) -> bool:
        return all(
            self._frontier[index] >= self.spec.range_of(index, t).stop
            for index in range(len(self.spec.sensors))
        )

    def _emit(self) -> list[WindowArray]:
        out = []
        while self._ready(self.next_t):
            t = self.next_t
            windows = []
            for index, sensor in enumerate(self.spec.sensors):
                span = self.spec.range_of(index, t)
                held = self._messages[index]
                windows.append(SensorWindow(sensor, span.start, tuple(held.get(q) for q in span)))
            out.append(WindowArray(t, tuple(windows)))
            self.next_t += 1
            self._forget_before(self.next_t)
        return out

    def _forget_before(self, t: int) -> None:
        for index in range(len(self.spec.sensors)):
            first_needed = self.spec.range_of(index, t).start
            held = self._messages[index]
            for q in [q for q in held if q < first_needed]:
                del held[q]
            self._missing[index] = {q for q in self._missing[index] if q >= first_needed}
            if self._frontier[index] < first_needed:
                self._frontier[index] = first_needed
                self._advance(index)


def decode_window_array(data: bytes, spec: WindowSpec) -> WindowArray:
    """Inverse of :meth:`WindowArray.encode`, checked against ``spec`` (sensors, ranges).

    Raises :class:`InvalidInput` when the data is not a window of this agreement.

    Example: ``decode_window_array(w.encode(), spec).hash == w.hash``.
    """
    t, nested = abi_decode(["uint256", "bytes[][]"], data)
    if len(nested) != len(spec.sensors):
        raise InvalidInput(
            f"window data has {len(nested)} sensors, the agreement {len(spec.sensors)}"
        )
    windows = []
    for index, (sensor, encoded) in enumerate(zip(spec.sensors, nested, strict=True)):
        span = spec.range_of(index, t)
        if len(encoded) != len(span):
            raise InvalidInput(
                f"window of {sensor} has {len(encoded)} messages, expected {len(span)}"
            )
        messages = tuple(decode_sensor_message(m) if m else None for m in encoded)
        for q, message in zip(span, messages, strict=True):
            if message is not None and (message.sensor != sensor or message.sequence != q):
                raise InvalidInput(f"message at q={q} of {sensor} is out of place")
        windows.append(SensorWindow(sensor, span.start, messages))
    return WindowArray(t, tuple(windows))
