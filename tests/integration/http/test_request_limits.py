"""Head and body limits of the HTTP server, counted as the bytes arrive.

No header is kept (the server reads none), so the head's limit is a count of the
bytes received before the head ends, whether they come at once or a few at a time,
and many small requests in one read are not mistaken for one large head.
"""

from __future__ import annotations

import asyncio
import socket
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from pervasive.http import HttpServer, Request, Response, ServerOptions

OPTIONS = ServerOptions(max_header_bytes=512, max_body_bytes=256)


def echo(request: Request) -> Response:
    return Response(200, b'{"length":%d}' % len(request.body))


async def talk(port: int, parts: list[bytes]) -> bytes:
    """Send ``parts`` in separate reads of the server, then read until it closes."""
    loop = asyncio.get_running_loop()
    with socket.create_connection(("127.0.0.1", port)) as peer:
        peer.setblocking(False)
        try:
            for part in parts:
                await loop.sock_sendall(peer, part)
                await asyncio.sleep(0.002)
        except ConnectionError:
            pass  # refused and closed before the rest was sent
        received = b""
        while chunk := await asyncio.wait_for(loop.sock_recv(peer, 65536), timeout=5):
            received += chunk
    return received


def request(body: bytes = b"", *, close: bool = False, pad: int = 0) -> bytes:
    extra = b"X-Pad: %s\r\n" % (b"p" * pad) if pad else b""
    connection = b"Connection: close\r\n" if close else b""
    return b"POST / HTTP/1.1\r\nHost: x\r\n%s%sContent-Length: %d\r\n\r\n%s" % (
        extra,
        connection,
        len(body),
        body,
    )


@pytest.fixture
async def server() -> AsyncIterator[HttpServer]:
    started = await HttpServer({("POST", "/"): echo}, OPTIONS, rejections=Counter()).start()
    yield started
    await started.close()


@pytest.mark.parametrize("pieces", [1, 40])
async def test_a_head_beyond_the_limit_is_refused_at_once_or_piece_by_piece(
    server: HttpServer, pieces: int
) -> None:
    data = request(pad=600)
    size = -(-len(data) // pieces)
    answer = await talk(server.port, [data[i : i + size] for i in range(0, len(data), size)])
    assert answer.startswith(b"HTTP/1.1 400") and b'"too_large"' in answer
    assert server.rejections["too_large"] == 1


async def test_many_small_requests_in_one_read_are_all_served(server: HttpServer) -> None:
    burst = request(b"{}") * 30 + request(b"{}", close=True)  # 31 heads, 2 kB in one read
    assert len(burst) > 3 * OPTIONS.max_header_bytes
    answer = await talk(server.port, [burst])
    assert answer.count(b"HTTP/1.1 200 OK") == 31
    assert not server.rejections


async def test_a_head_just_within_the_limit_and_a_body_beyond_it(server: HttpServer) -> None:
    fits = request(pad=1, close=True)
    fits = request(pad=1 + OPTIONS.max_header_bytes - len(fits), close=True)
    assert len(fits) == OPTIONS.max_header_bytes
    served = await talk(server.port, [fits])
    too_long = await talk(server.port, [request(b"x" * 300, close=True)])
    assert served.startswith(b"HTTP/1.1 200 OK")
    assert too_long.startswith(b"HTTP/1.1 400") and b'"too_large"' in too_long
