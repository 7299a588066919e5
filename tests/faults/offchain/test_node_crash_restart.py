"""A node killed with SIGKILL mid-round restarts without losing the window or committing twice.

Node B (the designated submitter, index 0) runs as its own process, ``pervasive node
run``, against anvil; node A runs in the test with its inbound messages held back, so
B builds window 0, commits to it (journal: secret ``S_{0,B}``) and waits. B is then
killed, restarted, and A let go: the round must complete with B's original commitment
(a second, different one would be a dispute), exactly one update must be recorded and
the premium paid; a second kill and restart after that must send nothing again.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pervasive.chain import Keystore, Ledger, open_ledger
from pervasive.config import Settings
from pervasive.contracts import DeploymentBook
from pervasive.messaging import MqttMessage

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "integration" / "offchain"))
from node_harness import RATE, Harness, Lossy

pytestmark = [pytest.mark.anvil, pytest.mark.slow]

PASSWORD = "crash test"


@pytest.fixture
async def anvil_ledger(tmp_path: Path) -> AsyncIterator[Ledger]:
    ledger = await open_ledger(
        Settings(home=tmp_path / "chain-home", backend="anvil"), persist=False
    )
    try:
        yield ledger
    finally:
        await ledger.close()


class Gate(Lossy):
    """Holds every inbound message back until :meth:`open` (node A looks busy)."""

    def __init__(self, inner: object) -> None:
        super().__init__(inner, lambda m: False)  # type: ignore[arg-type]
        self.opened = asyncio.Event()

    def open(self) -> None:
        self.opened.set()

    async def messages(self) -> AsyncIterator[MqttMessage]:
        async for message in self.inner.messages():
            await self.opened.wait()
            yield message


def journal_secret(database: Path, t: int) -> tuple[bytes, str] | None:
    if not database.exists():
        return None
    with sqlite3.connect(database) as db:
        try:
            row = db.execute(
                "SELECT secret, status FROM offchain_rounds WHERE t = ?", (t,)
            ).fetchone()
        except sqlite3.OperationalError:
            return None
    return None if row is None else (bytes(row[0]), str(row[1]))


async def until(check: object, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while not check():  # type: ignore[operator]
            await asyncio.sleep(0.1)


@dataclass
class NodeB:
    """Node B as its own ``pervasive node run`` process, killed and restarted at will."""

    command: list[str]
    database: Path
    lines: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "PERVASIVE_PASSWORD": PASSWORD}
        self.process = subprocess.Popen(
            self.command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        threading.Thread(target=_pump, args=(self.process, self.lines), daemon=True).start()

    async def running(self, times: int) -> None:
        """Until B said ``runs agreement`` ``times`` times (once per start)."""
        await until(lambda: sum("runs agreement" in line for line in self.lines) == times, 60)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()

    @property
    def output(self) -> str:
        return "".join(self.lines)


async def _world(ledger: Ledger, tmp_path: Path, artifacts: Path) -> tuple[Harness, NodeB]:
    """The agreement (two nodes) and node B's home, keystore and command line."""
    home = tmp_path / "node-b-home"
    (home / "artifacts").mkdir(parents=True)
    for compiled in artifacts.iterdir():
        shutil.copy(compiled, home / "artifacts" / compiled.name)
    book = DeploymentBook(home / "deployments.sqlite")
    h = await Harness.create(ledger, tmp_path / "harness", artifacts, nodes=2, book=book)
    book.close()
    signer_b = h.node_signers[0]
    Keystore(home / "keystore", kdf_iterations=2).store("node-b", signer_b, PASSWORD)
    credentials = h.options("svc:node.node-0").credentials
    await h.broker.settle()
    command = [
        str(Path(sys.executable).parent / "pervasive"), "--home", str(home), "--backend", "rpc",
        "--rpc-url", ledger.url or "", "node", "run", "--agreement", h.agreement.address,
        "--account", "node-b", "--credentials", str(credentials.cert_file.parent),
        "--mqtt-port", str(h.broker.port), "--protocol-timeout", "1", "--takeover-after", "2",
    ]  # fmt: skip
    database = home / "nodes" / signer_b.address.lower() / "node.sqlite"
    return h, NodeB(command, database)


async def test_a_node_killed_mid_round_restarts_without_losing_or_repeating(
    anvil_ledger: Ledger, tmp_path: Path, artifacts: Path
) -> None:
    h, b = await _world(anvil_ledger, tmp_path, artifacts)
    database = b.database
    try:
        gates: list[Gate] = []

        def gate(connection: object) -> Gate:
            gates.append(Gate(connection))
            return gates[0]

        a = await h.node(1, wrap=gate)
        await a.start()
        b.start()
        try:
            await b.running(1)
            await h.publish_month()
            await until(lambda: (journal_secret(database, 0) or (b"", ""))[1] == "open", 60)
            committed = journal_secret(database, 0)
            b.kill()
            b.start()
            # A hears nothing until B is back: B's restart time (seconds on a loaded
            # machine) must not count against A's protocol timeout
            await b.running(2)
            gates[0].open()
            await a.wait_for(lambda s: any(e.kind == "agreed" for e in s.events), timeout=60)
            await until(lambda: (journal_secret(database, 0) or (b"", ""))[1] == "agreed", 60)
            assert journal_secret(database, 0) == (committed[0], "agreed") if committed else False
            await until(lambda: _recorded(database), 60)
            records = await h.agreement.records()
            assert len(records) == 1
            assert await h.agreement.dispute_count() == 0
            insurer = h.agreement.terms.parties[1]
            assert await h.agreement.credit_of(insurer) == RATE * h.month.total_seconds
            # a second crash after the update: the restarted node must not send it again
            b.kill()
            b.start()
            await b.running(3)
            await asyncio.sleep(3)
            assert len(await h.agreement.records()) == 1
            assert a.stats.updates_sent == 0
        finally:
            b.stop()
            await a.stop()
        assert "stopped:" in b.output, b.output
        assert b.output.count("updates sent") == 1, b.output
    finally:
        await h.close()


async def test_messages_sent_while_a_node_is_down_reach_it_after_its_restart(
    anvil_ledger: Ledger, tmp_path: Path, artifacts: Path
) -> None:
    """Half the window arrives, B is killed, the rest is published while B is down.

    B keeps the first half in its message log and the broker keeps the rest for its
    durable session: after the restart B builds the same window as A, they agree, and
    exactly one update pays the true rental time.
    """
    h, b = await _world(anvil_ledger, tmp_path, artifacts)
    messages = [(lock, m.encode()) for lock, m in h.lock_messages()]
    half = len(messages) // 2
    try:
        a = await h.node(1)
        await a.start()
        b.start()
        try:
            await b.running(1)
            await h.publish(messages[:half])
            await until(lambda: _logged(b.database) == half, 60)
            b.kill()
            await h.publish(messages[half:])  # B is down: the broker queues them for it
            b.start()
            await b.running(2)
            await until(lambda: _recorded(b.database), 60)
            await a.wait_for(lambda s: any(e.kind == "agreed" for e in s.events), timeout=60)
            assert _logged(b.database) == len(messages)  # none lost, none twice
            assert len(await h.agreement.records()) == 1
            assert await h.agreement.dispute_count() == 0
            insurer = h.agreement.terms.parties[1]
            assert await h.agreement.credit_of(insurer) == RATE * h.month.total_seconds
        finally:
            b.stop()
            await a.stop()
    finally:
        await h.close()


def _logged(database: Path) -> int:
    """Sensor messages in B's durable message log."""
    if not database.exists():
        return 0
    with sqlite3.connect(database) as db:
        try:
            (count,) = db.execute("SELECT COUNT(*) FROM node_sensor_messages").fetchone()
        except sqlite3.OperationalError:
            return 0
    return int(count)


def _recorded(database: Path) -> bool:
    with sqlite3.connect(database) as db:
        try:
            row = db.execute("SELECT status FROM committee_submissions WHERE round = 0").fetchone()
        except sqlite3.OperationalError:
            return False
    return row is not None and row[0] == "recorded"


def _pump(process: subprocess.Popen[bytes], lines: list[str]) -> None:
    assert process.stdout is not None
    with process.stdout:
        for raw in process.stdout:
            lines.append(raw.decode(errors="replace"))
