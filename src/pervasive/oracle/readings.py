"""The verified readings an oracle node answers DEVICE queries with (query kind 2).

A DEVICE query names ``source = "<device id>/<sensor>"`` and ``path = "<field>"`` (or
``"<field>@<q>"``, a reading pinned by its sequence number). The node answers from what
it saw itself on MQTT (``pervasive/devices/+/sensors/+``, role ``svc:oracle.<i>``):

```
reading ─▶ accept: topic names a device and a sensor?          (reading_malformed)
                   a declared key, values as declared?          (reading_schema)
                   signed by that key?                          (reading_signature)
                   the key declared for *this* device's sensor? (reading_impostor)
                   sequence above the last one kept?            (reading_replay)
        ─▶ kept: the last ``history`` readings of each sensor, with their arrival time
           (in memory, and in the node's SQLite so a restarted node still has them)
query  ─▶ observe(source, path, asked_at) ─▶ Observation(digest = keccak256(signed reading
           bytes), value = the field as uint256)   or   no_reading / not_integer / bad_source
```

**Which reading (the agreement rule).** Unpinned, a node answers with the newest reading
it had received at or before the block time of the query's attempt (``asked_at``, from
the hub's deadline minus its timeout). Nodes that see the query at different moments
thus pick the same reading even when the device publishes while the committee works;
a reading that arrives after the query's block is kept for later queries. Nodes differ
only when a reading reaches them on different sides of that second; then fewer than
``t`` agree and the attempt expires into a retry with a later block time. A query path
``"celsius@17"`` pins reading ``q = 17`` (if still among the last ``history``): every
node that holds it answers the same.

The declarations (who may sign what) come from the on-chain registry, read by the
caller (``pervasive oracle run`` injects it, as it injects the content store): this
layer may not import ``service/``.

Example::

    book = ReadingBook(registered_declarations(await registry.list_sensors()), db=db)
    book.accept("pervasive/devices/pump-1/sensors/flow", payload)      # HeldReading
    book.observe("pump-1/flow", "litres", asked_at=1_700_000_000)   # Observation
"""

from __future__ import annotations

import collections
import re
import sqlite3
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pervasive.crypto import keccak256
from pervasive.devices import (
    Declarations,
    ReadingVerifier,
    parse_sensor_topic,
    peek_public_key,
    sensor_topic,
)
from pervasive.domain import FieldType
from pervasive.errors import InvalidInput, InvalidSignature, ReplayedMessage, SchemaViolation
from pervasive.oracle.sources import Observation, SourceFailed, SourceRefused
from pervasive.sensing import SensorDeclaration

__all__ = [
    "DEVICE_READINGS",
    "DeclarationsReader",
    "HeldReading",
    "ReadingBook",
    "parse_device_path",
]

DEVICE_READINGS = "pervasive/devices/+/sensors/+"
"""The MQTT filter an oracle node subscribes to for signed readings."""

DeclarationsReader = Callable[[], Awaitable[Declarations]]
"""Reads the current declarations (the CLI fills it from the on-chain registry)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS oracle_readings (
    device TEXT NOT NULL,
    sensor TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    received_at REAL NOT NULL,
    wire BLOB NOT NULL,
    PRIMARY KEY (device, sensor, sequence)
);
"""
_INTEGERS = {FieldType.UINT64, FieldType.UINT256, FieldType.INT64, FieldType.INT256}
_PATH = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:@([0-9]{1,20}))?")


def parse_device_path(path: str) -> tuple[str, int | None]:
    """``(field, pinned sequence or None)`` of a DEVICE query's path; :class:`SourceRefused`.

    Example: ``parse_device_path("celsius@17") == ("celsius", 17)``.
    """
    match = _PATH.fullmatch(path)
    if match is None:
        raise SourceRefused(
            f"DEVICE path {path!r} is not a declared field name, optionally pinned to a "
            "sequence number: write e.g. 'celsius' or 'celsius@17'"
        )
    pinned = match.group(2)
    return match.group(1), None if pinned is None else int(pinned)


@dataclass(frozen=True)
class HeldReading:
    """A verified reading as the node keeps it."""

    device: str
    sensor: str
    sequence: int
    values: Mapping[str, Any]
    """The decoded values ``d_q`` by field name."""
    wire: bytes
    """The exact signed bytes (``m_{s,q}`` in wire form)."""
    received_at: float
    """Unix seconds, this node's clock."""

    @property
    def digest(self) -> bytes:
        """``keccak256`` of the signed bytes: what the oracles sign and the consumer gets."""
        return keccak256(self.wire)


class ReadingBook:
    """The last verified readings of every declared sensor (see the module docstring)."""

    def __init__(
        self,
        declarations: Declarations | None = None,
        *,
        db: sqlite3.Connection | None = None,
        history: int = 16,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if history < 1:
            raise InvalidInput(f"history must keep at least 1 reading, got {history}")
        self.history = history
        self._db = db
        self._clock = clock
        if db is not None:
            db.executescript(_SCHEMA)
        self._declarations: dict[tuple[str, str], SensorDeclaration] = {}
        self._owners: dict[bytes, tuple[str, str]] = {}
        self._verifier = ReadingVerifier()
        self._held: dict[tuple[str, str], collections.deque[HeldReading]] = {}
        self.refusals: collections.Counter[str] = collections.Counter()
        """Readings refused (``reading_malformed``, ``reading_schema``,
        ``reading_signature``, ``reading_impostor``, ``reading_replay``) and DEVICE
        observations not made (``bad_source``, ``not_integer``, ``no_reading``)."""
        self.accepted = 0
        self.replace_declarations(declarations or {})

    # -- declarations -------------------------------------------------------------------
    def replace_declarations(self, declarations: Declarations) -> None:
        """Follow the registry: a new sensor is accepted (and what SQLite kept of it taken
        back); a sensor whose key changed, or that is gone, loses what was kept of it."""
        flat = {
            (device, sensor): declaration
            for device, sensors in declarations.items()
            for sensor, declaration in sensors.items()
        }
        before = self._declarations
        for key in set(before) | set(self._held):
            if key not in flat or flat[key] != before.get(key):
                self._held.pop(key, None)
                if key in before:
                    self._forget(key)
        self._declarations = flat
        self._owners = {d.public_key.to_bytes(): key for key, d in flat.items()}
        self._verifier = ReadingVerifier(flat.values())
        for key in flat:
            if key not in before:
                self._load(key)

    def declares(self, payload: bytes) -> bool:
        """Whether the key a payload claims is declared (else the registry may be newer)."""
        try:
            return peek_public_key(payload) in self._owners
        except InvalidInput:
            return True  # malformed: refused as such, re-reading the registry won't help

    @property
    def sensors(self) -> list[tuple[str, str]]:
        """``(device, sensor)`` pairs this book accepts readings of."""
        return sorted(self._declarations)

    # -- readings -----------------------------------------------------------------------
    def accept(self, topic: str, payload: bytes, *, now: float | None = None) -> HeldReading:
        """Verify one reading and keep it; raise after counting when refused.

        Raises :class:`InvalidInput` (malformed topic or bytes), :class:`SchemaViolation`
        (undeclared key, wrong values), :class:`InvalidSignature` (forged, or signed by
        another device's sensor) and :class:`ReplayedMessage` (sequence not above the last).

        Example: ``book.accept("pervasive/devices/pump-1/sensors/flow", payload)``.
        """
        try:
            device, sensor = parse_sensor_topic(topic)
            claimed = peek_public_key(payload)
        except InvalidInput:
            self.refusals["reading_malformed"] += 1
            raise
        try:
            reading = self._verifier.verify(payload)
        except SchemaViolation:
            self.refusals["reading_schema"] += 1
            raise
        except InvalidSignature:
            self.refusals["reading_signature"] += 1
            raise
        except InvalidInput:
            self.refusals["reading_malformed"] += 1
            raise
        owner = self._owners[claimed]
        if owner != (device, sensor):
            self.refusals["reading_impostor"] += 1
            raise InvalidSignature(
                f"a reading signed by {owner[0]}'s sensor {owner[1]!r} arrived on "
                f"{device}'s {sensor!r} topic"
            )
        held = self._held.setdefault(owner, collections.deque(maxlen=self.history))
        if held and reading.sequence <= held[-1].sequence:
            self.refusals["reading_replay"] += 1
            raise ReplayedMessage(
                f"{device}/{sensor}: reading q={reading.sequence} is not above the last kept "
                f"(q={held[-1].sequence})"
            )
        names = [f.name for f in self._declarations[owner].fields]
        kept = HeldReading(
            device, sensor, reading.sequence, dict(zip(names, reading.values, strict=True)),
            bytes(payload), self._clock() if now is None else now,
        )  # fmt: skip
        held.append(kept)
        self.accepted += 1
        if self._db is not None:
            self._db.execute(
                "INSERT OR REPLACE INTO oracle_readings VALUES (?, ?, ?, ?, ?)",
                (device, sensor, kept.sequence, kept.received_at, kept.wire),
            )
            self._db.execute(
                "DELETE FROM oracle_readings WHERE device = ? AND sensor = ? AND sequence < ?",
                (device, sensor, held[0].sequence),
            )
        return kept

    def latest(self, device: str, sensor: str) -> HeldReading | None:
        """The newest reading kept of ``device``'s ``sensor``."""
        held = self._held.get((device, sensor))
        return held[-1] if held else None

    def held(self, device: str, sensor: str) -> list[HeldReading]:
        """Every reading kept of ``device``'s ``sensor``, oldest first."""
        return list(self._held.get((device, sensor), ()))

    # -- queries ------------------------------------------------------------------------
    def observe(self, source: str, path: str, *, asked_at: float | None = None) -> Observation:
        """Answer a DEVICE query: the field's value in the reading the agreement rule picks.

        ``asked_at`` is the block time of the query's attempt (``None``: the newest).
        Raises (after counting) :class:`SourceRefused` for a source or field that cannot
        be answered (``bad_source``, ``not_integer``) and :class:`SourceFailed` when this
        node holds no such reading (``no_reading``) or the value is negative.

        Example: ``book.observe("pump-1/flow", "litres@3").value``.
        """
        try:
            key, name, pinned, declaration = self._resolve(source, path)
        except SourceRefused:
            self.refusals["bad_source"] += 1
            raise
        field = next(f for f in declaration.fields if f.name == name)
        if field.type not in _INTEGERS:
            self.refusals["not_integer"] += 1
            raise SourceRefused(
                f"field {name!r} of {source} is a {field.type.value}: a DEVICE query's path "
                "must name an integer field (uint64, uint256, int64, int256)"
            )
        reading = self._pick(key, pinned, asked_at)
        if reading is None:
            self.refusals["no_reading"] += 1
            which = f"reading q={pinned}" if pinned is not None else "reading"
            when = "" if asked_at is None or pinned is not None else " from before the query"
            raise SourceFailed(f"this node holds no {which} of {source}{when}")
        value = reading.values[name]
        if value < 0:
            self.refusals["not_integer"] += 1
            raise SourceFailed(
                f"{source} reading q={reading.sequence}: {name} = {value} is negative, not a "
                "uint256"
            )
        return Observation(reading.digest, value, int(self._clock()), len(reading.wire))

    def _resolve(
        self, source: str, path: str
    ) -> tuple[tuple[str, str], str, int | None, SensorDeclaration]:
        device, slash, sensor = source.partition("/")
        try:
            if not slash:
                raise InvalidInput("no '/'")
            sensor_topic(device, sensor)  # checks both names
        except InvalidInput:
            raise SourceRefused(
                f"DEVICE source {source[:80]!r} is not '<device id>/<sensor>': write e.g. "
                "'container-1/location'"
            ) from None
        declaration = self._declarations.get((device, sensor))
        if declaration is None:
            raise SourceRefused(
                f"{device} has no registered sensor {sensor!r} (registry id "
                f"'{device}.{sensor}'): this node observes registered sensors only"
            )
        name, pinned = parse_device_path(path)
        if name not in {f.name for f in declaration.fields}:
            declared = ", ".join(f.name for f in declaration.fields)
            raise SourceRefused(f"{source} declares no field {name!r} (it has {declared})")
        return (device, sensor), name, pinned, declaration

    def _pick(
        self, key: tuple[str, str], pinned: int | None, asked_at: float | None
    ) -> HeldReading | None:
        for reading in reversed(self._held.get(key, ())):
            if pinned is not None:
                if reading.sequence == pinned:
                    return reading
            elif asked_at is None or reading.received_at <= asked_at:
                return reading
        return None

    # -- persistence --------------------------------------------------------------------
    def _load(self, key: tuple[str, str]) -> None:
        """Take back what was kept of a sensor before a restart (verified again)."""
        if self._db is None:
            return
        rows = self._db.execute(
            "SELECT received_at, wire FROM oracle_readings WHERE device = ? AND sensor = ? "
            "ORDER BY sequence",
            key,
        ).fetchall()
        for received_at, wire in rows:
            try:
                self._restore(key, bytes(wire), float(received_at))
            except InvalidInput:  # signed by a key no longer declared, or altered: dropped
                self._forget(key)
                self._held.pop(key, None)
                return

    def _restore(self, key: tuple[str, str], wire: bytes, received_at: float) -> None:
        reading = self._verifier.verify(wire)
        if self._owners.get(peek_public_key(wire)) != key:
            raise InvalidSignature(f"{key[0]}/{key[1]}: a kept reading is another sensor's")
        names = [f.name for f in self._declarations[key].fields]
        held = self._held.setdefault(key, collections.deque(maxlen=self.history))
        if held and reading.sequence <= held[-1].sequence:
            return
        values = dict(zip(names, reading.values, strict=True))
        held.append(HeldReading(*key, reading.sequence, values, wire, received_at))

    def _forget(self, key: tuple[str, str]) -> None:
        if self._db is not None:
            self._db.execute("DELETE FROM oracle_readings WHERE device = ? AND sensor = ?", key)
