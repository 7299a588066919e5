"""Where the gateway sends the calls it lets through: the node behind it.

Two kinds of node:

- :class:`HttpUpstream`: a node with a JSON-RPC URL (anvil, geth, Besu, any ``rpc``
  backend). A pool of kept-alive HTTP/1.1 connections, one request in flight on each,
  requests queued while all are busy. Request bodies go out as the device sent them and
  answers come back as the node sent them: the gateway's hot path parses a request
  once (to judge it) and never serialises it again. Built on ``httptools``'s response
  parser over ``asyncio.Protocol`` because a general client (aiohttp) costs several times
  more per call than the node itself spends on an ``eth_call``. :meth:`HttpUpstream.send`
  hands the answer to a callback from the very protocol callback that read it (no
  future, no loop turn: the gateway's hot path); :meth:`HttpUpstream.post` gives a
  future.
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
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import httptools

from pervasive.chain import Ledger
from pervasive.errors import ChainUnavailable, ConfigError

__all__ = ["Answer", "HttpUpstream", "LedgerUpstream"]

Answer = tuple[int, bytes] | ChainUnavailable
"""The node's ``(HTTP status, body)``, or why there is none."""


class _Exchange:
    """One request waiting for, or travelling to, the node."""

    __slots__ = ("body", "deliver", "future", "retried", "settled", "started")

    def __init__(
        self,
        body: bytes,
        deliver: Callable[[Answer], object],
        future: asyncio.Future[Answer] | None = None,
    ) -> None:
        self.body = body
        self.deliver = deliver
        self.future = future
        """The caller's future (:meth:`HttpUpstream.post`): done early = caller gone."""
        self.retried = False
        self.settled = False
        self.started = 0.0

    def settle(self, answer: Answer) -> None:
        """Give the caller the answer, once."""
        if not self.settled:
            self.settled = True
            self.deliver(answer)

    def abandoned(self) -> bool:
        """Whether the caller went away before the request left (a cancelled future)."""
        return self.future is not None and self.future.done()


def _fulfil(future: asyncio.Future[Answer]) -> Callable[[Answer], None]:
    def deliver(answer: Answer) -> None:
        if not future.done():
            future.set_result(answer)

    return deliver


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
        self._queue: deque[_Exchange] = deque()
        self._connecting = 0
        self._sweeper: asyncio.Task[None] | None = None
        self._closed = False

    # -- requests ---------------------------------------------------------------------
    def post(self, body: bytes) -> asyncio.Future[Answer]:
        """Send ``body`` to the node; the future gives ``(HTTP status, answer body)``.

        Or a :class:`ChainUnavailable` (as its result, not raised) when the node cannot
        be reached, drops the connection, or does not answer within ``timeout``.
        """
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._start(_Exchange(body, _fulfil(future), future))
        return future

    def send(self, body: bytes, deliver: Callable[[Answer], object]) -> None:
        """Send ``body`` to the node and call ``deliver(answer)`` once when it is there.

        ``answer`` as :meth:`post` gives it. ``deliver`` runs inside the protocol
        callback that read the answer (or at once, when the upstream is closed): the
        gateway's hot path, which writes the device's answer from there.

        Example: ``upstream.send(body, lambda answer: reply.resolve(respond(answer)))``.
        """
        exchange = _Exchange(body, deliver)
        if self._idle and not self._queue:  # the hot path: a kept-alive connection is free
            connection = self._idle.pop()
            self._busy.add(connection)
            connection.send(exchange)
        else:
            self._start(exchange)

    def _start(self, exchange: _Exchange) -> None:
        if self._closed:
            exchange.settle(ChainUnavailable("the gateway's upstream is closed"))
            return
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep())
        self._queue.append(exchange)
        self._pump()

    def _pump(self) -> None:
        while self._queue and self._idle:
            exchange = self._queue.popleft()
            if exchange.abandoned():
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
        if self._queue:
            self._pump()

    def _lost(
        self,
        connection: _NodeConnection,
        exchange: _Exchange | None,
        exc: BaseException | None,
    ) -> None:
        self._busy.discard(connection)
        with contextlib.suppress(ValueError):
            self._idle.remove(connection)
        if exchange is not None and not exchange.settled and not exchange.abandoned():
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

    __slots__ = (
        "body",
        "exchange",
        "loop",
        "parser",
        "received",
        "reused",
        "transport",
        "upstream",
    )

    def __init__(self, upstream: HttpUpstream) -> None:
        self.upstream = upstream
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.loop = asyncio.get_running_loop()
        self.exchange: _Exchange | None = None
        self.body: list[bytes] = []
        self.reused = False
        self.received = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def send(self, exchange: _Exchange) -> None:
        assert self.transport is not None  # only idle, connected ones are handed requests
        self.exchange = exchange
        self.received = False
        exchange.started = self.loop.time()
        body = exchange.body
        self.transport.write(b"%s%d\r\n\r\n%s" % (self.upstream._head, len(body), body))

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
        exchange = self.exchange
        chunks = self.body
        self.body = []
        self.reused = True
        if exchange is None:  # timed out meanwhile: the sweeper has dropped this connection
            return
        self.exchange = None
        parser = self.parser
        keep_alive = parser.should_keep_alive()
        if not exchange.settled:  # _Exchange.settle, inlined: the hot path
            exchange.settled = True
            body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            exchange.deliver((parser.get_status_code(), body))
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
