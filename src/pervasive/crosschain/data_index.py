"""The identity-bound data index P posts on the data chain (paper 003, IV-A component 6, V-B).

After C pays on B_u, P "submits a data identifier [...] encrypted by the user
identity and the corresponding data index" to B_d, and C hands it to Sys to get the
data (section IV-A, component 6; section V-B, the second step of the swap). This
module is that identifier, sans I/O:

- :class:`DatasetSpec` and its digest, the one-way function of a dataset's identity
  that C looks up in Sys before paying (V-A step 1);
- :class:`IndexRecord`, the plaintext record (payment id, dataset id, Sys URL, the
  dataset digest C checked before paying, expiry), encoded canonically;
- :func:`seal_index` / :func:`open_index`: ECIES to C's secp256k1 key with the payment
  id as context, so a ciphertext cannot be moved to another payment;
- :func:`index_commitment`: the Litecoin form of the on-chain record,
  ``b"PVX1" + payment_id + sha256(ciphertext)`` (68 bytes, within OP_RETURN's 80);
- :func:`data_request_message` and :class:`DataRequest`: what C signs (EIP-191) and
  sends to prove to Sys that it holds the key the index is bound to.

Example::

    index = IndexRecord(payment_id, "warehouse-7", "http://sys.example:8080", digest, expiry)
    ciphertext = seal_index(index, consumer_key.public_key)
    assert open_index(ciphertext, consumer_key, payment_id=payment_id) == index
    index_commitment(payment_id, ciphertext)[:4] == b"PVX1"
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pervasive.crypto import PrivateKey, PublicKey, abi_decode, abi_encode, keccak256
from pervasive.crypto.encryption import decrypt_with, encrypt_to
from pervasive.devices.declarations import parse_sensor_topic
from pervasive.errors import InvalidInput
from pervasive.sensing import SensorDeclaration

__all__ = [
    "DATASET_TAG",
    "DATA_REQUEST_TAG",
    "INDEX_COMMITMENT_TAG",
    "INDEX_TAG",
    "MAX_INDEX_CIPHERTEXT",
    "DataRequest",
    "DatasetSpec",
    "IndexRecord",
    "data_request_message",
    "index_commitment",
    "open_index",
    "parse_data_request",
    "parse_index_commitment",
    "seal_index",
]

DATASET_TAG = keccak256(b"pervasive.crosschain.dataset.v1")
"""First word of a dataset digest's preimage (V-A step 1: a one-way function of its identity)."""
INDEX_TAG = keccak256(b"pervasive.crosschain.data_index.v1")
"""First word of the encoding: a record of another kind or version never decodes as one."""
INDEX_COMMITMENT_TAG = b"PVX1"
"""Prefix of the Litecoin OP_RETURN payload that commits to a posted index."""
DATA_REQUEST_TAG = b"pervasive.crosschain.data_request.v1\n"
"""Prefix of what C signs for Sys, so the signature is worth nothing anywhere else."""
MAX_INDEX_CIPHERTEXT = 1024
"""The DataIndex contract stores ``Bytes[1024]``; a longer ciphertext could not be posted."""

_TYPES = ("bytes32", "bytes32", "string", "string", "bytes32", "uint64")
_DATASET_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
_MAX_URL = 256
_COMMITMENT_SIZE = len(INDEX_COMMITMENT_TAG) + 32 + 32


def _bad_dataset_id(value: object) -> str:
    return (
        f"dataset id {value!r:.80} is invalid: use 1-64 letters, digits, "
        "'.', '_', ':' or '-', starting with a letter or digit"
    )


def _bytes32(name: str, value: bytes) -> bytes:
    if not isinstance(value, bytes) or len(value) != 32:
        raise InvalidInput(f"{name} must be 32 bytes, got {value!r:.80}")
    return value


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset of P: the readings of some sensors on some sensor topics."""

    dataset_id: str
    topics: tuple[str, ...]
    """Exact sensor topics ``pervasive/devices/<id>/sensors/<name>``."""
    sensors: tuple[SensorDeclaration, ...]
    """Declarations ``d_s`` a reading must verify against to enter the dataset."""
    capacity: int = 10_000
    """Readings kept (the oldest leave first), so a chatty device cannot exhaust memory."""

    def __post_init__(self) -> None:
        if not isinstance(self.dataset_id, str) or not _DATASET_ID.fullmatch(self.dataset_id):
            raise InvalidInput(_bad_dataset_id(self.dataset_id))
        if not self.topics or not self.sensors:
            raise InvalidInput("a dataset needs at least one sensor topic and one declaration")
        for topic in self.topics:
            parse_sensor_topic(topic)
        if not 0 < self.capacity <= 1_000_000:
            raise InvalidInput(f"dataset capacity must be in 1..1000000, got {self.capacity}")

    @property
    def digest(self) -> bytes:
        """keccak256 of the tag, id, sorted topics and sorted sensor addresses (V-A step 1).

        Example: ``spec.digest.hex()`` is what C looks up at ``GET /datasets/<hex>``.
        """
        sensors = sorted(d.address for d in self.sensors)
        topics = sorted(self.topics)
        return keccak256(
            abi_encode(
                ["bytes32", "string", "string[]", "address[]"],
                [DATASET_TAG, self.dataset_id, topics, sensors],
            )
        )


@dataclass(frozen=True)
class IndexRecord:
    """The plaintext data index: which dataset, where to fetch it, for which payment."""

    payment_id: bytes
    """32 bytes: ``keccak256(abi_encode(chain_id, C_u, consumer, counter))`` of the pay."""
    dataset_id: str
    """P's name of the dataset (1-64 of letters, digits, ``. _ : -``)."""
    sys_url: str
    """Base URL of P's data exchange system, ``http(s)://host[:port][/prefix]``."""
    dataset_digest: bytes
    """32 bytes: the digest C looked up at ``GET /datasets/<digest>`` before paying."""
    expiry: int
    """Unix seconds after which Sys no longer honours this index."""

    def __post_init__(self) -> None:
        _bytes32("payment_id", self.payment_id)
        _bytes32("dataset_digest", self.dataset_digest)
        if not isinstance(self.dataset_id, str) or not _DATASET_ID.fullmatch(self.dataset_id):
            raise InvalidInput(_bad_dataset_id(self.dataset_id))
        url = self.sys_url
        if (
            not isinstance(url, str)
            or not url.startswith(("http://", "https://"))
            or len(url.encode("utf-8")) > _MAX_URL
            or any(c.isspace() for c in url)
        ):
            raise InvalidInput(
                f"Sys URL {url!r:.80} is invalid: give an http(s) URL of at most "
                f"{_MAX_URL} bytes without spaces"
            )
        if not isinstance(self.expiry, int) or not 0 < self.expiry < 2**64:
            raise InvalidInput(f"expiry must be unix seconds in (0, 2**64), got {self.expiry!r}")

    def encode(self) -> bytes:
        """The canonical bytes: ``abi_encode`` of the tag and the five fields.

        Example: ``IndexRecord.decode(index.encode()) == index``.
        """
        return abi_encode(
            _TYPES,
            [
                INDEX_TAG,
                self.payment_id,
                self.dataset_id,
                self.sys_url,
                self.dataset_digest,
                self.expiry,
            ],
        )

    @classmethod
    def decode(cls, data: bytes) -> IndexRecord:
        """Parse :meth:`encode`'s bytes; anything else (other tag, non-canonical) is refused.

        Raises :class:`~pervasive.errors.InvalidInput`.

        Example: ``IndexRecord.decode(open_plaintext).payment_id``.
        """
        try:
            tag, payment_id, dataset_id, sys_url, digest, expiry = abi_decode(_TYPES, data)
        except InvalidInput as exc:
            raise InvalidInput(f"not a data index: {exc}") from exc
        if tag != INDEX_TAG:
            raise InvalidInput("not a data index: wrong tag (another record kind or version)")
        # abi_decode accepts only the canonical encoding: one record, one byte string
        return cls(payment_id, dataset_id, sys_url, digest, expiry)


def seal_index(index: IndexRecord, consumer: PublicKey) -> bytes:
    """Encrypt ``index`` to C's secp256k1 key, bound to its payment id.

    Raises :class:`~pervasive.errors.InvalidInput` if the ciphertext would exceed
    :data:`MAX_INDEX_CIPHERTEXT` (shorten the URL or dataset id).

    Example: ``ciphertext = seal_index(index, consumer_key.public_key)``.
    """
    ciphertext = encrypt_to(consumer, index.encode(), context=index.payment_id)
    if len(ciphertext) > MAX_INDEX_CIPHERTEXT:
        raise InvalidInput(
            f"sealed index is {len(ciphertext)} bytes, over the {MAX_INDEX_CIPHERTEXT} the "
            "data chain stores: shorten the Sys URL or the dataset id"
        )
    return ciphertext


def open_index(ciphertext: bytes, key: PrivateKey, *, payment_id: bytes) -> IndexRecord:
    """Decrypt and parse an index C found on the data chain for ``payment_id``.

    Raises :class:`~pervasive.errors.InvalidInput` when the ciphertext was not sealed
    to ``key`` for this payment, was altered, or does not hold an index of it.

    Example: ``open_index(posted.ciphertext, consumer_key, payment_id=pid).sys_url``.
    """
    _bytes32("payment_id", payment_id)
    if len(ciphertext) > MAX_INDEX_CIPHERTEXT:
        raise InvalidInput(
            f"index ciphertext is {len(ciphertext)} bytes, over {MAX_INDEX_CIPHERTEXT}"
        )
    index = IndexRecord.decode(decrypt_with(key, ciphertext, context=payment_id))
    # the AEAD context already binds the payment id; a mismatch means P sealed it wrong
    if index.payment_id != payment_id:
        raise InvalidInput("the index names another payment id than the one it was posted for")
    return index


def index_commitment(payment_id: bytes, ciphertext: bytes) -> bytes:
    """The 68-byte OP_RETURN payload ``b"PVX1" + payment_id + sha256(ciphertext)``.

    Example: ``len(index_commitment(pid, ciphertext)) == 68``.
    """
    _bytes32("payment_id", payment_id)
    return INDEX_COMMITMENT_TAG + payment_id + hashlib.sha256(ciphertext).digest()


def parse_index_commitment(payload: bytes) -> tuple[bytes, bytes]:
    """``(payment_id, sha256(ciphertext))`` of an OP_RETURN payload; InvalidInput otherwise.

    Example: ``parse_index_commitment(index_commitment(pid, ct))[0] == pid``.
    """
    if len(payload) != _COMMITMENT_SIZE or not payload.startswith(INDEX_COMMITMENT_TAG):
        raise InvalidInput(
            f"not a data index commitment: expected {_COMMITMENT_SIZE} bytes starting "
            f"with {INDEX_COMMITMENT_TAG!r}"
        )
    start = len(INDEX_COMMITMENT_TAG)
    return payload[start : start + 32], payload[start + 32 :]


def data_request_message(nonce: bytes, ciphertext: bytes) -> bytes:
    """What C signs with EIP-191 to fetch data: tag, Sys's nonce, keccak256(ciphertext).

    Example: ``sign_message(consumer_key, data_request_message(nonce, ciphertext))``.
    """
    if not isinstance(nonce, bytes) or len(nonce) != 32:
        raise InvalidInput("a data request nonce is 32 bytes: ask Sys for one (POST /nonce)")
    return DATA_REQUEST_TAG + nonce + keccak256(ciphertext)


@dataclass(frozen=True)
class DataRequest:
    """A parsed ``POST /data`` body."""

    payment_id: bytes
    nonce: bytes
    signature: bytes
    ciphertext: bytes | None = None


def _hex(document: Mapping[str, Any], name: str, size: int | None) -> bytes:
    value = document.get(name)
    if not isinstance(value, str):
        raise InvalidInput(f"field {name!r} is missing or not a hex string")
    try:
        data = bytes.fromhex(value.removeprefix("0x"))
    except ValueError:
        raise InvalidInput(f"field {name!r} is not hex") from None
    if size is not None and len(data) != size:
        raise InvalidInput(f"field {name!r} must be {size} bytes, got {len(data)}")
    return data


def parse_data_request(document: object) -> DataRequest:
    """Parse ``{"payment_id", "nonce", "signature"[, "ciphertext"]}`` (hex); InvalidInput otherwise.

    Example: ``parse_data_request({"payment_id": "0x..", "nonce": "..", "signature": ".."})``.
    """
    if not isinstance(document, dict):
        raise InvalidInput("a data request is a JSON object with payment_id, nonce, signature")
    ciphertext = _hex(document, "ciphertext", None) if "ciphertext" in document else None
    return DataRequest(
        _hex(document, "payment_id", 32),
        _hex(document, "nonce", 32),
        _hex(document, "signature", 65),
        ciphertext,
    )
