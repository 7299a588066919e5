"""Typed wrappers of the case study's two logic contracts: Shipping and Payment.

Their Vyper sources are package data (``contracts/shipping.vy``, ``contracts/payment.vy``)
deployed by :func:`~pervasive.service.deployment.deploy_service` from their spec
files; a wrapper is bound to a :class:`~pervasive.service.deployment.ServiceDeployment`
(address and ABI) and sends from its ``signer``. Inputs are checked before anything is
signed; what only the chain decides comes back as
:class:`~pervasive.errors.TransactionReverted` with the contract's reason.

Example::

    shipping = Shipping(ledger, deployment, operator)
    await shipping.set_cost_service(cost.url)
    await shipping.create_shipment("ship-1", "VerticalPump", supplier, carrier)
    await shipping.cost_of("ship-1")            # wei, once the oracle answered
"""

from __future__ import annotations

from pervasive.chain import ContractCall, Ledger, Receipt, Signer
from pervasive.contracts.contract import Contract
from pervasive.domain import check_account
from pervasive.errors import InvalidInput
from pervasive.service.deployment import ServiceDeployment

__all__ = ["Payment", "Shipping"]

_MAX_ID = 32


def _check_shipment(shipment: str) -> str:
    if not isinstance(shipment, str) or not 0 < len(shipment.encode()) <= _MAX_ID:
        raise InvalidInput(f"a shipment id is 1 to {_MAX_ID} bytes, got {shipment!r}")
    return shipment


class _Logic:
    """A deployed logic contract of a service; writes are sent from ``signer``."""

    def __init__(self, ledger: Ledger, deployment: ServiceDeployment, signer: Signer) -> None:
        self.ledger = ledger
        self.deployment = deployment
        self.signer = signer
        self.contract = Contract(ledger, deployment.address, deployment.abi)

    @property
    def address(self) -> str:
        """The logic contract's address."""
        return self.deployment.address

    async def _send(self, function: str, *args: object, value: int = 0) -> Receipt:
        call = ContractCall(to=self.address, data=self.contract.encode(function, *args),
                            value=value)  # fmt: skip
        receipt: Receipt = await self.ledger.transactor(self.signer).transact(call)
        return receipt


class Shipping(_Logic):
    """``contracts/shipping.vy``: shipments and their oracle-quoted cost, records in C_d."""

    async def set_cost_service(self, url: str) -> Receipt:
        """Point the contract at the ShipmentCost service (operator only).

        Example: ``await shipping.set_cost_service("http://127.0.0.1:8080")``.
        """
        if not url.startswith(("http://", "https://")) or len(url) > 160:
            raise InvalidInput(f"the cost service is an http(s) URL of at most 160 bytes: {url!r}")
        return await self._send("set_cost_service", url)

    async def create_shipment(
        self, shipment: str, device: str, supplier: str, carrier: str
    ) -> Receipt:
        """Create ``shipment`` of ``device`` category; the contract asks the oracle its cost.

        Example: ``await shipping.create_shipment("ship-1", "VerticalPump", s, c)``.
        """
        if not 0 < len(device.encode()) <= _MAX_ID:
            raise InvalidInput(f"a device category is 1 to {_MAX_ID} bytes, got {device!r}")
        return await self._send(
            "create_shipment",
            _check_shipment(shipment),
            device,
            check_account(supplier, what="supplier"),
            check_account(carrier, what="carrier"),
        )

    async def cost_of(self, shipment: str) -> int:
        """The quoted cost of ``shipment`` in wei; 0 until the oracle answered."""
        return int(await self.contract.call("cost_of", _check_shipment(shipment)))


class Payment(_Logic):
    """``contracts/payment.vy``: escrows released by a container's delivery confirmation."""

    async def open_escrow(
        self, shipment: str, supplier: str, container: str, *, price: int
    ) -> Receipt:
        """Escrow ``price`` wei for ``supplier``, released when ``container`` confirms delivery.

        Example: ``await payment.open_escrow("ship-1", supplier, "container-1", price=10**16)``.
        """
        if price <= 0:
            raise InvalidInput(f"escrow a positive price, got {price}")
        return await self._send(
            "open_escrow",
            _check_shipment(shipment),
            check_account(supplier, what="supplier"),
            container,
            value=price,
        )

    async def released(self, shipment: str) -> bool:
        """Whether the escrow of ``shipment`` went to its supplier."""
        return bool(await self.contract.call("released", _check_shipment(shipment)))
