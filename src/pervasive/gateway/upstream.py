"""Where the gateway sends the calls it lets through: the node behind it.

Two kinds of node:

- :class:`HttpUpstream`: a node with a JSON-RPC URL (anvil, geth, Besu, any ``rpc``
  backend). A pool of kept-alive HTTP/1.1 connections, one request in flight on each,
  requests queued while all are busy. Request bodies go out as the device sent them and
  answers come back as the node sent them: the gateway's hot path parses a request
  once (to judge it) and never serialises it again. Built on ``httptools``'s response
  parser over ``asyncio.Protocol`` because a general client (aiohttp) costs several times
  more per call than the node itself spends on an ``eth_call``.
- :class:`LedgerUpstream`: the embedded in-process EVM, which has no URL: each call is
  handed to :meth:`pervasive.chain.RpcClient.relay`.

A node that cannot be reached gives a :class:`~pervasive.errors.ChainUnavailable` with
the node's address; the gateway answers its callers with a JSON-RPC error and tries
again on the next request, so it recovers by itself when the node is back.

Example::

    upstream = HttpUpstream("http://127.0.0.1:8545")
    answer = await upstream.post(b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}')
    status, body = answer  # or a ChainUnavailable: the node cannot be reached
    await upstream.close()
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar, cast
from urllib.parse import unquote, urlsplit

import httptools

from pervasive.chain import Ledger
from pervasive.errors import ChainUnavailable, ConfigError

__all__ = ["Answer", "HttpUpstream", "LedgerUpstream"]

T = TypeVar("T")

Answer = tuple[int, bytes] | ChainUnavailable
"""The node's ``(HTTP status, body)``, or why there is none."""


def _identity(answer: Answer) -> Answer:
    return answer


class _Exchange(Generic[T]):
    """One request waiting for, or travelling to, the node."""

    __slots__ = ("body", "convert", "future", "retried", "started")

    def __init__(
        self, body: bytes, future: asyncio.Future[T], convert: Callable[[Answer], T]
    ) -> None:
        self.body = body
        self.future = future
        self.convert = convert
        self.retried = False
        self.started = 0.0

    def settle(self, answer: Answer) -> None:
        """Give the caller the converted answer (once; a caller gone away is skipped)."""
        if not self.future.done():
            self.future.set_result(self.convert(answer))


class HttpUpstream:
    """Kept-alive connections to a node's JSON-RPC URL; requests and answers as bytes.

    ``connections`` bounds the pool; ``timeout`` is how long one request may take before
    its connection is dropped and the request fails.

    Example::

        upstream = HttpUpstream(ledger.url, connections=32)
        answer = await upstream.post(request_bytes)   # (status, body) or ChainUnavailable
    """

    def __init__(self, url: str, *, connections: int = 32, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"the node's JSON-RPC URL must be http(s)://host[:port], not {url}")
        self.url = url
        self.display = f"{parts.scheme}://{parts.hostname}:{parts.port or ''}".rstrip(":")
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._tls = ssl.create_default_context() if parts.scheme == "https" else None
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        head = (
            f"POST {target} HTTP/1.1\r\nHost: {parts.netloc.rpartition('@')[2]}\r\n"
            "Content-Type: application/json\r\n"
        )
        if parts.username is not None:
            secret = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            head += f"Authorization: Basic {base64.b64encode(secret.encode()).decode()}\r\n"
        self._head = head.encode("latin-1") + b"Content-Length: "
        self.limit = connections
        self.timeout = timeout
        self._idle: list[_NodeConnection] = []
        self._busy: set[_NodeConnection] = set()
        self._queue: deque[_Exchange[Any]] = deque()
        self._connecting = 0
        self._sweeper: asyncio.Task[None] | None = None
        self._closed = False

    # -- requests ---------------------------------------------------------------------
    def post(self, body: bytes) -> asyncio.Future[Answer]:
        """Send ``body`` to the node; the future gives ``(HTTP status, answer body)``.

        Or a :class:`ChainUnavailable` (as its result, not raised) when the node cannot
        be reached, drops the connection, or does not answer within ``timeout``.
        """
        return self.exchange(body, _identity)

    def exchange(self, body: bytes, convert: Callable[[Answer], T]) -> asyncio.Future[T]:
        """:meth:`post`, with the answer turned into ``convert(answer)`` as it arrives.

        The gateway's hot path: the future a caller awaits holds its final value
        (e.g. the HTTP response to the device), with no second future in between.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        exchange = _Exchange(body, future, convert)
        if self._closed:
            exchange.settle(ChainUnavailable("the gateway's upstream is closed"))
            return future
        if self._sweeper is None:
            self._sweeper = loop.create_task(self._sweep())
        self._queue.append(exchange)
        self._pump()
        return future

    def _pump(self) -> None:
        while self._queue and self._idle:
            exchange = self._queue.popleft()
            if exchange.future.done():  # its caller went away
                continue
            connection = self._idle.pop()
            self._busy.add(connection)
            connection.send(exchange)
        waiting = len(self._queue)
        open_now = len(self._idle) + len(self._busy) + self._connecting
        while waiting > self._connecting and open_now < self.limit and not self._closed:
            self._connecting += 1
            open_now += 1
            asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, connection = await loop.create_connection(
                lambda: _NodeConnection(self),
                self._host,
                self._port,
                ssl=self._tls,
                server_hostname=self._host if self._tls else None,
            )
        except (OSError, TimeoutError) as exc:
            self._connecting -= 1
            if not self._idle and not self._busy:
                # no connection will come to serve the queue: fail it now
                self._fail_queue(exc)
            else:
                self._pump()
            return
        self._connecting -= 1
        if self._closed:
            connection.close()
            return
        self._idle.append(connection)
        self._pump()

    def _unreachable(self, exc: BaseException | None) -> ChainUnavailable:
        why = str(exc) if exc and str(exc) else type(exc).__name__ if exc else "connection lost"
        return ChainUnavailable(f"the node at {self.display} cannot be reached: {why}")

    def _fail_queue(self, exc: BaseException) -> None:
        error = self._unreachable(exc)
        while self._queue:
            self._queue.popleft().settle(error)

    # -- connection events ------------------------------------------------------------
    def _answered(self, connection: _NodeConnection, keep_alive: bool) -> None:
        self._busy.discard(connection)
        if keep_alive and not self._closed:
            self._idle.append(connection)
        else:
            connection.close()
        self._pump()

    def _lost(
        self,
        connection: _NodeConnection,
        exchange: _Exchange[Any] | None,
        exc: BaseException | None,
    ) -> None:
        self._busy.discard(connection)
        with contextlib.suppress(ValueError):
            self._idle.remove(connection)
        if exchange is not None and not exchange.future.done():
            if connection.reused and not connection.received and not exchange.retried:
                # the node closed a kept-alive connection as we used it: once more, fresh
                exchange.retried = True
                self._queue.appendleft(exchange)
            else:
                exchange.settle(self._unreachable(exc))
        if not self._closed:
            self._pump()

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(max(self.timeout / 4, 0.05))
            cutoff = loop.time() - self.timeout
            for connection in list(self._busy):
                exchange = connection.exchange
                if exchange is not None and exchange.started < cutoff:
                    connection.exchange = None
                    self._busy.discard(connection)
                    connection.close()
                    exchange.settle(
                        ChainUnavailable(
                            f"the node at {self.display} did not answer within {self.timeout:g}s"
                        )
                    )

    async def close(self) -> None:
        """Close every connection and fail what still waits."""
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        self._fail_queue(ConnectionError("the gateway is closing"))
        for connection in [*self._idle, *self._busy]:
            connection.close()
        self._idle.clear()
        self._busy.clear()


class _NodeConnection(asyncio.Protocol):
    """One kept-alive connection to the node: one request at a time."""

    def __init__(self, upstream: HttpUpstream) -> None:
        self.upstream = upstream
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.exchange: _Exchange[Any] | None = None
        self.body: list[bytes] = []
        self.reused = False
        self.received = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def send(self, exchange: _Exchange[Any]) -> None:
        assert self.transport is not None  # only idle, connected ones are handed requests
        self.exchange = exchange
        self.received = False
        self.body = []
        exchange.started = asyncio.get_running_loop().time()
        head = self.upstream._head
        self.transport.write(b"%s%d\r\n\r\n%s" % (head, len(exchange.body), exchange.body))

    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            exchange, self.exchange = self.exchange, None
            self.close()
            self.upstream._lost(self, exchange, exc)

    def on_body(self, chunk: bytes) -> None:
        self.body.append(chunk)

    def on_message_complete(self) -> None:
        exchange, self.exchange = self.exchange, None
        self.reused = True
        keep_alive = self.parser.should_keep_alive()
        if exchange is not None:
            exchange.settle((self.parser.get_status_code(), b"".join(self.body)))
        self.body = []
        if exchange is not None:
            self.upstream._answered(self, keep_alive)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        exchange, self.exchange = self.exchange, None
        self.upstream._lost(self, exchange, exc)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class LedgerUpstream:
    """The in-process EVM behind the gateway: each call goes to ``ledger.rpc.relay``.

    Example: ``await LedgerUpstream(ledger).call("eth_chainId", [])  # {"result": "0x..."}``.
    """

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.display = f"{ledger.kind} chain {ledger.chain_id}"

    async def call(self, method: str, params: Any) -> dict[str, Any]:
        """The node's answer to one call: ``{"result": ...}`` or ``{"error": ...}``."""
        return await self.ledger.rpc.relay(method, params)
