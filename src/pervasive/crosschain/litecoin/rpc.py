"""A small async JSON-RPC client for litecoind (the heterogeneous data chain B_d, paper 003 §V-B).

One method, :meth:`LitecoinRpc.call`, speaks JSON-RPC 1.0 over HTTP basic auth to a node
(``/wallet/<name>`` for wallet calls). It turns the two ways a call fails into errors a
caller can act on: a node that cannot be reached becomes
:class:`~pervasive.crosschain.errors.LitecoinUnavailable` (start the node, check the port),
and an error object in the reply becomes :class:`LitecoinRpcError` carrying litecoind's
code and message with a hint for the codes a user meets (-5 unknown transaction, -25 and
-26 refused transactions, -28 still starting).

Example::

    rpc = LitecoinRpc("http://127.0.0.1:19443", "pervasive", password)
    height = await rpc.call("getblockcount")
    await rpc.close()
"""

from __future__ import annotations

import base64
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from pervasive.crosschain.errors import LitecoinUnavailable
from pervasive.errors import UserError

__all__ = ["LitecoinRpc", "LitecoinRpcError"]

# litecoind's RPC error codes (src/rpc/protocol.h, shared with Bitcoin Core) that a
# caller of this package can meet, with what to do about them.
_HINTS = {
    -1: "the call's arguments are wrong for this litecoind version",
    -4: "the wallet cannot do this (not enough funds, or no key)",
    -5: "no such transaction, block or address: check the id (is -txindex on?)",
    -8: "a parameter is invalid: check its type and range",
    -18: "the wallet is not loaded: create or load it first",
    -25: "the transaction spends missing or already spent inputs",
    -26: "the node's mempool refused the transaction (script, finality or policy)",
    -27: "the transaction is already in the chain",
    -28: "the node is still starting; retry in a moment",
    -32601: "this litecoind has no such RPC method",
}


class LitecoinRpcError(UserError):
    """litecoind answered a call with an error object; ``code`` is its RPC error code."""

    def __init__(self, method: str, code: int, message: str) -> None:
        hint = _HINTS.get(code, "see litecoind's debug.log in the node's data directory")
        super().__init__(f"litecoind refused {method} ({code}: {message}); {hint}")
        self.method = method
        self.code = code
        self.rpc_message = message


@dataclass
class LitecoinRpc:
    """A JSON-RPC connection to one litecoind; the password is never shown in ``repr``.

    Example::

        rpc = LitecoinRpc(node.url, node.rpc_user, node.rpc_password)
        info = await rpc.call("getblockchaininfo")
    """

    url: str
    user: str
    password: str = field(repr=False)
    timeout: float = 30.0
    _session: aiohttp.ClientSession | None = field(default=None, init=False, repr=False)
    _ids: itertools.count[int] = field(default_factory=itertools.count, init=False, repr=False)

    async def call(self, method: str, *params: Any, wallet: str | None = None) -> Any:
        """Call ``method`` with positional ``params``; ``wallet`` routes to ``/wallet/<name>``.

        Example::

            block_hash = await rpc.call("getblockhash", 0)
        """
        if self._session is None or self._session.closed:
            token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
            self._session = aiohttp.ClientSession(
                headers={"Authorization": f"Basic {token}"},
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            )
        url = f"{self.url}/wallet/{wallet}" if wallet is not None else self.url
        body = {"jsonrpc": "1.0", "id": next(self._ids), "method": method, "params": list(params)}
        try:
            async with self._session.post(url, json=body) as response:
                if response.status == 401:
                    raise LitecoinUnavailable(
                        f"litecoind at {self.url} refused our RPC credentials; "
                        "use the ones of the node that was started"
                    )
                text = await response.text()
        except (TimeoutError, aiohttp.ClientConnectionError) as error:
            raise LitecoinUnavailable(
                f"litecoind at {self.url} cannot be reached ({type(error).__name__}); "
                "start the node (LitecoinNode.start) or check its RPC port"
            ) from error
        try:
            reply = json.loads(text)
        except json.JSONDecodeError as error:
            raise LitecoinUnavailable(
                f"litecoind at {self.url} answered {method} with HTTP {response.status} "
                f"and no JSON ({text[:80]!r}); is this port a litecoind RPC port?"
            ) from error
        if reply.get("error"):
            raise LitecoinRpcError(method, int(reply["error"]["code"]), reply["error"]["message"])
        return reply["result"]

    async def close(self) -> None:
        """Close the HTTP session (idempotent)."""
        if self._session is not None:
            await self._session.close()
            self._session = None
