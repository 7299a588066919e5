"""Answers resolved later by a callback (:class:`pervasive.http.Deferred`), over real sockets.

The gateway's hot path answers from the callback that read the node's answer; the
server must still send answers in request order around them, and forget an answer
whose connection went away.
"""

from __future__ import annotations

import asyncio

from pervasive.http import Deferred, HttpServer, Request, Response


async def exchange(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    received = await asyncio.wait_for(reader.read(), timeout=5)  # until the server closes
    writer.close()
    return received


def post(path: str, close: bool = False) -> bytes:
    connection = b"Connection: close\r\n" if close else b""
    return b"POST %s HTTP/1.1\r\nHost: x\r\n%sContent-Length: 0\r\n\r\n" % (
        path.encode(),
        connection,
    )


async def test_deferred_answers_keep_the_request_order() -> None:
    loop = asyncio.get_running_loop()

    def later(request: Request) -> Deferred:
        reply = Deferred()
        loop.call_later(0.05, reply.resolve, Response(200, b'{"n":"later"}'))
        return reply

    def at_once(request: Request) -> Deferred:
        reply = Deferred()
        reply.resolve(Response(200, b'{"n":"at once"}'))
        reply.resolve(Response(500, b'{"n":"ignored"}'))  # the first answer counts
        return reply

    def plain(request: Request) -> Response:
        return Response(200, b'{"n":"plain"}')

    routes = {("POST", "/"): later, ("POST", "/now"): at_once, ("POST", "/plain"): plain}
    server = await HttpServer(routes).start()
    try:
        received = await exchange(
            server.port, post("/") + post("/plain") + post("/now") + post("/", close=True)
        )
    finally:
        await server.close()
    bodies = [part.rsplit(b"\r\n\r\n", 1)[1] for part in received.split(b"HTTP/1.1 ")[1:]]
    assert bodies == [b'{"n":"later"}', b'{"n":"plain"}', b'{"n":"at once"}', b'{"n":"later"}']
    assert received.count(b"HTTP/1.1 200 OK") == 4


async def test_an_answer_for_a_closed_connection_is_dropped() -> None:
    pending: list[Deferred] = []

    def held(request: Request) -> Deferred:
        pending.append(Deferred())
        return pending[-1]

    def plain(request: Request) -> Response:
        return Response(200, b'{"n":"plain"}')

    server = await HttpServer({("POST", "/"): held, ("POST", "/plain"): plain}).start()
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(post("/"))
        await writer.drain()
        for _ in range(100):
            if pending:
                break
            await asyncio.sleep(0.01)
        writer.close()
        await writer.wait_closed()
        await asyncio.sleep(0.05)  # the server sees the connection lost
        pending[0].resolve(Response(200, b"{}"))  # nowhere to go: nothing happens
        answer = await exchange(server.port, post("/plain", close=True))  # still serving
    finally:
        await server.close()
    assert answer.startswith(b"HTTP/1.1 200 OK") and answer.endswith(b'{"n":"plain"}')
