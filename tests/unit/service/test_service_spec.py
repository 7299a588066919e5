"""The service spec: what loads, and every refusal as one line naming file, entry and fix.

No chain: the ABI checks use the sample contracts' ABIs, compiled once per session
(and cached beside pytest's folders like the platform's artifacts).
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pervasive.errors import InvalidInput
from pervasive.interop import EventMapping
from pervasive.service import (
    Argument,
    ServiceSpec,
    SpecError,
    check_against_abi,
    load_spec,
    parse_argument,
)
from pervasive.service.deployment import compile_logic

SAMPLES = Path(__file__).parent / "samples"


@pytest.fixture
def specs(tmp_path: Path) -> Path:
    """A copy of the samples, free to edit."""
    return Path(shutil.copytree(SAMPLES, tmp_path / "specs"))


@pytest.fixture(scope="module")
def abi(artifacts: Path) -> tuple[dict[str, Any], ...]:
    """The ABI of the sample logic v1."""
    return compile_logic(load_spec(SAMPLES / "shipping.toml"), artifacts).abi


def _write(folder: Path, text: str, name: str = "spec.toml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def _variant(specs: Path, old: str, new: str) -> Path:
    text = (specs / "shipping.toml").read_text()
    assert old in text
    return _write(specs, text.replace(old, new, 1))


def test_the_sample_loads_with_every_part(specs: Path) -> None:
    spec = load_spec(specs / "shipping.toml")
    assert (spec.name, spec.version, spec.root) == ("shipping-test", 1, specs)
    assert spec.contract.constructor == ["$database", "$operator"]
    assert spec.database is not None and spec.database.records["carrier"] == "address"
    [mqtt] = spec.mqtt
    assert (mqtt.device, mqtt.sensor, mqtt.function) == (None, "delivery", "confirm_delivery")
    assert [r.parameters for r in spec.rest] == [("shipment",), ("shipment",)]
    assert spec.events == [
        EventMapping(
            event="CostQuoted",
            type="dev.pervasive.test.cost-quoted",
            schema="schemas/cost-quoted.json",
            subject="{shipment}",
            data={"shipment": "shipment", "cost": "cost", "block": "$block"},
        )
    ]
    assert "def quote" in spec.logic_source()
    tracking = load_spec(specs / "tracking.toml")
    assert tracking.contract.shipped == "asset_tracking"
    assert tracking.trigger[0].when.window == 300 and tracking.database is None
    assert "def sendMoney" in tracking.logic_source()


@pytest.mark.parametrize(
    ("old", "new", "reason", "message"),
    [
        (
            'name = "shipping-test"',
            'name = "Shipping"',
            "bad_name",
            "name: 'Shipping' is no service name: use [a-z][a-z0-9-]{0,39}",
        ),
        ("version = 1", "version = 0", "bad_version", "version: 0 is no version"),
        ("version = 1", 'version = "1"', "field", "version: expected `int`, got `str`"),
        ("[contract]", "colour = 3\n[contract]", "unknown_field", "unknown field 'colour'"),
        (
            'source = "shipping_v1.vy"',
            'source = "nope.vy"',
            "missing_source",
            "contract.source: no such file",
        ),
        (
            'source = "shipping_v1.vy"',
            'source = "pervasive:nope"',
            "missing_source",
            "no contract named 'nope' ships with pervasive",
        ),
        (
            'carrier = "address"',
            'carrier = "addr"',
            "bad_type",
            "database.records.carrier: unknown type 'addr': use one of uint256, int256",
        ),
        (
            "pervasive/devices/+/sensors/delivery",
            "pervasive/devices/+/delivery",
            "bad_topic",
            "mqtt[0].topic: 'pervasive/devices/+/delivery' is no device sensor topic",
        ),
        (
            "pervasive/devices/+/sensors/delivery",
            "pervasive/shadow/+/sensors/x",
            "bad_topic",
            "use pervasive/devices/<device id or +>/sensors/<sensor>",
        ),
        (
            'args = ["shipment", "$device"]',
            'args = ["shipment", "$time2"]',
            "bad_argument",
            "mqtt[0].args[1]: '$time2' is not known here: use one of $device, $time, $sequence",
        ),
        (
            'args = ["shipment", "$device"]',
            'args = ["ship-1", "$device"]',
            "bad_argument",
            "'ship-1' is no field name",
        ),
        (
            'constructor = ["$database", "$operator"]',
            'constructor = ["$database", "$me"]',
            "bad_argument",
            "contract.constructor[1]: '$me' is not known here",
        ),
        (
            'path = "/shipments/{shipment}/cost"',
            'path = "shipments"',
            "bad_path",
            "rest[0].path: 'shipments' is no route",
        ),
        (
            'method = "GET"',
            'method = "PUT"',
            "field",
            "rest[0].method: invalid value 'PUT': use GET or POST",
        ),
        ("[[mqtt]]", "[[mqtt]]\nqos = 1", "unknown_field", "mqtt[0]: unknown field 'qos'"),
        (
            "[database]\nrecords",
            "[database]\nkeys",
            "unknown_field",
            "database: unknown field 'keys'",
        ),
        (
            'function = "cost"\n',
            "",
            "missing_field",
            "rest[0]: missing required field 'function': add it",
        ),
    ],
)
def test_each_refusal_is_one_line_naming_entry_and_fix(
    specs: Path, old: str, new: str, reason: str, message: str
) -> None:
    path = _variant(specs, old, new)
    refusals: Counter[str] = Counter()
    with pytest.raises(SpecError) as caught:
        load_spec(path, refusals=refusals)
    text = str(caught.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text
    assert caught.value.reason == reason and refusals == Counter({reason: 1})
    assert isinstance(caught.value, InvalidInput)


def test_file_and_syntax_refusals(specs: Path) -> None:
    with pytest.raises(SpecError, match=r"missing.toml: no such spec file"):
        load_spec(specs / "missing.toml")
    with pytest.raises(SpecError, match="not valid TOML"):
        load_spec(_write(specs, 'name = "x\n'))
    with pytest.raises(SpecError, match="unknown field 'spec_file'"):
        load_spec(_variant(specs, "version = 1", 'version = 1\nspec_file = "x"'))
    with pytest.raises(SpecError, match="'\\$database' needs a \\[database\\] table"):
        text = (specs / "shipping.toml").read_text().split("[database]")[0]
        load_spec(_write(specs, text))


def test_trigger_refusals(specs: Path) -> None:
    tracking = (specs / "tracking.toml").read_text()
    twice = tracking + tracking[tracking.index("[[trigger]]") :]
    with pytest.raises(SpecError, match=r"trigger\[1\].name: trigger 'sendMoney' is declared"):
        load_spec(_write(specs, twice))
    alone = tracking.replace('["container-1", "retailer-1"]', '["container-1"]')
    with pytest.raises(SpecError, match="co_located: name two or more different devices"):
        load_spec(_write(specs, alone))
    with pytest.raises(SpecError, match="window: 0 is no window"):
        load_spec(_write(specs, tracking.replace("window = 300", "window = 0")))


@pytest.mark.parametrize(
    ("old", "new", "reason", "message"),
    [
        (
            'function = "confirm_delivery"',
            'function = "confirm_deliver"',
            "unknown_function",
            "mqtt[0].function: 'confirm_deliver' is not a function of shipping_v1.vy; functions: "
            "confirm_delivery, cost, database, operator, quote, version",
        ),
        (
            'args = ["shipment", "$device"]',
            'args = ["shipment"]',
            "arity",
            "mqtt[0].args: confirm_delivery takes 2 arguments",
        ),
        (
            'args = ["shipment", "$device"]',
            'args = ["shipment", "$time"]',
            "argument_type",
            "mqtt[0].args[1]: '$time' cannot be a string: $time is an integer",
        ),
        (
            'args = ["shipment", "$device"]',
            'args = ["shipment", 5]',
            "argument_type",
            "an integer literal fits only an integer input",
        ),
        (
            'method = "GET"',
            'method = "POST"',
            "wrong_method",
            "rest[0].method: POST cannot call cost: use GET for a view function",
        ),
        (
            'event = "CostQuoted"',
            'event = "CostQuote"',
            "unknown_event",
            "events[0].event: 'CostQuote' is not an event of shipping_v1.vy; events: CostQuoted, "
            "Delivered",
        ),
        (
            'constructor = ["$database", "$operator"]',
            'constructor = ["$database"]',
            "arity",
            "contract.constructor: the constructor takes 2 arguments (address, address), 1 given",
        ),
        (
            'constructor = ["$database", "$operator"]',
            'constructor = ["$database", "0x12"]',
            "argument_type",
            "write an address as 0x and 40 hex digits",
        ),
    ],
)
def test_the_abi_refusals(
    specs: Path, abi: tuple[dict[str, Any], ...], old: str, new: str, reason: str, message: str
) -> None:
    spec = load_spec(_variant(specs, old, new))
    with pytest.raises(SpecError) as caught:
        check_against_abi(spec, abi)
    assert message in str(caught.value) and caught.value.reason == reason
    assert str(caught.value).startswith(f"{spec.spec_file}: ")


def test_a_done_view_must_take_a_key(specs: Path, artifacts: Path) -> None:
    text = (specs / "tracking.toml").read_text().replace('done = "paid"', 'done = "shipment"')
    spec = load_spec(_write(specs, text))
    abi = compile_logic(spec, artifacts).abi
    with pytest.raises(
        SpecError, match=r"trigger\[0\].done: shipment must be a view \(bytes32\) -> bool"
    ):
        check_against_abi(spec, abi)


def test_arguments_by_section() -> None:
    assert parse_argument("mqtt", "shipment") == Argument("field", "shipment")
    assert parse_argument("mqtt", "=ship-1") == Argument("literal", "ship-1")
    assert parse_argument("mqtt", 7) == Argument("literal", 7)
    assert parse_argument("rest", "id", parameters=("id",)) == Argument("path", "id")
    assert parse_argument("rest", "note", parameters=("id",)) == Argument("field", "note")
    assert parse_argument("trigger", "ship-1") == Argument("literal", "ship-1")
    assert parse_argument("trigger", "$key") == Argument("key", "$key")
    assert parse_argument("constructor", "$contract:tracking") == Argument("contract", "tracking")
    with pytest.raises(InvalidInput, match=r"\$contract:<name>"):
        parse_argument("constructor", "$contract:Bad Name")


NAMES = st.from_regex(r"[a-z][a-z0-9-]{0,39}", fullmatch=True)


@given(name=NAMES, version=st.integers(min_value=1, max_value=2**62))
def test_any_valid_name_and_version_loads(tmp_path_factory: Any, name: str, version: int) -> None:
    folder = tmp_path_factory.mktemp("spec")
    (folder / "c.vy").write_text("# empty\n")
    spec = load_spec(
        _write(folder, f'name = "{name}"\nversion = {version}\n[contract]\nsource = "c.vy"\n')
    )
    assert isinstance(spec, ServiceSpec) and (spec.name, spec.version) == (name, version)


@given(
    name=st.text(min_size=0, max_size=45).filter(
        lambda n: (
            not (
                n[:1].isascii()
                and n[:1].islower()
                and len(n) <= 40
                and all(c in "abcdefghijklmnopqrstuvwxyz0123456789-" for c in n)
            )
        )
    ),
    version=st.integers(max_value=0),
)
def test_any_invalid_name_or_version_is_refused(
    tmp_path_factory: Any, name: str, version: int
) -> None:
    folder = tmp_path_factory.mktemp("spec")
    (folder / "c.vy").write_text("# empty\n")
    source = '[contract]\nsource = "c.vy"\n'
    with pytest.raises(SpecError, match=r"name: .* is no service name"):
        load_spec(_write(folder, f"name = {_toml_string(name)}\nversion = 1\n{source}"))
    with pytest.raises(SpecError, match=f"version: {version} is no version"):
        load_spec(_write(folder, f'name = "ok"\nversion = {version}\n{source}'))


def _toml_string(text: str) -> str:
    escaped = "".join(c if c.isprintable() and c not in '"\\' else f"\\U{ord(c):08x}" for c in text)
    return f'"{escaped}"'
