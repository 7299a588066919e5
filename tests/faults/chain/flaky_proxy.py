"""An HTTP JSON-RPC proxy that loses transactions or their answers (fault tests)."""

from __future__ import annotations

import aiohttp
from aiohttp import web


class FlakyProxy:
    """An HTTP JSON-RPC proxy in front of a node that can lose sends or their answers.

    - ``lose_answers = n``: forward the next ``n`` eth_sendRawTransaction requests to the
      node, then cut the connection instead of answering (the node has the transaction).
    - ``refuse_sends = True``: cut the connection of every eth_sendRawTransaction request
      without forwarding it (the node never sees the transaction).
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.lose_answers = 0
        self.refuse_sends = False
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        is_send = b"eth_sendRawTransaction" in body
        if is_send and self.refuse_sends:
            return self._cut(request)
        assert self._session is not None
        async with self._session.post(
            self.upstream, data=body, headers={"Content-Type": "application/json"}
        ) as answer:
            payload = await answer.read()
        if is_send and self.lose_answers > 0:
            self.lose_answers -= 1
            return self._cut(request)
        return web.Response(body=payload, content_type="application/json")

    @staticmethod
    def _cut(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.abort()
        return web.Response(status=204)

    async def start(self) -> None:
        self._session = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_post("/", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()
