"""What a trigger does when an episode begins: a contract function, called idempotently.

A :class:`TriggerAction` answers two questions for an episode's key: is it already
done on-chain (:meth:`~TriggerAction.already_done`, an ``eth_call``), and do it now
(:meth:`~TriggerAction.execute`, a transaction). A :class:`TransactionAction` also
says which transaction it would send and who signs it, so the runtime can store the
signed bytes before they leave and keep them until they are deep enough in the chain
(sent again after a reorganisation). :class:`SendMoney` is paper 001's
asset-tracking action: ``sendMoney(shipment, key)`` on the
:class:`~pervasive.contracts.asset_tracking.AssetTracking` contract, which refuses a
key twice. :class:`CallbackAction` is any action given as its two halves: the service
runtime builds one per ``[[trigger]]`` of a spec (its ``done`` view, and its function
called through the service's exactly-once inbox).

Example::

    action = SendMoney(tracking.with_signer(operator), "ship-1")
    if not await action.already_done(key):
        await action.execute(key)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

from pervasive.chain import ContractCall, TransactionManager
from pervasive.contracts.asset_tracking import AssetTracking
from pervasive.errors import InvalidInput

__all__ = ["ALREADY_PAID", "CallbackAction", "SendMoney", "TransactionAction", "TriggerAction"]

ALREADY_PAID = "already paid for this key"
"""The revert reason of ``sendMoney`` for a key it has seen."""


class TriggerAction(Protocol):
    """An idempotent on-chain action keyed by an episode's idempotency key."""

    @property
    def scope(self) -> str:
        """What the action acts on; part of every idempotency key."""
        ...

    async def already_done(self, key: bytes) -> bool:
        """Whether the chain already holds the effect of ``key``."""
        ...

    async def execute(self, key: bytes) -> str:
        """Send the transaction for ``key``; return its hash once mined.

        Raises :class:`~pervasive.errors.TransactionReverted` (e.g. with
        :data:`ALREADY_PAID`), ``ChainUnavailable`` or ``TransactionTimeout``.
        """
        ...


@runtime_checkable
class TransactionAction(TriggerAction, Protocol):
    """An action that is one transaction: the runtime signs, stores, sends and settles it."""

    @property
    def transactor(self) -> TransactionManager:
        """The transaction manager of the account that signs the action."""
        ...

    def call(self, key: bytes) -> ContractCall:
        """The transaction for ``key``."""
        ...


class SendMoney:
    """Pay one delivery of ``shipment_id`` per episode (the operator signs)."""

    def __init__(self, tracking: AssetTracking, shipment_id: str) -> None:
        if tracking.signer is None:
            raise InvalidInput("SendMoney needs a tracking handle with a signer: with_signer(...)")
        self.tracking = tracking
        self.shipment_id = shipment_id
        self._signer = tracking.signer

    @property
    def transactor(self) -> TransactionManager:
        """The operator's transaction manager."""
        return self.tracking.contract.ledger.transactor(self._signer)

    def call(self, key: bytes) -> ContractCall:
        """``sendMoney(shipment, key)`` to the tracking contract."""
        data = self.tracking.contract.encode("sendMoney", self.shipment_id, key)
        return ContractCall(to=self.tracking.address, data=data)

    @property
    def scope(self) -> str:
        """``<contract address>/<shipment id>``."""
        return f"{self.tracking.address}/{self.shipment_id}"

    async def already_done(self, key: bytes) -> bool:
        """Whether ``paid(key)`` is set on-chain."""
        return await self.tracking.is_paid(key)

    async def execute(self, key: bytes) -> str:
        """``sendMoney(shipment, key)``; returns the transaction hash."""
        receipt = await self.tracking.send_money(self.shipment_id, key)
        return receipt.transaction_hash


class CallbackAction:
    """An action given as two coroutines: ``done(key)`` (a view) and ``execute(key)``.

    Example: ``CallbackAction(f"{address}/pay", done=is_paid, execute=pay)``.
    """

    def __init__(
        self,
        scope: str,
        *,
        done: Callable[[bytes], Awaitable[bool]],
        execute: Callable[[bytes], Awaitable[str]],
    ) -> None:
        self._scope = scope
        self._done = done
        self._execute = execute

    @property
    def scope(self) -> str:
        """What the action acts on, as given."""
        return self._scope

    async def already_done(self, key: bytes) -> bool:
        """Whether ``done(key)`` says the chain holds the effect of ``key``."""
        return await self._done(key)

    async def execute(self, key: bytes) -> str:
        """``execute(key)``: the transaction hash once mined."""
        return await self._execute(key)
