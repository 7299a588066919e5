"""The admission handshake: a client waits until the broker's process lists its identity."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from pervasive.errors import ConfigError
from pervasive.messaging import admission_watch, admitted_file, await_admission
from pervasive.messaging.admission import admission_state, write_admitted


class FakeBroker:
    """Counts refreshes; settles at once."""

    def __init__(self) -> None:
        self.refreshes = 0

    def refresh(self) -> None:
        self.refreshes += 1

    async def settle(self) -> None:
        await asyncio.sleep(0)


async def test_no_broker_running_means_no_wait(tmp_path: Path) -> None:
    async with asyncio.timeout(0.5):
        await await_admission(tmp_path, "lock-7")


async def test_listed_identity_is_admitted(tmp_path: Path) -> None:
    write_admitted(admitted_file(tmp_path), ["lock-7", "svc:shadow"])
    async with asyncio.timeout(0.5):
        await await_admission(tmp_path, "svc:shadow")


async def test_unlisted_identity_times_out_with_advice(tmp_path: Path) -> None:
    write_admitted(admitted_file(tmp_path), ["lock-7"])
    with pytest.raises(ConfigError, match=r"has not admitted 'lock-8'.*revoked"):
        await await_admission(tmp_path, "lock-8", timeout=0.1, poll=0.01)


async def test_write_is_atomic_and_leaves_no_partial_file(tmp_path: Path) -> None:
    path = admitted_file(tmp_path)
    write_admitted(path, ("a", "b"))
    assert json.loads(path.read_text()) == ["a", "b"]
    assert [p.name for p in path.parent.iterdir()] == ["admitted.json"]


def test_state_changes_with_identities_and_crl(tmp_path: Path) -> None:
    crl = tmp_path / "crl.pem"
    before = admission_state(["b", "a"], crl)
    assert before.identities == ("a", "b") and before.crl_mtime_ns == 0
    crl.write_text("crl")
    assert admission_state(["a", "b"], crl) != before


async def test_watch_admits_a_certificate_issued_meanwhile(tmp_path: Path) -> None:
    identities = ["svc:shadow"]
    broker = FakeBroker()
    path = admitted_file(tmp_path)
    async with admission_watch(broker, lambda: identities, tmp_path / "crl.pem", path,
                               interval=0.01):  # fmt: skip
        assert json.loads(path.read_text()) == ["svc:shadow"]
        identities.append("lock-7")  # issued by another process
        async with asyncio.timeout(2):
            await await_admission(tmp_path, "lock-7", poll=0.01)
        assert broker.refreshes == 1
    assert not path.exists(), "a stopped broker admits nobody"


async def test_a_change_refreshed_in_process_is_not_refreshed_again(tmp_path: Path) -> None:
    identities = ["svc:shadow"]
    broker = FakeBroker()
    path = admitted_file(tmp_path)
    async with admission_watch(broker, lambda: identities, tmp_path / "crl.pem", path,
                               interval=0.01) as watch:  # fmt: skip
        identities.append("lock-7")  # issued by this process: the CA calls its listener
        watch.refresh()
        async with asyncio.timeout(2):
            await await_admission(tmp_path, "lock-7", poll=0.01)
    assert broker.refreshes == 1


async def test_watch_removes_the_list_when_the_block_fails(tmp_path: Path) -> None:
    path = admitted_file(tmp_path)
    with pytest.raises(RuntimeError):
        async with admission_watch(FakeBroker(), list, tmp_path / "crl.pem", path):
            raise RuntimeError("broker died")
    assert not path.exists()
