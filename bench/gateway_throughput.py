"""verifyOwnership calls per second: the node direct, nginx (paper and hardened), our gateway.

Paper 004 (sections 4.6, 4.7, 5.5.2) puts nginx with basic authentication in front of
geth and has the warehouse device call ``verifyOwnership(buyer)``; it gives no figure.
The issue's target: our gateway (HTTPS with client certificates, keep-alive) answers at
least 5,000 calls/s and at least 0.8x the rate of nginx hardened the same way.

One run, one anvil node, one sale order bought by one buyer; every request is the
same ``eth_call`` of ``verifyOwnership(buyer)`` on that order (answer: true), through:

- ``direct``: anvil's own HTTP JSON-RPC (plain HTTP, keep-alive): the ceiling;
- ``nginx paper``: ``deploy/nginx/paper.conf``, plain HTTP + basic auth (SHA-512 crypt);
- ``nginx hardened``: ``deploy/nginx/hardened.conf``, mTLS with the platform CA and CRL,
  njs method allow-list, keep-alive to anvil;
- ``gateway``: :class:`pervasive.gateway.Gateway` (mTLS, roles, sale-order rules, rate
  limit set out of the way) in its own process on uvloop, and again on the standard
  asyncio loop.

Fairness: nginx runs ``--workers`` worker processes (default 1) and the gateway one
process, i.e. one event loop each; anvil, wrk and the proxy share the machine's cores
(2 here), so the CPU each used is printed beside its rate.

Load generator: ``wrk`` (C, epoll, keep-alive; one thread, ``--connections``), the same
for every target. wrk speaks TLS but has no option for a client certificate, and
``h2load`` has none either; so a 20-line ``LD_PRELOAD`` shim, compiled here with ``cc``,
loads the device certificate into every ``SSL_CTX`` wrk creates. A Python client would
have been the bottleneck and ``ab`` speaks HTTP/1.0.

The targets take turns, ``--rounds`` times, so that other work on the machine weighs
on all of them alike; the CPU time each proxy spent per call is printed too, which
moves much less with that load than the rates.

Usage: ``.venv/bin/python bench/gateway_throughput.py [--seconds 4] [--rounds 3]
[--connections 32] [--workers 1]``. Writes ``bench/results/gateway_throughput.csv`` and
``.png``; exits with status 1 when the gateway misses either target.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import csv
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
from nginx_proxy import Nginx, free_port, hardened_config, paper_config

if TYPE_CHECKING:
    from pervasive.chain import Ledger

RESULTS = Path(__file__).parent / "results"
TARGET_RATE = 5_000.0
TARGET_RATIO = 0.8
PASSWORD = "bench"
DEVICE = "door-1"
USER, USER_PASSWORD = "door-1", "correct horse battery staple"
GATEWAY_LOOPS = ("uvloop", "asyncio")

SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
/* wrk has no client-certificate option: load WRK_CLIENT_CERT/WRK_CLIENT_KEY into
   every SSL_CTX it creates (LD_PRELOAD). */
typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_method_st SSL_METHOD;
int SSL_CTX_use_certificate_chain_file(SSL_CTX *ctx, const char *file);
int SSL_CTX_use_PrivateKey_file(SSL_CTX *ctx, const char *file, int type);
SSL_CTX *SSL_CTX_new(const SSL_METHOD *method) {
    SSL_CTX *(*real)(const SSL_METHOD *) =
        (SSL_CTX *(*)(const SSL_METHOD *))dlsym(RTLD_NEXT, "SSL_CTX_new");
    SSL_CTX *ctx = real(method);
    const char *cert = getenv("WRK_CLIENT_CERT"), *key = getenv("WRK_CLIENT_KEY");
    if (ctx != NULL && cert != NULL && key != NULL
        && (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1
            || SSL_CTX_use_PrivateKey_file(ctx, key, 1 /* PEM */) != 1)) {
        fprintf(stderr, "cannot load the client certificate %s with key %s\n", cert, key);
        exit(2);
    }
    return ctx;
}
"""

DONE_LUA = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %.3f %.3f %.3f\\n", summary.requests,
    summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


@dataclass(frozen=True)
class Run:
    """One wrk run against one target."""

    target: str
    connections: int
    seconds: float
    requests: int
    non_2xx: int
    socket_errors: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    cpu: dict[str, float]
    """Cores busy during the run, by process group (wrk, proxy, anvil)."""
    load_before: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def proxy_micros(self) -> float:
        """CPU time the proxy spent per call, in microseconds (steady under other load)."""
        return self.cpu["proxy"] / self.rate * 1e6 if self.requests else 0.0


# -- the world: anvil, a bought sale order, the CA, a device ------------------------------


@dataclass(frozen=True)
class World:
    node_url: str
    order: str
    buyer: str
    home: Path
    body: str


async def build_world(home: Path) -> tuple[World, Ledger]:
    """Anvil with one sale order bought by one buyer; CA, device and its role."""
    from pervasive.chain import open_ledger
    from pervasive.config import Settings
    from pervasive.contracts import DeploymentBook, SaleOrderFactory
    from pervasive.crypto import keccak256
    from pervasive.gateway import Role, RoleBook, roles_file
    from pervasive.pki import CertificateAuthority

    ledger = await open_ledger(Settings(home=home, backend="anvil"), persist=False)
    seller, buyer, warehouse = ledger.dev_signer(0), ledger.dev_signer(1), ledger.dev_signer(2)
    book = DeploymentBook(home / "deployments.sqlite")
    factory = await SaleOrderFactory.open(ledger, seller, book=book)
    book.close()
    order = await factory.create("Tesla", "alpha", 2019, 50 * 10**18, "4AA6", warehouse.address)
    await order.with_signer(buyer).buy()
    assert await order.verify_ownership(buyer.address)
    authority = CertificateAuthority.open(home / "pki", PASSWORD)
    authority.write_credentials(authority.issue_device(DEVICE), home / DEVICE)
    authority.close()
    RoleBook.open(roles_file(home)).assign(DEVICE, Role.WAREHOUSE)
    selector = keccak256(b"verifyOwnership(address)")[:4].hex()
    data = "0x" + selector + "00" * 12 + buyer.address[2:].lower()
    body = json.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": "eth_call",
         "params": [{"to": order.address, "data": data}, "latest"]},
        separators=(",", ":"),
    )  # fmt: skip
    assert ledger.url is not None
    return World(ledger.url, order.address, buyer.address, home, body), ledger


# -- the gateway, in its own process --------------------------------------------------------


def serve_gateway(home: Path, node_url: str, port: int, loop: str) -> None:
    """Run :class:`~pervasive.gateway.Gateway` in this process until killed."""
    from pervasive.chain import open_ledger
    from pervasive.config import GatewaySettings, Settings
    from pervasive.contracts import DeploymentBook, SaleOrderFactory
    from pervasive.gateway import Gateway, RoleBook, roles_file
    from pervasive.pki import CertificateAuthority

    async def main() -> None:
        gateway_settings = GatewaySettings(port=port, requests_per_second=1e9, burst=10**9)
        settings = Settings(home=home, backend="rpc", rpc_url=node_url, gateway=gateway_settings)
        ledger = await open_ledger(settings)
        factory = await SaleOrderFactory.find(ledger, DeploymentBook(home / "deployments.sqlite"))
        authority = CertificateAuthority.open(home / "pki", PASSWORD)
        await Gateway.start(
            ledger,
            authority,
            gateway_settings,
            roles=RoleBook.open(roles_file(home)),
            orders=factory.is_order,
        )
        await asyncio.Event().wait()

    if loop == "uvloop":
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())


# -- measuring ------------------------------------------------------------------------------


def wait_listening(port: int, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"{what} did not listen on port {port} within {timeout:.0f} s")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of ``pids`` so far (from /proc; 0 for a gone process)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(stat[1]) == pid:
                found.append(int(entry.name))
    return found


def anvil_pids(port: int) -> list[int]:
    wanted = f"--port\0{port}\0".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if b"anvil" in command and wanted in command:
                pids.append(int(entry.name))
    return pids


def check_answer(url: str, body: str, headers: dict[str, str], tls: dict[str, Any]) -> None:
    """One call before measuring: the order must answer true through this target."""
    import requests

    answer = requests.post(url, data=body, headers=headers, timeout=10, **tls)
    result = answer.json().get("result") if answer.status_code == 200 else None
    if result is None or int(result, 16) != 1:
        raise SystemExit(f"{url} did not answer verifyOwnership = true: {answer.status_code} "
                         f"{answer.text[:300]}")  # fmt: skip


@dataclass(frozen=True)
class Target:
    """One way to the node: its URL, the wrk script, wrk's environment, the proxy's pids."""

    name: str
    url: str
    script: Path
    env: dict[str, str]
    proxy_pids: list[int]


def wrk(target: Target, seconds: float, connections: int, node_pids: list[int]) -> Run:
    """One wrk run of ``seconds`` against ``target``, with the CPU each party used."""
    binary = shutil.which("wrk") or "/usr/bin/wrk"
    command = [binary, "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency",
               "-s", str(target.script), target.url]  # fmt: skip
    load = os.getloadavg()[0]
    before_self = resource.getrusage(resource.RUSAGE_CHILDREN)
    before = (cpu_seconds(target.proxy_pids), cpu_seconds(node_pids))
    started = time.monotonic()
    out = subprocess.run(
        command, env={**os.environ, **target.env}, capture_output=True, text=True, check=True
    ).stdout
    wall = time.monotonic() - started
    after_self = resource.getrusage(resource.RUSAGE_CHILDREN)
    after = (cpu_seconds(target.proxy_pids), cpu_seconds(node_pids))
    fields = next(line for line in out.splitlines() if line.startswith("RESULT")).split()[1:]
    requests, micros, non_2xx, errors = (int(value) for value in fields[:4])
    p50, p99, peak = (float(value) / 1000 for value in fields[4:])
    used_self = (after_self.ru_utime + after_self.ru_stime) - (
        before_self.ru_utime + before_self.ru_stime
    )
    cpu = {
        "wrk": used_self / wall,
        "proxy": (after[0] - before[0]) / wall,
        "anvil": (after[1] - before[1]) / wall,
    }
    return Run(target.name, connections, micros / 1e6, requests, non_2xx, errors, p50, p99,
               peak, cpu, load)  # fmt: skip


def combined(runs: list[Run]) -> Run:
    """The rounds of one target as one run: summed counts, averaged percentiles and CPU."""
    seconds = sum(run.seconds for run in runs)
    mean = lambda values: sum(values) / len(values)  # noqa: E731
    cpu = {key: sum(run.cpu[key] * run.seconds for run in runs) / seconds for key in runs[0].cpu}
    return Run(
        runs[0].target, runs[0].connections, seconds, sum(run.requests for run in runs),
        sum(run.non_2xx for run in runs), sum(run.socket_errors for run in runs),
        mean([run.p50_ms for run in runs]), mean([run.p99_ms for run in runs]),
        max(run.max_ms for run in runs), cpu, mean([run.load_before for run in runs]),
    )  # fmt: skip


def lua_script(folder: Path, name: str, body: str, headers: dict[str, str]) -> Path:
    lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(body)}"]
    lines += [
        f"wrk.headers[{json.dumps(key)}] = {json.dumps(value)}" for key, value in headers.items()
    ]
    script = folder / f"{name}.lua"
    script.write_text("\n".join(lines) + "\n" + DONE_LUA)
    return script


def compile_shim(folder: Path) -> Path:
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise SystemExit("a C compiler (cc) is needed to give wrk a client certificate")
    source, library = folder / "wrk_client_cert.c", folder / "wrk_client_cert.so"
    source.write_text(SHIM)
    subprocess.run([compiler, "-shared", "-fPIC", "-O2", "-o", str(library), str(source)],
                   check=True)  # fmt: skip
    return library


async def measure(args: argparse.Namespace, folder: Path) -> list[Run]:
    world, ledger = await build_world(folder / "home")
    try:
        return run_all(args, folder, world)
    finally:
        await ledger.close()


def run_all(args: argparse.Namespace, folder: Path, world: World) -> list[Run]:
    """Start every target, then measure them in turns, ``--rounds`` times."""
    from pervasive.pki import CertificateAuthority

    json_headers = {"Content-Type": "application/json"}
    upstream = world.node_url.removeprefix("http://").rstrip("/")
    device = world.home / DEVICE
    cert, key, ca = device / "cert.pem", device / "key.pem", device / "ca.pem"
    tls_env = {"LD_PRELOAD": str(compile_shim(folder)), "WRK_CLIENT_CERT": str(cert),
               "WRK_CLIENT_KEY": str(key)}  # fmt: skip
    tls = {"verify": str(ca), "cert": (str(cert), str(key))}
    node = anvil_pids(int(upstream.rsplit(":", 1)[1]))
    plain = lua_script(folder, "plain", world.body, json_headers)
    token = base64.b64encode(f"{USER}:{USER_PASSWORD}".encode()).decode()
    basic = {**json_headers, "Authorization": f"Basic {token}"}
    targets = [Target("direct", world.node_url + "/", plain, {}, [])]
    check_answer(world.node_url, world.body, json_headers, {})
    with ExitStack() as stack:
        config = paper_config(folder / "paper", upstream=upstream, port=free_port(),
                              users={USER: USER_PASSWORD}, workers=args.workers)  # fmt: skip
        paper = stack.enter_context(Nginx.start(config))
        check_answer(paper.url, world.body, basic, {})
        script = lua_script(folder, "paper", world.body, basic)
        targets.append(Target("nginx paper", paper.url, script, {}, children(paper.process.pid)))

        authority = CertificateAuthority.open(world.home / "pki", PASSWORD)
        config = hardened_config(folder / "hardened", upstream=upstream, port=free_port(),
                                 authority=authority, rate="1000000r/s", burst=10**6,
                                 workers=args.workers)  # fmt: skip
        authority.close()
        hardened = stack.enter_context(Nginx.start(config))
        check_answer(hardened.url, world.body, json_headers, tls)
        workers = children(hardened.process.pid)
        targets.append(Target("nginx hardened", hardened.url, plain, tls_env, workers))

        for loop in GATEWAY_LOOPS:
            port = free_port()
            child = subprocess.Popen(
                [sys.executable, __file__, "--serve-gateway", str(world.home),
                 "--node", world.node_url, "--port", str(port), "--loop", loop],
            )  # fmt: skip
            stack.callback(child.wait)
            stack.callback(child.kill)
            wait_listening(port, "the gateway")
            url = f"https://127.0.0.1:{port}/"
            check_answer(url, world.body, json_headers, tls)
            targets.append(Target(f"gateway {loop}", url, plain, tls_env, [child.pid]))

        for target in targets:  # warm-up: connections, caches (the gateway's known orders)
            wrk(target, 1.0, args.connections, node)
        rounds: dict[str, list[Run]] = {target.name: [] for target in targets}
        for _ in range(args.rounds):
            for target in targets:
                rounds[target.name].append(wrk(target, args.seconds, args.connections, node))
        refused = hardened.refusals()
        if refused:
            raise SystemExit(f"nginx hardened refused calls: {dict(refused)}")
    return [combined(rounds[target.name]) for target in targets]


# -- reporting ------------------------------------------------------------------------------


def report(runs: list[Run], workers: int) -> tuple[float, float, float]:
    by_name = {run.target: run for run in runs}
    gateway = by_name[f"gateway {GATEWAY_LOOPS[0]}"]
    nginx = by_name["nginx hardened"]
    direct = by_name["direct"]
    to_nginx, to_direct = gateway.rate / nginx.rate, gateway.rate / direct.rate
    print(f"{'target':16} {'calls/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'non-2xx':>8} "
          f"{'cores: wrk':>10} {'proxy':>6} {'anvil':>6} {'proxy us/call':>13} "
          f"{'load':>5}")  # fmt: skip
    for run in runs:
        cpu = run.cpu
        print(f"{run.target:16} {run.rate:9,.0f} {run.p50_ms:7.2f} {run.p99_ms:7.2f} "
              f"{run.non_2xx + run.socket_errors:8} {cpu['wrk']:10.2f} {cpu['proxy']:6.2f} "
              f"{cpu['anvil']:6.2f} {run.proxy_micros:13.0f} {run.load_before:5.2f}")  # fmt: skip
    print(f"{'paper 004':16} {'-':>9}  (no throughput figure in the paper)")
    print(f"gateway / nginx hardened: {to_nginx:.2f}x (target >= {TARGET_RATIO}x); "
          f"gateway / direct: {to_direct:.2f}x; gateway {gateway.rate:,.0f} calls/s "
          f"(target >= {TARGET_RATE:,.0f}); nginx workers {workers}, gateway 1 loop")  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / "gateway_throughput.csv", "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(
            ["target", "connections", "seconds", "requests", "calls_per_second", "p50_ms",
             "p99_ms", "max_ms", "non_2xx", "socket_errors", "cores_wrk", "cores_proxy",
             "cores_anvil", "proxy_cpu_us_per_call", "nginx_workers", "target_calls_per_second",
             "target_ratio_nginx", "paper_calls_per_second", "cores", "load_before"]
        )  # fmt: skip
        for run in runs:
            writer.writerow(
                [run.target, run.connections, f"{run.seconds:.2f}", run.requests,
                 f"{run.rate:.0f}", f"{run.p50_ms:.3f}", f"{run.p99_ms:.3f}",
                 f"{run.max_ms:.3f}", run.non_2xx, run.socket_errors, f"{run.cpu['wrk']:.2f}",
                 f"{run.cpu['proxy']:.2f}", f"{run.cpu['anvil']:.2f}", f"{run.proxy_micros:.1f}",
                 workers, f"{TARGET_RATE:.0f}", TARGET_RATIO, "", os.cpu_count(),
                 f"{run.load_before:.2f}"]
            )  # fmt: skip
    chart(runs, nginx.rate)
    return gateway.rate, to_nginx, to_direct


def chart(runs: list[Run], nginx_rate: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (rates, latency) = plt.subplots(1, 2, figsize=(11, 4.5))
    labels = [run.target.replace(" ", "\n", 1) for run in runs]
    palette = {"direct": "#999999", "nginx": "#2a6f97", "gateway": "#7b9e3e"}
    colours = [palette[run.target.split()[0]] for run in runs]
    bars = rates.bar(labels, [run.rate for run in runs], color=colours)
    rates.bar_label(bars, labels=[f"{run.rate:,.0f}/s" for run in runs], fontsize=8)
    rates.axhline(
        TARGET_RATE, color="#c0392b", linestyle="--", label=f"target {TARGET_RATE:,.0f}/s"
    )
    rates.axhline(TARGET_RATIO * nginx_rate, color="#e67e22", linestyle=":",
                  label=f"{TARGET_RATIO}x nginx hardened")  # fmt: skip
    rates.set_ylabel("verifyOwnership eth_calls answered per second")
    rates.set_title("keep-alive, wrk, 2 cores (paper 004 gives no figure)", fontsize=9)
    rates.legend(fontsize=8)
    rates.tick_params(axis="x", labelsize=8)
    width = 0.4
    positions = range(len(runs))
    latency.bar([p - width / 2 for p in positions], [run.p50_ms for run in runs], width,
                label="p50", color="#2a6f97")  # fmt: skip
    latency.bar([p + width / 2 for p in positions], [run.p99_ms for run in runs], width,
                label="p99", color="#c0392b")  # fmt: skip
    latency.set_xticks(list(positions), labels, fontsize=8)
    latency.set_ylabel("latency (ms, log scale)")
    latency.set_yscale("log")
    latency.set_title(f"{runs[0].connections} connections", fontsize=9)
    latency.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(RESULTS / "gateway_throughput.png", dpi=120)
    plt.close(figure)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="length of one wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="turns over the targets")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1, help="nginx worker processes")
    parser.add_argument("--serve-gateway", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--node", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--loop", choices=GATEWAY_LOOPS, default="uvloop", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_gateway:
        serve_gateway(args.serve_gateway, args.node, args.port, args.loop)
        return 0
    with tempfile.TemporaryDirectory() as folder:
        runs = asyncio.run(measure(args, Path(folder)))
    rate, to_nginx, _ = report(runs, args.workers)
    missed = []
    if rate < TARGET_RATE:
        missed.append(f"the gateway answered {rate:,.0f} calls/s, below {TARGET_RATE:,.0f}")
    if to_nginx < TARGET_RATIO:
        missed.append(f"the gateway reached {to_nginx:.2f}x nginx, below {TARGET_RATIO}x")
    for line in missed:
        print(line, file=sys.stderr)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
