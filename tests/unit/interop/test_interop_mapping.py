"""Mappings: checked against the ABI and the schema file, then logs -> CloudEvents 1.0."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from eth_abi.abi import encode
from hypothesis import given, settings
from hypothesis import strategies as st
from quotes import MAPPING, SCHEMA, SCHEMA_ID, TYPE, quotes_artifact, quotes_mappings, write_schema

from pervasive.chain import Log
from pervasive.contracts import compile_contract
from pervasive.crypto import keccak256
from pervasive.interop import (
    BUILTIN_NAMES,
    ChainPosition,
    EventMapping,
    EventRefused,
    MappingError,
    builtin_mappings,
    compile_builtin,
    compile_mappings,
    compile_shadow_mapping,
    event_id,
    read_event,
    write_event,
)

CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
CARRIER = "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"
TOPIC = keccak256(b"CostQuoted(address,string,uint256)")
WHEN = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)


def quote_log(shipment: str, cost: int, *, block: int = 7, index: int = 2) -> Log:
    return Log(
        address=CONTRACT,
        topics=(TOPIC, bytes(12) + bytes.fromhex(CARRIER[2:])),
        data=encode(["string", "uint256"], [shipment, cost]),
        block_number=block,
        block_hash="0x" + "ab" * 32,
        transaction_hash="0x" + "cd" * 32,
        log_index=index,
    )


def position(log: Log, *, tx: int = 1, revision: int = 0) -> ChainPosition:
    return ChainPosition(
        31337, log.address, log.block_number, log.block_hash, log.transaction_hash, tx,
        log.log_index, WHEN, revision,
    )  # fmt: skip


def test_a_log_becomes_a_cloudevent_with_every_attribute(tmp_path: Path) -> None:
    compiled = quotes_mappings(tmp_path)
    log = quote_log("ship-1", 40)
    event = compiled.map(log, position(log))
    assert event is not None
    attributes = event.get_attributes()
    assert attributes["id"] == "000000000007/000001/000002/abababab"
    assert attributes["source"] == f"eip155:31337:{CONTRACT}"
    assert attributes["type"] == TYPE
    assert attributes["subject"] == "ship-1"
    assert attributes["dataschema"] == SCHEMA_ID
    assert attributes["datacontenttype"] == "application/json"
    assert attributes["time"] == WHEN
    assert attributes["blocknumber"] == 7 and attributes["logindex"] == 2
    assert (
        attributes["blockhash"] == log.block_hash and attributes["txhash"] == log.transaction_hash
    )
    assert event.get_data() == {"shipment": "ship-1", "cost": 40, "carrier": CARRIER, "block": 7}
    wire = json.loads(write_event(event))
    assert wire["specversion"] == "1.0" and wire["data"]["cost"] == 40
    assert read_event(write_event(event)).get_id() == attributes["id"]


def test_an_event_failing_its_schema_is_refused_in_one_line(tmp_path: Path) -> None:
    compiled = quotes_mappings(tmp_path)
    log = quote_log("ship-1", 2_000_000)
    with pytest.raises(EventRefused, match="fails schema urn:pervasive:schema:test") as caught:
        compiled.map(log, position(log))
    assert caught.value.reason == "schema" and "\n" not in str(caught.value)
    with pytest.raises(EventRefused) as empty:
        compiled.map(quote_log("", 1), position(log))  # minLength 1
    assert empty.value.reason == "schema"


def test_an_undecodable_log_is_refused_and_an_unmapped_one_ignored(tmp_path: Path) -> None:
    compiled = quotes_mappings(tmp_path)
    broken = Log(
        CONTRACT, (TOPIC, bytes(32)), b"\x01\x02", 1, "0x" + "00" * 32, "0x" + "11" * 32, 0
    )
    with pytest.raises(EventRefused) as caught:
        compiled.map(broken, position(broken))
    assert caught.value.reason == "undecodable"
    other = Log(CONTRACT, (keccak256(b"Ignored(uint256)"),), bytes(32), 1, "0x" + "00" * 32,
                "0x" + "11" * 32, 1)  # fmt: skip
    assert compiled.map(other, position(other)) is None


def test_ids_sort_by_chain_position_and_differ_across_branches() -> None:
    logs = [quote_log("s", 1, block=b, index=i) for b in (3, 12, 100) for i in (0, 1, 10)]
    ids = [event_id(position(log, tx=log.log_index // 2)) for log in logs]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    log = quote_log("s", 1)
    other_branch = Log(**{**log.__dict__, "block_hash": "0x" + "cd" * 32})
    assert event_id(position(log)) != event_id(position(other_branch))
    assert event_id(position(log, revision=1)) == event_id(position(log)) + ".1"


@given(
    block=st.integers(0, 10**11), tx=st.integers(0, 99_999), index=st.integers(0, 99_999),
    block2=st.integers(0, 10**11), tx2=st.integers(0, 99_999), index2=st.integers(0, 99_999),
)  # fmt: skip
def test_id_order_is_chain_order(
    block: int, tx: int, index: int, block2: int, tx2: int, index2: int
) -> None:
    first = ChainPosition(1, CONTRACT, block, "0x" + "aa" * 32, "0x", tx, index, WHEN)
    second = ChainPosition(1, CONTRACT, block2, "0x" + "aa" * 32, "0x", tx2, index2, WHEN)
    by_position = (block, tx, index) < (block2, tx2, index2)
    assert (event_id(first) < event_id(second)) == by_position


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20) | st.binary(max_size=40),
    lambda inner: st.lists(inner, max_size=3) | st.tuples(inner, inner),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(
    args=st.fixed_dictionaries(
        {}, optional={"shipment": _json_values, "cost": _json_values, "carrier": _json_values}
    ),
    data=st.binary(max_size=200),
)
def test_any_decoded_event_maps_or_is_refused_never_a_traceback(
    tmp_path_factory: pytest.TempPathFactory, args: dict[str, object], data: bytes
) -> None:
    compiled = quotes_mappings(tmp_path_factory.mktemp("spec"))
    [mapping] = compiled.mappings
    log = quote_log("s", 1)
    for attempt in (
        lambda: mapping.map(args, position(log)),
        lambda: compiled.map(Log(**{**log.__dict__, "data": data}), position(log)),
    ):
        try:
            event = attempt()
        except EventRefused as exc:
            assert exc.reason in {"schema", "undecodable", "unmappable"}
            assert "\n" not in str(exc)
        else:
            assert event is not None
            assert json.loads(write_event(event))["type"] == TYPE


def _refusal(tmp_path: Path, mapping: EventMapping, schema: object = SCHEMA) -> str:
    write_schema(tmp_path)
    if schema is not SCHEMA:
        (tmp_path / "schemas" / "cost-quoted.json").write_text(json.dumps(schema))
    with pytest.raises(MappingError) as caught:
        compile_mappings(quotes_artifact().abi, [mapping], base=tmp_path)
    message = str(caught.value)
    assert "\n" not in message and isinstance(caught.value, ValueError)
    return message


def replace_mapping(**changes: object) -> EventMapping:
    fields = {f: getattr(MAPPING, f) for f in MAPPING.__struct_fields__}
    return EventMapping(**{**fields, **changes})  # type: ignore[arg-type]


def test_declarations_that_do_not_fit_are_refused(tmp_path: Path) -> None:
    assert "no event 'CostQuote'" in _refusal(tmp_path, replace_mapping(event="CostQuote"))
    unknown = _refusal(tmp_path, replace_mapping(data={"price": "price"}))
    assert "unknown field 'price'" in unknown and "$block" in unknown
    assert "reverse-DNS" in _refusal(tmp_path, replace_mapping(type="CostQuoted"))
    assert "reverse-DNS" in _refusal(tmp_path, replace_mapping(type="dev.Pervasive.x"))
    assert "does not exist" in _refusal(tmp_path, replace_mapping(schema="schemas/none.json"))
    assert "placeholder {cargo}" in _refusal(tmp_path, replace_mapping(subject="{cargo}"))
    assert "mapped twice" not in _refusal(tmp_path, replace_mapping(data={}))
    twice = _refusal_many(tmp_path, [MAPPING, MAPPING])
    assert "mapped twice" in twice


def _refusal_many(tmp_path: Path, mappings: list[EventMapping]) -> str:
    write_schema(tmp_path)
    with pytest.raises(MappingError) as caught:
        compile_mappings(quotes_artifact().abi, mappings, base=tmp_path)
    return str(caught.value)


def test_schema_files_must_be_draft07_with_an_absolute_id(tmp_path: Path) -> None:
    relative = {**SCHEMA, "$id": "cost-quoted.json"}
    assert "absolute URI" in _refusal(tmp_path, MAPPING, relative)
    missing = {k: v for k, v in SCHEMA.items() if k != "$id"}
    assert "absolute URI" in _refusal(tmp_path, MAPPING, missing)
    assert "not a valid draft-07" in _refusal(tmp_path, MAPPING, {**SCHEMA, "type": "objekt"})
    assert "not a valid draft-07" in _refusal(tmp_path, MAPPING, {**SCHEMA, "required": "cost"})
    later = {**SCHEMA, "$schema": "https://json-schema.org/draft/2020-12/schema"}
    assert "write draft-07" in _refusal(tmp_path, MAPPING, later)
    write_schema(tmp_path)
    (tmp_path / "schemas" / "cost-quoted.json").write_text("{not json")
    with pytest.raises(MappingError, match="not readable JSON"):
        compile_mappings(quotes_artifact().abi, [MAPPING], base=tmp_path)


@pytest.mark.parametrize("name", ["agreement", "sale_order_factory"])
def test_builtin_declarations_compile_against_the_shipped_contracts(
    name: str, artifacts: Path
) -> None:
    compiled = compile_builtin(name, compile_contract(name, cache_dir=artifacts).abi)
    assert len(compiled.mappings) == len(builtin_mappings(name)) >= 3
    assert all(m.type.startswith("dev.pervasive.") for m in compiled.mappings)
    assert all(m.schema.id.startswith("urn:pervasive:schema:") for m in compiled.mappings)


def test_every_builtin_declaration_loads_and_shadow_changes_compile() -> None:
    assert all(builtin_mappings(name) for name in BUILTIN_NAMES)
    shadow = compile_shadow_mapping()
    event = shadow.build(
        {"thing": "lock-1", "shadow": None, "version": 3, "exists": True,
         "desired": {"door": "open"}, "reported": {}},
        id="classic/000000000003", source="urn:pervasive:shadow:lock-1", time=WHEN,
    )  # fmt: skip
    assert event.get_subject() == "lock-1" and event.get_dataschema() == shadow.schema.id
    with pytest.raises(EventRefused):
        shadow.build({"thing": "", "shadow": None, "version": -1, "exists": True, "desired": {},
                      "reported": {}}, id="x", source="urn:x", time=WHEN)  # fmt: skip
