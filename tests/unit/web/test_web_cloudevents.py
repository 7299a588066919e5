"""The web app's CloudEvents stream: SSE resumable by Last-Event-ID, the page, the schemas."""

from __future__ import annotations

import datetime as dt
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from pervasive.chain import Ledger, open_ledger
from pervasive.config import Settings, WebSettings
from pervasive.interop import EventStore, build_event, compile_shadow_mapping
from pervasive.shadow import ShadowStore
from pervasive.store import transaction
from pervasive.web import WebServer, cloudevents_routes, dashboard_routes
from pervasive.web.app import STATIC
from pervasive.web.event_stream import resume_point
from pervasive.web.feed import DashboardFeed

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "integration" / "interop"))
from sse import read_cloudevents

WHEN = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
SCHEMA = compile_shadow_mapping().schema


def add(store: EventStore, number: int, subject: str = "<b>s</b>") -> int | None:
    event = build_event(
        id=f"{number:012d}", source="urn:pervasive:shadow:t", type="dev.pervasive.test.thing",
        time=WHEN, data={"n": number}, dataschema=SCHEMA.id, subject=subject,
    )  # fmt: skip
    with transaction(store.db) as db:
        return EventStore.append(db, event, topic="pervasive/events/shadow/t/x")


@pytest.fixture
def store(tmp_path: Path) -> EventStore:
    store = EventStore(tmp_path / "events.sqlite")
    store.register_schema(SCHEMA)
    for number in range(1, 4):
        add(store, number)
    return store


@pytest.fixture
def app(store: EventStore) -> Starlette:
    routes = cloudevents_routes(store, poll_interval=0.02, keepalive=0.2)
    return Starlette(routes=[*routes, Mount("/static", StaticFiles(directory=STATIC))])


async def test_the_stream_resumes_after_last_event_id_and_carries_new_events(
    store: EventStore, app: Starlette
) -> None:
    async with await WebServer.start(app, WebSettings(port=0), access_log=False) as server:
        url = f"{server.url}/events/stream"
        frames = await read_cloudevents(url, 3)
        assert [f.id for f in frames] == ["1", "2", "3"]
        assert frames[0].data["specversion"] == "1.0" and frames[0].data["data"] == {"n": 1}
        resumed = await read_cloudevents(url, 1, last_event_id="2")
        assert [f.data["id"] for f in resumed] == ["000000000003"]
        by_id = await read_cloudevents(f"{url}?after=000000000001", 1)
        assert by_id[0].id == "2"
        later = read_cloudevents(url, 1, last_event_id="3")
        add(store, 4)
        assert [f.data["id"] for f in await later] == ["000000000004"]


def test_resume_points() -> None:
    class Empty(EventStore):
        def seq_of(self, source: str | None, event_id: str) -> int | None:
            return None

    store = Empty(":memory:")
    assert resume_point(store, None) == 0 and resume_point(store, "17") == 17
    assert resume_point(store, "unknown-id") == 0  # from the start: nothing skipped


async def test_the_page_lists_the_latest_events_escaped_without_inline_code(
    app: Starlette,
) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://web") as http:
        page = (await http.get("/events")).text
        assert page.count("<tr data-seq=") == 3
        assert 'data-after="3"' in page and 'data-stream="/events/stream"' in page
        assert "<b>s</b>" not in page and "&lt;b&gt;s&lt;/b&gt;" in page
        assert re.findall(r"<script\b[^>]*>(.*?)</script>", page, re.S) == [""]
        assert (await http.get("/static/cloudevents.js")).status_code == 200


async def test_schemas_are_served_by_their_id(app: Starlette) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://web") as http:
        found = await http.get("/schemas", params={"id": SCHEMA.id})
        assert found.status_code == 200
        assert found.headers["content-type"].startswith("application/schema+json")
        assert found.json()["$id"] == SCHEMA.id
        missing = await http.get("/schemas", params={"id": "urn:nothing:1"})
        assert missing.status_code == 404 and missing.json()["reason"] == "unknown_schema"
        assert (await http.get("/schemas")).json() == {"schemas": [SCHEMA.id]}


@pytest.fixture
async def ledger(tmp_settings: Settings) -> AsyncIterator[Ledger]:
    chain = await open_ledger(tmp_settings, persist=False)
    try:
        yield chain
    finally:
        await chain.close()


async def test_the_dashboard_has_a_cloudevents_card(store: EventStore, ledger: Ledger) -> None:
    feed = DashboardFeed(ledger, shadows=ShadowStore.open(":memory:"))
    await feed.poll()
    app = Starlette(routes=[*dashboard_routes(feed, cloudevents=store), *cloudevents_routes(store)])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://web") as http:
        page = (await http.get("/dashboard")).text
        assert '<section class="board" id="cloudevents"' in page
        assert page.count("<tr data-seq=") == 3
        assert "/dashboard/static/cloudevents.js" in page
        bare = Starlette(routes=dashboard_routes(feed))
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=bare), base_url="http://web"
        ) as plain:
            assert 'id="cloudevents"' not in (await plain.get("/dashboard")).text
