"""Web app latency under concurrent buyers (paper 004, section 5.2's browser application).

Setup: an anvil node (automining), the sale-order factory, one listed item per
purchase to make, and buyer accounts in a keystore (``kdf_iterations=2``: sign-in's
scrypt is not what is measured here). The web app (:func:`pervasive.web.create_app`
served by :class:`pervasive.web.WebServer`, uvicorn) runs in its own process on the
``rpc`` backend pointed at that anvil, as ``pervasive up`` would run it; this process
is the load generator: ``N`` buyers (1, 4, 16 by default), each a browser with its own
cookies (aiohttp), signed in once, then buying one item after another:

    GET /  ->  GET /orders/<a>  ->  POST /orders/<a>/buy (303)  ->  GET /orders/<a>/receipt
           ->  GET /orders/<a>/receipt.png

Each request's latency and the whole flow's are recorded; p50 and p95 per kind and
per concurrency, and the flows completed per second. Beside them, the chain alone:
the same buyers sending ``buy()`` straight through pervasive's transaction manager
(``SaleOrder.buy``), no web app, so the web app's own share is visible. Paper 004
reports no latency of its browser application (section 6 lists functional results
only), so the chain-only figure is the comparison.

Usage: ``.venv/bin/python bench/web_latency.py [--buyers 1 4 16] [--flows 8]``
(``--flows`` per buyer). Writes ``bench/results/web_latency.csv`` and
``bench/results/web_latency.png``.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import aiohttp

RESULTS = Path(__file__).parent / "results"
PRICE = 10**16
KINDS = ("GET /", "GET order", "POST buy", "GET receipt", "GET receipt.png", "buy flow")
_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


@dataclass(frozen=True)
class Row:
    """One kind of request (or the chain-only buy) at one concurrency."""

    buyers: int
    kind: str
    count: int
    p50_ms: float
    p95_ms: float
    max_ms: float
    per_second: float


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


# -- the server process ---------------------------------------------------------------


def serve(home: Path, rpc_url: str) -> None:
    """Run the web app on the ``rpc`` backend until killed; print its URL first."""

    async def main() -> None:
        from pervasive.chain import open_ledger
        from pervasive.config import Settings, WebSettings
        from pervasive.web import WebContext, WebServer, create_app

        settings = Settings(home=home, backend="rpc", rpc_url=rpc_url, web=WebSettings(port=0))
        ledger = await open_ledger(settings)
        context = WebContext.build(settings, ledger)
        server = await WebServer.start(create_app(context), settings.web, access_log=False)
        print(json.dumps({"url": server.url}), flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


# -- the load generator ---------------------------------------------------------------


@dataclass
class Buyer:
    name: str
    password: str
    address: str
    key: bytes


async def prepare(home: Path, buyers: int, orders: int) -> tuple[object, list[Buyer], list[str]]:
    """anvil, the factory, funded buyers in the keystore, ``orders`` listed items."""
    from pervasive.chain import ContractCall, Keystore, Signer, open_ledger
    from pervasive.config import Settings
    from pervasive.contracts import DeploymentBook, SaleOrderFactory

    settings = Settings(home=home, backend="anvil")
    ledger = await open_ledger(settings, persist=False)
    deployer, seller = ledger.dev_signer(0), ledger.dev_signer(1)
    book = DeploymentBook(settings.path("deployments.sqlite"))
    factory = await SaleOrderFactory.open(
        ledger, deployer, artifacts=settings.path("artifacts"), book=book
    )
    book.close()
    keystore = Keystore(settings.path("keystore"), kdf_iterations=2)
    people = []
    for index in range(buyers):
        signer = Signer.generate()
        keystore.store(f"buyer-{index}", signer, f"password-{index}")
        funding = ContractCall(to=signer.address, data=b"", value=10**20)
        await ledger.transactor(deployer).transact(funding)
        people.append(
            Buyer(f"buyer-{index}", f"password-{index}", signer.address, signer.private_key)
        )
    selling = factory.with_signer(seller)
    warehouse = ledger.dev_signer(2).address
    listed = [
        (await selling.create("Tesla", "alpha", 2019, PRICE, f"SN-{n}", warehouse)).address
        for n in range(orders)
    ]
    return ledger, people, listed


async def sign_in(session: aiohttp.ClientSession, url: str, buyer: Buyer) -> None:
    async with session.get(f"{url}/sign-in") as page:
        token = _CSRF.search(await page.text())
    assert token, "no CSRF token on the sign-in page"
    form = {"csrf_token": token[1], "account": buyer.name, "password": buyer.password}
    async with session.post(f"{url}/sign-in", data=form) as answer:
        text = await answer.text()
        if f'data-account="{buyer.name}"' not in text:
            raise SystemExit(f"sign-in of {buyer.name} failed: HTTP {answer.status}")


async def timed_get(
    session: aiohttp.ClientSession, url: str, kind: str, samples: dict[str, list[float]]
) -> str:
    start = time.perf_counter()
    async with session.get(url) as answer:
        body = await answer.read()
        if answer.status != 200:
            raise SystemExit(f"{kind} {url}: HTTP {answer.status}")
    samples[kind].append((time.perf_counter() - start) * 1000)
    return body.decode("utf-8", "replace") if not kind.endswith(".png") else ""


async def flow(
    session: aiohttp.ClientSession, url: str, order: str, samples: dict[str, list[float]]
) -> None:
    """One purchase as a browser makes it; every step timed, and the whole."""
    began = time.perf_counter()
    await timed_get(session, f"{url}/", "GET /", samples)
    page = await timed_get(session, f"{url}/orders/{order}", "GET order", samples)
    token = _CSRF.search(page)
    assert token, "no CSRF token on the order page"
    start = time.perf_counter()
    async with session.post(
        f"{url}/orders/{order}/buy", data={"csrf_token": token[1]}, allow_redirects=False
    ) as answer:
        await answer.read()
        if answer.status != 303 or not answer.headers["location"].endswith("/receipt"):
            raise SystemExit(f"buying {order}: HTTP {answer.status} {(await answer.text())[:300]}")
    samples["POST buy"].append((time.perf_counter() - start) * 1000)
    receipt = await timed_get(session, f"{url}/orders/{order}/receipt", "GET receipt", samples)
    if "data-receipt=" not in receipt:
        raise SystemExit(f"no receipt for {order}")
    await timed_get(session, f"{url}/orders/{order}/receipt.png", "GET receipt.png", samples)
    samples["buy flow"].append((time.perf_counter() - began) * 1000)


async def web_run(
    url: str, buyers: list[Buyer], orders: list[str]
) -> tuple[dict[str, list[float]], float]:
    """Every buyer signed in, then buying its share of ``orders`` one after another."""
    samples: dict[str, list[float]] = defaultdict(list)
    share = len(orders) // len(buyers)
    sessions = [aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) for _ in buyers]
    try:
        await asyncio.gather(*(sign_in(s, url, b) for s, b in zip(sessions, buyers, strict=True)))

        async def one(index: int) -> None:
            for order in orders[index * share : (index + 1) * share]:
                await asyncio.wait_for(flow(sessions[index], url, order, samples), 60)

        start = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(len(buyers))))
        elapsed = time.perf_counter() - start
    finally:
        for session in sessions:
            await session.close()
    return samples, elapsed


async def chain_run(
    ledger: object, buyers: list[Buyer], orders: list[str]
) -> tuple[list[float], float]:
    """The same purchases straight through ``SaleOrder.buy``: the chain's share alone."""
    from pervasive.chain import Ledger, Signer
    from pervasive.contracts import SaleOrder

    assert isinstance(ledger, Ledger)
    samples: list[float] = []
    share = len(orders) // len(buyers)

    async def one(index: int) -> None:
        signer = Signer.from_key(buyers[index].key)
        for order in orders[index * share : (index + 1) * share]:
            start = time.perf_counter()
            await SaleOrder.at(ledger, order, signer).buy()
            samples.append((time.perf_counter() - start) * 1000)

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(len(buyers))))
    return samples, time.perf_counter() - start


def rows_of(buyers: int, kind: str, samples: list[float], elapsed: float, flows: int) -> Row:
    return Row(
        buyers, kind, len(samples), percentile(samples, 0.5), percentile(samples, 0.95),
        max(samples), flows / elapsed,
    )  # fmt: skip


async def measure(levels: list[int], flows: int) -> list[Row]:
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        most = max(levels)
        web_orders = sum(level * flows for level in levels)
        chain_orders = web_orders
        ledger, people, listed = await prepare(home, most, web_orders + chain_orders)
        from pervasive.chain import Ledger

        assert isinstance(ledger, Ledger) and ledger.url
        child = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(home), "--rpc-url", ledger.url],
            stdout=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")},
        )  # fmt: skip
        rows: list[Row] = []
        try:
            assert child.stdout is not None
            line = await asyncio.wait_for(asyncio.to_thread(child.stdout.readline), 120)
            url = json.loads(line)["url"]
            async with aiohttp.ClientSession() as probe, probe.get(f"{url}/healthz") as health:
                assert health.status == 200
            used = 0
            for level in levels:
                batch = listed[used : used + level * flows]
                used += level * flows
                samples, elapsed = await web_run(url, people[:level], batch)
                for kind in KINDS:
                    rows.append(rows_of(level, kind, samples[kind], elapsed, len(batch)))
            for level in levels:
                batch = listed[used : used + level * flows]
                used += level * flows
                direct, elapsed = await chain_run(ledger, people[:level], batch)
                rows.append(rows_of(level, "chain-only buy()", direct, elapsed, len(batch)))
        finally:
            child.kill()
            child.wait()
            await ledger.close()  # type: ignore[attr-defined]
    return rows


def report(rows: list[Row]) -> None:
    heading = f"{'buyers':>6} {'kind':18} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}"
    print(f"{heading} {'flows/s':>8}")
    for row in rows:
        print(f"{row.buyers:6} {row.kind:18} {row.count:5} {row.p50_ms:8.1f} {row.p95_ms:8.1f} "
              f"{row.max_ms:8.1f} {row.per_second:8.1f}")  # fmt: skip
    print("paper 004: no latency of its browser application is reported (section 6); "
          "the chain-only buy() above is the comparison")  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / "web_latency.csv", "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["buyers", "kind", "count", "p50_ms", "p95_ms", "max_ms",
                         "flows_per_second", "cores", "load_before"])  # fmt: skip
        load = os.getloadavg()[0]
        for row in rows:
            writer.writerow([row.buyers, row.kind, row.count, f"{row.p50_ms:.2f}",
                             f"{row.p95_ms:.2f}", f"{row.max_ms:.2f}", f"{row.per_second:.2f}",
                             os.cpu_count(), f"{load:.2f}"])  # fmt: skip
    chart(rows)


def chart(rows: list[Row]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = sorted({row.buyers for row in rows})
    kinds = [*KINDS, "chain-only buy()"]
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    width = 0.8 / len(kinds)
    for index, kind in enumerate(kinds):
        found = {row.buyers: row for row in rows if row.kind == kind}
        xs = [i + (index - len(kinds) / 2) * width + width / 2 for i in range(len(levels))]
        p50 = [found[level].p50_ms if level in found else 0 for level in levels]
        p95 = [found[level].p95_ms if level in found else 0 for level in levels]
        left.bar(xs, p50, width, label=kind)
        above = [high - low for low, high in zip(p50, p95, strict=True)]
        left.errorbar(xs, p50, yerr=[[0] * len(p50), above], fmt="none", ecolor="black",
                      capsize=2, linewidth=0.8)  # fmt: skip
    left.set_xticks(
        range(len(levels)), [f"{level} buyer{'s' if level > 1 else ''}" for level in levels]
    )
    left.set_ylabel("latency, ms (bar p50, whisker p95)")
    left.set_yscale("log")
    left.set_title("web app requests and the whole buy flow")
    left.legend(fontsize=7)
    for kind, colour in (("buy flow", "#2a6f97"), ("chain-only buy()", "#999999")):
        found = sorted((row for row in rows if row.kind == kind), key=lambda row: row.buyers)
        right.plot([row.buyers for row in found], [row.per_second for row in found], "o-",
                   color=colour, label=kind)  # fmt: skip
    right.set_xscale("log", base=2)
    right.set_xticks(levels, [str(level) for level in levels])
    right.set_xlabel("concurrent buyers")
    right.set_ylabel("purchases per second")
    right.set_title("purchases completed per second (anvil, 2 cores)")
    right.legend()
    figure.tight_layout()
    figure.savefig(RESULTS / "web_latency.png", dpi=120)
    plt.close(figure)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buyers", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--flows", type=int, default=8, help="purchases per buyer and level")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--rpc-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.rpc_url)
        return 0
    report(asyncio.run(measure(sorted(args.buyers), args.flows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
