"""WebServer: uvicorn in this event loop on its own socket; a clear error for a taken port."""

from __future__ import annotations

import asyncio
import re
import socket
from pathlib import Path

import aiohttp
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from pervasive.chain import Keystore, Signer, open_ledger
from pervasive.config import Settings, WebSettings
from pervasive.contracts import DeploymentBook
from pervasive.errors import ConfigError
from pervasive.web import ReceiptBook, WebContext, WebServer, create_app
from pervasive.web.server import _bind


async def _hello(request: Request) -> Response:
    return PlainTextResponse("hello")


APP = Starlette(routes=[Route("/", _hello)])


async def test_serves_on_a_free_port_and_stops() -> None:
    server = await WebServer.start(APP, WebSettings(port=0), access_log=False)
    assert server.url == f"http://127.0.0.1:{server.port}" and server.port > 0
    async with aiohttp.ClientSession() as client, client.get(server.url) as answer:
        assert await answer.text() == "hello"
    await server.close()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", server.port)) != 0  # nothing listens any more


async def test_a_taken_port_says_what_to_do() -> None:
    async with await WebServer.start(APP, WebSettings(port=0), access_log=False) as first:
        with pytest.raises(ConfigError, match=r"cannot listen on 127\.0\.0\.1:\d+ .*set web\.port"):
            await WebServer.start(APP, WebSettings(port=first.port))


def test_the_listener_is_a_tcp_socket_so_asyncio_disables_nagle() -> None:
    # asyncio sets TCP_NODELAY only on sockets created with proto IPPROTO_TCP; with proto 0
    # every keep-alive response waited ~40 ms for the client's delayed ACK
    listener = _bind("127.0.0.1", 0)
    try:
        assert listener.proto == socket.IPPROTO_TCP
    finally:
        listener.close()


async def test_idle_sessions_and_their_keys_go_without_any_request(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, web=WebSettings(port=0, session_minutes=0.02))  # 1.2 s
    ledger = await open_ledger(settings, persist=False)
    keystore = Keystore(tmp_path / "keystore", kdf_iterations=2)
    signer = keystore.store("alice", Signer.generate(), "alice's password")
    context = WebContext(
        settings, ledger, keystore, DeploymentBook(":memory:"), ReceiptBook(":memory:")
    )
    server = await WebServer.start(create_app(context), settings.web, access_log=False)
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
            async with browser.get(f"{server.url}/sign-in") as page:
                token = re.search(r'name="csrf-token" content="([^"]+)"', await page.text())
            assert token
            form = {"csrf_token": token[1], "account": "alice", "password": "alice's password"}
            async with browser.post(f"{server.url}/sign-in", data=form) as page:
                assert f'data-address="{signer.address}"' in await page.text()
        [session] = [s for s in context.sessions._sessions.values() if s.account == "alice"]
        assert session.signer == signer
        await asyncio.sleep(2.5)  # no request: the lifespan's sweeper drops the session
        assert session.signer is None and len(context.sessions) == 0
    finally:
        await server.close()
        await ledger.close()
