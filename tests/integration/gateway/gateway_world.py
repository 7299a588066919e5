"""The gateway tests' world: chain, sale order factory, CA, role book, gateway, clients.

Tests stay independent of each other by using identities of their own
(:meth:`GatewayWorld.device`) and orders of their own (:meth:`GatewayWorld.sold_order`).
"""

from __future__ import annotations

import itertools
import json
import ssl
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp

from pervasive.chain import Ledger, Signer
from pervasive.config import Settings
from pervasive.contracts.sale_order import SaleOrder, SaleOrderFactory
from pervasive.gateway import Gateway, Role, RoleBook
from pervasive.messaging.tls import ClientCredentials
from pervasive.pki import CertificateAuthority

ETHER = 10**18
_names = itertools.count()


@dataclass
class GatewayWorld:
    home: Path
    settings: Settings
    ledger: Ledger
    ca: CertificateAuthority
    roles: RoleBook
    factory: SaleOrderFactory
    gateway: Gateway
    artifacts: Path
    seller: Signer = field(init=False)
    buyer: Signer = field(init=False)
    warehouse: Signer = field(init=False)

    def __post_init__(self) -> None:
        self.seller, self.buyer, self.warehouse = (self.ledger.dev_signer(i) for i in (1, 2, 3))

    def device(self, role: Role | str | None, prefix: str = "door") -> ClientCredentials:
        """A fresh identity with a certificate of this CA and ``role`` (``None``: none)."""
        identity = f"{prefix}-{next(_names)}"
        credentials = self.ca.client_credentials(identity, self.home / "devices")
        if role is not None:
            self.roles.assign(identity, role)
        return credentials

    async def sold_order(self) -> SaleOrder:
        """A new order bought by ``buyer``, released by ``warehouse``'s account."""
        order = await self.factory.create(
            "Tesla", "alpha", 2019, ETHER, f"SN{next(_names)}", self.warehouse.address
        )
        await order.with_signer(self.buyer).buy()
        return order

    async def start_gateway(self, **changes: Any) -> Gateway:
        """Another gateway over the same chain and CA, with other [gateway] settings."""
        settings = replace(self.settings.gateway, **changes)
        return await Gateway.start(
            self.ledger, self.ca, settings, roles=self.roles, orders=self.factory.is_order
        )


def session(credentials: ClientCredentials | None, ca_file: Path) -> aiohttp.ClientSession:
    """An aiohttp session presenting ``credentials`` (none: no client certificate)."""
    if credentials is None:
        context = ssl.create_default_context(cafile=str(ca_file))
    else:
        context = credentials.ssl_context()
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context, limit=1))


async def post(
    client: aiohttp.ClientSession, url: str, body: object
) -> tuple[int, Any, aiohttp.typedefs.LooseHeaders]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with client.post(url, data=data) as answer:
        raw = await answer.read()
        return answer.status, json.loads(raw) if raw else None, answer.headers


def rpc(method: str, *params: object, call_id: object = 1) -> dict[str, object]:
    return {"jsonrpc": "2.0", "id": call_id, "method": method, "params": list(params)}
