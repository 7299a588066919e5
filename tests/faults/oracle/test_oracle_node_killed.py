"""Three ``pervasive oracle run`` processes; one is killed (SIGKILL) in the middle of a query.

The chain is an anvil node reached over JSON-RPC, MQTT the platform's embedded broker in
the test process, the oracles keystore accounts of the data directory: as deployed. The
source answers slowly, so the designated node of the query is killed while every node is
still fetching. The two others (t = 2) still answer, exactly once: one ``QueryAnswered``,
the consumer called back once. The killed node is started again on its SQLite file: it
does not answer the finished query a second time, and it answers the next query with
the others.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import web

from pervasive.chain import (
    AnvilNode,
    ContractCall,
    Keystore,
    Ledger,
    Signer,
    anvil_dev_keys,
    find_anvil,
    open_ledger,
)
from pervasive.config import Settings
from pervasive.contracts import DeploymentBook
from pervasive.contracts.compiler import compile_source
from pervasive.contracts.contract import Contract
from pervasive.contracts.deployments import deploy
from pervasive.contracts.oracle_hub import (
    OracleHub,
    QueryAnswered,
    QueryRequested,
    QueryState,
)
from pervasive.platform import Platform

pytestmark = [pytest.mark.anvil, pytest.mark.slow, pytest.mark.timeout(180)]

PASSWORD = "oracle process test"
HERE = Path(__file__).resolve().parent
CONSUMER = HERE.parents[1] / "integration" / "oracle" / "shipping_consumer.vy"
SLOW = 1.5
"""Seconds the source takes to answer: the window in which a node is killed."""


class SlowCostService:
    """``ShipmentCost?device=...`` answering after :data:`SLOW` seconds."""

    def __init__(self) -> None:
        self.url = ""
        self.requests = 0
        self._runner: web.AppRunner | None = None

    async def _cost(self, request: web.Request) -> web.Response:
        self.requests += 1
        await asyncio.sleep(SLOW)
        device = request.query.get("device", "")
        return web.Response(body=json.dumps({"device": device, "cost": 4321}).encode())

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/ShipmentCost", self._cost)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def chain() -> AsyncIterator[AnvilNode]:
    node = AnvilNode(binary=find_anvil(start=HERE))
    await node.start()
    try:
        yield node
    finally:
        await node.stop()


@pytest.fixture
def processes() -> Iterator[dict[int, subprocess.Popen[bytes]]]:
    running: dict[int, subprocess.Popen[bytes]] = {}
    yield running
    for process in running.values():
        if process.poll() is None:
            process.terminate()
    for process in running.values():
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def _start(
    home: Path, index: int, env: dict[str, str], chain_url: str, allow: str
) -> subprocess.Popen[bytes]:
    with open(home / f"oracle-{index}.log", "ab") as log:  # the child keeps its own copy
        return subprocess.Popen(
            [sys.executable, str(HERE / "oracle_cli.py"), "--home", str(home),
             "--backend", "rpc", "--rpc-url", chain_url,
             "oracle", "run", "--name", f"oracle-{index}", "--allow", allow],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip


async def _wait_ready(home: Path, processes: dict[int, subprocess.Popen[bytes]]) -> None:
    try:
        async with asyncio.timeout(60):
            while True:
                for index, process in processes.items():
                    if process.poll() is not None:
                        raise AssertionError(f"oracle-{index} exited with {process.returncode}")
                logs = [(home / f"oracle-{i}.log").read_text(errors="replace") for i in processes]
                if all("answers queries" in log for log in logs):
                    return
                await asyncio.sleep(0.2)
    except (TimeoutError, AssertionError) as exc:
        logs = "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted(home.glob("oracle-*.log"))
        )
        pytest.fail(f"the oracle processes did not start: {exc}\n{logs}")


async def _answers(hub: OracleHub, query_id: int) -> list[QueryAnswered]:
    return [
        e for e in await hub.events() if isinstance(e, QueryAnswered) and e.query_id == query_id
    ]


async def _wait_answered(hub: OracleHub, query_id: int, home: Path, timeout: float) -> None:
    try:
        async with asyncio.timeout(timeout):
            while (await hub.query_status(query_id)).state is not QueryState.ANSWERED:
                await asyncio.sleep(0.1)
    except TimeoutError:
        logs = "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}"
            for p in sorted(home.glob("oracle-*.log"))
        )
        pytest.fail(f"query {query_id} was not answered in {timeout} s\n{logs}")


async def test_a_node_killed_mid_query_leaves_the_others_to_answer_exactly_once(
    tmp_path: Path,
    artifacts: Path,
    chain: AnvilNode,
    processes: dict[int, subprocess.Popen[bytes]],
) -> None:
    home = tmp_path / "home"
    OracleHub.artifact(home / "artifacts")  # compiled once, read by every process
    platform = Platform(Settings(home=home, broker="embedded", password=PASSWORD))
    broker = await platform.broker()
    ledger: Ledger = await open_ledger(
        Settings(home=tmp_path / "client", backend="rpc", rpc_url=chain.url)
    )
    service = SlowCostService()
    await service.start()
    try:
        bank = Signer.from_key(anvil_dev_keys()[0])
        keystore = Keystore(home / "keystore", kdf_iterations=2)
        addresses = []
        for i in (1, 2, 3):
            signer = keystore.store(f"oracle-{i}", Signer.generate(), PASSWORD)
            addresses.append(signer.address)
            await ledger.transactor(bank).transact(
                ContractCall(to=signer.address, data=b"", value=10**18, gas=21_000)
            )
            platform.authority.client_credentials(f"svc:oracle.{i}", home / "mqtt")
        book = DeploymentBook(home / "deployments.sqlite")
        hub = await OracleHub.open(
            ledger, bank, oracles=addresses, threshold=2, timeout=60, max_attempts=2,
            book=book, artifacts=home / "artifacts",
        )  # fmt: skip
        book.close()
        artifact = compile_source("shipping_consumer", CONSUMER.read_text())
        consumer = Contract(
            ledger, (await deploy(ledger, bank, artifact, hub.address)).address, artifact.abi
        )
        env = {**os.environ, "PERVASIVE_PASSWORD": PASSWORD,
               "PERVASIVE_MQTT_PORT": str(broker.port),
               "PERVASIVE_ORACLE_TAKEOVER_AFTER": "1.0"}  # fmt: skip
        allow = f"{service.url}/ShipmentCost"
        for i in (1, 2, 3):
            processes[i] = _start(home, i, env, chain.url, allow)
        await _wait_ready(home, processes)

        source = f"{service.url}/ShipmentCost?device=VerticalPump"
        receipt = await consumer.transact(bank, "ask", 1, source, "cost")
        (asked,) = [e for e in hub.receipt_events(receipt) if isinstance(e, QueryRequested)]
        designated = addresses[asked.query_id % 3]
        victim = addresses.index(designated) + 1
        await asyncio.sleep(SLOW / 3)  # every node is waiting for the slow source
        os.kill(processes[victim].pid, signal.SIGKILL)
        assert processes[victim].wait(timeout=10) == -signal.SIGKILL

        await _wait_answered(hub, asked.query_id, home, timeout=30)
        assert await consumer.call("cost", asked.query_id) == 4321
        (answer,) = await _answers(hub, asked.query_id)
        assert answer.signers == 2 and answer.callback_ok

        # the killed node comes back on its SQLite file: nothing is answered twice
        processes[victim] = _start(home, victim, env, chain.url, allow)
        await _wait_ready(home, processes)
        receipt = await consumer.transact(bank, "ask", 1, source, "cost")
        (again,) = [e for e in hub.receipt_events(receipt) if isinstance(e, QueryRequested)]
        await _wait_answered(hub, again.query_id, home, timeout=30)
        await asyncio.sleep(SLOW + 1.0)  # time for a late, second answer (there is none)
        assert len(await _answers(hub, asked.query_id)) == 1
        assert len(await _answers(hub, again.query_id)) == 1
        assert await consumer.call("cost", again.query_id) == 4321
    finally:
        await service.stop()
        await ledger.close()
        await platform.stop()
