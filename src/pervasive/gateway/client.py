"""The device side of the gateway: a :class:`~pervasive.chain.Ledger` that talks through it.

A warehouse device (paper 004 section 4.4) reads sale orders and sends ``release`` as
any ledger user does (``ledger.call``, ``ledger.transactor(signer).transact(call)``),
while every JSON-RPC request goes to the gateway over HTTPS with the device's client
certificate, the platform CA as the only trust anchor, and kept-alive connections (one
TLS handshake, then requests). A call the device's role may not make raises
:class:`~pervasive.chain.RequestRefused` (a refused send:
:class:`~pervasive.chain.TransactionRefused`) with the gateway's words.

Example::

    ledger = await open_gateway_ledger(gateway_url, platform.client_credentials("door-1"),
                                       settings)
    owned = await SaleOrder.at(ledger, order).verify_ownership(buyer)
"""

from __future__ import annotations

from dataclasses import replace

from pervasive.chain import Ledger, open_ledger
from pervasive.config import Settings
from pervasive.errors import ConfigError
from pervasive.messaging.tls import ClientCredentials

__all__ = ["open_gateway_ledger"]


async def open_gateway_ledger(
    url: str, credentials: ClientCredentials, settings: Settings
) -> Ledger:
    """A ledger (``rpc`` kind) whose JSON-RPC goes through the gateway at ``url``.

    ``credentials`` are the device's TLS files (its certificate and key, and the CA that
    signed the gateway's certificate); ``settings`` give the transaction policy
    (confirmations, receipt timeout, gas margin). Raises
    :class:`~pervasive.errors.ChainUnavailable` when the gateway cannot be reached or the
    handshake fails, :class:`~pervasive.chain.RequestRefused` when it refuses the device.

    Example: ``ledger = await open_gateway_ledger(gateway.url, credentials, settings)``.
    """
    if not url.startswith("https://"):
        raise ConfigError(f"the gateway speaks HTTPS: its URL starts with https://, not {url}")
    through = replace(settings, backend="rpc", rpc_url=url)
    return await open_ledger(through, tls=credentials.ssl_context())
