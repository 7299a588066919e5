"""Encryption: ECIES to an account's key (paper 003, section V) and keys sealed under a password.

The data provider of paper 003 posts the data index on the data chain encrypted to the
consumer, so only the consumer (who paid) can read where the data is; the DKG also
sends each member its share encrypted to that member's account key. Both use this one
scheme: an ephemeral secp256k1 key agreement (ECDH, libsecp256k1 via coincurve), HKDF-
SHA256 to a 256-bit key, and AES-256-GCM. The ``context`` (a payment id, a session and
recipient index) is bound twice: in the HKDF info, so another context derives another
key, and as GCM associated data, so a ciphertext moved to another context fails.

Ciphertext layout: ``ephemeral public key (33, compressed) || nonce (12) || ct || tag (16)``.

A private key kept at rest (a sensor's signing key) is *sealed* under a password as an
Ethereum keystore v3 document (scrypt, AES-128-CTR, keccak MAC), the format the
accounts of ``chain/accounts.py`` use and geth or eth-account read back.

Example::

    key = generate_private_key()
    box = encrypt_to(key.public_key, b"cid:bafy...", context=payment_id)
    assert decrypt_with(key, box, context=payment_id) == b"cid:bafy..."
    sealed = seal_private_key(key, "correct horse")          # keystore v3 JSON, bytes
    assert unseal_private_key(sealed, "correct horse") == key
"""

from __future__ import annotations

import json
import secrets
from typing import Any

import coincurve
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eth_account import Account

from pervasive.crypto.keys import PrivateKey, PublicKey, generate_private_key
from pervasive.errors import InvalidInput, KeystoreError

__all__ = [
    "ECIES_OVERHEAD",
    "SEALED_KDF_ITERATIONS",
    "decrypt_with",
    "encrypt_to",
    "is_sealed",
    "seal_private_key",
    "sealed_document",
    "unseal_private_key",
]

_INFO_TAG = b"pervasive.ecies.secp256k1.aes256gcm.v1"
_PUBLIC_KEY_SIZE = 33
_NONCE_SIZE = 12
_TAG_SIZE = 16

ECIES_OVERHEAD = _PUBLIC_KEY_SIZE + _NONCE_SIZE + _TAG_SIZE
"""Bytes a ciphertext has beyond its plaintext (61): size on-chain budgets with it."""


def _shared_key(
    secret: PrivateKey, peer: bytes, ephemeral: bytes, recipient: bytes, context: bytes
) -> bytes:
    # The raw x coordinate of the shared point is the ECDH secret; coincurve's ecdh()
    # would hash it first with its own convention, which other ECIES tools do not share.
    shared_x = coincurve.PublicKey(peer).multiply(secret.secret).format(compressed=True)[1:]
    # Binding both public keys in the salt stops a key-substitution: the same shared
    # point reached through another ephemeral or recipient key derives another key.
    kdf = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=ephemeral + recipient,
        info=_INFO_TAG + len(context).to_bytes(4, "big") + context,
    )
    return kdf.derive(shared_x)


def encrypt_to(public_key: PublicKey, plaintext: bytes, *, context: bytes) -> bytes:
    """Encrypt ``plaintext`` so that only the holder of ``public_key``'s secret reads it.

    ``context`` must be given again to decrypt (for example the payment id). A fresh
    ephemeral key and nonce per call: the same plaintext never encrypts the same twice.

    Example: ``encrypt_to(consumer_key, b"index", context=payment_id)``.
    """
    if not isinstance(plaintext, bytes | bytearray) or not isinstance(context, bytes | bytearray):
        raise InvalidInput("ECIES plaintext and context must be bytes")
    ephemeral = generate_private_key()
    ephemeral_public = ephemeral.public_key.to_compressed()
    recipient = public_key.to_compressed()
    key = _shared_key(ephemeral, recipient, ephemeral_public, recipient, bytes(context))
    nonce = secrets.token_bytes(_NONCE_SIZE)
    sealed = AESGCM(key).encrypt(nonce, bytes(plaintext), bytes(context))
    return ephemeral_public + nonce + sealed


def decrypt_with(private_key: PrivateKey, ciphertext: bytes, *, context: bytes) -> bytes:
    """Decrypt a ciphertext of :func:`encrypt_to` with the recipient's key.

    Raises :class:`InvalidInput` if the ciphertext is malformed, was made for another key
    or context, or was tampered with (GCM does not say which, by design).

    Example: ``decrypt_with(consumer_key, box, context=payment_id)``.
    """
    if not isinstance(ciphertext, bytes | bytearray) or not isinstance(context, bytes | bytearray):
        raise InvalidInput("ECIES ciphertext and context must be bytes")
    if len(ciphertext) < ECIES_OVERHEAD:
        raise InvalidInput(
            f"an ECIES ciphertext is at least {ECIES_OVERHEAD} bytes, got {len(ciphertext)}"
        )
    ephemeral_public = bytes(ciphertext[:_PUBLIC_KEY_SIZE])
    nonce = bytes(ciphertext[_PUBLIC_KEY_SIZE : _PUBLIC_KEY_SIZE + _NONCE_SIZE])
    sealed = bytes(ciphertext[_PUBLIC_KEY_SIZE + _NONCE_SIZE :])
    try:
        coincurve.PublicKey(ephemeral_public)
    except (ValueError, TypeError) as exc:
        raise InvalidInput("the ECIES ciphertext does not start with a secp256k1 key") from exc
    recipient = private_key.public_key.to_compressed()
    key = _shared_key(private_key, ephemeral_public, ephemeral_public, recipient, bytes(context))
    try:
        return AESGCM(key).decrypt(nonce, sealed, bytes(context))
    except InvalidTag as exc:
        raise InvalidInput(
            "cannot decrypt: wrong key or context, or the ciphertext was altered"
        ) from exc


SEALED_KDF_ITERATIONS = 2**15
"""scrypt ``n`` of a sealed key: 32 MiB and about 0.1 s, which a small device can afford.

The accounts keep eth-account's 2**18 (256 MiB), more than many devices have.
"""


def seal_private_key(
    key: PrivateKey, password: str, *, kdf_iterations: int = SEALED_KDF_ITERATIONS
) -> bytes:
    """``key`` encrypted under ``password`` as a keystore v3 JSON document (UTF-8 bytes).

    Example: ``Path("lock.key").write_bytes(seal_private_key(key, "s3cret"))``.
    """
    if not password:
        raise KeystoreError("refusing to seal a key under an empty password")
    document = Account.encrypt(key.secret, password, kdf="scrypt", iterations=kdf_iterations)
    return json.dumps(document).encode()


def is_sealed(data: bytes) -> bool:
    """Whether ``data`` looks like a sealed key (a JSON object) rather than a plain hex key.

    Example: ``is_sealed(seal_private_key(key, "pw"))`` is ``True``.
    """
    return data.lstrip().startswith(b"{")


def sealed_document(
    sealed: bytes, *, what: str = "the key", remedy: str = "restore it from a backup"
) -> dict[str, Any]:
    """The keystore v3 document in ``sealed``, its shape checked (nothing decrypted).

    A document that is no keystore raises a one-line :class:`KeystoreError` saying it is
    corrupt (not a wrong password) and ``remedy``.

    Example: ``sealed_document(path.read_bytes(), what=str(path))["address"]``.
    """
    try:
        document = json.loads(sealed)
    except (ValueError, UnicodeDecodeError):
        raise _corrupt(what, "not a keystore JSON document", remedy) from None
    # geth once wrote "Crypto"; eth-account reads both
    if not isinstance(document, dict) or not isinstance(
        document.get("crypto", document.get("Crypto")), dict
    ):
        raise _corrupt(what, "not a keystore v3 document", remedy)
    return document


def unseal_private_key(
    sealed: bytes,
    password: str,
    *,
    what: str = "the key",
    remedy: str = "restore it from a backup",
    hint: str = "",
) -> PrivateKey:
    """The key sealed by :func:`seal_private_key` (or any keystore v3 file).

    A one-line :class:`KeystoreError` tells a wrong password (``hint`` appended: where
    the password comes from) from a corrupt document (``remedy``).

    Example: ``unseal_private_key(Path("lock.key").read_bytes(), "s3cret").address``.
    """
    document = sealed_document(sealed, what=what, remedy=remedy)
    try:
        secret = Account.decrypt(document, password)
    except ValueError as exc:
        if "mismatch" not in str(exc):  # eth-keyfile: "MAC mismatch", "Checksum mismatch"
            raise _corrupt(what, str(exc), remedy) from None
        raise KeystoreError(f"cannot unseal {what}: wrong password{hint}") from None
    except (KeyError, TypeError, NotImplementedError) as exc:
        # eth-keyfile raises NotImplementedError for a kdf or cipher it does not know
        raise _corrupt(what, f"missing keystore fields: {exc}", remedy) from None
    return PrivateKey(bytes(secret))


def _corrupt(what: str, why: str, remedy: str) -> KeystoreError:
    return KeystoreError(f"{what} is corrupt ({why}), not a wrong password: {remedy}")
