"""Faults: a reorganisation while the feed maps, and the mapper killed mid-stream."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from quotes import TYPE, deploy_quotes, quotes_mappings

from pervasive.chain import Ledger
from pervasive.interop import RETRACTED_TYPE, InteropFeed, events_path, read_event

pytestmark = [pytest.mark.anvil, pytest.mark.parametrize("ledger", ["anvil"], indirect=True)]

CHILD = Path(__file__).with_name("interop_child.py")


async def _reorg(ledger: Ledger, depth: int, txs: list[dict[str, str]]) -> None:
    answer: Any = await ledger.w3.provider.make_request(  # type: ignore[arg-type]
        "anvil_reorg", [depth, [[tx, 0] for tx in txs]]
    )
    assert "error" not in answer, answer


async def wait_for(condition: Any, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


async def test_a_reorganisation_during_mapping_retracts_the_orphans_and_delivers_once(
    ledger: Ledger, tmp_path: Path
) -> None:
    signer = ledger.dev_signer(0)
    quotes = await deploy_quotes(ledger, signer)
    feed = InteropFeed(ledger, tmp_path / "home", poll_interval=0.02)
    feed.follow(quotes.address, quotes_mappings(tmp_path / "spec"))
    task = asyncio.create_task(feed.run())
    try:
        for name in ("kept", "orphan-1", "orphan-2"):
            await quotes.transact(signer, "quote", name, 1)  # one block each
        await wait_for(lambda: feed.counters["mapped"] == 3)
        head = await ledger.block_number()

        # the last two blocks are replaced; the first new one quotes "winner"
        data = "0x" + quotes.encode("quote", "winner", 7).hex()
        tx = {"from": ledger.dev_signer(5).address, "to": quotes.address, "data": data}
        await _reorg(ledger, 2, [tx])
        assert await ledger.block_number() == head
        await wait_for(lambda: feed.counters["mapped"] == 4)
        await asyncio.sleep(0.2)  # a few more polls: nothing else may come
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    stream = feed.store.after(0)
    assert [(e.type, e.subject) for e in stream] == [
        (TYPE, "kept"), (TYPE, "orphan-1"), (TYPE, "orphan-2"),
        (RETRACTED_TYPE, "orphan-2"), (RETRACTED_TYPE, "orphan-1"), (TYPE, "winner"),
    ]  # fmt: skip
    live = [e for e in stream if e.type == TYPE and not e.retracted]
    assert [e.subject for e in live] == ["kept", "winner"]
    retracted_ids = {read_event(e.body).get_data()["id"] for e in stream[3:5]}
    assert retracted_ids == {stream[1].id, stream[2].id}
    assert len({(e.source, e.id) for e in stream}) == len(stream)
    assert feed.counters["retracted"] == 2 and feed.refusals == {}
    feed.close()


def subjects(home: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(events_path(home), timeout=30)) as db:
        try:
            rows = db.execute("SELECT subject FROM interop_events ORDER BY seq").fetchall()
        except sqlite3.OperationalError:
            return []  # the child is still creating the tables
    return [str(row[0]) for row in rows]


async def test_a_killed_mapper_resumes_without_loss_or_repetition(
    ledger: Ledger, tmp_path: Path
) -> None:
    signer = ledger.dev_signer(0)
    quotes = await deploy_quotes(ledger, signer)
    batches, size = 4, 25
    for batch in range(batches):
        await quotes.transact(signer, "quote_many", f"q{batch}-", size, 1)
    expected = [f"q{b}-{i}" for b in range(batches) for i in range(size)]
    home, spec = tmp_path / "home", tmp_path / "spec"
    quotes_mappings(spec)  # the schema file, written once

    assert ledger.url is not None
    child = subprocess.Popen(
        [sys.executable, str(CHILD), ledger.url, quotes.address, str(home), str(spec), "0.02"]
    )
    try:
        for _ in range(1500):
            if events_path(home).exists() and len(subjects(home)) >= 20:
                break
            if child.poll() is not None:
                break
            await asyncio.sleep(0.01)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL
    before = len(subjects(home))
    assert 20 <= before < len(expected)  # killed mid-stream

    feed = InteropFeed(ledger, home)
    feed.follow(quotes.address, quotes_mappings(spec))
    assert await feed.poll() == len(expected) - before
    assert subjects(home) == expected
    ids = [e.id for e in feed.store.after(0, limit=1000)]
    assert ids == sorted(ids) and len(set(ids)) == len(expected)
    feed.close()
