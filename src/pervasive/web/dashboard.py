"""The live dashboard's routes: the page, its server-sent events and its state as JSON.

``GET /dashboard`` renders every table of the :class:`~pervasive.web.feed.DashboardFeed`
on the server (it works without JavaScript: a ``<noscript>`` refresh reloads it);
``static/dashboard.js`` then listens to ``GET /dashboard/events``, a server-sent events
stream: one ``snapshot`` event, then a ``change`` event per row put or taken out, each
with an ``id:`` line so that a reconnecting EventSource (``Last-Event-ID``) receives only
what it missed, and a keep-alive comment every ``keepalive`` seconds of silence.
``GET /dashboard/state.json`` is the snapshot for scripts and tests. Given the interop
event log, the page also shows a "CloudEvents" card (``static/cloudevents.js`` keeps it
live from ``GET /events/stream``, see :mod:`pervasive.web.event_stream`). The page loads
its script and style from ``/dashboard/static/``: nothing inline, so it runs under a
``default-src 'self'`` Content-Security-Policy.

Example::

    app = Starlette(routes=[*dashboard_routes(feed)])   # or WebContext(dashboard=...)
"""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, NoMatchFound, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from pervasive.interop import EventStore
from pervasive.web.event_stream import EVENTS_SHOWN
from pervasive.web.feed import DashboardFeed
from pervasive.web.feed_rows import (
    AgreementRow,
    Change,
    DeviceRow,
    OrderRow,
    Row,
    Snapshot,
    StatusRow,
    Table,
)

__all__ = ["COLUMNS", "dashboard_routes", "encode_message", "row_flag", "sse_frame"]

_HERE = Path(__file__).parent

COLUMNS: dict[Table, tuple[tuple[str, str], ...]] = {
    "status": (("key", "Source"), ("text", "State"), ("time", "Since")),
    "devices": (
        ("thing", "Thing"), ("shadow", "Shadow"), ("certificate", "Certificate"),
        ("door", "Door"), ("version", "Version"), ("desired", "Desired"),
        ("reported", "Reported"), ("updated", "Updated"),
    ),
    "agreements": (
        ("address", "Agreement"), ("function", "f"), ("parties", "Parties"), ("nodes", "Nodes"),
        ("window", "Window"), ("qos", "QoS"), ("updates", "Updates"),
        ("last_window", "Last window"), ("last_result", "Last result"),
        ("disputes", "Disputes"), ("last_dispute", "Last dispute"),
    ),
    "orders": (
        ("address", "Order"), ("item", "Item"), ("serial", "Serial"), ("price", "Price"),
        ("state", "State"), ("seller", "Seller"), ("buyer", "Buyer"),
        ("warehouse", "Warehouse"), ("block", "Block"),
    ),
    "events": (
        ("time", "Time"), ("source", "Source"), ("subject", "Subject"), ("text", "What"),
        ("block", "Block"),
    ),
}  # fmt: skip
"""The columns of each table, ``(row field, heading)``: the page and its script show these."""


def row_flag(row: Row) -> str:
    """The state a row is styled by (``data-flag``): door, order state, source health."""
    if isinstance(row, DeviceRow):
        return "pending" if "→" in row.door else row.door
    if isinstance(row, OrderRow):
        return row.state
    if isinstance(row, AgreementRow):
        return "disputed" if row.disputes else ""
    if isinstance(row, StatusRow):
        return "ok" if row.ok else "down"
    return row.source


def _row(row: Row | None) -> dict[str, Any] | None:
    return None if row is None else {**asdict(row), "flag": row_flag(row)}


def encode_message(message: Snapshot | Change) -> str:
    """A snapshot or change as one line of JSON (rows with their ``flag``).

    Example: ``json.loads(encode_message(feed.snapshot()))["devices"]``.
    """
    if isinstance(message, Change):
        body: dict[str, Any] = {
            "id": message.id, "table": message.table, "key": message.key,
            "row": _row(message.row),
        }  # fmt: skip
    else:
        body = {"id": message.id}
        for table in ("devices", "agreements", "orders", "events", "status"):
            body[table] = [_row(row) for row in getattr(message, table)]
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def sse_frame(message: Snapshot | Change) -> str:
    """One server-sent event: ``event: snapshot|change``, ``id:`` and one ``data:`` line.

    Example: ``sse_frame(change)`` == ``"id: 3f2a.7\\nevent: change\\ndata: {...}\\n\\n"``.
    """
    kind = "change" if isinstance(message, Change) else "snapshot"
    return f"id: {message.id}\nevent: {kind}\ndata: {encode_message(message)}\n\n"


def _path_of(request: Request, route: str) -> str | None:
    """The path of the app's route named ``route``, if the app has one (the web app's list)."""
    try:
        return request.url_for(route).path
    except NoMatchFound:
        return None


def _cloudevents_card(request: Request, store: EventStore | None) -> dict[str, Any] | None:
    """What the dashboard's CloudEvents card shows, or ``None`` without an event log."""
    stream_url = _path_of(request, "cloudevents_stream")
    if store is None or stream_url is None:
        return None
    return {
        "events": store.latest(EVENTS_SHOWN),
        "head": store.head(),
        "stream_url": stream_url,
        "page_url": _path_of(request, "cloudevents"),
        "shown": EVENTS_SHOWN,
    }


def dashboard_routes(
    feed: DashboardFeed, *, keepalive: float = 15.0, cloudevents: EventStore | None = None
) -> list[BaseRoute]:
    """The dashboard's routes over ``feed``: the page, the event stream, the JSON state, assets.

    ``cloudevents``: the interop event log; when given and the app mounts
    ``cloudevents_routes`` too, the page has a "CloudEvents" card kept live from
    ``/events/stream``.

    Example: ``Starlette(routes=[*app_routes, *dashboard_routes(feed)])``.
    """
    templates = Jinja2Templates(directory=_HERE / "templates")
    # a change goes to every browser: encode it once (changes are frozen, so hashable)
    change_frame = functools.lru_cache(maxsize=1024)(sse_frame)

    async def page(request: Request) -> Response:
        context = {
            "snapshot": feed.snapshot(),
            "columns": COLUMNS,
            "flag": row_flag,
            "events_url": request.url_for("dashboard_events").path,
            "events_kept": feed.limits.events,
            "home": _path_of(request, "for_sale"),
            "cloudevents": _cloudevents_card(request, cloudevents),
        }
        return templates.TemplateResponse(
            request, "dashboard.html", context, headers={"Cache-Control": "no-store"}
        )

    async def state(request: Request) -> Response:
        return Response(
            encode_message(feed.snapshot()),
            media_type="application/json",
            headers={"Cache-Control": "no-store"},
        )

    async def events(request: Request) -> Response:
        subscription = feed.subscribe(request.headers.get("last-event-id"))

        async def stream() -> AsyncIterator[str]:
            try:
                yield "retry: 2000\n\n"
                while not subscription.closed:
                    message = await subscription.next(timeout=keepalive)
                    if isinstance(message, Change):
                        yield change_frame(message)
                    elif message is not None:
                        yield sse_frame(message)
                    elif not subscription.closed:
                        yield ": keep-alive\n\n"
            finally:
                subscription.close()

        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)

    return [
        Route("/dashboard", page, methods=["GET"], name="dashboard"),
        Route("/dashboard/events", events, methods=["GET"], name="dashboard_events"),
        Route("/dashboard/state.json", state, methods=["GET"], name="dashboard_state"),
        Mount(
            "/dashboard/static",
            StaticFiles(directory=_HERE / "static", follow_symlink=False),
            name="dashboard_static",
        ),
    ]
