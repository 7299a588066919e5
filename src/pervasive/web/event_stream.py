"""The CloudEvents stream of the web app: ``/events``, ``/events/stream``, ``/schemas``.

Reads the interop event log (:class:`~pervasive.interop.EventStore`, normally
``<home>/interop/events.sqlite``, written by an :class:`~pervasive.interop.InteropFeed`
in this process or another one):

```
GET /events/stream      server-sent events: one "cloudevent" event per stored event, in
                        stream order; "id:" is the log's seq, so a reconnecting EventSource
                        (Last-Event-ID) resumes after the last one it saw; ?after=<seq> (or
                        a CloudEvent id) starts later; ": keep-alive" comments in silences
GET /events             a page: the latest events (type, subject, source, id, time), kept
                        live by static/cloudevents.js from the stream
GET /schemas?id=<$id>   the JSON Schema named by an event's dataschema (without id: the list)
```

Each ``data:`` line is one CloudEvent in the structured JSON format
(``application/cloudevents+json``). A retraction (``dev.pervasive.event.retracted``)
comes as an event of its own, naming the retracted id.

Example::

    routes = cloudevents_routes(EventStore(events_path(settings.home)))
    context = WebContext.build(settings, ledger, cloudevents=routes)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route
from starlette.templating import Jinja2Templates

from pervasive.interop import EventStore, StoredEvent

__all__ = ["EVENTS_SHOWN", "cloudevent_frame", "cloudevents_routes", "resume_point"]

_HERE = Path(__file__).parent
EVENTS_SHOWN = 50
"""How many of the latest events the page (and the dashboard card) shows."""


def cloudevent_frame(event: StoredEvent) -> str:
    """One server-sent event: ``id: <seq>``, ``event: cloudevent``, the JSON on one line.

    Example: ``cloudevent_frame(stored)`` == ``"id: 7\\nevent: cloudevent\\ndata: {...}\\n\\n"``.
    """
    return f"id: {event.seq}\nevent: cloudevent\ndata: {event.body.decode()}\n\n"


def resume_point(store: EventStore, marker: str | None) -> int:
    """The seq to stream after, from a ``Last-Event-ID`` or ``?after=``: a seq or a CloudEvent id.

    An unknown id starts from the beginning (nothing is skipped).

    Example: ``resume_point(store, "12")`` == ``12``.
    """
    if not marker:
        return 0
    text = marker.strip()
    if text.isdigit():
        return int(text)
    seq = store.seq_of(None, text)
    return 0 if seq is None else seq


def cloudevents_routes(
    store: EventStore, *, poll_interval: float = 0.1, keepalive: float = 15.0
) -> list[BaseRoute]:
    """The routes over ``store``: the stream, the page and the schemas.

    Example: ``Starlette(routes=cloudevents_routes(store))``.
    """
    templates = Jinja2Templates(directory=_HERE / "templates")

    async def stream(request: Request) -> Response:
        marker = request.headers.get("last-event-id") or request.query_params.get("after")
        after = resume_point(store, marker)

        async def frames() -> AsyncIterator[str]:
            nonlocal after
            yield "retry: 2000\n\n"
            quiet_since = time.monotonic()
            while True:
                events = store.after(after, limit=200)
                for event in events:
                    yield cloudevent_frame(event)
                    after = event.seq
                if events:
                    quiet_since = time.monotonic()
                    continue
                if time.monotonic() - quiet_since >= keepalive:
                    yield ": keep-alive\n\n"
                    quiet_since = time.monotonic()
                await asyncio.sleep(poll_interval)

        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return StreamingResponse(frames(), media_type="text/event-stream", headers=headers)

    async def page(request: Request) -> Response:
        context = {
            "events": store.latest(EVENTS_SHOWN),
            "head": store.head(),
            "stream_url": request.url_for("cloudevents_stream").path,
            "schemas_url": request.url_for("cloudevents_schemas").path,
            "shown": EVENTS_SHOWN,
        }
        return templates.TemplateResponse(
            request, "events.html", context, headers={"Cache-Control": "no-store"}
        )

    async def schemas(request: Request) -> Response:
        schema_id = request.query_params.get("id")
        if not schema_id:
            return JSONResponse({"schemas": store.schema_ids()})
        document = store.schema(schema_id)
        if document is None:
            message = f"no schema {schema_id!r} is known here: use a dataschema of a stored event"
            return JSONResponse({"error": message, "reason": "unknown_schema"}, 404)
        return Response(document, media_type="application/schema+json")

    return [
        Route("/events", page, methods=["GET"], name="cloudevents"),
        Route("/events/stream", stream, methods=["GET"], name="cloudevents_stream"),
        Route("/schemas", schemas, methods=["GET"], name="cloudevents_schemas"),
    ]
