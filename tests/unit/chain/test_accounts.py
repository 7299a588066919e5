"""Keystore v3 files and signers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account

from pervasive.chain import Keystore, Signer
from pervasive.errors import InvalidInput, KeystoreError, NotFound


@pytest.fixture
def store(tmp_path: Path) -> Keystore:
    return Keystore(tmp_path / "keystore", kdf_iterations=2)


def test_round_trip(store: Keystore) -> None:
    signer = store.create("alice", password="correct horse")
    assert store.names() == ["alice"]
    assert store.address_of("alice") == signer.address
    loaded = store.load("alice", password="correct horse")
    assert loaded == signer
    path = store.folder / "alice.json"
    assert path.stat().st_mode & 0o777 == 0o600
    document = json.loads(path.read_text())
    assert document["version"] == 3
    assert signer.private_key.hex() not in path.read_text()
    # any v3 reader can open it
    assert bytes(Account.decrypt(document, "correct horse")) == signer.private_key


def test_wrong_password(store: Keystore) -> None:
    store.create("bob", password="right")
    with pytest.raises(KeystoreError, match="wrong password"):
        store.load("bob", password="wrong")


def test_missing_duplicate_and_bad_names(store: Keystore) -> None:
    assert store.names() == []
    with pytest.raises(NotFound):
        store.load("nobody", password="x")
    with pytest.raises(NotFound):
        store.address_of("nobody")
    store.create("carol", password="pw")
    with pytest.raises(KeystoreError, match="already exists"):
        store.create("carol", password="pw")
    with pytest.raises(KeystoreError, match="empty password"):
        store.create("dave", password="")
    for bad in ("", "../escape", "a/b", "semi;colon"):
        with pytest.raises(InvalidInput):
            store.create(bad, password="pw")


def test_store_imports_a_known_key(store: Keystore) -> None:
    key = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
    signer = store.store("imported", Signer.from_key(key), password="pw")
    assert signer.address == "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"
    assert store.load("imported", password="pw").private_key == key


def test_signer_hides_its_key_and_checks_input() -> None:
    signer = Signer.from_key("0x" + "11" * 32)
    assert "11" * 32 not in repr(signer)
    assert signer.address == Account.from_key(b"\x11" * 32).address
    assert Signer.generate() != Signer.generate()
    for bad in ("0x1234", "zz" * 32, b"\x00" * 31, b"\x00" * 32, b"\xff" * 32):
        with pytest.raises(InvalidInput):
            Signer.from_key(bad)
