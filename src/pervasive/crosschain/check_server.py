"""A notary member's HTTP interface to its deposit check (paper 003 section V-B, Algorithm 2).

The oracle and the consumers ask one member at a time: ``GET /check`` answers
Algorithm 2 from :class:`~pervasive.crosschain.deposit_check.DepositCheck`,
``POST /attest`` reserves the deposit and returns the member's EIP-712
``DepositAttestation`` signature for C_o, ``GET /health`` and ``GET /metrics``
(Prometheus text: requests by route, rejections by reason) watch it. More routes are
added with :meth:`CheckServer.route`; a handler returns a :class:`Response` or an
awaitable of one, and responses leave in request order even when they are pipelined.

The server is a minimal HTTP/1.1 on ``asyncio.Protocol`` with the ``httptools``
parser (llhttp): keep-alive, pipelining, limits on header and body size. The paper's
interface peaked at 7,304 requests/s; ``bench/deposit_check.py`` measures this one
beside aiohttp.web (the same handlers), which answered 2.5 to 4 times fewer.
Malformed requests get 400 and a one-line JSON error ``{"ok": false, "reason",
"error"}``, counted by reason.

Example::

    service = CheckService(state, key, chain_id=31337, oracle=oracle_address)
    server = await CheckServer(service.routes()).start("127.0.0.1", 8545)
    # curl '127.0.0.1:8545/check?consumer=0x..&provider=0x..&amount=1000'
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import unquote_to_bytes

import httptools

from pervasive.contracts.deposit_oracle import (
    ATTESTATION_TYPE,
    ORACLE_DOMAIN_NAME,
    ORACLE_DOMAIN_VERSION,
)
from pervasive.crosschain.deposit_check import Attestation, DepositCheck
from pervasive.crypto import PrivateKey, keccak256, unsafe_sign_hash
from pervasive.crypto.typed_data import domain_separator, type_hash
from pervasive.errors import InvalidInput, NotFound

__all__ = [
    "CheckServer",
    "CheckService",
    "Handler",
    "Request",
    "Response",
    "ServerOptions",
    "error_response",
]

# 0x and 40 hex digits, not all zero (the zero address is nobody's)
_ADDRESS = re.compile(rb"0x(?!0{40})[0-9a-fA-F]{40}")
_UINT = re.compile(rb"[0-9]{1,78}")
_LOG = logging.getLogger(__name__)
# raised inside a parser callback: httptools turns it into HttpParserCallbackError
_TOO_LARGE = InvalidInput("the request exceeds the header or body size limit")
_REASONS = {
    400: b"Bad Request",
    404: b"Not Found",
    405: b"Method Not Allowed",
    409: b"Conflict",
    500: b"Internal Server Error",
}


@dataclass(frozen=True)
class Request:
    """One parsed HTTP request: method, path, raw query string and body."""

    method: str
    path: str
    query: bytes
    body: bytes

    def params(self) -> dict[bytes, bytes]:
        """The query string's ``key=value`` pairs (last one wins), percent-decoded."""
        out: dict[bytes, bytes] = {}
        for pair in self.query.split(b"&"):
            key, _, value = pair.partition(b"=")
            out[key] = unquote_to_bytes(value) if b"%" in value else value
        return out


@dataclass(frozen=True)
class Response:
    """A response: status and a JSON (or text) body."""

    status: int
    body: bytes
    content_type: bytes = b"application/json"


Handler = Callable[[Request], "Response | Awaitable[Response]"]


@dataclass(frozen=True)
class ServerOptions:
    """Limits of the HTTP server."""

    max_header_bytes: int = 8192
    """Request line plus headers; a larger request is refused with 400 and closed."""
    max_body_bytes: int = 4096
    """Body; a larger one is refused with 400 and the connection closed."""
    idle_timeout: float = 60.0
    """Seconds a connection may stay silent with nothing in progress before it is closed."""


def error_response(
    rejections: Counter[str], reason: str, message: str, status: int = 400
) -> Response:
    """Count ``reason`` and answer ``{"ok": false, "reason": ..., "error": ...}``.

    Example: ``error_response(counts, "bad_address", "consumer is not a 0x address")``.
    """
    rejections[reason] += 1
    body = json.dumps({"ok": False, "reason": reason, "error": message}).encode()
    return Response(status, body)


class CheckService:
    """The member's routes over its :class:`DepositCheck` and secp256k1 key.

    Example: ``CheckServer(CheckService(state, key, chain_id=1, oracle=o).routes())``.
    """

    def __init__(self, state: DepositCheck, key: PrivateKey, *, chain_id: int, oracle: str) -> None:
        self.state = state
        self.key = key
        self.chain_id = chain_id
        self.oracle = oracle
        separator = domain_separator(ORACLE_DOMAIN_NAME, ORACLE_DOMAIN_VERSION, chain_id, oracle)
        self._prefix = b"\x19\x01" + separator
        self._type_hash = type_hash(ATTESTATION_TYPE)
        self.rejections: Counter[str] = Counter()
        """Malformed requests and refusals by reason (``/metrics``)."""
        self.answers: Counter[str] = Counter()

    def digest(self, attestation: Attestation) -> bytes:
        """The EIP-712 digest of ``attestation`` for this member's C_o.

        Equal to :func:`pervasive.contracts.deposit_oracle.attestation_digest` (a test
        holds them equal) with the domain hashed once: two keccaks per request, not six.

        Example: ``service.digest(Attestation(c, p, 150, 0, 120)).hex()``.
        """
        words = b"".join(
            (
                self._type_hash,
                bytes(12) + bytes.fromhex(attestation.consumer[2:]),
                bytes(12) + bytes.fromhex(attestation.provider[2:]),
                attestation.required.to_bytes(32, "big"),
                attestation.counter.to_bytes(32, "big"),
                attestation.expiry.to_bytes(32, "big"),
            )
        )
        return keccak256(self._prefix + keccak256(words))

    def routes(self) -> dict[tuple[str, str], Handler]:
        """``(method, path) -> handler``; add to it before building the server."""
        return {
            ("GET", "/check"): self.check,
            ("POST", "/attest"): self.attest,
            ("GET", "/health"): self.health,
            ("GET", "/metrics"): self.metrics,
        }

    def check(self, request: Request) -> Response:
        """``GET /check?consumer=&provider=&amount=`` -> Algorithm 2's answer."""
        params = request.params()
        consumer, provider, amount = (
            params.get(b"consumer"),
            params.get(b"provider"),
            params.get(b"amount"),
        )
        if consumer is None or _ADDRESS.fullmatch(consumer) is None:
            return _bad_address(self.rejections, "consumer")
        if provider is None or _ADDRESS.fullmatch(provider) is None:
            return _bad_address(self.rejections, "provider")
        if amount is None or _UINT.fullmatch(amount) is None:
            return error_response(
                self.rejections, "bad_amount", "amount must be a non-negative integer of wei"
            )
        try:
            result = self.state.check(consumer.decode(), provider.decode(), int(amount))
        except NotFound as exc:
            return error_response(self.rejections, "unknown_consumer", str(exc))
        self.answers["ok" if result.ok else "refused"] += 1
        body = b'{"ok":%s,"balance":%d,"pending":%d,"required":%d}' % (
            b"true" if result.ok else b"false",
            result.balance,
            result.pending,
            result.required,
        )
        return Response(200, body)

    def attest(self, request: Request) -> Response:
        """``POST /attest {"consumer","provider","amount","counter"}`` -> a signature or 409."""
        try:
            document = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            return error_response(self.rejections, "bad_json", "the body must be a JSON object")
        if not isinstance(document, dict):
            return error_response(self.rejections, "bad_json", "the body must be a JSON object")
        fields = _attest_fields(document, self.rejections)
        if isinstance(fields, Response):
            return fields
        consumer, provider, amount, counter = fields
        decision = self.state.attest(consumer, provider, amount, counter)
        if not isinstance(decision, Attestation):
            self.answers["refused"] += 1
            return error_response(self.rejections, decision.reason.value, decision.message, 409)
        # the digest carries the 0x1901 EIP-712 prefix built above: no transaction hash
        signature = unsafe_sign_hash(self.key, self.digest(decision))
        self.answers["attested"] += 1
        answer = {
            "ok": True,
            "required": decision.required,
            "counter": decision.counter,
            "expiry": decision.expiry,
            "signer": self.key.address,
            "signature": "0x" + signature.to_bytes().hex(),
        }
        return Response(200, json.dumps(answer).encode())

    def health(self, request: Request) -> Response:
        """``GET /health`` -> the head block this member follows."""
        return Response(200, b'{"ok":true,"head":%d}' % self.state.head)

    def metrics(self, request: Request) -> Response:
        """``GET /metrics`` -> Prometheus text: answers and rejections by reason."""
        lines = ["# TYPE pervasive_deposit_check_answers_total counter"]
        lines += [
            f'pervasive_deposit_check_answers_total{{kind="{k}"}} {v}'
            for k, v in sorted(self.answers.items())
        ]
        lines.append("# TYPE pervasive_deposit_check_rejections_total counter")
        lines += [
            f'pervasive_deposit_check_rejections_total{{reason="{k}"}} {v}'
            for k, v in sorted(self.rejections.items())
        ]
        return Response(200, ("\n".join(lines) + "\n").encode(), b"text/plain; version=0.0.4")


def _attest_fields(
    document: dict[str, Any], rejections: Counter[str]
) -> tuple[str, str, int, int] | Response:
    consumer, provider = document.get("consumer"), document.get("provider")
    amount, counter = document.get("amount"), document.get("counter")
    if not isinstance(consumer, str) or _ADDRESS.fullmatch(consumer.encode()) is None:
        return _bad_address(rejections, "consumer")
    if not isinstance(provider, str) or _ADDRESS.fullmatch(provider.encode()) is None:
        return _bad_address(rejections, "provider")
    if not _is_uint256(amount) or not _is_uint256(counter):
        return error_response(
            rejections, "bad_amount", "amount and counter must be integers in [0, 2**256)"
        )
    return consumer, provider, int(amount), int(counter)  # type: ignore[arg-type]


def _bad_address(rejections: Counter[str], name: str) -> Response:
    message = f"{name} must be a non-zero 0x address of 40 hex digits"
    return error_response(rejections, "bad_address", message)


def _is_uint256(value: object) -> bool:
    # bool is an int to Python, not to anyone sending JSON
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 256


class CheckServer:
    """Minimal HTTP/1.1 server over a route table (keep-alive, pipelining, size limits).

    ``rejections`` is where malformed requests are counted (pass the service's, so
    ``/metrics`` shows them with the rest).

    Example::

        server = await CheckServer(service.routes(), rejections=service.rejections).start()
        print(server.port)
        await server.close()
    """

    def __init__(
        self,
        routes: dict[tuple[str, str], Handler],
        options: ServerOptions | None = None,
        *,
        rejections: Counter[str] | None = None,
    ) -> None:
        self.routes = dict(routes)
        self.options = options or ServerOptions()
        self.rejections: Counter[str] = rejections if rejections is not None else Counter()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._paths = {path for _, path in self.routes}
        self._connections: set[_Connection] = set()
        self._sweeper: asyncio.Task[None] | None = None

    def route(self, method: str, path: str, handler: Handler) -> None:
        """Add (or replace) the handler of ``method path``.

        Example: ``server.route("POST", "/challenge", challenges.submit)``.
        """
        self.routes[(method, path)] = handler
        self._paths.add(path)

    async def start(
        self, host: str = "127.0.0.1", port: int = 0, *, backlog: int = 1024
    ) -> CheckServer:
        """Listen on ``host:port`` (0 picks a free port, then in ``self.port``)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self), host, port, backlog=backlog
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        self._sweeper = asyncio.create_task(self._sweep_idle())
        return self

    async def _sweep_idle(self) -> None:
        # one timer for all connections: a timer per request would cost the hot path
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.options.idle_timeout / 4)
            cutoff = loop.time() - self.options.idle_timeout
            for connection in list(self._connections):
                if connection.last_active < cutoff and not connection.waiting:
                    connection.close()

    async def close(self) -> None:
        """Stop listening and close the open connections."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        if self._server is not None:
            self._server.close()
            for connection in list(self._connections):
                connection.close()
            await self._server.wait_closed()
            self._server = None

    def dispatch(self, method: str, target: bytes, body: bytes) -> Response | Awaitable[Response]:
        """Route one request; 404/405 for what no handler serves."""
        try:
            url = httptools.parse_url(target)
        except httptools.HttpParserInvalidURLError:
            return error_response(
                self.rejections, "bad_request", "the request target is not a URL path"
            )
        path = url.path.decode("latin-1")
        handler = self.routes.get((method, path))
        if handler is None:
            if path in self._paths:
                return error_response(
                    self.rejections, "bad_method", f"{method} is not served on {path}", 405
                )
            return error_response(self.rejections, "not_found", f"no route {path}", 404)
        try:
            return handler(Request(method, path, url.query or b"", body))
        except Exception:
            # a bug must cost one request its answer, not every client its server
            _LOG.exception("handler of %s %s failed", method, path)
            return _internal_error()


def _internal_error() -> Response:
    body = b'{"ok":false,"reason":"internal","error":"a bug in pervasive: please file an issue"}'
    return Response(500, body)


def _serialize(response: Response, keep_alive: bool) -> bytes:
    head = b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s\r\n" % (
        response.status,
        _REASONS.get(response.status, b"OK" if response.status < 300 else b"Error"),
        response.content_type,
        len(response.body),
        b"" if keep_alive else b"Connection: close\r\n",
    )
    return head + response.body


class _Connection(asyncio.Protocol):
    """One client connection: parse, dispatch, answer in order."""

    def __init__(self, server: CheckServer) -> None:
        self.server = server
        self.limits = server.options
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.out: list[bytes] = []
        self.waiting: deque[tuple[asyncio.Future[Response] | bytes, bool]] = deque()
        self.closing = False
        self.target = b""
        self.body: list[bytes] = []
        self.header_bytes = 0
        self.body_bytes = 0
        self.broken = False
        self.last_active = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike
        self.transport = cast(asyncio.Transport, transport)
        self.last_active = asyncio.get_running_loop().time()
        self.server._connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server._connections.discard(self)
        self.transport = None
        for head, _ in self.waiting:
            if isinstance(head, asyncio.Future):
                head.cancel()
        self.waiting.clear()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def pause_writing(self) -> None:
        # a client that does not read its answers stops being read
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None:
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        if self.closing or self.broken:
            return
        self.last_active = asyncio.get_running_loop().time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError:
            self._refuse("too_large", "the request exceeds the header or body size limit")
        except httptools.HttpParserUpgrade:
            self._refuse("bad_request", "protocol upgrades are not served")
        except httptools.HttpParserError:
            self._refuse("bad_request", "the bytes received are not an HTTP/1.1 request")
        self._flush()

    # -- parser callbacks ---------------------------------------------------------------
    def on_message_begin(self) -> None:
        self.target = b""
        self.body = []
        self.header_bytes = 0
        self.body_bytes = 0

    def on_url(self, url: bytes) -> None:
        self.target += url
        self.header_bytes += len(url)
        if self.header_bytes > self.limits.max_header_bytes:
            raise _TOO_LARGE

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_bytes += len(name) + len(value) + 4
        if self.header_bytes > self.limits.max_header_bytes:
            raise _TOO_LARGE
        declared = name.lower() == b"content-length" and value.strip().isdigit()
        if declared and int(value) > self.limits.max_body_bytes:
            raise _TOO_LARGE

    def on_body(self, chunk: bytes) -> None:
        self.body_bytes += len(chunk)
        if self.body_bytes > self.limits.max_body_bytes:
            raise _TOO_LARGE
        self.body.append(chunk)

    def on_message_complete(self) -> None:
        if self.closing:
            return
        method = self.parser.get_method().decode("latin-1")
        keep_alive = self.parser.should_keep_alive()
        result = self.server.dispatch(method, self.target, b"".join(self.body))
        if isinstance(result, Response):
            data = _serialize(result, keep_alive)
            if self.waiting:
                self.waiting.append((data, keep_alive))
            else:
                self.out.append(data)
                self.closing = not keep_alive
            return
        future = asyncio.ensure_future(result)
        future.add_done_callback(self._finished)
        self.waiting.append((future, keep_alive))

    # -- output ---------------------------------------------------------------------------
    def _refuse(self, reason: str, message: str) -> None:
        # the parser cannot resynchronise: answer, then close, reading nothing more
        self.broken = True
        response = error_response(self.server.rejections, reason, message)
        self.waiting.append((_serialize(response, keep_alive=False), False))

    def _finished(self, future: asyncio.Future[Response]) -> None:
        if not future.cancelled():
            self._flush()

    def _flush(self) -> None:
        while self.waiting and not self.closing:
            head, keep_alive = self.waiting[0]
            if isinstance(head, asyncio.Future):
                if not head.done():
                    break
                if head.exception() is not None:
                    _LOG.error("handler failed", exc_info=head.exception())
                    head = _serialize(_internal_error(), keep_alive)
                else:
                    head = _serialize(head.result(), keep_alive)
            self.waiting.popleft()
            self.out.append(head)
            self.closing = not keep_alive
        if self.transport is None:
            return
        if self.out:
            self.transport.write(b"".join(self.out))
            self.out.clear()
        if self.closing:
            self.transport.close()
