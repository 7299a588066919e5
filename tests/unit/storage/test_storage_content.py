"""The content store: CIDs against external vectors, round trips, tampering, absence."""

from __future__ import annotations

import csv
import hashlib
import importlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multiformats import multihash

from pervasive.crypto import keccak256
from pervasive.errors import InvalidInput, NotFound, UserError
from pervasive.offchain import (
    FunctionRegistry,
    OffchainFunction,
    normalise_source,
    source_hash,
    store_function_source,
)
from pervasive.storage import (
    Cid,
    ContentCorrupted,
    ContentStore,
    cid_for_digest,
    cid_of,
    wrap_digest,
)

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "multihash" / "test_cases.csv"

# The vector file's names (multiformats/multihash tests/values) and the multicodec names
# multiformats uses; "sha3" is code 0x14, today's sha3-512.
ALGORITHMS = {
    "sha1": ("sha1", "sha1"),
    "sha2-256": ("sha2-256", "sha256"),
    "sha2-512": ("sha2-512", "sha512"),
    "sha3": ("sha3-512", "sha3_512"),
}

# cowprotocol/services crates/app-data/src/app_data_hash.rs @ 4ec514e0dce8, test
# `known_good`: keccak256 of this app-data document and its raw keccak-256 CIDv1, which
# the file says `ipfs block put --mhtype keccak-256` (Kubo) also gives.
COW_APP_DATA = (
    '{"appCode":"CoW Swap","environment":"production","metadata":{"quote":{"slippageBips":"50",'
    '"version":"0.2.0"},"orderClass":{"orderClass":"market","version":"0.1.0"}},"version":"0.6.0"}'
)
COW_HASH = "8af4e8c9973577b08ac21d17d331aade86c11ebcc5124744d621ca8365ec9424"
COW_CID = "bafkrwiek6tumtfzvo6yivqq5c7jtdkw6q3ar5pgfcjdujvrbzkbwl3eueq"
COW_CID_BYTES = "01551b20" + COW_HASH
KECCAK_EMPTY = "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"


def _rows() -> list[dict[str, str]]:
    with VECTORS.open(newline="") as handle:
        return list(csv.DictReader(handle))


ROWS = _rows()


@pytest.fixture
def store(tmp_path: Path) -> ContentStore:
    return ContentStore(tmp_path / "content")


def test_public_surface_is_what_all_says() -> None:
    module = importlib.import_module("pervasive.storage")
    names = list(module.__all__)
    assert len(names) == len(set(names))
    for name in names:
        assert getattr(module, name) is not None


# -- external vectors -----------------------------------------------------------------
def test_every_vector_row_is_of_a_known_algorithm() -> None:
    assert len(ROWS) == 260
    assert {row["algorithm"] for row in ROWS} == set(ALGORITHMS)


@pytest.mark.parametrize(
    "row", ROWS, ids=[f"{r['algorithm']}-{r['bits']}-{i}" for i, r in enumerate(ROWS)]
)
def test_multihash_vector(row: dict[str, str]) -> None:
    name, hashlib_name = ALGORITHMS[row["algorithm"]]
    data = row["input"].encode("ascii")  # the file's inputs are hashed as their ASCII text
    digest = hashlib.new(hashlib_name, data).digest()[: int(row["bits"]) // 8]
    assert wrap_digest(name, digest).hex() == row["multihash"]


def test_cid_of_an_external_keccak_vector() -> None:
    cid = cid_of(COW_APP_DATA.encode())
    assert cid.digest.hex() == COW_HASH
    assert str(cid) == COW_CID
    assert cid.to_bytes().hex() == COW_CID_BYTES
    assert Cid.parse(COW_CID) == cid == cid_for_digest(bytes.fromhex(COW_HASH))


def test_keccak_multihash_is_code_0x1b() -> None:
    # keccak256(b"") is Ethereum's empty-code hash
    assert cid_of(b"").multihash.hex() == "1b20" + KECCAK_EMPTY


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=512))
def test_our_keccak_equals_multiformats_own(data: bytes) -> None:
    """pervasive.crypto (eth-hash) and multiformats (pycryptodomex) hash alike."""
    assert cid_of(data).multihash == multihash.digest(data, "keccak-256")


# -- CIDs -----------------------------------------------------------------------------
@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=32, max_size=32))
def test_cid_text_and_binary_round_trip(digest: bytes) -> None:
    cid = cid_for_digest(digest)
    text = str(cid)
    assert text.startswith("bafkrwi")
    assert Cid.parse(text) == cid
    assert cid.to_bytes() == bytes.fromhex("01551b20") + digest


def test_cid_in_another_multibase_is_the_same_cid() -> None:
    # the base16 form of the CoW CID, as `ipfs cid format -b base16` prints it
    assert Cid.parse("f" + COW_CID_BYTES) == Cid.parse(COW_CID)


@pytest.mark.parametrize(
    "text",
    [
        "not a cid",
        "",
        "bafkreihwsnuregfeqh263vgdathcprnbvatyat6h6mu7ipjhhodcdbyhoy",  # sha2-256
        "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG",  # CIDv0, dag-pb
    ],
)
def test_other_cids_are_refused(text: str) -> None:
    with pytest.raises(InvalidInput):
        Cid.parse(text)


def test_a_digest_has_32_bytes() -> None:
    with pytest.raises(InvalidInput):
        cid_for_digest(b"\x00" * 31)


# -- the store ------------------------------------------------------------------------
def test_round_trip(store: ContentStore) -> None:
    cid = store.put(b"hello, pervasive")
    assert store.has(cid)
    assert store.get(cid) == b"hello, pervasive"
    assert store.get(Cid.parse(str(cid))) == b"hello, pervasive"
    assert cid == cid_of(b"hello, pervasive")


def test_put_is_idempotent(store: ContentStore) -> None:
    first = store.put(b"same bytes")
    path = store.path_of(first)
    written = path.stat().st_mtime_ns
    assert store.put(b"same bytes") == first
    assert path.stat().st_mtime_ns == written, "the second put leaves the file alone"
    assert [p.name for p in store.root.rglob("*") if p.is_file()] == [str(first)]


def test_a_tampered_file_is_refused_and_put_repairs_it(store: ContentStore) -> None:
    cid = store.put(b"def f(w):\n    return None")
    store.path_of(cid).write_bytes(b"def f(w):\n    return b'evil'")
    assert store.has(cid)
    with pytest.raises(ContentCorrupted, match="changed or damaged") as raised:
        store.get(cid)
    assert isinstance(raised.value, UserError)
    assert store.put(b"def f(w):\n    return None") == cid
    assert store.get(cid) == b"def f(w):\n    return None"


def test_missing_content_is_not_found(store: ContentStore) -> None:
    cid = cid_of(b"never stored")
    assert not store.has(cid)
    with pytest.raises(NotFound, match=str(cid)):
        store.get(cid)


def test_no_temporary_file_is_left_behind(store: ContentStore) -> None:
    for i in range(5):
        store.put(bytes([i]) * 100)
    leftovers = [p for p in store.root.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


# -- off-chain code -------------------------------------------------------------------
SOURCE = "    def monthly(w):   \n        return b'x'\t\n"  # indentation, trailing blanks


def test_cid_of_a_function_source_is_named_by_the_agreement_hash(store: ContentStore) -> None:
    normal = normalise_source(SOURCE).encode("utf-8")
    assert normal == b"def monthly(w):\n    return b'x'"
    assert cid_of(normal) == cid_for_digest(source_hash(SOURCE))
    entry = FunctionRegistry().register("monthly", lambda w: b"x", source=SOURCE)
    cid = store_function_source(store, entry)
    assert cid == cid_for_digest(entry.source_hash)
    assert store.get(cid_for_digest(entry.source_hash)) == normal
    assert source_hash(store.get(cid).decode("utf-8")) == entry.source_hash


def test_registered_function_keeps_the_source_read_by_inspect(store: ContentStore) -> None:
    def f(w: object) -> bytes:
        return b"y"

    entry = FunctionRegistry().register("f", f)
    assert entry.source is not None and entry.source.startswith("def f(w: object)")
    assert store.get(store_function_source(store, entry)).decode() == entry.source


def test_a_function_without_source_cannot_be_published(store: ContentStore) -> None:
    entry = OffchainFunction("f", source_hash("x"), lambda w: None)
    with pytest.raises(InvalidInput, match="no source text"):
        store_function_source(store, entry)


def test_a_source_that_does_not_match_its_hash_is_not_published(store: ContentStore) -> None:
    entry = OffchainFunction("f", keccak256(b"other"), lambda w: None, "x")
    with pytest.raises(InvalidInput, match="does not hash"):
        store_function_source(store, entry)
    assert not store.has(cid_of(b"x"))
