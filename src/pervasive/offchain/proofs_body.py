"""The ABI layout of the proofs body, written and read by hand (the protocol's hot path).

Every PROOF_* and LEADER_BUNDLE message carries
``abi_encode((address,bytes32,bytes32,address[],bytes[])[] rows, bool, uint256, bytes,
bytes32, bytes32, bytes32, address[], bytes[])`` (:class:`~pervasive.offchain.bodies.
ProofsBody`). eth-abi's generic codec took about half of a node's CPU per
protocol message, and on the ring every hop waits for it. This module encodes the
fixed layout word by word, and decodes it by offsets, accepting a body only if
re-encoding what it read gives back the same bytes: so exactly the canonical encodings
are read here, and anything else goes to eth-abi (``None``), which decides as before.
A property test pins :func:`encode_rows` to eth-abi.

Rows are ``(author, commitment, window_hash, signers, signatures)``; addresses are
20-byte values here, checksummed by the caller.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["ProofsValues", "Row", "decode_rows", "encode_rows"]

Row = tuple[bytes, bytes, bytes, tuple[bytes, ...], tuple[bytes, ...]]
"""``(author, commitment, window_hash, signers, signatures)``, addresses as 20 bytes."""
ProofsValues = tuple[
    tuple[Row, ...], bool, int, bytes, bytes, bytes, bytes, tuple[bytes, ...], tuple[bytes, ...]
]
"""``(rows, has_compact, window, result, window_hash, proofs_hash, data_hash, signers,
signatures)``: the nine values of the body."""

_ZERO12 = bytes(12)


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _bytes(value: bytes) -> bytes:
    return _word(len(value)) + value + bytes(-len(value) % 32)


def _addresses(values: Sequence[bytes]) -> bytes:
    return _word(len(values)) + b"".join(_ZERO12 + v for v in values)


def _dynamic_array(parts: Sequence[bytes]) -> bytes:
    """``T[]`` of a dynamic ``T``: length, one offset per element, the elements."""
    head, offset = [], 32 * len(parts)
    for part in parts:
        head.append(_word(offset))
        offset += len(part)
    return _word(len(parts)) + b"".join(head) + b"".join(parts)


def _row(row: Row) -> bytes:
    author, commitment, window_hash, signers, signatures = row
    signers_part = _addresses(signers)
    return (
        _ZERO12 + author + commitment + window_hash
        + _word(160) + _word(160 + len(signers_part))
        + signers_part + _dynamic_array([_bytes(s) for s in signatures])
    )  # fmt: skip


def encode_rows(body: ProofsValues) -> bytes:
    """The canonical ABI encoding of the nine values (equal to eth-abi's).

    Example: ``encode_rows(((), False, 0, b"", bytes(32), bytes(32), bytes(32), (), ()))``.
    """
    rows, has_compact, window, result, window_hash, proofs_hash, data_hash, signers, sigs = body
    tails = [
        _dynamic_array([_row(r) for r in rows]),
        _bytes(result),
        _addresses(signers),
        _dynamic_array([_bytes(s) for s in sigs]),
    ]
    offsets, at = [], 32 * 9
    for tail in tails:
        offsets.append(_word(at))
        at += len(tail)
    head = (
        offsets[0] + _word(int(has_compact)) + _word(window) + offsets[1]
        + window_hash + proofs_hash + data_hash + offsets[2] + offsets[3]
    )  # fmt: skip
    return head + b"".join(tails)


class _Reader:
    """Offsets into ``data``; any inconsistency raises ``ValueError`` (then eth-abi decides)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def word(self, at: int) -> int:
        if at + 32 > len(self.data):
            raise ValueError
        return int.from_bytes(self.data[at : at + 32], "big")

    def raw(self, at: int, size: int) -> bytes:
        if at + size > len(self.data):
            raise ValueError
        return self.data[at : at + size]

    def address(self, at: int) -> bytes:
        return self.raw(at, 32)[12:]

    def bytes_at(self, at: int) -> bytes:
        return self.raw(at + 32, self.word(at))

    def addresses(self, at: int) -> tuple[bytes, ...]:
        return tuple(self.address(at + 32 * (1 + i)) for i in range(self._count(at)))

    def offsets(self, at: int) -> list[int]:
        """Absolute positions of a dynamic array's elements."""
        base = at + 32
        return [base + self.word(base + 32 * i) for i in range(self._count(at))]

    def _count(self, at: int) -> int:
        count = self.word(at)
        if count > len(self.data) // 32:
            raise ValueError
        return count


def decode_rows(data: bytes) -> ProofsValues | None:
    """The nine values if ``data`` is their canonical encoding, else ``None``.

    Example: ``decode_rows(encode_rows(body)) == body``.
    """
    reader = _Reader(data)
    try:
        rows = []
        for at in reader.offsets(reader.word(0)):
            rows.append(
                (
                    reader.address(at),
                    reader.raw(at + 32, 32),
                    reader.raw(at + 64, 32),
                    reader.addresses(at + reader.word(at + 96)),
                    tuple(reader.bytes_at(p) for p in reader.offsets(at + reader.word(at + 128))),
                )
            )
        body: ProofsValues = (
            tuple(rows),
            bool(reader.word(32)),
            reader.word(64),
            reader.bytes_at(reader.word(96)),
            reader.raw(128, 32),
            reader.raw(160, 32),
            reader.raw(192, 32),
            reader.addresses(reader.word(224)),
            tuple(reader.bytes_at(p) for p in reader.offsets(reader.word(256))),
        )
    except ValueError:
        return None
    return body if encode_rows(body) == data else None
