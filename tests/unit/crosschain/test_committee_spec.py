"""committee.json: what every member agrees on before setup, read strictly, written atomically."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pervasive.crosschain.committee_spec import CommitteeContracts, CommitteeMember, CommitteeSpec
from pervasive.crypto import PrivateKey, checksum_address
from pervasive.errors import ConfigError, InvalidInput

KEYS = [PrivateKey(bytes([i]) * 32) for i in range(1, 5)]
CONTRACTS = CommitteeContracts(
    checksum_address("0x" + "a1" * 20),
    checksum_address("0x" + "b2" * 20),
    checksum_address("0x" + "c3" * 20),
    from_block=7,
)


def spec(**changes: Any) -> CommitteeSpec:
    fields: dict[str, Any] = {
        "chain_id": 31337, "threshold": 3, "setup_nonce": b"\x5e" * 32, "publish_window": 30,
        "period_end": 1_796_000_000, "coef_percent": 150, "dkg_start": 1_765_000_000.5,
        "dkg_step": 5.0,
        "members": tuple(
            CommitteeMember(i, k.public_key, f"http://127.0.0.1:{8700 + i}")
            for i, k in enumerate(KEYS, start=1)
        ),
        "contracts": CONTRACTS,
    }  # fmt: skip
    fields |= changes
    return CommitteeSpec(**fields)


GOOD = spec().to_json()


def test_json_round_trip_with_and_without_contracts() -> None:
    for original in (spec(), spec(contracts=None)):
        text = json.dumps(original.to_json())
        assert CommitteeSpec.from_json(json.loads(text)) == original


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 2**64),
    st.integers(1, 4).flatmap(lambda n: st.tuples(st.just(n), st.integers(1, n))),
    st.binary(min_size=32, max_size=32),
    st.integers(1, 10**6),
    st.integers(100, 10**4),
    st.floats(0, 2**40, allow_nan=False),
    st.floats(0.001, 10**4, allow_nan=False),
)
def test_json_round_trip_of_any_valid_spec(
    chain_id: int, sizes: tuple[int, int], nonce: bytes, window: int, coef: int,
    start: float, step: float,
) -> None:  # fmt: skip
    n, threshold = sizes
    original = spec(
        chain_id=chain_id, threshold=threshold, setup_nonce=nonce, publish_window=window,
        coef_percent=coef, dkg_start=start, dkg_step=step, members=spec().members[:n],
    )  # fmt: skip
    assert CommitteeSpec.from_json(json.loads(json.dumps(original.to_json()))) == original


def test_save_then_load(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "committee.json"
    spec().save(path)
    assert CommitteeSpec.load(path) == spec()
    assert [p.name for p in path.parent.iterdir()] == ["committee.json"]  # no partial left


def test_save_replaces_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "committee.json"
    spec(contracts=None).save(path)

    def crash(self: Path, target: Path) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(Path, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        spec().save(path)
    monkeypatch.undo()
    # the crash left the previous file whole: readers never see half a file
    assert CommitteeSpec.load(path) == spec(contracts=None)


def test_the_members_and_addresses() -> None:
    committee = spec()
    assert committee.n == 4
    assert committee.addresses == tuple(k.address for k in KEYS)
    assert committee.member(2).address == KEYS[1].address
    assert committee.index_of(KEYS[2].address.lower()) == 3
    assert committee.with_contracts(CONTRACTS) == committee
    assert spec(contracts=None).with_contracts(CONTRACTS) == committee
    for index in (0, 5, -1):
        with pytest.raises(InvalidInput, match="there is no member"):
            committee.member(index)
    with pytest.raises(InvalidInput, match="not a member"):
        committee.index_of(PrivateKey(b"\x09" * 32).address)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"threshold": 0}, "threshold must be in 1..4"),
        ({"threshold": 5}, "threshold must be in 1..4"),
        ({"setup_nonce": b"\x00" * 31}, "setup nonce is 32"),
        ({"setup_nonce": b"\x00" * 33}, "setup nonce is 32"),
        ({"publish_window": 0}, "publish_window"),
        ({"coef_percent": 99}, "coef_percent"),
        ({"dkg_step": 0.0}, "dkg_step"),
        ({"dkg_step": math.nan}, "dkg_step"),
        ({"dkg_step": math.inf}, "dkg_step"),
        ({"dkg_start": math.nan}, "dkg_start"),
    ],
)
def test_bad_values_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        spec(**changes)


def test_member_indices_must_be_1_to_n_in_order() -> None:
    members = spec().members
    for bad in (members[1:], (members[1], members[0], *members[2:]), ()):
        with pytest.raises(InvalidInput):
            spec(members=bad, threshold=1)
    twice = (*members[:3], CommitteeMember(4, KEYS[0].public_key, "http://x"))
    with pytest.raises(InvalidInput, match="listed twice"):
        spec(members=twice)


def _without(data: dict[str, Any], *path: str | int) -> dict[str, Any]:
    copy = json.loads(json.dumps(data))
    target = copy
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return copy


def _with(data: dict[str, Any], value: Any, *path: str | int) -> dict[str, Any]:
    copy = json.loads(json.dumps(data))
    target = copy
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return copy


FIELDS = ["chain_id", "threshold", "setup_nonce", "publish_window", "period_end",
          "coef_percent", "dkg_start", "dkg_step", "members"]  # fmt: skip
MEMBER_FIELDS = ["index", "public_key", "url"]
CONTRACT_FIELDS = ["notary", "oracle", "user_contract", "from_block"]

MALFORMED = (
    [pytest.param(_without(GOOD, f), f, id=f"missing {f}") for f in FIELDS]
    + [pytest.param(_without(GOOD, "members", 1, f), f, id=f"member {f}") for f in MEMBER_FIELDS]
    + [pytest.param(_without(GOOD, "contracts", f), f, id=f"contract {f}") for f in CONTRACT_FIELDS]
    + [
        pytest.param(_with(GOOD, "three", "threshold"), "threshold", id="threshold text"),
        pytest.param(_with(GOOD, None, "chain_id"), "chain_id", id="chain_id null"),
        pytest.param(_with(GOOD, "0xzz", "setup_nonce"), "setup_nonce", id="nonce not hex"),
        pytest.param(_with(GOOD, "0x00", "setup_nonce"), "setup nonce", id="nonce short"),
        pytest.param(_with(GOOD, "soon", "dkg_start"), "dkg_start", id="start text"),
        pytest.param(_with(GOOD, {}, "members"), "members", id="members object"),
        pytest.param(_with(GOOD, 4, "members"), "members", id="members number"),
        pytest.param(_with(GOOD, ["x"], "members"), "members", id="member text"),
        pytest.param(_with(GOOD, "0x04", "members", 0, "public_key"), "public_key", id="pk short"),
        pytest.param(_with(GOOD, "0xgg", "members", 0, "public_key"), "public_key", id="pk hex"),
        pytest.param(_with(GOOD, 3, "members", 0, "index"), "indices", id="index out of order"),
        pytest.param(_with(GOOD, "0x12", "contracts", "notary"), "notary", id="notary short"),
        pytest.param(_with(GOOD, ["x"], "contracts"), "contracts", id="contracts list"),
        pytest.param(_with(GOOD, "soon", "contracts", "from_block"), "from_block", id="block"),
    ]
)


@pytest.mark.parametrize(("data", "field"), MALFORMED)
def test_every_malformed_field_is_named_in_one_line(data: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as error:
        CommitteeSpec.from_json(data)
    message = str(error.value)
    assert "\n" not in message
    assert field in message


@pytest.mark.parametrize("document", [[], "committee", 4, None, True])
def test_a_document_that_is_no_object_is_invalid_input(document: Any) -> None:
    with pytest.raises(InvalidInput):
        CommitteeSpec.from_json(document)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


PATHS = (
    [(f,) for f in [*FIELDS, "contracts"]]
    + [("members", 0, f) for f in MEMBER_FIELDS]
    + [("members", 0), ("contracts", "x")]
    + [("contracts", f) for f in CONTRACT_FIELDS]
)


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(PATHS), json_values)
def test_any_json_in_any_field_raises_only_invalid_input(
    path: tuple[str | int, ...], value: Any
) -> None:
    try:
        parsed = CommitteeSpec.from_json(_with(GOOD, value, *path))
    except InvalidInput as error:
        assert "\n" not in str(error)
        return
    assert CommitteeSpec.from_json(parsed.to_json()) == parsed


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "is not a committee file"),
        (b"[]", "is not a committee file"),
        (b"\xff\xfe\x00binary", "committee file"),
        (json.dumps(_without(GOOD, "members")).encode(), "members"),
    ],
    ids=["not json", "a list", "binary", "no members"],
)
def test_load_turns_every_bad_file_into_config_error(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "committee.json"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=message) as error:
        CommitteeSpec.load(path)
    assert "\n" not in str(error.value)


def test_load_of_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the committee file"):
        CommitteeSpec.load(tmp_path / "absent.json")
