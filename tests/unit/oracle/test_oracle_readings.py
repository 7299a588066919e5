"""DEVICE queries from a node's reading book, without a network: which readings are kept
(declared for that device's sensor, signed, sequence above the last), what is refused and
counted, which reading answers a query (the agreement rule), and a restart from SQLite."""

from __future__ import annotations

import secrets
import sqlite3
from pathlib import Path

import pytest

from pervasive.crypto import PrivateKey, keccak256
from pervasive.devices import SensorSpec, registered_declarations, sensor_topic, sign_reading
from pervasive.domain import Sensor, SensorField
from pervasive.errors import InvalidInput, InvalidSignature, ReplayedMessage, SchemaViolation
from pervasive.oracle import ReadingBook, SourceFailed, SourceRefused, parse_device_path
from pervasive.sensing import SensorDeclaration
from pervasive.store import open_database

FLOW = SensorSpec("flow", "flow", (("litres", "uint64"), ("celsius", "int64"), ("site", "string")))


class Pump:
    """A device with one ``flow`` sensor, signing with its own key."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.key = PrivateKey(secrets.token_bytes(32))
        self.declaration = FLOW.declaration(self.key.public_key)
        self.topic = sensor_topic(name, "flow")

    def reading(self, q: int, litres: int, celsius: int = 20) -> bytes:
        return sign_reading(
            self.key, self.declaration, q, {"litres": litres, "celsius": celsius, "site": "a"}
        )


@pytest.fixture
def pumps() -> tuple[Pump, Pump]:
    return Pump("pump-1"), Pump("pump-2")


def book_of(*pumps: Pump, db: sqlite3.Connection | None = None, history: int = 4) -> ReadingBook:
    return ReadingBook({p.name: {"flow": p.declaration} for p in pumps}, db=db, history=history)


def test_a_query_is_answered_with_the_field_and_the_digest_of_the_signed_bytes(
    pumps: tuple[Pump, Pump],
) -> None:
    pump, _ = pumps
    book = book_of(pump)
    wire = pump.reading(3, 1250)
    kept = book.accept(pump.topic, wire, now=100.0)
    assert (kept.sequence, kept.values["litres"], kept.digest) == (3, 1250, keccak256(wire))
    seen = book.observe("pump-1/flow", "litres", asked_at=100)
    assert (seen.value, seen.digest, seen.size) == (1250, keccak256(wire), len(wire))
    # anyone holding the bytes checks the device's own signature off-chain
    assert book.latest("pump-1", "flow") == kept and kept.wire == wire


def test_forged_misplaced_undeclared_and_replayed_readings_are_refused_and_counted(
    pumps: tuple[Pump, Pump],
) -> None:
    pump, other = pumps
    book = book_of(pump, other)
    book.accept(pump.topic, pump.reading(5, 10))
    # signed by another key claiming pump-1's declared key
    forged = bytearray(pump.reading(6, 99))
    forged[-40] ^= 1  # inside the signature
    with pytest.raises(InvalidSignature):
        book.accept(pump.topic, bytes(forged))
    # an undeclared key
    stranger = Pump("pump-1")
    with pytest.raises(SchemaViolation):
        book.accept(pump.topic, stranger.reading(7, 99))
    # pump-2's genuine reading on pump-1's topic
    with pytest.raises(InvalidSignature, match="pump-2's sensor"):
        book.accept(pump.topic, other.reading(8, 99))
    # the same and an older sequence number
    for q in (5, 4):
        with pytest.raises(ReplayedMessage):
            book.accept(pump.topic, pump.reading(q, 99))
    with pytest.raises(InvalidInput):
        book.accept("pervasive/devices/pump-1/telemetry", pump.reading(9, 99))
    with pytest.raises(InvalidInput):
        book.accept(pump.topic, b"not a reading")
    assert book.refusals == {
        "reading_signature": 1, "reading_schema": 1, "reading_impostor": 1,
        "reading_replay": 2, "reading_malformed": 2,
    }  # fmt: skip
    assert book.accepted == 1
    assert book.observe("pump-1/flow", "litres").value == 10  # none of them answers


def test_queries_that_cannot_be_answered_are_refused_with_a_reason(
    pumps: tuple[Pump, Pump],
) -> None:
    pump, other = pumps
    book = book_of(pump, other)
    book.accept(pump.topic, pump.reading(1, 10, celsius=-4))
    cases = [
        ("pump-1", "litres", SourceRefused, "<device id>/<sensor>", "bad_source"),
        ("pump-9/flow", "litres", SourceRefused, "no registered sensor", "bad_source"),
        ("pump-1/flow", "pressure", SourceRefused, "declares no field", "bad_source"),
        ("pump-1/flow", "litres.x", SourceRefused, "field name", "bad_source"),
        ("pump-1/flow", "site", SourceRefused, "is a string", "not_integer"),
        ("pump-1/flow", "celsius", SourceFailed, "negative", "not_integer"),
        ("pump-2/flow", "litres", SourceFailed, "no reading", "no_reading"),
        ("pump-1/flow", "litres@7", SourceFailed, "q=7", "no_reading"),
    ]
    for source, path, error, message, reason in cases:
        before = book.refusals[reason]
        with pytest.raises(error, match=message):
            book.observe(source, path)
        assert book.refusals[reason] == before + 1, (source, path)


def test_the_agreement_rule_newest_before_the_query_or_the_pinned_sequence(
    pumps: tuple[Pump, Pump],
) -> None:
    pump, _ = pumps
    book = book_of(pump)
    for q, at in ((1, 100.0), (2, 105.0), (3, 110.5)):
        book.accept(pump.topic, pump.reading(q, 1000 + q), now=at)
    # asked in the block of second 110: reading 3 came later, so every node answers 2
    assert book.observe("pump-1/flow", "litres", asked_at=110).value == 1002
    assert book.observe("pump-1/flow", "litres", asked_at=111).value == 1003
    assert book.observe("pump-1/flow", "litres", asked_at=104).value == 1001
    with pytest.raises(SourceFailed, match="from before the query"):
        book.observe("pump-1/flow", "litres", asked_at=99)
    # two nodes that saw the query at different moments, one already holding a newer
    # reading, still agree on the reading and so on the digest
    late = book_of(pump)
    for q, at in ((1, 100.2), (2, 105.1), (3, 110.7), (4, 111.3)):
        late.accept(pump.topic, pump.reading(q, 1000 + q), now=at)
    ours, theirs = (b.observe("pump-1/flow", "litres", asked_at=110) for b in (book, late))
    assert (ours.digest, ours.value) == (theirs.digest, theirs.value)
    # pinned: that reading whatever the time, while it is among the last `history`
    assert book.observe("pump-1/flow", "litres@1", asked_at=0).value == 1001
    assert parse_device_path("litres@1") == ("litres", 1)
    for q in range(4, 8):
        book.accept(pump.topic, pump.reading(q, 1000 + q), now=120.0)
    assert [r.sequence for r in book.held("pump-1", "flow")] == [4, 5, 6, 7]
    with pytest.raises(SourceFailed, match="q=1"):
        book.observe("pump-1/flow", "litres@1")


def test_a_restarted_book_still_knows_and_forgets_a_replaced_key(
    pumps: tuple[Pump, Pump], tmp_path: Path
) -> None:
    pump, other = pumps
    path = tmp_path / "oracle.sqlite"
    db = open_database(path)
    book = book_of(pump, other, db=db, history=2)
    for q in (1, 2, 3):
        book.accept(pump.topic, pump.reading(q, 10 * q), now=100.0 + q)
    book.accept(other.topic, other.reading(1, 7), now=100.0)
    db.close()

    db = open_database(path)
    again = book_of(pump, other, db=db, history=2)
    assert [r.sequence for r in again.held("pump-1", "flow")] == [2, 3]
    seen = again.observe("pump-1/flow", "litres", asked_at=103)
    assert (seen.value, seen.digest) == (30, keccak256(pump.reading(3, 30)))
    with pytest.raises(ReplayedMessage):
        again.accept(pump.topic, pump.reading(3, 30))
    # the registry gives pump-1 a new key: what was kept under the old one is dropped
    replaced = Pump("pump-1")
    again.replace_declarations({"pump-1": {"flow": replaced.declaration}})
    assert again.latest("pump-1", "flow") is None and again.latest("pump-2", "flow") is None
    again.accept(replaced.topic, replaced.reading(0, 5))
    db.close()
    db = open_database(path)
    third = ReadingBook({"pump-1": {"flow": replaced.declaration}}, db=db)
    assert [r.values["litres"] for r in third.held("pump-1", "flow")] == [5]
    db.close()


def test_a_reading_for_a_sensor_registered_later_is_told_apart(pumps: tuple[Pump, Pump]) -> None:
    pump, other = pumps
    book = book_of(pump)
    assert book.declares(pump.reading(1, 1)) and not book.declares(other.reading(1, 1))
    assert book.declares(b"junk")  # malformed: refused as such, no reason to re-read
    book.replace_declarations({p.name: {"flow": p.declaration} for p in (pump, other)})
    book.accept(other.topic, other.reading(1, 1))
    assert book.sensors == [("pump-1", "flow"), ("pump-2", "flow")]


def test_registry_sensors_become_declarations_of_device_and_sensor() -> None:
    key = PrivateKey(secrets.token_bytes(32))
    fields = tuple(SensorField.parse(f"{n}:{t}") for n, t in FLOW.fields)
    sensors = [
        Sensor("pump-1.flow", key.public_key.to_bytes(), "flow", fields, key.address, True),
        Sensor("pump-2.flow", key.public_key.to_bytes(), "flow", fields, key.address, False),
        Sensor("loose", key.public_key.to_bytes(), "flow", fields, key.address, True),
    ]
    found = registered_declarations(sensors)
    assert found == {"pump-1": {"flow": SensorDeclaration(key.public_key, "flow", fields)}}
