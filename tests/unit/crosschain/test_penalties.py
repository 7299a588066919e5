"""Serving-phase bodies round-trip and refuse garbage; a penalty reaches C_sp exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pervasive.committee import Envelope
from pervasive.contracts.notary import Notary
from pervasive.crosschain.challenge import Challenge, ChallengeKind, challenge_id
from pervasive.crosschain.committee_spec import CommitteeContracts
from pervasive.crosschain.dkg_bodies import notary_domain
from pervasive.crosschain.penalties import (
    SERVING_ROUND,
    ChallengeBody,
    ContractsBody,
    NotaryPenaltyPort,
    PenaltyTransaction,
    ServingKind,
    challenge_round,
    decode_serving_body,
)
from pervasive.crosschain.signing import PartialSignature
from pervasive.crypto import PrivateKey, abi_encode, checksum_address
from pervasive.errors import InvalidInput, TransactionReverted

SESSION = "0x" + "ab" * 20
DOMAIN = notary_domain(31337, SESSION)
KEY = PrivateKey(b"\x21" * 32)

bytes32 = st.binary(min_size=32, max_size=32)
addresses = st.binary(min_size=20, max_size=20).map(checksum_address)
uint256 = st.integers(0, 2**256 - 1)
challenges = st.builds(Challenge, st.just(ChallengeKind.UNDELIVERED), bytes32, bytes32) | st.builds(
    Challenge, st.just(ChallengeKind.UNPAID), bytes32, st.binary(min_size=1, max_size=300)
)
contracts = st.builds(CommitteeContracts, addresses, addresses, addresses, uint256)
partials = st.builds(
    PartialSignature, bytes32, st.binary(max_size=100), st.binary(min_size=48, max_size=48)
)


def envelope(kind: int, body: bytes, round: int = SERVING_ROUND) -> Envelope:
    return Envelope.create(KEY, DOMAIN, session=SESSION, round=round, kind=kind, nonce=1, body=body)


@settings(max_examples=100, deadline=None)
@given(challenges)
def test_challenge_body_round_trips(challenge: Challenge) -> None:
    body = ChallengeBody(challenge)
    assert ChallengeBody.decode(body.encode()) == body
    assert decode_serving_body(envelope(ServingKind.CHALLENGE, body.encode())) == body


@settings(max_examples=100, deadline=None)
@given(contracts)
def test_contracts_body_round_trips(deployed: CommitteeContracts) -> None:
    body = ContractsBody(deployed)
    assert ContractsBody.decode(body.encode()) == body
    assert decode_serving_body(envelope(ServingKind.CONTRACTS, body.encode())) == body


@settings(max_examples=50, deadline=None)
@given(partials)
def test_partial_signature_body_round_trips(partial: PartialSignature) -> None:
    decoded = decode_serving_body(envelope(ServingKind.PARTIAL_SIGNATURE, partial.encode()))
    assert decoded == partial


def test_the_dkg_round_is_refused() -> None:
    body = ChallengeBody(Challenge(ChallengeKind.UNPAID, b"\x01" * 32, b"raw")).encode()
    with pytest.raises(InvalidInput, match="round 1, not 0"):
        decode_serving_body(envelope(ServingKind.CHALLENGE, body, round=0))


@pytest.mark.parametrize("kind", [1, 4, 9, 13, 255])
def test_an_unknown_kind_is_refused(kind: int) -> None:
    with pytest.raises(InvalidInput, match=f"unknown notary message kind {kind}"):
        decode_serving_body(envelope(kind, b""))


def test_an_unknown_challenge_kind_is_refused() -> None:
    body = abi_encode(["string", "bytes32", "bytes"], ["stolen", b"\x01" * 32, b"x"])
    with pytest.raises(InvalidInput, match="unknown challenge kind 'stolen'"):
        decode_serving_body(envelope(ServingKind.CHALLENGE, body))


@pytest.mark.parametrize(
    ("kind", "evidence"),
    [("undelivered", b"\x01" * 31), ("undelivered", b""), ("unpaid", b""),
     ("unpaid", b"\x02" * 16_385)],
)  # fmt: skip
def test_a_relayed_challenge_is_checked_like_one_received_over_http(
    kind: str, evidence: bytes
) -> None:
    body = abi_encode(["string", "bytes32", "bytes"], [kind, b"\x01" * 32, evidence])
    with pytest.raises(InvalidInput, match="evidence is"):
        decode_serving_body(envelope(ServingKind.CHALLENGE, body))


def test_a_body_of_another_kind_is_refused() -> None:
    contracts_body = ContractsBody(CommitteeContracts(*["0x" + "11" * 20] * 3, 1)).encode()
    with pytest.raises(InvalidInput):
        decode_serving_body(envelope(ServingKind.CHALLENGE, contracts_body))
    with pytest.raises(InvalidInput):
        decode_serving_body(envelope(ServingKind.PARTIAL_SIGNATURE, contracts_body))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(ServingKind), st.binary(max_size=400))
def test_garbage_bodies_raise_only_invalid_input(kind: ServingKind, body: bytes) -> None:
    with contextlib.suppress(InvalidInput):
        decode_serving_body(envelope(kind, body))


@settings(max_examples=100, deadline=None)
@given(challenges, st.data())
def test_corrupted_challenge_bodies_raise_only_invalid_input(
    challenge: Challenge, data: st.DataObject
) -> None:
    encoded = bytearray(ChallengeBody(challenge).encode())
    position = data.draw(st.integers(0, len(encoded) - 1))
    encoded[position] ^= data.draw(st.integers(1, 255))
    with contextlib.suppress(InvalidInput):
        ChallengeBody.decode(bytes(encoded))


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(ChallengeKind), bytes32)
def test_challenge_round_fits_sqlite_integer(kind: ChallengeKind, payment_id: bytes) -> None:
    identifier = challenge_id(kind, payment_id)
    number = challenge_round(identifier)
    assert 0 <= number < 2**63
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (round INTEGER)")
    db.execute("INSERT INTO t VALUES (?)", (number,))
    assert db.execute("SELECT round FROM t").fetchone() == (number,)
    assert challenge_round(b"\xff" * 32) == 2**56 - 1


@settings(max_examples=100, deadline=None)
@given(bytes32, addresses, addresses, uint256, st.binary(max_size=128))
def test_penalty_transaction_round_trips(
    identifier: bytes, cheater: str, victim: str, amount: int, signature: bytes
) -> None:
    transaction = PenaltyTransaction(identifier, cheater, victim, amount, signature)
    assert PenaltyTransaction.decode(transaction.encode()) == transaction


def test_a_penalty_transaction_with_trailing_bytes_is_refused() -> None:
    encoded = PenaltyTransaction(b"\x01" * 32, "0x" + "11" * 20, "0x" + "22" * 20, 5, b"s").encode()
    with pytest.raises(InvalidInput):
        PenaltyTransaction.decode(encoded + b"\x00")


class _SettledNotary:
    def __init__(self, settled: set[bytes]) -> None:
        self.settled = settled
        self.asked: list[bytes] = []

    async def is_settled(self, identifier: bytes) -> bool:
        self.asked.append(identifier)
        return identifier in self.settled


def test_the_port_maps_rounds_back_to_ids_and_asks_the_notary() -> None:
    settled_id = challenge_id(ChallengeKind.UNDELIVERED, b"\x01" * 32)
    open_id = challenge_id(ChallengeKind.UNPAID, b"\x01" * 32)
    notary: Any = _SettledNotary({settled_id})
    port = NotaryPenaltyPort(cast(Notary, notary))
    port.remember(settled_id)
    port.remember(open_id)
    assert asyncio.run(port.recorded(challenge_round(settled_id))) is True
    assert asyncio.run(port.recorded(challenge_round(open_id))) is False
    assert asyncio.run(port.recorded(12345)) is False  # never remembered: not asked
    assert notary.asked == [settled_id, open_id]


def test_already_recorded_is_the_notarys_settled_revert_only() -> None:
    port = NotaryPenaltyPort(cast(Notary, _SettledNotary(set())))
    assert port.already_recorded(TransactionReverted("challenge already settled"))
    assert not port.already_recorded(TransactionReverted("bad committee signature"))
    assert not port.already_recorded(TransactionReverted(None))
