"""A content-addressed store of bytes on disk, keyed by CIDv1 (``raw``, ``keccak-256``).

Paper 001's contract database keeps files content-addressed; paper 002's agreement
names its off-chain code by ``keccak256`` of the source. Both meet here: the CID of
some bytes is ``CIDv1(codec raw 0x55, multihash keccak-256 0x1b, keccak256(bytes))``,
so its digest *is* the agreement's ``function_hash`` and the CID follows from an
on-chain hash with nothing stored in between (:func:`cid_for_digest`). It is the CID
IPFS (Kubo) gives the same bytes added as one raw block with ``--hash keccak-256``.

Layout: ``<root>/<first two hex digits of the digest>/<CID in base32>``, one file per
content, written to a temporary file and moved into place with :func:`os.replace`,
so a reader never sees half a file and a crash leaves no entry. Every read re-hashes.

Example::

    store = ContentStore(settings.home / "content")
    cid = store.put(b"def f(w):\\n    return None")
    assert store.get(cid_for_digest(cid.digest)) == b"def f(w):\\n    return None"
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from multiformats import CID, multihash

from pervasive.crypto import keccak256
from pervasive.errors import InvalidInput, NotFound
from pervasive.storage.errors import ContentCorrupted

__all__ = [
    "CODEC",
    "DIGEST_SIZE",
    "HASH",
    "Cid",
    "ContentStore",
    "cid_for_digest",
    "cid_of",
    "wrap_digest",
]

CODEC = "raw"
"""Multicodec of the content (0x55): the bytes as they are, no IPLD structure."""

HASH = "keccak-256"
"""Multihash of the content (0x1b): Ethereum's keccak256, as the agreement stores it."""

DIGEST_SIZE = 32


def wrap_digest(algorithm: str, digest: bytes) -> bytes:
    """The multihash of a raw ``digest``: ``varint(code) ‖ varint(len) ‖ digest``.

    Example: ``wrap_digest("keccak-256", keccak256(b"")).hex()[:4]  # '1b20'``.
    """
    try:
        return multihash.wrap(digest, algorithm)
    except (KeyError, ValueError) as exc:
        raise InvalidInput(f"cannot wrap a {len(digest)}-byte {algorithm} digest: {exc}") from exc


@dataclass(frozen=True)
class Cid:
    """The address of some content: a CIDv1 ``raw`` + ``keccak-256``, held as its digest.

    ``str(cid)`` is the base32 text form (``bafkrwi...``); :meth:`parse` reads any
    multibase form of such a CID back.

    Example: ``Cid.parse(str(cid)) == cid``.
    """

    digest: bytes
    """``keccak256`` of the content: for off-chain code, the agreement's ``function_hash``."""

    def __post_init__(self) -> None:
        if len(self.digest) != DIGEST_SIZE:
            raise InvalidInput(
                f"a keccak-256 digest has {DIGEST_SIZE} bytes, not {len(self.digest)}"
            )

    @classmethod
    def parse(cls, text: str) -> Cid:
        """Read a CID from its text form; raises :class:`InvalidInput` for anything else.

        Example: ``Cid.parse("bafkrwiek6tumtfzvo6yivqq5c7jtdkw6q3ar5pgfcjdujvrbzkbwl3eueq")``.
        """
        try:
            decoded = CID.decode(text.strip())
        except (KeyError, ValueError) as exc:
            raise InvalidInput(f"{text!r} is not a CID: {exc}") from exc
        if decoded.version != 1 or decoded.codec.name != CODEC or decoded.hashfun.name != HASH:
            raise InvalidInput(
                f"{text!r} is a CIDv{decoded.version} {decoded.codec.name} "
                f"{decoded.hashfun.name} CID; this store holds CIDv1 {CODEC} {HASH} content"
            )
        return cls(bytes(decoded.raw_digest))

    @property
    def multihash(self) -> bytes:
        """The multihash: ``0x1b 0x20 ‖ digest``."""
        return wrap_digest(HASH, self.digest)

    def to_bytes(self) -> bytes:
        """The binary CID: ``0x01 0x55 ‖ multihash``."""
        return bytes(self._cid())

    def _cid(self) -> CID:
        return CID("base32", 1, CODEC, self.multihash)

    def __str__(self) -> str:
        return str(self._cid())


def cid_for_digest(keccak_digest: bytes) -> Cid:
    """The CID of the content whose ``keccak256`` is ``keccak_digest``.

    Example: ``cid_for_digest(agreement.function_hash)`` names the agreed code.
    """
    return Cid(bytes(keccak_digest))


def cid_of(data: bytes) -> Cid:
    """The CID of ``data``.

    Example: ``str(cid_of(b""))  # 'bafkrwigf2jdadbxxem6je7t5wlomoa6a4ualmu6kqittw6723acf3bneoa'``.
    """
    return Cid(keccak256(data))


class ContentStore:
    """Bytes on disk under their CID; every read checks the bytes still hash to it.

    Example::

        store = ContentStore(home / "content")
        cid = store.put(source.encode())
        store.has(cid), store.get(cid)
    """

    def __init__(self, root: Path) -> None:
        self._root = root

    @property
    def root(self) -> Path:
        """The folder holding the content (created on the first :meth:`put`)."""
        return self._root

    def path_of(self, cid: Cid) -> Path:
        """Where the content of ``cid`` is (or would be) stored."""
        return self._root / cid.digest.hex()[:2] / str(cid)

    def put(self, data: bytes) -> Cid:
        """Store ``data`` and return its CID; storing the same bytes again is a no-op.

        A file under that CID which no longer matches (see :meth:`get`) is replaced.

        Example: ``cid = store.put(b"hello")``.
        """
        cid = cid_of(data)
        target = self.path_of(cid)
        if target.is_file() and keccak256(target.read_bytes()) == cid.digest:
            return cid
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".put-", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        return cid

    def get(self, cid: Cid) -> bytes:
        """The content of ``cid``, re-hashed on the way out.

        Raises :class:`NotFound` when it is not stored here and
        :class:`~pervasive.storage.ContentCorrupted` when the file was changed.

        Example: ``store.get(Cid.parse("bafkrwi..."))``.
        """
        path = self.path_of(cid)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise NotFound(
                f"no content {cid} in {self._root}: put it first (pervasive code put FILE) "
                "or fetch it from the party that published it"
            ) from None
        actual = keccak256(data)
        if actual != cid.digest:
            raise ContentCorrupted(
                f"{path} hashes to keccak-256 0x{actual.hex()}, not to its CID {cid}: the file "
                "was changed or damaged; delete it and put the original content again"
            )
        return data

    def has(self, cid: Cid) -> bool:
        """Whether content is stored under ``cid`` (not re-hashed: :meth:`get` checks).

        Example: ``store.has(cid_for_digest(agreement.function_hash))``.
        """
        return self.path_of(cid).is_file()
