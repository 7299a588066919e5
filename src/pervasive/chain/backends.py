"""Opening a ledger on the configured backend: embedded, anvil or rpc.

This is where settings become a live connection; everything above receives a
:class:`~pervasive.chain.ledger.Ledger` and never asks which backend it is. A node is
proven to be one before the ledger is handed out: the URL must be ``http(s)://``, and
its ``eth_chainId`` must be answered within ``settings.rpc_timeout`` seconds (an endpoint
that accepts the connection and stays silent is refused with that reason instead of
being retried for minutes).

Example::

    ledger = await open_ledger(load_settings({"backend": "rpc", "rpc_url": url}))
"""

from __future__ import annotations

import ast
import asyncio
import fcntl
import json
import ssl
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import aiohttp
import rlp
from eth.exceptions import HeaderNotFound, TransactionNotFound, VMError
from eth_abi.abi import encode
from eth_account import Account
from eth_tester.exceptions import TransactionFailed, ValidationError
from eth_utils.exceptions import ValidationError as EVMValidationError
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.exceptions import Web3Exception
from web3.providers.eth_tester import AsyncEthereumTesterProvider
from web3.providers.eth_tester.defaults import API_ENDPOINTS, static_return
from web3.providers.rpc.utils import REQUEST_RETRY_ALLOWLIST, ExceptionRetryConfiguration

from pervasive.chain.anvil import ANVIL_MNEMONIC, AnvilNode, find_anvil
from pervasive.chain.embedded import persistent_tester
from pervasive.chain.ledger import Ledger
from pervasive.chain.reverts import decode_revert
from pervasive.chain.rpc import LedgerOptions, RequestRefused, RpcClient
from pervasive.config import Settings
from pervasive.errors import ChainUnavailable, ConfigError

__all__ = ["anvil_dev_keys", "open_embedded_via_gateway", "open_ledger"]

_ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
_RAW_METHODS = frozenset({"eth_getRawTransactionByHash", "debug_getRawHeader"})
_MINING_METHODS = frozenset({"eth_sendRawTransaction", "eth_sendTransaction", "evm_mine"})

# web3 retries idempotent requests on a dropped connection; sends are left to the
# transaction manager, which knows how to tell a lost answer from a lost request.
_READ_RETRIES = ExceptionRetryConfiguration(
    errors=(aiohttp.ClientError, TimeoutError),
    retries=4,
    backoff_factor=0.1,
    method_allowlist=[m for m in REQUEST_RETRY_ALLOWLIST if m != "eth_sendRawTransaction"],
)


class _EmbeddedProvider(AsyncEthereumTesterProvider):
    """The in-process EVM; commits its SQLite state after every request."""

    def __init__(self, path: Path | None, chain_id: int | None = None) -> None:
        super().__init__()
        self.ethereum_tester, self._store = persistent_tester(path, chain_id=chain_id)
        # eth-tester answers eth_chainId with a constant; answer the chain's own id.
        # web3's endpoint table is shared by every provider: replace, never mutate.
        actual = int(self.ethereum_tester.backend.chain.chain_id)
        eth = {**API_ENDPOINTS["eth"], "chainId": static_return(actual)}
        self.api_endpoints = {**API_ENDPOINTS, "eth": eth}

    async def make_request(self, method: Any, params: Any) -> Any:
        if method in _MINING_METHODS:
            self._refresh_pending_time()
        # eth-tester raises on a revert where a node answers with an error object;
        # answer like geth (code 3, Error(string) data) so web3 decodes both alike.
        try:
            if method in _RAW_METHODS:
                return self._raw(method, params[0])
            return await super().make_request(method, params)
        except TransactionFailed as failed:
            raw = failed.args[0] if failed.args else b""
            if isinstance(raw, str):
                raw = raw.removeprefix("execution reverted: ").removeprefix("execution reverted")
                if raw.startswith(("b'", 'b"')):
                    raw = ast.literal_eval(raw)  # raw revert data, handed over as its repr
            if isinstance(raw, bytes):  # the revert data itself (empty: no reason)
                data, reason = raw, decode_revert(raw) or ""
            else:
                reason = str(raw)
                data = _ERROR_SELECTOR + encode(["string"], [reason]) if reason else b""
            message = f"execution reverted: {reason}".rstrip(": ")
            error = {"code": 3, "message": message, "data": "0x" + data.hex()}
            return {"jsonrpc": "2.0", "id": 0, "error": error}
        except VMError as halted:
            # eth_estimateGas lets py-evm's halt (a failing precompile, out of gas)
            # through where eth_call wraps it; answer as anvil does for a halt
            error = {"code": -32603, "message": f"EVM error {halted}"}
            return {"jsonrpc": "2.0", "id": 0, "error": error}
        except (ValidationError, EVMValidationError) as invalid:
            # a node refuses such a transaction (nonce, funds, gas) with code -32000
            error = {"code": -32000, "message": str(invalid)}
            return {"jsonrpc": "2.0", "id": 0, "error": error}
        finally:
            if self._store is not None:
                self._store.commit()

    def _refresh_pending_time(self) -> None:
        """Date the block about to be mined now, as a node does.

        py-evm stamps the pending header when its parent is mined, so after an idle
        minute the next block would carry a time a minute old (and a deadline set by
        ``block.timestamp`` would seem not to pass). Only an empty pending block is
        re-dated: eth-tester mines each transaction at once, so it always is.
        """
        chain = self.ethereum_tester.backend.chain
        header = chain.header
        if header.gas_used:
            return
        parent = chain.get_canonical_head()
        stamp = max(int(time.time()), parent.timestamp + 1)
        if stamp > header.timestamp:
            chain.header = header.copy(timestamp=stamp)

    def _raw(self, method: str, key: str) -> dict[str, Any]:
        """What eth-tester lacks for inclusion proofs: a transaction's and a header's bytes."""
        chain = self.ethereum_tester.backend.chain
        try:
            if method == "eth_getRawTransactionByHash":
                raw = chain.get_canonical_transaction(bytes.fromhex(key.removeprefix("0x")))
                result: str | None = "0x" + bytes(raw.encode()).hex()
            else:  # debug_getRawHeader, by hash as the embedded client asks
                header = chain.get_block_header_by_hash(bytes.fromhex(key.removeprefix("0x")))
                result = "0x" + bytes(rlp.encode(header)).hex()
        except (TransactionNotFound, HeaderNotFound):
            result = None
        return {"jsonrpc": "2.0", "id": 0, "result": result}

    def close_store(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


class _TlsProvider(AsyncHTTPProvider):
    """JSON-RPC over HTTPS with a client certificate and kept-alive connections.

    For a node behind an access-controlled gateway. web3's own session opens a
    connection per request (a TLS handshake per call) and turns every answer that is
    not 2xx into a bare HTTP error; here one session keeps its connections, presents the
    client certificate of ``tls``, and a refusal keeps the gateway's words: 401, 403
    and 429 raise :class:`RequestRefused`, 5xx :class:`ChainUnavailable`, any other
    JSON answer is read as the JSON-RPC response it is.
    """

    def __init__(self, url: str, tls: ssl.SSLContext, *, timeout: float = 30.0) -> None:
        super().__init__(url, exception_retry_configuration=_READ_RETRIES)
        self._tls = tls
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def make_request(self, method: Any, params: Any) -> Any:
        raw = await self._post(self.encode_rpc_request(method, params), str(method))
        return self.decode_rpc_response(raw)

    async def make_batch_request(self, batch_requests: Any) -> Any:
        raw = await self._post(self.encode_batch_rpc_request(batch_requests), "batch")
        response: Any = self.decode_rpc_response(raw)
        if not isinstance(response, list):
            return response  # the whole batch was refused
        return sorted(response, key=lambda item: _int_id(item.get("id")))

    async def _post(self, data: bytes, method: str) -> bytes:
        retry = _READ_RETRIES
        attempts = retry.retries if method in (retry.method_allowlist or ()) else 1
        for attempt in range(attempts):
            try:
                return await self._post_once(data)
            except (aiohttp.ClientConnectionError, TimeoutError):
                if attempt == attempts - 1:
                    raise
                await asyncio.sleep(retry.backoff_factor * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _post_once(self, data: bytes) -> bytes:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._tls),
                timeout=aiohttp.ClientTimeout(total=self._timeout),
            )
        headers = self.get_request_headers()
        url = str(self.endpoint_uri)
        async with self._session.post(url, data=data, headers=headers) as answer:
            body = await answer.read()
            status = answer.status
        if status < 300:
            return body
        code, said = _json_rpc_error(body)
        message = said or f"HTTP {status}"
        if status in (401, 403, 429):
            refusal = f"{self.endpoint_uri} refused the request: {message}"
            raise RequestRefused(refusal, status=status, code=code)
        if status >= 500 or not body.lstrip().startswith((b"{", b"[")):
            raise ChainUnavailable(f"{self.endpoint_uri} answered HTTP {status}: {message}")
        return body  # e.g. 400 with a JSON-RPC error: web3 reads it as one

    async def disconnect(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _int_id(value: Any) -> int:
    return value if isinstance(value, int) else -1


def _json_rpc_error(body: bytes) -> tuple[int | None, str | None]:
    """``error.code`` and ``error.message`` of a JSON-RPC answer (its first item's for a batch)."""
    try:
        document = json.loads(body)
    except ValueError:
        return None, None
    if isinstance(document, list) and document:
        document = document[0]
    error = document.get("error") if isinstance(document, dict) else None
    if not isinstance(error, dict):
        return None, None
    code = error.get("code")
    return (code if isinstance(code, int) else None), str(error.get("message"))


def anvil_dev_keys(count: int = 10) -> list[bytes]:
    """Private keys of anvil's funded development accounts."""
    Account.enable_unaudited_hdwallet_features()
    return [
        bytes(Account.from_mnemonic(ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}").key)
        for i in range(count)
    ]


def _options(settings: Settings, *, kind: str = "rpc") -> LedgerOptions:
    return LedgerOptions(
        confirmations=settings.confirmations,
        receipt_timeout=settings.receipt_timeout,
        gas_margin=settings.gas_margin,
        # anvil pools transactions ahead of a nonce gap without limit; a public node may not
        batches_in_flight=4 if kind == "anvil" else 1,
    )


async def open_ledger(
    settings: Settings,
    *,
    persist: bool = True,
    chain_id: int | None = None,
    tls: ssl.SSLContext | None = None,
) -> Ledger:
    """Connect to the chain ``settings`` names, starting it first when it is ours.

    ``persist=False`` gives the embedded and anvil backends a fresh chain that is
    thrown away on close (tests, benchmarks). ``chain_id`` gives a chain we start
    (embedded, anvil) that EIP-155 id instead of the backend's default, so that two
    chains can run side by side (paper 003's user chain and data chain); an ``rpc``
    node has its own id, which must then equal it. ``tls`` (``rpc`` only) is the client
    context for an ``https://`` endpoint that asks for a client certificate, such as the
    devices' gateway (:func:`pervasive.gateway.open_gateway_ledger` builds it); its
    connections are kept alive and its refusals raise :class:`RequestRefused`.

    Example::

        ledger = await open_ledger(load_settings({"backend": "anvil"}))
        try: ...
        finally: await ledger.close()
    """
    if chain_id is not None and not 0 < chain_id < 2**63:
        raise ConfigError(f"a chain id is a positive 63-bit integer, not {chain_id}")
    if tls is not None and settings.backend != "rpc":
        raise ConfigError(f"a client TLS context is for the rpc backend, not {settings.backend}")
    if settings.backend == "embedded":
        return await _open_embedded(settings, persist, chain_id)
    if settings.backend == "anvil":
        return await _open_anvil(settings, persist, chain_id)
    if settings.backend == "rpc":
        if not settings.rpc_url:
            raise ConfigError("backend 'rpc' needs --rpc-url or PERVASIVE_RPC_URL")
        _check_url(settings.rpc_url)
        ledger = await _connect(
            settings.rpc_url, settings, kind="rpc", dev_keys=[], on_close=[], tls=tls
        )
        if chain_id is not None and ledger.chain_id != chain_id:
            await ledger.close()
            raise ConfigError(
                f"the node at {settings.rpc_url} runs chain {ledger.chain_id}, not {chain_id}"
            )
        return ledger
    raise ConfigError(f"unknown backend {settings.backend!r}")


async def _open_embedded(settings: Settings, persist: bool, chain_id: int | None) -> Ledger:
    path = settings.path("chain", "embedded.sqlite") if persist else None
    lock = _hold_embedded(path) if path is not None else None
    try:
        provider = _EmbeddedProvider(path, chain_id)
    except BaseException:
        if lock is not None:
            lock.close()
        raise
    w3 = AsyncWeb3(provider)
    keys = [k.to_bytes() for k in provider.ethereum_tester.backend.account_keys]

    async def close_store() -> None:
        provider.close_store()
        if lock is not None:
            lock.close()  # closing the file releases the lock

    chain_id = int(await w3.eth.chain_id)
    rpc = RpcClient(w3, kind="embedded", chain_id=chain_id, options=_options(settings))
    return Ledger(rpc, dev_keys=keys, on_close=[close_store])


def _check_url(url: str) -> None:
    """Refuse an RPC URL web3 could not even try (``notaurl``, ``ws://``, no host)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"--rpc-url {url!r} is not an http:// or https:// URL: give the node's JSON-RPC "
            "endpoint, e.g. http://127.0.0.1:8545"
        )


async def _probe(w3: AsyncWeb3[Any], url: str, *, kind: str, timeout: float) -> int:
    """The chain id of the node at ``url``; :class:`ChainUnavailable` saying why not.

    ``kind`` is the backend, for the advice: an ``rpc`` URL is the user's ``--rpc-url``.

    The request is shielded rather than cancelled at the deadline (see ``RpcClient._guard``:
    a cancelled web3 request can leave its session lock held); closing the provider ends it.
    """
    check = "check --rpc-url and that the node is up" if kind == "rpc" else "is it running?"
    request = asyncio.ensure_future(w3.eth.chain_id)
    request.add_done_callback(_seen)
    try:
        async with asyncio.timeout(timeout):
            return int(await asyncio.shield(request))
    except RequestRefused:
        raise
    except TimeoutError:
        raise ChainUnavailable(
            f"no Ethereum node answers at {url}: it accepted the connection but sent no "
            f"answer within {timeout:g} s; {check}"
        ) from None
    except aiohttp.ClientResponseError as exc:
        raise ChainUnavailable(
            f"{url} is no Ethereum JSON-RPC endpoint: it answered HTTP {exc.status} "
            f"{exc.message}; {check}"
        ) from None
    except (OSError, aiohttp.ClientError, ChainUnavailable) as exc:
        reason = str(exc) or type(exc).__name__
        raise ChainUnavailable(f"no Ethereum node answers at {url}: {reason}; {check}") from None
    except (Web3Exception, ValueError) as exc:  # an answer, but no JSON-RPC one
        raise ChainUnavailable(
            f"{url} is no Ethereum JSON-RPC endpoint: its answer to eth_chainId was {exc}; {check}"
        ) from None


def _seen(request: asyncio.Future[Any]) -> None:
    if not request.cancelled():
        request.exception()


def _hold_embedded(path: Path) -> IO[bytes]:
    """An exclusive lock on the embedded chain at ``path``: one process runs it at a time.

    Two processes writing one SQLite chain would each mine their own blocks on the same
    heights. The lock lives as long as the returned file stays open.
    """
    handle = path.with_suffix(".lock").open("a+b")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise ChainUnavailable(
            f"the embedded chain in {path.parent} is in use by another process: wait for it "
            "to end, or run a chain several processes share (`pervasive up` lends its chain "
            "to the commands of its data directory; or --backend anvil)"
        ) from None
    return handle


async def open_embedded_via_gateway(url: str, settings: Settings, tls: ssl.SSLContext) -> Ledger:
    """The embedded chain another process holds, through that process's gateway.

    ``pervasive up`` on the embedded backend holds the chain (its web app and gateway
    need it); the other commands of the same data directory reach it through the
    gateway's HTTPS endpoint with an operator's client certificate (``tls``). The ledger
    is of kind ``embedded``, with the embedded chain's development accounts.

    Example: ``ledger = await open_embedded_via_gateway(url, settings, credentials.ssl_context())``.
    """
    from eth_tester.backends.pyevm.main import get_default_account_keys

    keys = [k.to_bytes() for k in get_default_account_keys()]
    return await _connect(url, settings, kind="embedded", dev_keys=keys, on_close=[], tls=tls)


async def _open_anvil(settings: Settings, persist: bool, chain_id: int | None) -> Ledger:
    node = AnvilNode(
        binary=find_anvil(settings.anvil_path),
        state_file=settings.path("chain", "anvil-state.json") if persist else None,
        port=settings.anvil_port,
        block_time=settings.block_time,
        log_file=settings.path("logs", "anvil.log"),
    )
    if chain_id is not None:
        node.chain_id = chain_id
    await node.start()
    try:
        return await _connect(
            node.url, settings, kind="anvil", dev_keys=anvil_dev_keys(), on_close=[node.stop]
        )
    except BaseException:
        await node.stop()
        raise


async def _connect(
    url: str,
    settings: Settings,
    *,
    kind: str,
    dev_keys: list[bytes],
    on_close: list[Callable[[], Awaitable[None]]],
    tls: ssl.SSLContext | None = None,
) -> Ledger:
    provider = (
        _TlsProvider(url, tls)
        if tls is not None
        else AsyncHTTPProvider(
            url, request_kwargs={"timeout": 30}, exception_retry_configuration=_READ_RETRIES
        )
    )
    w3 = AsyncWeb3(provider)
    try:
        chain_id = await _probe(w3, url, kind=kind, timeout=settings.rpc_timeout)
    except BaseException:
        await w3.provider.disconnect()
        raise
    options = _options(settings, kind=kind)
    rpc = RpcClient(w3, kind=kind, chain_id=chain_id, url=url, options=options)
    return Ledger(rpc, dev_keys=dev_keys, on_close=on_close)
