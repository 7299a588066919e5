"""Deposit checks per second against one notary member (paper 003, Algorithm 2).

The paper's SP interface peaked at 7,304 requests/s (section VII, Go); the issue's
target is at least 20,000 checks/s against one member on 2 cores. Each server runs in
its own process with the same state: ``--consumers`` consumers with a deposit, every
other one with a pay in the pool and one reservation, so the answers carry a real
exposure. ``wrk`` (keep-alive, one thread, ``--connections``) drives it with a Lua
script that varies the consumer and the amount on every request; latency
percentiles come from wrk's own distribution.

Servers compared, with the same :class:`~pervasive.crosschain.check_server.CheckService`
handlers:

- ``httptools+uvloop``: :class:`~pervasive.http.server.HttpServer` (the
  member's server) on uvloop;
- ``httptools+asyncio``: the same on the standard event loop;
- ``aiohttp+uvloop``: the handlers behind aiohttp.web, on uvloop (its best case).

``POST /attest`` is measured too: each request reserves and signs an EIP-712
``DepositAttestation`` with coincurve (libsecp256k1); a fresh ``(consumer, counter)``
per request, so every answer is a signature (refusals are reported, not hidden).

Usage: ``.venv/bin/python bench/deposit_check.py [--seconds 8] [--connections 64]
[--consumers 20000]``. Writes ``bench/results/deposit_check.csv`` and
``bench/results/deposit_check.png``; exits with status 1 when the member's server
answers fewer than 20,000 checks/s.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
PAPER = 7304.0
TARGET = 20_000.0
SERVERS = ("httptools+uvloop", "httptools+asyncio", "aiohttp+uvloop")
PROVIDER = "0x00000000000000000000000000000000000000ff"
ORACLE = "0x00000000000000000000000000000000000000cc"

CHECK_LUA = """
local n = 0
request = function()
  n = n + 1
  local consumer = string.format("0x%%040x", (n %% %(consumers)d) + 1)
  return wrk.format("GET", "/check?consumer=" .. consumer ..
    "&provider=%(provider)s&amount=" .. ((n * 7919) %% 100000))
end
"""
ATTEST_LUA = """
local n = 0
request = function()
  n = n + 1
  local consumer = string.format("0x%%040x", (n %% %(consumers)d) + 1)
  local counter = math.floor(n / %(consumers)d)
  local body = '{"consumer":"' .. consumer .. '","provider":"%(provider)s","amount":' ..
    (1000 + n %% 1000) .. ',"counter":' .. counter .. '}'
  return wrk.format("POST", "/attest", {["Content-Type"] = "application/json"}, body)
end
"""
DONE_LUA = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %.3f %.3f %.3f %.3f\\n", summary.requests,
    summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
"""


@dataclass(frozen=True)
class Run:
    """One wrk run against one server and route."""

    server: str
    route: str
    connections: int
    seconds: float
    requests: int
    non_2xx: int
    socket_errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    load_before: float
    """The machine's 1-minute load average as the run started (other work shares it)."""

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def prepared_service(consumers: int) -> object:
    """The member's service over a state with deposits, pool pays and reservations."""
    from pervasive.crosschain.check_server import CheckService
    from pervasive.crosschain.deposit_check import DepositCheck, PendingPay
    from pervasive.crypto import PrivateKey

    state = DepositCheck(coef_percent=150, validity_blocks=10_000)
    pays = []
    for index in range(1, consumers + 1):
        consumer = f"0x{index:040x}"
        state.set_deposit(consumer, 10**18)
        if index % 2 == 0:
            pays.append(PendingPay(f"0x{index:064x}", consumer, PROVIDER, 0, 10**15))
            state.attest(consumer, PROVIDER, 10**14, counter=1)
    state.sync_pool(pays)
    return CheckService(state, PrivateKey(bytes(31) + b"\x07"), chain_id=31337, oracle=ORACLE)


def serve(kind: str, port: int, consumers: int) -> None:
    """Run one server in this process until killed."""
    import uvloop

    from pervasive.crosschain.check_server import CheckService
    from pervasive.http.server import Handler, HttpServer, Request, Response

    service = prepared_service(consumers)
    assert isinstance(service, CheckService)

    async def ours() -> None:
        await HttpServer(service.routes(), rejections=service.rejections).start("127.0.0.1", port)
        await asyncio.Event().wait()

    async def with_aiohttp() -> None:
        from aiohttp import web

        def adapt(handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
            async def handle(request: web.Request) -> web.Response:
                body = await request.read()
                query = request.query_string.encode()
                answer = handler(Request(request.method, request.path, query, body))
                if not isinstance(answer, Response):
                    answer = await answer
                return web.Response(
                    body=answer.body, status=answer.status, content_type="application/json"
                )

            return handle

        app = web.Application()
        for (method, path), handler in service.routes().items():
            app.router.add_route(method, path, adapt(handler))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
        await asyncio.Event().wait()

    main = with_aiohttp if kind.startswith("aiohttp") else ours
    if kind.endswith("uvloop"):
        uvloop.run(main())
    else:
        asyncio.run(main())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_listening(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"the server on port {port} did not start within {timeout:.0f} s")


def wrk(port: int, script: Path, seconds: float, connections: int) -> tuple[int, ...]:
    command = [
        shutil.which("wrk") or "/usr/bin/wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s",
        "--latency", "-s", str(script), f"http://127.0.0.1:{port}/",
    ]  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    fields = next(line for line in out.splitlines() if line.startswith("RESULT")).split()[1:]
    return tuple(int(float(field) * 1000) if "." in field else int(field) for field in fields)


def measure(server: str, route: str, args: argparse.Namespace, folder: Path) -> Run:
    port = free_port()
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", server, "--port", str(port),
         "--consumers", str(args.consumers)],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")},
    )  # fmt: skip
    try:
        wait_listening(port)
        load = os.getloadavg()[0]
        template = CHECK_LUA if route == "check" else ATTEST_LUA
        script = folder / f"{route}.lua"
        values = {"consumers": args.consumers, "provider": PROVIDER}
        script.write_text(template % values + DONE_LUA)
        requests, micros, non_2xx, errors, p50, p95, p99, peak = wrk(
            port, script, args.seconds, args.connections
        )
    finally:
        child.kill()
        child.wait()
    return Run(
        server, route, args.connections, micros / 1e6, requests, non_2xx, errors,
        p50 / 1000, p95 / 1000, p99 / 1000, peak / 1000, load,
    )  # fmt: skip


def report(runs: list[Run]) -> None:
    print(f"{'server':20} {'route':7} {'req/s':>9} {'x paper':>8} {'p50 ms':>7} "
          f"{'p95 ms':>7} {'p99 ms':>7} {'non-2xx':>8} {'load':>5}")  # fmt: skip
    for run in runs:
        print(f"{run.server:20} {run.route:7} {run.rate:9,.0f} {run.rate / PAPER:8.2f} "
              f"{run.p50_ms:7.2f} {run.p95_ms:7.2f} {run.p99_ms:7.2f} {run.non_2xx:8} "
              f"{run.load_before:5.2f}")  # fmt: skip
    print(f"{'paper 003 (Go)':20} {'check':7} {PAPER:9,.0f} {1:8.2f}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / "deposit_check.csv", "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(
            ["server", "route", "connections", "seconds", "requests", "requests_per_second",
             "paper_requests_per_second", "p50_ms", "p95_ms", "p99_ms", "max_ms", "non_2xx",
             "socket_errors", "cores", "load_before"]
        )  # fmt: skip
        for run in runs:
            writer.writerow(
                [run.server, run.route, run.connections, f"{run.seconds:.2f}", run.requests,
                 f"{run.rate:.0f}", f"{PAPER:.0f}", f"{run.p50_ms:.3f}", f"{run.p95_ms:.3f}",
                 f"{run.p99_ms:.3f}", f"{run.max_ms:.3f}", run.non_2xx, run.socket_errors,
                 os.cpu_count(), f"{run.load_before:.2f}"]
            )  # fmt: skip
    chart(runs)


def chart(runs: list[Run]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 4.5))
    labels = [f"{run.server}\n{run.route}" for run in runs] + ["paper 003\n(Go) check"]
    rates = [run.rate for run in runs] + [PAPER]
    colours = ["#2a6f97" if run.route == "check" else "#7b9e3e" for run in runs] + ["#999999"]
    bars = axes.bar(labels, rates, color=colours)
    axes.bar_label(bars, labels=[f"{rate:,.0f}/s" for rate in rates])
    axes.axhline(TARGET, color="#c0392b", linestyle="--", label=f"target {TARGET:,.0f}/s")
    axes.set_ylabel("requests answered per second")
    axes.set_title(f"one notary member, wrk keep-alive, {runs[0].connections} connections, 2 cores")
    axes.legend()
    axes.tick_params(axis="x", labelsize=8)
    figure.tight_layout()
    figure.savefig(RESULTS / "deposit_check.png", dpi=120)
    plt.close(figure)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--consumers", type=int, default=20_000)
    parser.add_argument("--serve", choices=SERVERS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.consumers)
        return 0
    with tempfile.TemporaryDirectory() as folder:
        runs = [measure(server, "check", args, Path(folder)) for server in SERVERS]
        runs.append(measure(SERVERS[0], "attest", args, Path(folder)))
    report(runs)
    if runs[0].rate < TARGET:
        print(f"below the target of {TARGET:,.0f} checks/s", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
