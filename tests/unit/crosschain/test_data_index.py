"""The identity-bound data index: encoding, sealing to C's key, the Litecoin commitment."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pervasive.crosschain.data_index import (
    DATA_REQUEST_TAG,
    INDEX_TAG,
    MAX_INDEX_CIPHERTEXT,
    DataRequest,
    DatasetSpec,
    IndexRecord,
    data_request_message,
    index_commitment,
    open_index,
    parse_data_request,
    parse_index_commitment,
    seal_index,
)
from pervasive.crypto import PrivateKey, abi_encode, keccak256, recover_message, sign_message
from pervasive.crypto.encryption import encrypt_to
from pervasive.errors import InvalidInput
from pervasive.sensing import SensorDeclaration

CONSUMER = PrivateKey(bytes([0x11]) * 32)
OTHER = PrivateKey(bytes([0x22]) * 32)
PAYMENT = keccak256(b"payment 1")
DIGEST = keccak256(b"dataset")


def index(**change: object) -> IndexRecord:
    fields: dict[str, object] = {
        "payment_id": PAYMENT,
        "dataset_id": "cold-room.7",
        "sys_url": "http://127.0.0.1:8080",
        "dataset_digest": DIGEST,
        "expiry": 1_900_000_000,
    }
    fields.update(change)
    return IndexRecord(**fields)  # type: ignore[arg-type]


dataset_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}", fullmatch=True)
urls = st.from_regex(
    r"https?://[a-z0-9.-]{1,60}(:[0-9]{1,5})?(/[a-z0-9_~%-]{0,100})?", fullmatch=True
)
indices = st.builds(
    IndexRecord,
    payment_id=st.binary(min_size=32, max_size=32),
    dataset_id=dataset_ids,
    sys_url=urls,
    dataset_digest=st.binary(min_size=32, max_size=32),
    expiry=st.integers(1, 2**64 - 1),
)


@given(indices)
def test_an_index_decodes_to_itself_and_has_one_encoding(record: IndexRecord) -> None:
    encoded = record.encode()
    assert IndexRecord.decode(encoded) == record
    assert encoded[:32] == INDEX_TAG


@settings(max_examples=25, deadline=None)
@given(indices)
def test_only_the_consumer_key_opens_a_sealed_index(record: IndexRecord) -> None:
    ciphertext = seal_index(record, CONSUMER.public_key)
    assert len(ciphertext) <= MAX_INDEX_CIPHERTEXT
    assert open_index(ciphertext, CONSUMER, payment_id=record.payment_id) == record
    with pytest.raises(InvalidInput):
        open_index(ciphertext, OTHER, payment_id=record.payment_id)


def test_a_sealed_index_does_not_open_for_another_payment() -> None:
    ciphertext = seal_index(index(), CONSUMER.public_key)
    with pytest.raises(InvalidInput, match="cannot decrypt"):
        open_index(ciphertext, CONSUMER, payment_id=keccak256(b"payment 2"))


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_any_altered_byte_of_the_ciphertext_is_refused(data: st.DataObject) -> None:
    ciphertext = bytearray(seal_index(index(), CONSUMER.public_key))
    position = data.draw(st.integers(0, len(ciphertext) - 1))
    ciphertext[position] ^= data.draw(st.integers(1, 255))
    with pytest.raises(InvalidInput):
        open_index(bytes(ciphertext), CONSUMER, payment_id=PAYMENT)


def test_sealing_twice_gives_different_ciphertexts() -> None:
    # a fresh ephemeral key each time: an observer cannot link two indices of one dataset
    assert seal_index(index(), CONSUMER.public_key) != seal_index(index(), CONSUMER.public_key)


def test_the_longest_index_still_fits_the_data_chain() -> None:
    longest = index(dataset_id="d" * 64, sys_url="https://" + "h" * 248)
    assert len(longest.sys_url) == 256
    assert len(seal_index(longest, CONSUMER.public_key)) <= MAX_INDEX_CIPHERTEXT


def test_an_index_naming_another_payment_is_refused() -> None:
    # P sealed the record of payment 2 under the context of payment 1: C must notice
    ciphertext = encrypt_to(
        CONSUMER.public_key, index(payment_id=keccak256(b"2")).encode(), context=PAYMENT
    )
    with pytest.raises(InvalidInput, match="another payment id"):
        open_index(ciphertext, CONSUMER, payment_id=PAYMENT)


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"payment_id": b"\x01" * 31}, "payment_id must be 32 bytes"),
        ({"dataset_digest": "ab" * 32}, "dataset_digest must be 32 bytes"),
        ({"dataset_id": ""}, "dataset id"),
        ({"dataset_id": "has space"}, "dataset id"),
        ({"dataset_id": "x" * 65}, "dataset id"),
        ({"sys_url": "ftp://host"}, "Sys URL"),
        ({"sys_url": "http://a b"}, "Sys URL"),
        ({"sys_url": "https://" + "h" * 249}, "Sys URL"),
        ({"expiry": 0}, "expiry"),
        ({"expiry": 2**64}, "expiry"),
    ],
)
def test_a_malformed_index_is_refused_with_what_is_wrong(
    change: dict[str, object], complaint: str
) -> None:
    with pytest.raises(InvalidInput, match=complaint):
        index(**change)


def test_decoding_refuses_other_records_and_non_canonical_bytes() -> None:
    encoded = index().encode()
    other_kind = abi_encode(
        ["bytes32", "bytes32", "string", "string", "bytes32", "uint64"],
        [keccak256(b"another record"), PAYMENT, "d", "http://h", DIGEST, 5],
    )
    with pytest.raises(InvalidInput, match="wrong tag"):
        IndexRecord.decode(other_kind)
    with pytest.raises(InvalidInput):
        IndexRecord.decode(encoded + bytes(32))
    with pytest.raises(InvalidInput):
        IndexRecord.decode(encoded[:-32])
    dirty = bytearray(encoded)
    dirty[-1] ^= 1  # the padding after the last string
    with pytest.raises(InvalidInput):
        IndexRecord.decode(bytes(dirty))


def test_the_litecoin_commitment_is_tag_payment_and_sha256() -> None:
    # FIPS 180-2 appendix B.1: SHA-256("abc")
    abc = bytes.fromhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    payload = index_commitment(PAYMENT, b"abc")
    assert payload == b"PVX1" + PAYMENT + abc
    assert len(payload) == 68 <= 80  # OP_RETURN's standard limit
    assert parse_index_commitment(payload) == (PAYMENT, hashlib.sha256(b"abc").digest())


# multiformats/multihash tests/values (vendored): the full-length SHA-256 rows, whose
# multihash is 0x12 (sha2-256), 0x20 (32 bytes), then the digest
_MULTIHASH = Path(__file__).resolve().parents[2] / "vectors" / "multihash" / "test_cases.csv"
with _MULTIHASH.open() as _file:
    _SHA256_ROWS = [
        row
        for row in csv.DictReader(_file)
        if row["algorithm"] == "sha2-256" and row["bits"] == "256"
    ]


@pytest.mark.parametrize("row", _SHA256_ROWS, ids=lambda row: row["input"][:12])
def test_the_commitment_digest_matches_external_sha256_vectors(row: dict[str, str]) -> None:
    assert row["multihash"][:4] == "1220"
    ciphertext = row["input"].encode("ascii")  # the file hashes its inputs as ASCII text
    payload = index_commitment(PAYMENT, ciphertext)
    assert parse_index_commitment(payload)[1].hex() == row["multihash"][4:]


def test_there_are_external_sha256_vectors() -> None:
    assert len(_SHA256_ROWS) >= 5


@pytest.mark.parametrize(
    "payload",
    [b"", b"PVX1" + bytes(63), b"PVX2" + bytes(64), b"PVX1" + bytes(65)],
)
def test_other_op_return_payloads_are_not_commitments(payload: bytes) -> None:
    with pytest.raises(InvalidInput, match="not a data index commitment"):
        parse_index_commitment(payload)


def test_the_request_c_signs_binds_nonce_and_ciphertext_under_a_tag() -> None:
    nonce, ciphertext = bytes(range(32)), b"sealed index"
    message = data_request_message(nonce, ciphertext)
    assert message == DATA_REQUEST_TAG + nonce + keccak256(ciphertext)
    signature = sign_message(CONSUMER, message).to_bytes()
    assert recover_message(message, signature) == CONSUMER.address
    assert recover_message(data_request_message(bytes(32), ciphertext), signature) != (
        CONSUMER.address
    )
    with pytest.raises(InvalidInput, match="POST /nonce"):
        data_request_message(bytes(31), ciphertext)


def test_a_data_request_parses_from_hex_fields() -> None:
    body = {"payment_id": "0x" + PAYMENT.hex(), "nonce": "00" * 32, "signature": "11" * 65}
    assert parse_data_request(body) == DataRequest(PAYMENT, bytes(32), b"\x11" * 65, None)
    assert parse_data_request({**body, "ciphertext": "0xab"}).ciphertext == b"\xab"


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ([], "JSON object"),
        ({"nonce": "00" * 32, "signature": "11" * 65}, "'payment_id' is missing"),
        ({"payment_id": "zz", "nonce": "00" * 32, "signature": "11" * 65}, "not hex"),
        ({"payment_id": "00" * 31, "nonce": "00" * 32, "signature": "11" * 65}, "32 bytes"),
        ({"payment_id": "00" * 32, "nonce": 7, "signature": "11" * 65}, "'nonce'"),
        ({"payment_id": "00" * 32, "nonce": "00" * 32, "signature": "11" * 64}, "65 bytes"),
    ],
)
def test_a_malformed_data_request_says_which_field(body: object, complaint: str) -> None:
    with pytest.raises(InvalidInput, match=complaint):
        parse_data_request(body)


def _declaration(key: PrivateKey) -> SensorDeclaration:
    return SensorDeclaration.create(key.public_key, "temperature", [("celsius", "int64")])


def test_a_dataset_digest_names_its_identity_not_the_listing_order() -> None:
    a, b = _declaration(CONSUMER), _declaration(OTHER)
    topics = ("pervasive/devices/t-1/sensors/temp", "pervasive/devices/t-2/sensors/temp")
    spec = DatasetSpec("cold-room", topics, (a, b))
    assert spec.digest == DatasetSpec("cold-room", topics[::-1], (b, a)).digest
    assert spec.digest != DatasetSpec("cold-room-2", topics, (a, b)).digest
    assert spec.digest != DatasetSpec("cold-room", topics[:1], (a, b)).digest
    assert spec.digest != DatasetSpec("cold-room", topics, (a,)).digest


@pytest.mark.parametrize(
    ("topics", "complaint"),
    [
        ((), "at least one sensor topic"),
        (("pervasive/devices/t-1/telemetry",), "not a sensor topic"),
        (("elsewhere/t-1",), "not a device topic"),
    ],
)
def test_a_dataset_reads_only_sensor_topics(topics: tuple[str, ...], complaint: str) -> None:
    with pytest.raises(InvalidInput, match=complaint):
        DatasetSpec("cold-room", topics, (_declaration(CONSUMER),))
