"""Accounts: keys encrypted at rest (Ethereum keystore v3) and the signer that holds one.

A keystore is a folder of v3 JSON files named ``<name>.json``. Keys are decrypted
only into a :class:`Signer`, whose ``repr`` never shows the key. A key file that is no
keystore (truncated, overwritten, not JSON) is told apart from a wrong password: both
raise :class:`~pervasive.errors.KeystoreError`, each saying what to do.

Example::

    store = Keystore(settings.path("keystore"))
    signer = store.load("alice", password="correct horse")
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from eth_keys.datatypes import PrivateKey as EthPrivateKey
from eth_utils.address import to_checksum_address

from pervasive.crypto import PrivateKey
from pervasive.crypto.encryption import seal_private_key, sealed_document, unseal_private_key
from pervasive.errors import InvalidInput, KeystoreError, NotFound
from pervasive.store.files import write_private

__all__ = ["Keystore", "Signer"]

_ACCOUNT_SCRYPT_N = 2**18
"""scrypt ``n`` of an account's key file (eth-account's default, 256 MiB)."""
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


@dataclass(frozen=True)
class Signer:
    """An account able to sign: its checksummed address and (hidden) private key."""

    address: str
    private_key: bytes = field(repr=False)

    @classmethod
    def from_key(cls, private_key: bytes | str) -> Signer:
        """A signer from a 32-byte key (bytes or 0x-hex).

        Example: ``Signer.from_key("0x" + "11" * 32).address``.
        """
        raw = _parse_key(private_key)
        address = EthPrivateKey(raw).public_key.to_checksum_address()
        return cls(address=address, private_key=raw)

    @classmethod
    def generate(cls) -> Signer:
        """A signer with a fresh random key."""
        return cls.from_key(os.urandom(32))


def _parse_key(private_key: bytes | str) -> bytes:
    if isinstance(private_key, str):
        text = private_key.removeprefix("0x")
        try:
            raw = bytes.fromhex(text)
        except ValueError as exc:
            raise InvalidInput("a private key is 32 bytes of hex (64 hex digits)") from exc
    else:
        raw = bytes(private_key)
    if len(raw) != 32:
        raise InvalidInput(f"a private key is 32 bytes, got {len(raw)}")
    try:
        EthPrivateKey(raw)
    except Exception as exc:  # eth_keys raises ValidationError for out-of-range keys
        raise InvalidInput("the private key is outside the secp256k1 range") from exc
    return raw


class Keystore:
    """A folder of Ethereum keystore v3 files.

    ``kdf_iterations`` lowers the KDF cost (tests only; the default is eth-account's
    scrypt with n=262144).

    Example::

        store = Keystore(settings.path("keystore"))
        signer = store.create("alice", password="correct horse")
        store.load("alice", password="correct horse").address == signer.address
    """

    def __init__(self, folder: Path, *, kdf_iterations: int | None = None) -> None:
        self.folder = folder
        self._iterations = kdf_iterations if kdf_iterations is not None else _ACCOUNT_SCRYPT_N

    def _file(self, name: str) -> Path:
        if not name or not set(name) <= _NAME_CHARS:
            raise InvalidInput(f"account name {name!r}: use letters, digits, '-', '_' or '.'")
        return self.folder / f"{name}.json"

    def names(self) -> list[str]:
        """Names of the stored accounts, sorted."""
        if not self.folder.is_dir():
            return []
        return sorted(p.stem for p in self.folder.glob("*.json"))

    def address_of(self, name: str) -> str:
        """The address of a stored account, without decrypting it."""
        what, remedy = f"account {name!r}", self._remedy(name)
        document = sealed_document(self._read(name), what=what, remedy=remedy)
        try:
            return to_checksum_address(document["address"])
        except (KeyError, TypeError, ValueError):
            raise KeystoreError(
                f"{what} is corrupt (it holds no valid address), not a wrong password: {remedy}"
            ) from None

    def create(self, name: str, password: str) -> Signer:
        """Generate a key, store it encrypted under ``name`` and return its signer."""
        return self.store(name, Signer.generate(), password)

    def store(self, name: str, signer: Signer, password: str) -> Signer:
        """Encrypt ``signer``'s key under ``name``; refuse to overwrite an existing account."""
        path = self._file(name)
        if path.exists():
            raise KeystoreError(f"an account named {name!r} already exists in {self.folder}")
        if not password:
            raise KeystoreError("refusing to store a key under an empty password")
        sealed = seal_private_key(
            PrivateKey(signer.private_key), password, kdf_iterations=self._iterations
        )
        write_private(path, sealed)
        return signer

    def load(self, name: str, password: str) -> Signer:
        """Decrypt the account ``name``; :class:`KeystoreError` on a wrong password."""
        key = unseal_private_key(
            self._read(name),
            password,
            what=f"account {name!r}",
            remedy=self._remedy(name),
            hint=" (check PERVASIVE_PASSWORD or what you typed)",
        )
        return Signer.from_key(key.secret)

    def _remedy(self, name: str) -> str:
        """What to do about a corrupt key file of ``name`` (it names the file)."""
        return (
            f"restore {self._file(name)} from a backup, or import the key again under another name"
        )

    def _read(self, name: str) -> bytes:
        """The key file of ``name``: :class:`NotFound` if absent."""
        path = self._file(name)
        if not path.is_file():
            raise NotFound(f"no account named {name!r} in {self.folder}; create it first")
        try:
            return path.read_bytes()
        except OSError as exc:
            raise KeystoreError(f"cannot read the key file {path}: {exc.strerror}") from None
