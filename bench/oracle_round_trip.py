"""Oracle round trip: a contract's query to its callback, and the callback's gas (paper 001, §4).

Paper 001 proposes Oraclize (now Provable) for a contract's off-chain data: the query
is one transaction and the answer arrives as a ``_callback`` transaction, seconds to
minutes later (Provable and Chainlink answer after at least one more block: 12 s on
Ethereum mainnet, and their own queueing). Our committee: three ``OracleNode``\\ s (asyncio
tasks here, the same code as ``pervasive oracle run``), anvil with instant mining, the
platform's embedded MQTT broker and a local ``ShipmentCost?device=VerticalPump`` service.

For ``t = 2 of 3`` and ``t = 3 of 3`` it asks ``--queries`` queries one after the other
through a consumer contract (which stores the answer: one new storage slot, one event)
and measures:

- latency: from sending the query transaction to the receipt of the callback
  transaction (``fulfill`` → ``oracle_callback``), p50 and p95 (target p50 <= 100 ms);
- gas of the callback transaction, median (target <= 80,000 for 2 of 3).

All nodes, the broker and the clients share one process (two cores): in production each
node is its own process. Nodes look at the chain every ``--poll-interval`` seconds
(default: the setting's, ``[oracle] poll_interval`` = 0.01).

Usage: ``.venv/bin/python bench/oracle_round_trip.py [--queries 50] [--poll-interval 0.01]``. Writes
``bench/results/oracle_round_trip.csv`` and ``.png``; exits with status 1 when a
target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

from aiohttp import web

from pervasive.chain import ContractCall, Ledger
from pervasive.config import OracleSettings, Settings
from pervasive.contracts.compiler import compile_source
from pervasive.contracts.contract import Contract
from pervasive.contracts.deployments import deploy
from pervasive.contracts.oracle_hub import OracleHub, QueryAnswered, QueryRequested
from pervasive.crypto import PrivateKey
from pervasive.messaging import MqttClient
from pervasive.messaging.port import MqttConnection
from pervasive.oracle import OracleNode, local_committee
from pervasive.platform import Platform

RESULTS = Path(__file__).parent / "results"
CONSUMER = Path(__file__).parents[1] / "tests" / "integration" / "oracle" / "shipping_consumer.vy"
TARGET_P50_MS = 100.0
TARGET_GAS = 80_000
PEER = "Provable/Chainlink: seconds to minutes (>= 1 block, 12 s on mainnet)"


async def _cost(request: web.Request) -> web.Response:
    device = request.query.get("device", "")
    return web.Response(body=json.dumps({"device": device, "cost": 1234}).encode())


@asynccontextmanager
async def cost_service() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/ShipmentCost", _cost)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def answered(nodes: list[OracleNode], hub: OracleHub, query_id: int) -> QueryAnswered:
    """The QueryAnswered a node got in its own fulfill receipt (its arrival is the time)."""

    def found(node: OracleNode) -> QueryAnswered | None:
        for receipt in node.stats.fulfilled:
            for event in hub.receipt_events(receipt):
                if isinstance(event, QueryAnswered) and event.query_id == query_id:
                    return event
        return None

    waiters = [asyncio.ensure_future(n.wait_for(lambda n: found(n) is not None, 30)) for n in nodes]
    done, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    for waiter in pending:
        waiter.cancel()
    for waiter in done:
        waiter.result()
    event = next(e for e in map(found, nodes) if e is not None)
    return event


async def run_threshold(
    platform: Platform,
    ledger: Ledger,
    url: str,
    threshold: int,
    queries: int,
    root: Path,
    poll_interval: float,
) -> list[tuple[int, float, int]]:
    """(query id, seconds, callback gas) per query for one hub with ``threshold`` of 3."""
    admin = ledger.dev_signer(0)
    keys = [PrivateKey(secrets.token_bytes(32)) for _ in range(3)]
    for key in keys:
        await ledger.transactor(admin).transact(
            ContractCall(to=key.address, data=b"", value=10**18, gas=21_000)
        )
    hub = await OracleHub.open(
        ledger, admin, oracles=[k.address for k in keys], threshold=threshold, timeout=60,
        max_attempts=2, artifacts=root / "artifacts",
    )  # fmt: skip
    artifact = compile_source("shipping_consumer", CONSUMER.read_text())
    consumer = Contract(
        ledger, (await deploy(ledger, admin, artifact, hub.address)).address, artifact.abi
    )

    async def connect(index: int) -> MqttConnection:
        client = MqttClient(platform.client_options(f"svc:oracle.bench-{threshold}-{index}"))
        await client.connect()
        return client

    rows = []
    settings = OracleSettings(poll_interval=poll_interval)
    async with local_committee(
        hub, keys, connect=connect, folder=root / f"t{threshold}", allow=[url],
        settings=settings,
    ) as nodes:  # fmt: skip
        source = f"{url}/ShipmentCost?device=VerticalPump"
        for _ in range(queries + 2):  # two warm-up queries
            started = time.perf_counter()
            receipt = await consumer.transact(admin, "ask", 1, source, "cost")
            (asked,) = [e for e in hub.receipt_events(receipt) if isinstance(e, QueryRequested)]
            event = await answered(nodes, hub, asked.query_id)
            seconds = time.perf_counter() - started
            callback = await ledger.receipt(event.transaction_hash)
            assert callback is not None and event.callback_ok and event.value == 1234
            rows.append((asked.query_id, seconds, callback.gas_used))
    return rows[2:]


async def measure(queries: int, poll_interval: float) -> dict[int, list[tuple[int, float, int]]]:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        settings = Settings(home=root, backend="anvil", broker="embedded", password="bench")
        async with AsyncExitStack() as stack:
            platform = await stack.enter_async_context(Platform(settings, persist=False))
            ledger = await platform.ledger()
            await platform.broker()
            url = await stack.enter_async_context(cost_service())
            return {
                t: await run_threshold(platform, ledger, url, t, queries, root, poll_interval)
                for t in (2, 3)
            }


def report(results: dict[int, list[tuple[int, float, int]]]) -> bool:
    RESULTS.mkdir(exist_ok=True)
    with open(RESULTS / "oracle_round_trip.csv", "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["threshold", "query_id", "round_trip_ms", "callback_gas"])
        for t, rows in results.items():
            for query_id, seconds, gas in rows:
                writer.writerow([f"{t}-of-3", query_id, f"{seconds * 1000:.2f}", gas])
    print(f"{'t of n':8} {'queries':>7} {'p50 ms':>8} {'p95 ms':>8} {'gas':>8}  peer")
    ok = True
    summary = {}
    for t, rows in results.items():
        ms = sorted(s * 1000 for _, s, _ in rows)
        p50 = statistics.median(ms)
        p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
        gas = int(statistics.median(g for _, _, g in rows))
        summary[t] = (p50, p95, gas)
        print(f"{t}-of-3   {len(rows):7} {p50:8.1f} {p95:8.1f} {gas:8,}  {PEER}")
    p50_2, _, gas_2 = summary[2]
    if p50_2 > TARGET_P50_MS:
        print(f"p50 {p50_2:.1f} ms is above the target of {TARGET_P50_MS} ms", file=sys.stderr)
        ok = False
    if gas_2 > TARGET_GAS:
        print(f"callback gas {gas_2} is above the target of {TARGET_GAS}", file=sys.stderr)
        ok = False
    _plot(results, summary)
    return ok


def _plot(
    results: dict[int, list[tuple[int, float, int]]], summary: dict[int, tuple[float, float, int]]
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for t, rows in results.items():
        ms = sorted(s * 1000 for _, s, _ in rows)
        left.plot(ms, [(i + 1) / len(ms) for i in range(len(ms))], label=f"{t} of 3")
    left.axvline(TARGET_P50_MS, color="grey", linestyle="--", label="target p50 100 ms")
    left.set_xlabel("query tx → callback receipt (ms)")
    left.set_ylabel("fraction of queries")
    left.set_title("Round trip (anvil, instant mining)\nProvable/Chainlink: seconds to minutes")
    left.legend()
    labels = [f"{t} of 3" for t in summary]
    right.bar(labels, [summary[t][2] for t in summary], color=["tab:blue", "tab:orange"])
    right.axhline(TARGET_GAS, color="grey", linestyle="--", label="target 80,000")
    right.set_ylabel("gas of the callback transaction")
    right.set_title("fulfill + oracle_callback (consumer stores the answer)")
    right.legend()
    figure.tight_layout()
    figure.savefig(RESULTS / "oracle_round_trip.png", dpi=120)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=50, help="queries per threshold")
    parser.add_argument(
        "--poll-interval", type=float, default=OracleSettings().poll_interval,
        help="seconds between a node's looks at the chain (default: [oracle] poll_interval)",
    )  # fmt: skip
    args = parser.parse_args()
    print(f"3 nodes as tasks, anvil instant mining, poll interval {args.poll_interval} s")
    return 0 if report(asyncio.run(measure(args.queries, args.poll_interval))) else 1


if __name__ == "__main__":
    sys.exit(main())
