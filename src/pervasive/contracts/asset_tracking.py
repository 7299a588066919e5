"""The typed Python wrapper of ``vyper/asset_tracking.vy`` (paper 001's ``sendMoney``).

A payer opens a shipment with an escrow; the operator (a pervasive-contract service
running a context trigger) calls :meth:`AssetTracking.send_money` once per episode
of "container and retailer in the same place", with an idempotency key the contract
accepts only once. Inputs are checked before anything is signed; what only the
chain can decide comes back as :class:`~pervasive.errors.TransactionReverted`.

Example::

    tracking = await AssetTracking.open(ledger, ledger.dev_signer(0))
    await tracking.open_shipment("ship-1", payee, operator.address, amount=10**15,
                                 deposit=10**16)
    await tracking.with_signer(operator).send_money("ship-1", key)
    await tracking.is_paid(key)    # True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pervasive.chain import Receipt
from pervasive.contracts.handle import ContractHandle
from pervasive.crypto import checksum_address
from pervasive.domain import check_account, check_id
from pervasive.errors import InvalidInput, NotFound, TransactionReverted

__all__ = ["ASSET_TRACKING", "AssetTracking", "Shipment"]

ASSET_TRACKING = "asset_tracking"
"""The contract's name: its source is ``vyper/asset_tracking.vy``, its deployment record key."""


@dataclass(frozen=True)
class Shipment:
    """A shipment as the contract stores it."""

    id: str
    payer: str
    payee: str
    operator: str
    amount: int
    """Wei per delivery."""
    balance: int
    """Wei left in escrow."""
    payments: int
    open: bool


def _shipment(raw: Sequence[Any]) -> Shipment:
    return Shipment(
        id=str(raw[0]),
        payer=checksum_address(raw[1]),
        payee=checksum_address(raw[2]),
        operator=checksum_address(raw[3]),
        amount=int(raw[4]),
        balance=int(raw[5]),
        payments=int(raw[6]),
        open=bool(raw[7]),
    )


def _check_key(idempotency_key: bytes) -> bytes:
    if not isinstance(idempotency_key, bytes) or len(idempotency_key) != 32:
        raise InvalidInput("an idempotency key is 32 bytes")
    if not any(idempotency_key):
        raise InvalidInput("the idempotency key may not be zero")
    return idempotency_key


class AssetTracking(ContractHandle):
    """A deployed asset-tracking contract; writes are sent from ``signer``."""

    NAME = ASSET_TRACKING

    # -- writes -------------------------------------------------------------------------
    async def open_shipment(
        self, shipment_id: str, payee: str, operator: str, *, amount: int, deposit: int
    ) -> Receipt:
        """Open ``shipment_id`` paying ``amount`` wei per delivery from a ``deposit`` escrow.

        Example: ``await tracking.open_shipment("ship-1", payee, op, amount=10, deposit=100)``.
        """
        check_id("shipment", shipment_id)
        payee = check_account(payee, what="payee")
        operator = check_account(operator, what="operator")
        if amount <= 0:
            raise InvalidInput(f"the amount per delivery must be positive, got {amount}")
        if deposit < amount:
            raise InvalidInput(f"the deposit {deposit} does not cover one delivery of {amount}")
        if await self.has_shipment(shipment_id):
            raise InvalidInput(f"shipment id {shipment_id!r} is already used: choose another")
        return await self._send(
            "open_shipment", shipment_id, payee, operator, amount, value=deposit
        )

    async def fund(self, shipment_id: str, deposit: int) -> Receipt:
        """Add ``deposit`` wei to the escrow of ``shipment_id``."""
        if deposit <= 0:
            raise InvalidInput("fund a shipment with a positive amount")
        return await self._send("fund", check_id("shipment", shipment_id), value=deposit)

    async def send_money(self, shipment_id: str, idempotency_key: bytes) -> Receipt:
        """Pay one delivery of ``shipment_id``; reverts "already paid for this key" on a repeat.

        Example: ``await tracking.send_money("ship-1", episode_key)``.
        """
        return await self._send(
            "sendMoney", check_id("shipment", shipment_id), _check_key(idempotency_key)
        )

    async def close_shipment(self, shipment_id: str) -> Receipt:
        """Close ``shipment_id`` and refund the escrow to its payer (only the payer may)."""
        return await self._send("close_shipment", check_id("shipment", shipment_id))

    # -- reads --------------------------------------------------------------------------
    async def get_shipment(self, shipment_id: str) -> Shipment:
        """The shipment ``shipment_id``; :class:`NotFound` when unknown."""
        try:
            return _shipment(await self.contract.call("shipment", shipment_id))
        except TransactionReverted as exc:
            if exc.reason == "unknown shipment":
                raise NotFound(f"no shipment {shipment_id!r} at {self.address}") from None
            raise

    async def has_shipment(self, shipment_id: str) -> bool:
        """Whether ``shipment_id`` was ever opened."""
        try:
            await self.get_shipment(shipment_id)
        except NotFound:
            return False
        return True

    async def is_paid(self, idempotency_key: bytes) -> bool:
        """Whether a payment with ``idempotency_key`` was made (the on-chain check).

        Example: ``await tracking.is_paid(key)``.
        """
        return bool(await self.contract.call("paid", _check_key(idempotency_key)))
