"""Serving an ASGI app (the web app, the dashboard) with uvicorn as a task of the running loop.

:meth:`WebServer.start` binds the listening socket itself (so a taken port is a clear
error at once and port 0 gives a free port known before the first request), then
runs uvicorn's server on that socket in an asyncio task of the caller's loop: the web
app shares the loop with the ledger and the rest of the platform. Signal handling is
left to the process (``pervasive up``), not taken over by uvicorn. :meth:`close`
stops accepting connections, lets requests in flight finish and waits for the task.

Example::

    server = await WebServer.start(create_app(context), settings.web)
    print(server.url)            # http://127.0.0.1:8000
    await server.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from types import TracebackType
from typing import Self

import uvicorn
from starlette.types import ASGIApp

from pervasive.config import WebSettings
from pervasive.errors import ConfigError, InternalError

__all__ = ["WebServer"]

_GRACEFUL_SECONDS = 5


class _EmbeddedServer(uvicorn.Server):
    """uvicorn's server without its signal handlers: the hosting process owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class WebServer:
    """An ASGI app served over HTTP on ``host:port`` by uvicorn, in this event loop."""

    def __init__(self, server: uvicorn.Server, task: asyncio.Task[None], host: str, port: int):
        self._server = server
        self._task = task
        self.host = host
        self.port = port

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:8000``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @classmethod
    async def start(
        cls, app: ASGIApp, settings: WebSettings, *, access_log: bool = True
    ) -> WebServer:
        """Listen on ``settings.host:settings.port`` (0: a free port) and serve ``app``.

        :class:`ConfigError` when the address cannot be bound (the port is taken).

        Example: ``server = await WebServer.start(app, replace(settings.web, port=0))``.
        """
        listener = _bind(settings.host, settings.port)
        port = int(listener.getsockname()[1])
        config = uvicorn.Config(
            app,
            log_config=None,
            access_log=access_log,
            lifespan="auto",
            proxy_headers=True,
            forwarded_allow_ips="127.0.0.1",
            server_header=False,
            timeout_graceful_shutdown=_GRACEFUL_SECONDS,
        )
        server = _EmbeddedServer(config)
        task = asyncio.create_task(server.serve(sockets=[listener]), name=f"web server :{port}")
        while not server.started:
            if task.done():
                listener.close()
                error = task.exception() if not task.cancelled() else None
                raise InternalError(
                    f"the web server on port {port} stopped while starting: {error}"
                )
            await asyncio.sleep(0.01)
        return cls(server, task, settings.host, port)

    async def close(self) -> None:
        """Stop accepting, finish the requests in flight (at most 5 s), stop the task."""
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are
    # TCP, and without it each keep-alive response waits ~40 ms for a delayed ACK (Nagle)
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as exc:
        listener.close()
        raise ConfigError(
            f"the web app cannot listen on {host}:{port} ({exc.strerror or exc}): "
            "set web.port to a free port, or 0 to pick one"
        ) from exc
    listener.listen(2048)
    listener.setblocking(False)
    return listener
