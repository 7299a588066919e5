"""A notary member that crashes in the middle of the key generation, over real MQTT.

Four :class:`~pervasive.crosschain.notary.NotaryService` members on the embedded broker
and anvil run the DKG (paper 003, eq. 2-5). Member 2 is stopped right after it dealt,
before it holds a key; a new service on the same SQLite file (a new process, a new MQTT
connection) takes over. Every member must end with the same group key, and member 2's
share must be the one the others' public shares say it has: it resent its stored deal
and never a second, different one.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from pathlib import Path

import pytest

from pervasive.apps.dataexchange.committee import free_port
from pervasive.config import Settings
from pervasive.crosschain.committee_spec import CommitteeMember, CommitteeSpec
from pervasive.crosschain.evm_chain import EvmDataChain
from pervasive.crosschain.notary import NotaryService
from pervasive.crypto import PrivateKey
from pervasive.crypto.bls import bls_public_key
from pervasive.messaging import MqttClient
from pervasive.platform import Platform

pytestmark = pytest.mark.anvil

N, T = 4, 3


async def test_a_member_crashing_mid_dkg_restarts_from_its_file_and_agrees_the_same_key(
    tmp_path: Path, artifacts: Path
) -> None:
    settings = Settings(home=tmp_path, backend="anvil", broker="embedded", password="pw")
    keys = [PrivateKey(secrets.token_bytes(32)) for _ in range(N)]
    async with asyncio.timeout(90):  # a hang fails here, with the await that hung
        await _run(settings, keys, tmp_path, artifacts)


async def _run(settings: Settings, keys: list[PrivateKey], tmp_path: Path, artifacts: Path) -> None:
    async with Platform(settings, persist=False) as platform, contextlib.AsyncExitStack() as stack:
        ledger = await platform.ledger()
        await platform.broker()
        spec = CommitteeSpec(
            chain_id=ledger.chain_id, threshold=T, setup_nonce=secrets.token_bytes(32),
            publish_window=3, period_end=int(time.time()) + 3600, coef_percent=150,
            dkg_start=time.time() + 2.0, dkg_step=4.0,
            members=tuple(
                CommitteeMember(i + 1, k.public_key, f"http://127.0.0.1:{free_port()}")
                for i, k in enumerate(keys)
            ),
        )  # fmt: skip

        async def member(i: int) -> NotaryService:
            client = MqttClient(platform.client_options(f"svc:notary.m{i + 1}"))
            async with asyncio.timeout(15):
                await client.connect()
            stack.push_async_callback(client.close)
            service = NotaryService(
                key=keys[i], spec=spec, connection=client, user_ledger=ledger,
                data_chain=EvmDataChain(ledger), database=tmp_path / f"m{i + 1}.sqlite",
                artifacts=artifacts,
            )  # fmt: skip
            async with asyncio.timeout(15):
                await service.start()
            stack.push_async_callback(service.stop)
            return service

        members = [await member(i) for i in range(N)]
        crashed = members[1]
        async with asyncio.timeout(10):  # member 2 has sent its deal ...
            while not crashed._dkg_started:
                await asyncio.sleep(0.002)
        async with asyncio.timeout(15):
            await crashed.stop()
            await crashed.connection.close()  # type: ignore[attr-defined]
        assert crashed.key_record is None  # ... and holds no key: it crashed mid-DKG
        await asyncio.sleep(0.5)
        members[1] = await member(1)  # a new process on the same SQLite file
        async with asyncio.timeout(60):
            while any(m.key_record is None for m in members):
                await asyncio.sleep(0.1)
        results = [m.key_record.result for m in members if m.key_record is not None]
        assert len({r.group_key for r in results}) == 1
        assert {r.qualified for r in results} == {(1, 2, 3, 4)}
        for r in results:  # each share is the one every other member's public shares expect
            assert bls_public_key(r.share) == results[0].public_shares[r.index]
        assert members[1].key_record is not None
        assert members[1].key_record.result.index == 2
