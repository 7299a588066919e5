"""Issue 11 item 5: sensor signing keys and device TLS keys at rest.

A folder opened with a password seals its sensor keys (keystore v3, scrypt): the file
holds no plaintext key and a wrong password is a one-line ``KeystoreError``. A folder
opened without one (a device booting unattended) keeps the key plain, 0600 in a 0700
folder whatever the umask, and refuses a key file others may read. The CA writes a
device's or service's TLS key 0600 in a 0700 folder.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from eth_account import Account

from pervasive.crypto import generate_private_key
from pervasive.crypto.encryption import (
    SEALED_KDF_ITERATIONS,
    is_sealed,
    seal_private_key,
    unseal_private_key,
)
from pervasive.devices import DeviceFolder
from pervasive.errors import InvalidInput, KeystoreError
from pervasive.pki import CertificateAuthority

FAST = 2**4  # scrypt n for tests; one test keeps the default


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """Umask 0: every mode below is set by the code, not inherited from the umask."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def test_a_sealed_sensor_key_holds_no_plaintext_and_opens_with_its_password(
    tmp_path: Path, open_umask: None
) -> None:
    folder = DeviceFolder(tmp_path / "lock-7", password="s3cret")
    key = folder.signing_key("lock")
    path = folder.key_path("lock")
    data = path.read_bytes()
    assert key.secret.hex().encode() not in data.lower() and key.secret not in data
    document = json.loads(data)
    assert document["crypto"]["kdf"] == "scrypt"
    assert document["crypto"]["kdfparams"]["n"] == SEALED_KDF_ITERATIONS
    assert bytes(Account.decrypt(document, "s3cret")) == key.secret  # eth-account reads it
    assert mode(path) == 0o600 and mode(path.parent) == 0o700
    assert DeviceFolder(tmp_path / "lock-7", password="s3cret").signing_key("lock") == key
    assert folder.sensors() == ["lock"]


def test_a_wrong_or_missing_password_is_one_line(tmp_path: Path) -> None:
    DeviceFolder(tmp_path, password="right", kdf_iterations=FAST).signing_key("lock")
    path = DeviceFolder(tmp_path).key_path("lock")
    with pytest.raises(KeystoreError) as wrong:
        DeviceFolder(tmp_path, password="wrong").signing_key("lock")
    assert str(wrong.value) == (
        f"cannot read the signing key {path}: cannot unseal the key: wrong password"
    )
    with pytest.raises(KeystoreError) as missing:
        DeviceFolder(tmp_path).signing_key("lock")
    assert "is encrypted: open the device folder with its password" in str(missing.value)
    for error in (wrong.value, missing.value):
        assert "\n" not in str(error)


def test_an_unattended_key_is_plain_but_owner_only(tmp_path: Path, open_umask: None) -> None:
    folder = DeviceFolder(tmp_path / "devices" / "lock-7")  # no password: boots unattended
    key = folder.signing_key("lock")
    path = folder.key_path("lock")
    assert path.read_text() == key.secret.hex()
    assert mode(path) == 0o600 and mode(path.parent) == 0o700
    path.parent.chmod(0o755)
    folder.signing_key("door")  # writing a key makes its folder private again
    assert mode(path.parent) == 0o700


def test_a_key_others_may_read_is_refused(tmp_path: Path) -> None:
    folder = DeviceFolder(tmp_path)
    folder.signing_key("lock")
    path = folder.key_path("lock")
    path.chmod(0o644)
    with pytest.raises(KeystoreError, match=r"readable by others \(mode 0644\): run `chmod 600"):
        folder.signing_key("lock")
    path.chmod(0o600)
    folder.signing_key("lock")


def test_a_corrupt_key_file_is_a_keystore_error(tmp_path: Path) -> None:
    folder = DeviceFolder(tmp_path, password="pw")
    path = folder.key_path("lock")
    path.parent.mkdir(mode=0o700)
    path.write_bytes(b'{"crypto": ')
    path.chmod(0o600)
    with pytest.raises(KeystoreError, match="not a keystore JSON document"):
        folder.signing_key("lock")
    path.write_bytes(b"not hex")
    with pytest.raises(KeystoreError, match="does not hold a signing key"):
        DeviceFolder(tmp_path).signing_key("lock")


def test_a_stored_key_is_never_overwritten(tmp_path: Path) -> None:
    folder = DeviceFolder(tmp_path, password="pw", kdf_iterations=FAST)
    first = folder.store_signing_key("lock", generate_private_key())
    assert folder.store_signing_key("lock", first) == first  # storing it again: a no-op
    with pytest.raises(KeystoreError, match="already holds another signing key"):
        folder.store_signing_key("lock", generate_private_key())
    assert folder.signing_key("lock") == first
    assert [p.name for p in folder.key_path("lock").parent.iterdir()] == ["lock.key"]


@pytest.mark.parametrize("sensor", ["../escape", "/abs", ".hidden", "Lock", ""])
def test_a_sensor_name_cannot_leave_the_folder(tmp_path: Path, sensor: str) -> None:
    with pytest.raises(InvalidInput, match="sensor name"):
        DeviceFolder(tmp_path / "d").signing_key(sensor)
    assert list(tmp_path.iterdir()) == []


def test_seal_round_trip_and_refusals() -> None:
    key = generate_private_key()
    sealed = seal_private_key(key, "pw", kdf_iterations=FAST)
    assert is_sealed(sealed) and not is_sealed(key.secret.hex().encode())
    assert unseal_private_key(sealed, "pw") == key
    with pytest.raises(KeystoreError, match="empty password"):
        seal_private_key(key, "")
    with pytest.raises(KeystoreError, match="missing keystore fields"):
        unseal_private_key(b'{"crypto": {}}', "pw")


def test_the_ca_writes_tls_keys_owner_only(tmp_path: Path, open_umask: None) -> None:
    ca = CertificateAuthority.open(tmp_path / "pki", "pw")
    try:
        folder = tmp_path / "devices" / "lock-7"
        folder.mkdir(parents=True, mode=0o755)
        creds = ca.write_credentials(ca.issue_device("lock-7"), folder)
        assert mode(creds.key_file) == 0o600 and mode(folder) == 0o700
        load_pem_private_key(creds.key_file.read_bytes(), password=None)  # plain: unattended
        assert ca.credentials_complete("lock-7", folder)
        service = ca.client_credentials("svc:shadow", tmp_path / "mqtt")
        assert mode(service.key_file) == 0o600 and mode(service.key_file.parent) == 0o700
        broker = ca.broker_credentials()
        assert mode(broker.key_file) == 0o600 and mode(broker.key_file.parent) == 0o700
        ca.rotate("lock-7")
        assert not ca.credentials_complete("lock-7", folder)  # the files hold the old one
    finally:
        ca.close()
