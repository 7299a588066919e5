"""A minimal HTTP/1.1 server on ``asyncio.Protocol`` with the ``httptools`` parser (llhttp).

The hot path of the notary members (paper 003's interface peaked at 7,304 requests/s
and the deposit check must answer far more on two cores) and of the devices' JSON-RPC
gateway (paper 004 section 4.6). Keep-alive, pipelining (responses leave in request
order even when a handler is async), limits on header and body size, an idle timeout,
optional TLS with client certificates (the peer's certificate is read once per
connection and handed to every request as :class:`PeerCertificate`); a route table of
``(method, path) -> handler``, where a handler returns a :class:`Response`, an
awaitable of one, or a :class:`Deferred` that a callback of its own resolves later
(the gateway's hot path: the node's answer goes out from the callback that read it,
without a future or another turn of the event loop). ``bench/deposit_check.py``
measures it beside aiohttp.web serving the same handlers (several times slower per
core), which is why it exists.

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
    "Deferred",
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
_TOO_LARGE_MESSAGE = "the request exceeds the header or body size limit"
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


class Deferred:
    """A response that comes later, handed over by a callback: :meth:`resolve`.

    What a handler returns when its answer arrives through a callback of its own (the
    gateway: the node's answer, read by another connection's protocol). The connection
    writes the response as soon as it is resolved and every earlier answer has left,
    in the same turn of the event loop: no future, no scheduled callback.

    Example::

        def handle(request: Request) -> Deferred:
            reply = Deferred()
            upstream.send(request.body, lambda answer: reply.resolve(Response(200, answer)))
            return reply
    """

    __slots__ = ("_waiter", "response")

    def __init__(self) -> None:
        self.response: Response | None = None
        """The response once resolved, else ``None``."""
        self._waiter: Callable[[], None] | None = None

    def resolve(self, response: Response) -> None:
        """Answer with ``response``; the first call counts, later ones change nothing.

        A connection closed meanwhile drops the answer.
        """
        if self.response is None:
            self.response = response
            waiter = self._waiter
            if waiter is not None:
                self._waiter = None
                waiter()


Handler = Callable[[Request], "Response | Deferred | Awaitable[Response]"]

Refusal = Callable[[str, str, int], Response]
"""Builds the answer to a request the server itself refuses: ``(reason, message, status)``.
The server counts the reason before calling it; the answer may change the status."""


@dataclass(frozen=True)
class ServerOptions:
    """Limits of the HTTP server."""

    max_header_bytes: int = 8192
    """Request line plus headers; a larger request is refused with 400 and closed.

    Counted as bytes arrive (no header is kept, so nothing grows with them): a head
    that does not end within this many bytes is refused, to within one read of the
    socket for a request that follows another in the same read."""
    max_body_bytes: int = 4096
    """Body; a larger one is refused with 400 and the connection closed as soon as more
    than this many bytes of it arrived (whatever its Content-Length said)."""
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
        # the handlers of "/" by method as the parser gives it: the gateway's every request
        self._root = {
            m.encode("latin-1"): (m, h) for (m, path), h in self.routes.items() if path == "/"
        }
        self._connections: set[_Connection] = set()
        self._sweeper: asyncio.Task[None] | None = None

    def route(self, method: str, path: str, handler: Handler) -> None:
        """Add (or replace) the handler of ``method path``.

        Example: ``server.route("POST", "/challenge", challenges.submit)``.
        """
        self.routes[(method, path)] = handler
        self._paths.add(path)
        if path == "/":
            self._root[method.encode("latin-1")] = (method, handler)

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
        # one timer for all connections, and a flag per connection that its reads set:
        # a timer, or even a clock reading, per request would cost the hot path
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.options.idle_timeout / 4)
            now = loop.time()
            cutoff = now - self.options.idle_timeout
            for connection in list(self._connections):
                if connection.active or connection.waiting:
                    connection.active = False
                    connection.last_active = now
                elif connection.last_active <= cutoff:
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
    ) -> Response | Deferred | Awaitable[Response]:
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
        return _call(handler, Request(method, path, query, body, peer))

    def _answer(
        self, method: bytes, target: bytes, body: bytes, peer: PeerCertificate | None
    ) -> Response | Deferred | Awaitable[Response]:
        """:meth:`dispatch` for the parser's bytes, ``/`` looked up by method at once."""
        if target == b"/":
            route = self._root.get(method)
            if route is not None:
                try:
                    return route[1](Request(route[0], "/", b"", body, peer))
                except Exception:
                    _LOG.exception("handler of %s / failed", route[0])
                    return _internal_error()
        return self.dispatch(method.decode("latin-1"), target, body, peer)


def _call(handler: Handler, request: Request) -> Response | Deferred | Awaitable[Response]:
    try:
        return handler(request)
    except Exception:
        # a bug must cost one request its answer, not every client its server
        _LOG.exception("handler of %s %s failed", request.method, request.path)
        return _internal_error()


def _internal_error() -> Response:
    body = b'{"ok":false,"reason":"internal","error":"a bug in pervasive: please file an issue"}'
    return Response(500, body)


_JSON = b"application/json"
_OK_JSON = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "


def _serialize(response: Response, keep_alive: bool) -> bytes:
    status, body, content_type, headers = response
    if status == 200 and keep_alive and not headers and content_type == _JSON:
        return b"%s%d\r\n\r\n%s" % (_OK_JSON, len(body), body)  # the hot path
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

    __slots__ = (
        "active",
        "body",
        "body_bytes",
        "broken",
        "closing",
        "header_bytes",
        "in_head",
        "last_active",
        "max_body_bytes",
        "max_header_bytes",
        "out",
        "parser",
        "peer",
        "server",
        "target",
        "transport",
        "waiting",
    )

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.max_header_bytes = server.options.max_header_bytes
        self.max_body_bytes = server.options.max_body_bytes
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.peer: PeerCertificate | None = None
        self.out: list[bytes] = []
        self.waiting: deque[tuple[asyncio.Future[Response] | Deferred | bytes, bool]] = deque()
        self.closing = False
        self.target = b""
        self.body: list[bytes] = []
        self.header_bytes = 0
        """Bytes received of the current request's head (request line and headers)."""
        self.in_head = True
        """Between two requests or in a head; False from the end of the head to the end
        of the body."""
        self.body_bytes = 0
        self.broken = False
        self.active = False
        """Read from since the idle sweeper last looked."""
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
            elif isinstance(head, Deferred):
                head._waiter = None
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
        self.active = True
        try:
            if not self.in_head:
                self.parser.feed_data(data)
            elif self.header_bytes + len(data) <= self.max_header_bytes:  # a head fits
                self.header_bytes += len(data)
                self.parser.feed_data(data)
            else:
                self._feed_heads(data)
        except httptools.HttpParserCallbackError:
            self._refuse("too_large", _TOO_LARGE_MESSAGE)
        except httptools.HttpParserUpgrade:
            self._refuse("bad_request", "protocol upgrades are not served")
        except httptools.HttpParserError:
            self._refuse("bad_request", "the bytes received are not an HTTP/1.1 request")
        # what is not in ``out`` waits behind a pending answer, whose completion flushes
        if self.out or self.broken:
            self._flush()

    def _feed_heads(self, data: bytes) -> None:
        """Feed ``data`` so that no head gets more than ``max_header_bytes`` to end in.

        The parser is given, while in a head, only what is left of the allowance; a head
        still open when it is used up is refused. No header callback runs (httptools
        would keep every header's bytes for it): the head's size is counted here.
        """
        view = memoryview(data)
        while view:
            if not self.in_head:
                self.parser.feed_data(view)  # a body, and whatever follows it
                return
            allowed = self.max_header_bytes - self.header_bytes
            part = view[:allowed]
            self.header_bytes += len(part)
            self.parser.feed_data(part)
            view = view[len(part) :]
            if self.in_head and self.header_bytes >= self.max_header_bytes:
                self._refuse("too_large", _TOO_LARGE_MESSAGE)
                return

    # -- parser callbacks (the state is reset when a message completes) ----------------
    def on_url(self, url: bytes) -> None:
        self.target += url

    def on_headers_complete(self) -> None:
        self.in_head = False

    def on_body(self, chunk: bytes) -> None:
        self.body_bytes += len(chunk)
        if self.body_bytes > self.max_body_bytes:
            raise _TOO_LARGE
        self.body.append(chunk)

    def on_message_complete(self) -> None:
        target = self.target
        chunks = self.body
        self.target = b""
        self.body = []
        self.header_bytes = self.body_bytes = 0
        self.in_head = True
        if self.closing:
            return
        parser = self.parser
        keep_alive = parser.should_keep_alive()
        result = self.server._answer(
            parser.get_method(),
            target,
            chunks[0] if len(chunks) == 1 else b"".join(chunks),
            self.peer,
        )
        if type(result) is Deferred:
            if result.response is None:
                result._waiter = self._resolved
                self.waiting.append((result, keep_alive))
                return
            result = result.response  # resolved already: as a plain response
        if isinstance(result, Response):
            data = _serialize(result, keep_alive)
            if self.waiting:
                self.waiting.append((data, keep_alive))
            else:
                self.out.append(data)
                self.closing = not keep_alive
        else:
            future = asyncio.ensure_future(cast("Awaitable[Response]", result))
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

    def _resolved(self) -> None:
        """A :class:`Deferred`'s waiter: its answer leaves now, unless others are ahead."""
        waiting = self.waiting
        transport = self.transport
        if len(waiting) != 1 or transport is None or self.closing:
            self._flush()
            return
        head, keep_alive = waiting.popleft()  # the one waiting is the resolved one
        assert isinstance(head, Deferred) and head.response is not None
        transport.write(_serialize(head.response, keep_alive))
        if not keep_alive:
            self.closing = True
            transport.close()

    def _flush(self) -> None:
        waiting = self.waiting
        while waiting and not self.closing:
            head, keep_alive = waiting[0]
            if isinstance(head, Deferred):
                if head.response is None:
                    break
                head = _serialize(head.response, keep_alive)
            elif isinstance(head, asyncio.Future):
                if not head.done():
                    break
                if head.exception() is not None:
                    _LOG.error("handler failed", exc_info=head.exception())
                    head = _serialize(_internal_error(), keep_alive)
                else:
                    head = _serialize(head.result(), keep_alive)
            waiting.popleft()
            self.out.append(head)
            self.closing = not keep_alive
        if self.transport is None:
            return
        out = self.out
        if out:
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))
            out.clear()
        if self.closing:
            self.transport.close()
