"""The dashboard's page, JSON state and event framing, served in process (ASGI, no socket)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from pervasive.chain import Ledger, open_ledger
from pervasive.config import Settings
from pervasive.shadow import Operation, ShadowCore, ShadowKey, ShadowRecord, ShadowStore
from pervasive.web.dashboard import COLUMNS, dashboard_routes, encode_message, sse_frame
from pervasive.web.feed import DashboardFeed
from pervasive.web.feed_rows import Change, DeviceRow


@pytest.fixture
async def ledger(tmp_settings: Settings) -> AsyncIterator[Ledger]:
    chain = await open_ledger(tmp_settings, persist=False)
    try:
        yield chain
    finally:
        await chain.close()


def record(thing: str, body: bytes) -> ShadowRecord:
    outcome = ShadowCore().handle(ShadowKey(thing), Operation.UPDATE, body, record=None,
                                  now=time.time())  # fmt: skip
    assert outcome.record is not None
    return outcome.record


@pytest.fixture
async def client(ledger: Ledger) -> AsyncIterator[tuple[DashboardFeed, httpx.AsyncClient]]:
    feed = DashboardFeed(ledger, shadows=ShadowStore.open(":memory:"))
    await feed.poll()
    app = Starlette(routes=dashboard_routes(feed))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://dashboard") as http:
        yield feed, http


async def test_the_page_is_whole_without_javascript_and_has_no_inline_code(
    client: tuple[DashboardFeed, httpx.AsyncClient],
) -> None:
    feed, http = client
    feed.shadow_changed(record("door-1", b'{"state":{"reported":{"door":"<b>open</b>"}}}'))
    response = await http.get("/dashboard")
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    page = response.text
    assert '<tr data-key="door-1" data-flag="&lt;b&gt;open&lt;/b&gt;">' in page, "escaped"
    assert "<b>open</b>" not in page
    assert '<noscript><meta http-equiv="refresh" content="5"></noscript>' in page
    scripts = re.findall(r"<script\b[^>]*>(.*?)</script>", page, re.S)
    assert scripts == [""], "one script, loaded from a file"
    assert "style=" not in page and "<style" not in page
    assert not re.search(r"\son[a-z]+=", page), "no inline event handler"
    for table, columns in COLUMNS.items():
        assert f'<template id="row-{table}">' in page
        assert page.count(f'<th scope="col">{columns[0][1]}</th>') >= 1
    for asset in ("dashboard.js", "dashboard.css"):
        served = await http.get(f"/dashboard/static/{asset}")
        assert served.status_code == 200 and len(served.content) > 500


async def test_state_json_is_the_snapshot_with_row_flags(
    client: tuple[DashboardFeed, httpx.AsyncClient],
) -> None:
    feed, http = client
    feed.shadow_changed(
        record("door-1", b'{"state":{"desired":{"door":"open"},"reported":{"door":"closed"}}}')
    )
    state = (await http.get("/dashboard/state.json")).json()
    assert state["id"] == feed.snapshot().id
    [row] = state["devices"]
    assert (row["door"], row["flag"], row["version"]) == ("closed → open", "pending", 1)
    assert {r["key"]: r["flag"] for r in state["status"]}["chain"] == "ok"
    assert [e["source"] for e in state["events"]] == ["shadow"]


def test_an_event_frame_has_its_id_its_kind_and_one_data_line() -> None:
    row = DeviceRow("door-1", "door-1", "", "active", "open", 3, "", '{"door":"open"}', "", "")
    frame = sse_frame(Change("ab12.7", "devices", "door-1", row))
    lines = frame.split("\n")
    assert lines[:2] == ["id: ab12.7", "event: change"] and frame.endswith("\n\n")
    assert lines[2].startswith("data: ") and len(lines) == 5
    data = json.loads(lines[2].removeprefix("data: "))
    assert data["row"]["reported"] == '{"door":"open"}' and data["row"]["flag"] == "open"
    gone = json.loads(encode_message(Change("ab12.8", "devices", "door-1", None)))
    assert gone == {"id": "ab12.8", "table": "devices", "key": "door-1", "row": None}
