"""A binding's arguments become the function's ABI types, or a one-line refusal."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pervasive.errors import SchemaViolation
from pervasive.service.arguments import ArgumentPlan, to_abi
from pervasive.service.spec import SpecError

WORD = "0x" + "ab" * 32
ADDRESS = "0xcd2a3d9f938e13cd947ec05abc7fe734df8dd826"


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        ("uint64", 7, 7),
        ("uint256", "42", 42),  # a URL path parameter is text
        ("int8", "-128", -128),
        ("bool", "true", True),
        ("bool", False, False),
        ("string", "ship-1", "ship-1"),
        ("string", 12, "12"),
        ("address", ADDRESS, "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"),
        ("bytes32", WORD, bytes.fromhex("ab" * 32)),
        ("bytes32", b"\x01" * 32, b"\x01" * 32),
        ("bytes", "0x0102", b"\x01\x02"),
    ],
)
def test_values_become_their_abi_type(kind: str, value: object, expected: object) -> None:
    assert to_abi(kind, value) == expected


@pytest.mark.parametrize(
    ("kind", "value", "words"),
    [
        ("uint8", 256, "does not fit uint8"),
        ("uint64", -1, "does not fit"),
        ("uint64", True, "must be an integer"),
        ("uint64", "12a", "must be an integer"),
        ("bool", "yes", "true or false"),
        ("address", "0x12", "address"),
        ("bytes32", "0xabcd", "must be 32 bytes"),
        ("bytes32", "ship-1", "0x-hex"),
        ("string", None, "must be a string"),
        ("uint256[]", [1], "bindings do not fill"),
    ],
)
def test_values_that_do_not_fit_are_refused_saying_why(
    kind: str, value: object, words: str
) -> None:
    with pytest.raises(SchemaViolation, match=words):
        to_abi(kind, value, "argument 1 of f")


@given(st.integers(min_value=-(2**70), max_value=2**70))
def test_an_integer_fits_uint64_exactly_when_in_range(value: int) -> None:
    if 0 <= value < 2**64:
        assert to_abi("uint64", value) == value
        assert to_abi("uint64", str(value)) == value
    else:
        with pytest.raises(SchemaViolation):
            to_abi("uint64", value)


def test_mqtt_plan_takes_reading_fields_and_specials() -> None:
    plan = ArgumentPlan.compile(
        ["shipment", "$device", "$sequence", "$time", 5, "=literal"],
        ("string", "string", "uint64", "uint64", "uint256", "string"),
        origin="mqtt",
    )
    fields = {"shipment": "ship-1", "time": 99}
    specials = {"device": "container-1", "sequence": 7, "time": 99}
    assert plan.resolve(fields, specials) == ("ship-1", "container-1", 7, 99, 5, "literal")


def test_rest_plan_takes_path_parameters_then_body_fields() -> None:
    plan = ArgumentPlan.compile(
        ["shipment", "$device", "amount"],
        ("string", "string", "uint256"),
        origin="rest",
        path_parameters=("shipment",),
    )
    args = plan.resolve(
        {"amount": "12", "shipment": "not this"}, {"device": "d"}, {"shipment": "s"}
    )
    assert args == ("s", "d", 12)
    with pytest.raises(SchemaViolation, match="needs 'amount', which the JSON body does not have"):
        plan.resolve({}, {"device": "d"}, {"shipment": "s"})


def test_trigger_plan_takes_literals_and_the_episode_key() -> None:
    plan = ArgumentPlan.compile(["ship-1", "$key"], ("string", "bytes32"), origin="trigger")
    assert plan.resolve({}, {"key": b"\x07" * 32}) == ("ship-1", b"\x07" * 32)


@pytest.mark.parametrize(
    ("args", "inputs", "origin", "words"),
    [
        (["a"], ("string", "string"), "mqtt", "takes 2 arguments but the binding gives 1"),
        (["$key"], ("bytes32",), "mqtt", "not known here"),
        (["$device"], ("uint256[]",), "mqtt", "bindings fill only"),
        ([-1], ("uint8",), "trigger", "does not fit uint8"),
        (["not a name"], ("string",), "rest", "no field name"),
    ],
)
def test_plans_that_cannot_work_are_refused_at_start(
    args: list[str | int], inputs: tuple[str, ...], origin: str, words: str
) -> None:
    with pytest.raises(SpecError, match=words):
        ArgumentPlan.compile(args, inputs, origin=origin)  # type: ignore[arg-type]


def test_a_field_that_does_not_fit_names_the_argument() -> None:
    plan = ArgumentPlan.compile(["count"], ("uint8",), origin="mqtt", function="f(uint8)")
    with pytest.raises(SchemaViolation, match=r"argument 1 \(count\) of f\(uint8\)"):
        plan.resolve({"count": 300}, {})
