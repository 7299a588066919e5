"""Four ``pervasive notary run`` processes: DKG, contracts, deposit check and a penalty.

Each member is its own process, as deployed: B_u and B_d are two anvil nodes (chain ids
31337 and 31338) reached over JSON-RPC, MQTT is the platform's embedded broker in the
test process, the members' keys are keystore accounts. The test is the consumer C and
the provider P: C gets its attestations from the processes over HTTP, pays, P never
posts the index, C challenges one member and the processes slash P's deposit. A member
stopped with SIGTERM and started again resumes from its SQLite file (no second DKG).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from pervasive.apps.dataexchange.committee import free_port
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
from pervasive.contracts import compile_contract
from pervasive.contracts.data_index import DataIndex
from pervasive.contracts.notary import Notary
from pervasive.contracts.user_contract import UserContract
from pervasive.crosschain.challenge import Challenge, ChallengeKind
from pervasive.crosschain.committee_spec import CommitteeMember, CommitteeSpec
from pervasive.crosschain.exchange import Consumer
from pervasive.crypto import PrivateKey
from pervasive.platform import Platform

pytestmark = [pytest.mark.anvil, pytest.mark.slow, pytest.mark.timeout(240)]

PASSWORD = "notary process test"
HERE = Path(__file__).resolve().parent


@pytest.fixture
async def chains(tmp_path: Path) -> AsyncIterator[tuple[AnvilNode, AnvilNode]]:
    nodes = (
        AnvilNode(binary=find_anvil(start=HERE), chain_id=31337),
        AnvilNode(binary=find_anvil(start=HERE), chain_id=31338),
    )
    for node in nodes:
        await node.start()
    try:
        yield nodes
    finally:
        for node in nodes:
            await node.stop()


async def _ledger(home: Path, url: str) -> Ledger:
    return await open_ledger(Settings(home=home / "client", backend="rpc", rpc_url=url))


def _member(
    home: Path, index: int, env: dict[str, str], args: list[str]
) -> subprocess.Popen[bytes]:
    with open(home / f"member-{index}.log", "ab") as log:  # the child keeps its own copy
        return subprocess.Popen(
            [sys.executable, "-m", "pervasive", "--home", str(home), *args],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    running: list[subprocess.Popen[bytes]] = []
    yield running
    for process in running:
        if process.poll() is None:
            process.terminate()
    for process in running:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def _key_row(database: Path) -> tuple[bytes, bytes]:
    with sqlite3.connect(database) as db:
        row = db.execute("SELECT sealed_share, group_key FROM crosschain_keys").fetchall()
    assert len(row) == 1
    return bytes(row[0][0]), bytes(row[0][1])


async def _serving(
    session: aiohttp.ClientSession,
    url: str,
    timeout: float,
    home: Path,
    member: subprocess.Popen[bytes],
) -> None:
    """Wait until ``member`` answers ``/health``; fail with every member's log if it can't."""
    try:
        async with asyncio.timeout(timeout):
            while member.poll() is None:
                try:
                    async with session.get(f"{url}/health") as reply:
                        if reply.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.5)
        problem = f"exited with {member.returncode}"
    except TimeoutError:
        problem = f"did not serve within {timeout} s"
    logs = "\n".join(
        f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}"
        for log in sorted(home.glob("member-*.log"))
    )
    pytest.fail(f"the member at {url} {problem}\n{logs}")


async def test_four_member_processes_run_the_dkg_and_punish_a_withholding_provider(
    home: Path, chains: tuple[AnvilNode, AnvilNode], processes: list[subprocess.Popen[bytes]]
) -> None:
    user_node, data_node = chains
    for name in ("notary", "deposit_oracle", "user_contract", "data_index"):
        compile_contract(name, cache_dir=home / "artifacts")
    platform = Platform(Settings(home=home, broker="embedded", password=PASSWORD))
    broker = await platform.broker()
    user = await _ledger(home, user_node.url)
    data = await _ledger(home / "d", data_node.url)
    try:
        bank = Signer.from_key(anvil_dev_keys()[0])
        index = await DataIndex.open(data, Signer.from_key(anvil_dev_keys()[6]))
        keystore = Keystore(home / "keystore", kdf_iterations=2)
        keys = [PrivateKey(secrets.token_bytes(32)) for _ in range(4)]
        for i, key in enumerate(keys, 1):
            keystore.store(f"notary-{i}", Signer.from_key(key.secret), PASSWORD)
            await user.transactor(bank).transact(
                ContractCall(to=key.address, data=b"", value=10**18, gas=21_000)
            )
            platform.authority.client_credentials(f"svc:notary.m{i}", home / "mqtt")
        spec = CommitteeSpec(
            chain_id=31337, threshold=3, setup_nonce=secrets.token_bytes(32),
            publish_window=3, period_end=int(time.time()) + 3600, coef_percent=150,
            dkg_start=time.time() + 12, dkg_step=10,
            members=tuple(
                CommitteeMember(i, k.public_key, f"http://127.0.0.1:{free_port()}")
                for i, k in enumerate(keys, 1)
            ),
        )  # fmt: skip
        spec.save(home / "committee.json")
        env = {**os.environ, "PERVASIVE_PASSWORD": PASSWORD,
               "PERVASIVE_MQTT_PORT": str(broker.port)}  # fmt: skip
        args = [
            "--backend", "rpc", "--rpc-url", user_node.url, "notary", "run",
            "--committee", str(home / "committee.json"),
            "--data-rpc-url", data_node.url, "--data-index", index.address,
        ]  # fmt: skip
        for i in range(1, 5):
            processes.append(_member(home, i, env, [*args, "--account", f"notary-{i}"]))
        async with aiohttp.ClientSession() as session:
            for member, process in zip(spec.members, processes, strict=True):
                await _serving(session, member.url, 120, home, process)
            status = subprocess.run(
                [sys.executable, "-m", "pervasive", "--home", str(home), "notary", "status",
                 "--committee", str(home / "committee.json")],
                env=env, capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
            assert status.returncode == 0, status.stdout + status.stderr
            assert status.stdout.count("serving") == 4

            with sqlite3.connect(home / "notary" / "m1.sqlite") as db:
                notary_address, user_address = db.execute(
                    "SELECT notary, user_contract FROM crosschain_contracts"
                ).fetchone()
            notary = Notary.at(user, notary_address)
            consumer, provider = (Signer.from_key(anvil_dev_keys()[i]) for i in (5, 6))
            for party in (consumer, provider):
                await notary.with_signer(party).deposit(10**18)
            client = Consumer(
                signer=consumer, ledger=user, user_contract=UserContract.at(user, user_address),
                members=[m.url for m in spec.members], threshold=3, session=session,
            )  # fmt: skip
            await asyncio.sleep(0.5)  # the members' pool views see the deposits
            pending = await client.pay(provider.address, 10**15)
            receipt = await user.transactor(consumer).wait(pending)
            payment = UserContract.at(user, user_address).payments(receipt)[0]
            challenge = Challenge(
                ChallengeKind.UNDELIVERED,
                payment.payment_id,
                bytes.fromhex(receipt.transaction_hash[2:]),
            )
            async with session.post(
                f"{spec.members[1].url}/challenge", json=challenge.to_json()
            ) as reply:
                assert reply.status == 202
            async with asyncio.timeout(60):
                while not await notary.is_settled(challenge.id):
                    await asyncio.sleep(0.3)
            assert await notary.deposit_of(provider.address) == 10**18 - payment.required
            assert await notary.deposit_of(consumer.address) == 10**18

            key_row = _key_row(home / "notary" / "m3.sqlite")
            processes[2].terminate()
            assert processes[2].wait(timeout=20) == 0
            processes[2] = _member(home, 3, env, [*args, "--account", "notary-3"])
            await _serving(session, spec.members[2].url, 60, home, processes[2])
            assert _key_row(home / "notary" / "m3.sqlite") == key_row  # the same share, no new DKG
            async with session.get(
                f"{spec.members[2].url}/challenge", params={"id": "0x" + challenge.id.hex()}
            ) as reply:
                answer = json.loads(await reply.text())
            assert answer["outcome"] == "penalize" and answer["settled"] is True
    finally:
        await user.close()
        await data.close()
        await platform.stop()
