"""A minimal HTTP/1.1 server on ``asyncio.Protocol`` with the ``httptools`` parser (llhttp).

The hot path of the notary members (paper 003's interface peaked at 7,304 requests/s
and the deposit check must answer far more on two cores) and of the devices' JSON-RPC
gateway (paper 004 section 4.6). Keep-alive, pipelining (responses leave in request
order even when a handler is async), limits on header and body size, an idle timeout,
optional TLS with client certificates (the peer's certificate is read once per
connection and handed to every request as :class:`PeerCertificate`); a route table of
``(method, path) -> handler``, where a handler returns a :class:`Response` or an
awaitable of one. ``bench/deposit_check.py`` measures it beside aiohttp.web serving the
same handlers (several times slower per core), which is why it exists.

Example::

    server = await HttpServer({("GET", "/health"): health}).start("127.0.0.1", 0)
    print(server.port)
    await server.close()
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, cast
from urllib.parse import unquote_to_bytes

import httptools

from pervasive.errors import InvalidInput

__all__ = [
    "Handler",
    "HttpServer",
    "PeerCertificate",
    "Refusal",
    "Request",
    "Response",
    "ServerOptions",
    "error_response",
    "peer_certificate",
]

_LOG = logging.getLogger(__name__)
# raised inside a parser callback: httptools turns it into HttpParserCallbackError
_TOO_LARGE = InvalidInput("the request exceeds the header or body size limit")
_REASONS = {
    204: b"No Content",
    400: b"Bad Request",
    403: b"Forbidden",
    404: b"Not Found",
    405: b"Method Not Allowed",
    409: b"Conflict",
    413: b"Content Too Large",
    429: b"Too Many Requests",
    500: b"Internal Server Error",
    502: b"Bad Gateway",
}


@dataclass(frozen=True, slots=True)
class PeerCertificate:
    """The client certificate a TLS peer presented and the server's context verified."""

    common_name: str
    """The subject CN: the device or service identity."""
    serial: int
    not_after: float
    """End of validity, seconds since the epoch."""


class Request(NamedTuple):
    """One parsed HTTP request: method, path, raw query string, body and TLS peer.

    A named tuple, not a frozen dataclass: built for every request, and a frozen
    dataclass costs three times as much to build.
    """

    method: str
    path: str
    query: bytes
    body: bytes
    peer: PeerCertificate | None = None
    """The client certificate of the connection (``None`` without TLS or without one)."""

    def params(self) -> dict[bytes, bytes]:
        """The query string's ``key=value`` pairs (last one wins), percent-decoded."""
        out: dict[bytes, bytes] = {}
        for pair in self.query.split(b"&"):
            key, _, value = pair.partition(b"=")
            out[key] = unquote_to_bytes(value) if b"%" in value else value
        return out


class Response(NamedTuple):
    """A response: status, a JSON (or text) body and any extra headers (a named tuple, as
    :class:`Request`)."""

    status: int
    body: bytes
    content_type: bytes = b"application/json"
    headers: tuple[tuple[bytes, bytes], ...] = ()
    """Extra header lines, e.g. ``((b"Retry-After", b"1"),)``."""


Handler = Callable[[Request], "Response | Awaitable[Response]"]

Refusal = Callable[[str, str, int], Response]
"""Builds the answer to a request the server itself refuses: ``(reason, message, status)``.
The server counts the reason before calling it; the answer may change the status."""


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
    return _plain_refusal(reason, message, status)


def _plain_refusal(reason: str, message: str, status: int) -> Response:
    body = json.dumps({"ok": False, "reason": reason, "error": message}).encode()
    return Response(status, body)


def peer_certificate(certificate: dict[str, Any] | None) -> PeerCertificate | None:
    """The :class:`PeerCertificate` of ``SSLObject.getpeercert()``'s dictionary.

    Example: ``peer_certificate(transport.get_extra_info("peercert")).common_name``.
    """
    if not certificate:
        return None
    common_name = ""
    for rdn in certificate.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                common_name = str(value)
    return PeerCertificate(
        common_name=common_name,
        serial=int(str(certificate.get("serialNumber", "0")), 16),
        not_after=float(ssl.cert_time_to_seconds(str(certificate["notAfter"]))),
    )


class HttpServer:
    """Minimal HTTP/1.1 server over a route table (keep-alive, pipelining, size limits).

    ``rejections`` is where malformed requests are counted (pass the service's, so
    ``/metrics`` shows them with the rest); ``refusal`` shapes the answers to them
    (default: ``{"ok": false, "reason": ..., "error": ...}``).

    Example::

        server = await HttpServer(service.routes(), rejections=service.rejections).start()
        print(server.port)
        await server.close()
    """

    def __init__(
        self,
        routes: dict[tuple[str, str], Handler],
        options: ServerOptions | None = None,
        *,
        rejections: Counter[str] | None = None,
        refusal: Refusal | None = None,
    ) -> None:
        self.routes = dict(routes)
        self.options = options or ServerOptions()
        self.rejections: Counter[str] = rejections if rejections is not None else Counter()
        self.refusal: Refusal = refusal or _plain_refusal
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
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        backlog: int = 1024,
        tls: ssl.SSLContext | None = None,
    ) -> HttpServer:
        """Listen on ``host:port`` (0 picks a free port, then in ``self.port``).

        With ``tls`` the listener speaks HTTPS; a context that asks for client
        certificates hands each request the peer's as ``Request.peer``.
        """
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self), host, port, backlog=backlog, ssl=tls
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

    def refuse(self, reason: str, message: str, status: int = 400) -> Response:
        """Count ``reason`` and build the refusal's answer."""
        self.rejections[reason] += 1
        return self.refusal(reason, message, status)

    def dispatch(
        self, method: str, target: bytes, body: bytes, peer: PeerCertificate | None = None
    ) -> Response | Awaitable[Response]:
        """Route one request; 404/405 for what no handler serves."""
        if target == b"/":  # the JSON-RPC endpoint's every request: skip the URL parser
            path, query = "/", b""
        else:
            try:
                url = httptools.parse_url(target)
            except httptools.HttpParserInvalidURLError:
                return self.refuse("bad_request", "the request target is not a URL path")
            path, query = url.path.decode("latin-1"), url.query or b""
        handler = self.routes.get((method, path))
        if handler is None:
            if path in self._paths:
                return self.refuse("bad_method", f"{method} is not served on {path}", 405)
            return self.refuse("not_found", f"no route {path}", 404)
        try:
            return handler(Request(method, path, query, body, peer))
        except Exception:
            # a bug must cost one request its answer, not every client its server
            _LOG.exception("handler of %s %s failed", method, path)
            return _internal_error()


def _internal_error() -> Response:
    body = b'{"ok":false,"reason":"internal","error":"a bug in pervasive: please file an issue"}'
    return Response(500, body)


def _serialize(response: Response, keep_alive: bool) -> bytes:
    extra = b"".join(b"%s: %s\r\n" % header for header in response.headers)
    if not keep_alive:
        extra += b"Connection: close\r\n"
    reason = _REASONS.get(response.status, b"OK" if response.status < 300 else b"Error")
    if response.status == 204:  # RFC 9110: no body, no Content-Length
        return b"HTTP/1.1 204 %s\r\n%s\r\n" % (reason, extra)
    head = b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s\r\n" % (
        response.status,
        reason,
        response.content_type,
        len(response.body),
        extra,
    )
    return head + response.body


class _Connection(asyncio.Protocol):
    """One client connection: parse, dispatch, answer in order."""

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.limits = server.options
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.peer: PeerCertificate | None = None
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
        # over TLS this runs after the handshake: the peer's certificate is verified
        self.peer = peer_certificate(transport.get_extra_info("peercert"))
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
        body = self.body[0] if len(self.body) == 1 else b"".join(self.body)
        result = self.server.dispatch(method, self.target, body, self.peer)
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
        response = self.server.refuse(reason, message)
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
