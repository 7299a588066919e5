"""A notary member that cannot serve says why at once, instead of waiting out its timeout.

Two setups that cannot finish, over the embedded broker and anvil: a member alone (the
other three never start) whose key generation runs past its deadlines, and a member
whose HTTP port another process holds. ``wait_ready`` raises the reason (which
``pervasive notary run`` prints as one line) long before its timeout.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pervasive.apps.dataexchange.committee import MEMBER_FUNDING, free_port
from pervasive.chain import ContractCall
from pervasive.config import Settings
from pervasive.crosschain.committee_spec import CommitteeMember, CommitteeSpec
from pervasive.crosschain.errors import DkgFailed
from pervasive.crosschain.evm_chain import EvmDataChain
from pervasive.crosschain.notary import NotaryService
from pervasive.crypto import PrivateKey
from pervasive.errors import ConfigError
from pervasive.messaging import MqttClient
from pervasive.platform import Platform

pytestmark = pytest.mark.anvil

N, T = 4, 3


@contextlib.asynccontextmanager
async def _committee(
    tmp_path: Path, artifacts: Path, *, start: tuple[int, ...], dkg_step: float
) -> AsyncIterator[tuple[CommitteeSpec, list[NotaryService]]]:
    settings = Settings(home=tmp_path, backend="anvil", broker="embedded", password="pw")
    keys = [PrivateKey(secrets.token_bytes(32)) for _ in range(N)]
    async with Platform(settings, persist=False) as platform, contextlib.AsyncExitStack() as stack:
        ledger = await platform.ledger()
        await platform.broker()
        for key in keys:  # member 1 deploys the committee's contracts
            funding = ContractCall(to=key.address, data=b"", value=MEMBER_FUNDING, gas=21_000)
            await ledger.transactor(ledger.dev_signer(9)).transact(funding)
        spec = CommitteeSpec(
            chain_id=ledger.chain_id, threshold=T, setup_nonce=secrets.token_bytes(32),
            publish_window=3, period_end=int(time.time()) + 3600, coef_percent=150,
            dkg_start=time.time() + 1.5, dkg_step=dkg_step,
            members=tuple(
                CommitteeMember(i + 1, k.public_key, f"http://127.0.0.1:{free_port()}")
                for i, k in enumerate(keys)
            ),
        )  # fmt: skip
        services = []
        for i in start:
            client = MqttClient(platform.client_options(f"svc:notary.m{i}"))
            await client.connect()
            stack.push_async_callback(client.close)
            member = spec.member(i)
            service = NotaryService(
                key=keys[i - 1], spec=spec, connection=client, user_ledger=ledger,
                data_chain=EvmDataChain(ledger), database=tmp_path / f"m{i}.sqlite",
                port=int(member.url.rsplit(":", 1)[1]), artifacts=artifacts,
            )  # fmt: skip
            services.append(await stack.enter_async_context(service))
        yield spec, services


async def test_a_member_left_alone_fails_its_key_generation_with_the_reason(
    tmp_path: Path, artifacts: Path
) -> None:
    async with _committee(tmp_path, artifacts, start=(1,), dkg_step=1.0) as (_, (alone,)):
        started = time.monotonic()
        with pytest.raises(DkgFailed, match="the key generation failed"):
            await alone.wait_ready(timeout=60)
        assert time.monotonic() - started < 20  # the deadlines, not the timeout
        assert alone.stats.phase == "failed"


async def test_a_member_whose_port_is_taken_says_so_and_the_others_serve(
    tmp_path: Path, artifacts: Path
) -> None:
    with socket.socket() as squatter:
        async with _committee(tmp_path, artifacts, start=(1, 2, 3, 4), dkg_step=4.0) as (
            spec,
            services,
        ):
            host, port = spec.member(3).url.removeprefix("http://").rsplit(":", 1)
            squatter.bind((host, int(port)))
            squatter.listen()
            with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port}"):
                await services[2].wait_ready(timeout=60)
            for index in (1, 2, 4):
                await services[index - 1].wait_ready(timeout=60)
