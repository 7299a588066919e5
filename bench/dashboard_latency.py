"""Dashboard push latency: a stored shadow change to its server-sent event at N browsers.

Setup, in this process: the embedded chain, an in-memory shadow store and the
:class:`~pervasive.web.feed.DashboardFeed` (as the shadow service's listener would call
it), served by :class:`~pervasive.web.WebServer` (uvicorn) with ``dashboard_routes``.
In a second process, ``--subscribers`` EventSource-like clients (httpx streams) read
``/dashboard/events``. The server stores ``--changes`` shadow updates at ``--rate`` per
second; each carries its own ``time.monotonic()`` (one clock for both processes on
Linux), so every client measures, per change, the time from the feed being told to the
event arriving. A last run adds as many clients that never read, to show that they do
not slow the others (each has a bounded queue and falls back to a snapshot).

The peer is the page without JavaScript: it reloads every 5 s, so it shows a change
2.5 s late on average (5 s at worst).

Usage: ``.venv/bin/python bench/dashboard_latency.py [--changes 200] [--rate 20]``;
writes ``bench/results/dashboard_latency.csv`` and ``dashboard_latency.png``.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import multiprocessing
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
REFRESH_SECONDS = 5.0
SUBSCRIBERS = (1, 10, 50, 200)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def _clients(url: str, readers: int, idlers: int, changes: int, out: Any) -> None:
    import httpx

    latencies: list[float] = []
    ready = asyncio.Event()
    started = 0

    async def read(client: httpx.AsyncClient) -> None:
        nonlocal started
        seen = 0
        async with client.stream("GET", url) as response:
            data = ""
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    data = line[6:]
                elif line == "" and data:
                    message, data = json.loads(data), ""
                    if "table" not in message:  # a snapshot: the first, or after falling behind
                        seen += 1
                        if seen == 1:
                            started += 1
                            if started == readers + idlers:
                                ready.set()
                        rows = message["devices"]
                    else:
                        rows = [message["row"]] if message["table"] == "devices" else []
                    for row in rows:
                        if row and row["reported"]:
                            state = json.loads(row["reported"])
                            if "table" in message:
                                latencies.append((time.monotonic() - state["t"]) * 1000)
                            if state["n"] == changes - 1:
                                return

    async def idle(client: httpx.AsyncClient) -> None:
        nonlocal started
        async with client.stream("GET", url) as response:
            lines = response.aiter_lines()
            while await anext(lines) != "":
                pass  # the retry line: connected
            started += 1
            if started == readers + idlers:
                ready.set()
            await asyncio.sleep(3600)  # never reads again

    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    async with httpx.AsyncClient(timeout=None, limits=limits) as client:
        tasks = [asyncio.create_task(read(client)) for _ in range(readers)]
        idlers_tasks = [asyncio.create_task(idle(client)) for _ in range(idlers)]
        await ready.wait()
        out.send("ready")
        await asyncio.gather(*tasks)
        for task in idlers_tasks:
            task.cancel()
    out.send(latencies)


def _client_process(url: str, readers: int, idlers: int, changes: int, out: Any) -> None:
    asyncio.run(_clients(url, readers, idlers, changes, out))


async def measure(readers: int, idlers: int, changes: int, rate: float) -> list[float]:
    from starlette.applications import Starlette

    from pervasive.chain import open_ledger
    from pervasive.config import Settings
    from pervasive.shadow import Operation, ShadowCore, ShadowKey, ShadowStore
    from pervasive.web import WebServer
    from pervasive.web.dashboard import dashboard_routes
    from pervasive.web.feed import DashboardFeed, FeedLimits

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(home=Path(tmp))
        ledger = await open_ledger(settings, persist=False)
        store = ShadowStore.open(":memory:")
        feed = DashboardFeed(ledger, shadows=store, limits=FeedLimits(queue=100))
        await feed.start()
        app = Starlette(routes=dashboard_routes(feed))
        server = await WebServer.start(app, replace(settings.web, port=0), access_log=False)
        receive, send = multiprocessing.Pipe(duplex=False)
        url = f"{server.url}/dashboard/events"
        child = multiprocessing.Process(
            target=_client_process, args=(url, readers, idlers, changes, send)
        )
        child.start()
        try:
            while not receive.poll():
                await asyncio.sleep(0.05)
            assert receive.recv() == "ready"
            core, key, record = ShadowCore(), ShadowKey("bench-door"), None
            for n in range(changes):
                body = json.dumps({"state": {"reported": {"n": n, "t": time.monotonic()}}})
                outcome = core.handle(key, Operation.UPDATE, body.encode(), record=record,
                                      now=time.time())  # fmt: skip
                assert outcome.record is not None
                store.commit(outcome.record, previous=record, messages=outcome.messages)
                record = outcome.record
                feed.shadow_changed(record)  # what the shadow service's listener does
                await asyncio.sleep(1 / rate)
            while not receive.poll():
                await asyncio.sleep(0.05)
            latencies: list[float] = receive.recv()
        finally:
            child.join(timeout=30)
            if child.is_alive():
                child.kill()
            await feed.close()
            await server.close()
            await ledger.close()
            store.close()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0, help="changes per second")
    args = parser.parse_args()
    rows = []
    runs = [(n, 0) for n in SUBSCRIBERS] + [(SUBSCRIBERS[1], SUBSCRIBERS[1])]
    refresh_ms = REFRESH_SECONDS / 2 * 1000
    for readers, idlers in runs:
        samples = asyncio.run(measure(readers, idlers, args.changes, args.rate))
        p50, p99 = percentile(samples, 0.5), percentile(samples, 0.99)
        label = f"{readers} reading" + (f" + {idlers} never reading" if idlers else "")
        print(
            f"dashboard push, {label}: p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
            f"max {max(samples):.1f} ms over {len(samples)} events; no-JavaScript page "
            f"(refresh every {REFRESH_SECONDS:g} s): {refresh_ms:.0f} ms on average"
        )
        rows.append((readers, idlers, len(samples), p50, p99, max(samples)))
    RESULTS.mkdir(parents=True, exist_ok=True)
    with (RESULTS / "dashboard_latency.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["readers", "idle_subscribers", "events", "p50_ms", "p99_ms", "max_ms",
                         "refresh_mean_ms", "cores"])  # fmt: skip
        for row in rows:
            writer.writerow([*row[:3], *(f"{v:.3f}" for v in row[3:]), f"{refresh_ms:.0f}",
                             os.cpu_count()])  # fmt: skip
    plot(rows, refresh_ms)


def plot(rows: list[tuple[int, int, int, float, float, float]], refresh_ms: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plain = [row for row in rows if row[1] == 0]
    figure, axes = plt.subplots(figsize=(7, 4))
    axes.plot([r[0] for r in plain], [r[3] for r in plain], "o-", label="push p50")
    axes.plot([r[0] for r in plain], [r[4] for r in plain], "s--", label="push p99")
    for readers, idlers, _, p50, _, _ in rows:
        if idlers:
            axes.plot([readers], [p50], "r^", label=f"p50 with {idlers} stalled subscribers")
    axes.axhline(refresh_ms, color="grey", linestyle=":", label="no-JS refresh, mean staleness")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("browsers reading /dashboard/events")
    axes.set_ylabel("change → browser (ms)")
    axes.set_title(f"Dashboard push latency ({os.cpu_count()} cores)")
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(RESULTS / "dashboard_latency.png", dpi=120)


if __name__ == "__main__":
    main()
