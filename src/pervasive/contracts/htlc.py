"""The typed wrapper of ``vyper/htlc.vy``: the hashed time-lock baseline paper 003 compares with.

An HTLC swap locks each leg under ``sha256(preimage)`` with a timelock; the claim of one
leg reveals the preimage for the other. Paper 003's scheme replaces the lock-and-wait of
both legs by a deposit and a notary committee; this baseline measures what it saves.

Example::

    htlc = await Htlc.open(ledger, alice)
    lock_id, _ = await htlc.lock(bob.address, hashlock(secret), now + 3600, amount=10**17)
    await htlc.with_signer(bob).claim(lock_id, secret)
    (await htlc.get(lock_id)).state          # LockState.CLAIMED
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import IntEnum

from pervasive.chain import ContractCall, Receipt
from pervasive.contracts.handle import ContractHandle
from pervasive.crypto import abi_encode, checksum_address, keccak256
from pervasive.domain import check_account
from pervasive.errors import InternalError, InvalidInput, NotFound

__all__ = ["HTLC", "Htlc", "HtlcLock", "LockState", "hashlock", "lock_id"]

HTLC = "htlc"
"""The contract's name: its source is ``vyper/htlc.vy``, its deployment record key."""


def hashlock(preimage: bytes) -> bytes:
    """``sha256(preimage)`` of a 32-byte preimage, as the contract checks it.

    Example: ``hashlock(bytes(32)).hex()[:8] == "66687aad"``.
    """
    return hashlib.sha256(_bytes32(preimage, "a preimage")).digest()


def lock_id(sender: str, recipient: str, hash_lock: bytes, timelock: int, amount: int) -> bytes:
    """The id the contract gives a lock: ``keccak256(abi_encode(sender, recipient, ...))``.

    The counterparty of a swap can compute it before the lock is mined.
    Example: ``lock_id(alice, bob, hashlock(secret), 1_800_000_000, 10**17)``.
    """
    values = [
        check_account(sender, what="sender"),
        check_account(recipient, what="recipient"),
        _bytes32(hash_lock, "a hashlock"),
        timelock,
        amount,
    ]
    return keccak256(abi_encode(["address", "address", "bytes32", "uint256", "uint256"], values))


def _bytes32(value: bytes, what: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != 32:
        raise InvalidInput(f"{what} must be 32 bytes")
    return value


class LockState(IntEnum):
    """Where a lock is in its life."""

    PENDING = 1
    CLAIMED = 2
    REFUNDED = 3


@dataclass(frozen=True)
class HtlcLock:
    """One lock as the contract stores it."""

    id: bytes
    sender: str
    recipient: str
    amount: int
    hashlock: bytes
    timelock: int
    """Block timestamp from which the sender may refund."""
    state: LockState


class Htlc(ContractHandle):
    """A deployed HTLC contract; writes are sent from ``signer``."""

    NAME = HTLC

    async def lock(
        self, recipient: str, hash_lock: bytes, timelock: int, *, amount: int
    ) -> tuple[bytes, Receipt]:
        """Lock ``amount`` wei for ``recipient`` until ``timelock``: the lock id and the receipt.

        Example: ``lock_id, receipt = await htlc.lock(bob, hashlock(s), t, amount=10**17)``.
        """
        recipient = check_account(recipient, what="recipient")
        if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount < 1 << 96:
            raise InvalidInput(f"lock a positive integer amount of wei below 2**96, got {amount!r}")
        if timelock <= 0:
            raise InvalidInput("the timelock is a unix time in the future")
        data = self.contract.encode("lock", recipient, _bytes32(hash_lock, "a hashlock"), timelock)
        call = ContractCall(to=self.address, data=data, value=amount)
        receipt: Receipt = await self.contract.ledger.transactor(self._signer()).transact(call)
        events = self.contract.events(receipt, "Locked")
        if len(events) != 1:
            raise InternalError(f"a lock gave {len(events)} Locked events, expected 1")
        return bytes(events[0].args["id"]), receipt

    async def claim(self, lock_id: bytes, preimage: bytes) -> Receipt:
        """Pay lock ``lock_id`` to its recipient, revealing ``preimage`` (before the timelock)."""
        return await self.contract.transact(
            self._signer(),
            "claim",
            _bytes32(lock_id, "a lock id"),
            _bytes32(preimage, "a preimage"),
        )

    async def refund(self, lock_id: bytes) -> Receipt:
        """Return lock ``lock_id`` to its sender (from the timelock on)."""
        return await self.contract.transact(
            self._signer(), "refund", _bytes32(lock_id, "a lock id")
        )

    async def get(self, lock_id: bytes) -> HtlcLock:
        """The lock ``lock_id``; :class:`NotFound` when there is none."""
        raw = await self.contract.call("lock_of", _bytes32(lock_id, "a lock id"))
        if int(raw[5]) == 0:
            raise NotFound(f"no lock {lock_id.hex()} at {self.address}")
        return HtlcLock(
            id=lock_id,
            sender=checksum_address(raw[0]),
            recipient=checksum_address(raw[1]),
            amount=int(raw[2]),
            hashlock=bytes(raw[3]),
            timelock=int(raw[4]),
            state=LockState(int(raw[5])),
        )

    def revealed_preimages(self, receipt: Receipt) -> list[bytes]:
        """The preimages the ``Claimed`` events in ``receipt`` revealed (for the other leg)."""
        return [bytes(e.args["preimage"]) for e in self.contract.events(receipt, "Claimed")]
