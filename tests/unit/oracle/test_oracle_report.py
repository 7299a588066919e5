"""Oracle reports without a chain: the digest equals eth-account's EIP-712 hashing of the
full typed-data document, signatures recover to their signer, packing orders signers as
the hub reads them, and every encoding round-trips."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pervasive.committee import Envelope
from pervasive.contracts.oracle_hub import (
    REPORT_BYTES,
    Expiry,
    Fulfillment,
    Report,
    pack_reports,
)
from pervasive.crypto import (
    PrivateKey,
    Signature,
    generate_private_key,
    hash_typed_data,
    recover_hash,
)
from pervasive.errors import InvalidInput, InvalidSignature
from pervasive.oracle import REPORT, ReportBody, decode_report_body

HUB = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
KEYS = [generate_private_key() for _ in range(3)]
uint256 = st.integers(0, 2**256 - 1)
reports = st.builds(
    Report,
    query_id=uint256,
    response_digest=st.binary(min_size=32, max_size=32),
    value=uint256,
    observed_at=st.integers(0, 2**64 - 1),
    source=st.text(min_size=1, max_size=60),
)


def _document(chain_id: int, r: Report) -> dict[str, object]:
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Report": [
                {"name": "queryId", "type": "uint256"},
                {"name": "responseDigest", "type": "bytes32"},
                {"name": "value", "type": "uint256"},
                {"name": "observedAt", "type": "uint64"},
                {"name": "source", "type": "string"},
            ],
        },
        "primaryType": "Report",
        "domain": {
            "name": "pervasive oracle hub",
            "version": "1",
            "chainId": chain_id,
            "verifyingContract": HUB,
        },
        "message": {
            "queryId": r.query_id,
            "responseDigest": r.response_digest,
            "value": r.value,
            "observedAt": r.observed_at,
            "source": r.source,
        },
    }


@settings(max_examples=40, deadline=None)
@given(report=reports, chain_id=st.integers(1, 2**32))
def test_the_report_digest_is_eip712_of_the_full_document(report: Report, chain_id: int) -> None:
    assert report.digest(chain_id, HUB) == hash_typed_data(_document(chain_id, report)).digest


@settings(max_examples=20, deadline=None)
@given(report=reports)
def test_a_signed_report_recovers_to_its_signer_and_packs_its_time(report: Report) -> None:
    signed = report.sign(KEYS[0], 31337, HUB)
    signed.verify(31337, HUB)
    digest = report.digest(31337, HUB)
    assert recover_hash(digest, Signature.from_bytes(signed.signature)) == KEYS[0].address
    entry = signed.entry()
    assert len(entry) == REPORT_BYTES
    assert int.from_bytes(entry[:8], "big") == report.observed_at and entry[8:] == signed.signature


def test_a_report_signed_for_another_hub_or_by_another_key_does_not_verify() -> None:
    report = Report(1, bytes(32), 5, 100, "http://x/")
    signed = report.sign(KEYS[0], 31337, HUB)
    with pytest.raises(InvalidSignature):
        signed.verify(31338, HUB)
    forged = type(signed)(report, KEYS[1].address, signed.signature)
    with pytest.raises(InvalidSignature):
        forged.verify(31337, HUB)


def test_packing_orders_signers_by_address_and_fulfillments_round_trip() -> None:
    report = Report(7, b"\x01" * 32, 42, 1_700_000_000, "http://x/")
    signed = [report.sign(k, 31337, HUB) for k in KEYS]
    packed = pack_reports(signed)
    ordered = sorted(KEYS, key=lambda k: int(k.address, 16))
    for i, key in enumerate(ordered):
        entry = packed[i * REPORT_BYTES : (i + 1) * REPORT_BYTES]
        assert entry == report.sign(key, 31337, HUB).entry()
    fulfillment = Fulfillment.of(signed)
    assert Fulfillment.decode(fulfillment.encode()) == fulfillment
    assert (fulfillment.query_id, fulfillment.value) == (7, 42)
    assert Expiry.decode(Expiry(7, 2).encode()) == Expiry(7, 2)


def test_reports_that_disagree_make_no_fulfillment() -> None:
    a = Report(7, b"\x01" * 32, 42, 1, "http://x/").sign(KEYS[0], 1, HUB)
    b = Report(7, b"\x01" * 32, 43, 1, "http://x/").sign(KEYS[1], 1, HUB)
    with pytest.raises(InvalidInput, match="agree"):
        Fulfillment.of([a, b])


@pytest.mark.parametrize(
    "fields",
    [
        {"query_id": -1},
        {"value": 2**256},
        {"observed_at": 2**64},
        {"response_digest": b"short"},
        {"source": ""},
        {"source": "x" * 257},
    ],
)
def test_a_report_out_of_its_ranges_is_refused(fields: dict[str, object]) -> None:
    base: dict[str, object] = {
        "query_id": 1, "response_digest": bytes(32), "value": 1, "observed_at": 1,
        "source": "http://x/",
    }  # fmt: skip
    with pytest.raises(InvalidInput):
        Report(**{**base, **fields})  # type: ignore[arg-type]


def test_the_report_body_round_trips_in_an_envelope() -> None:
    signed = Report(3, b"\x02" * 32, 9, 77, "http://x/").sign(KEYS[0], 1, HUB)
    body = ReportBody.of(signed, attempt=2)
    key: PrivateKey = KEYS[0]
    envelope = Envelope.create(key, bytes(32), session=HUB, round=3, kind=REPORT, nonce=1,
                               body=body.encode())  # fmt: skip
    decoded = decode_report_body(envelope)
    assert decoded == body
    assert decoded.signed(3, "http://x/", key.address) == signed
    other = Envelope.create(key, bytes(32), session=HUB, round=3, kind=9, nonce=2, body=b"")
    with pytest.raises(InvalidInput):
        decode_report_body(other)
