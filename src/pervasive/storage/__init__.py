"""Content-addressed storage: bytes on disk under their CIDv1 (``raw``, ``keccak-256``).

The contract database of paper 001 keeps files content-addressed; paper 002's
agreements name their off-chain code by ``keccak256`` of its source, which is the
digest of the code's CID here. See ``README.md`` in this folder.

Example::

    from pervasive.storage import ContentStore, cid_for_digest
    store = ContentStore(settings.home / "content")
    source = store.get(cid_for_digest(agreement.function_hash))
"""

from pervasive.storage.content import (
    CODEC,
    HASH,
    Cid,
    ContentStore,
    cid_for_digest,
    cid_of,
    wrap_digest,
)
from pervasive.storage.errors import ContentCorrupted

__all__ = [
    "CODEC",
    "HASH",
    "Cid",
    "ContentCorrupted",
    "ContentStore",
    "cid_for_digest",
    "cid_of",
    "wrap_digest",
]
