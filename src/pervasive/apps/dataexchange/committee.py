"""A notary committee of ``n`` members as tasks of this process (demo, tests, benchmarks).

Each member is the very :class:`~pervasive.crosschain.notary.NotaryService` that
``pervasive notary run`` runs in its own process: its own secp256k1 key, SQLite file,
MQTT session (``svc:notary.<member address>`` with the platform CA's certificate) and HTTP port.
:func:`start_committee` writes the committee file, funds the members on B_u (member 1
deploys the contracts, any member may send a penalty), starts them and waits until
every member serves.

Example::

    async with start_committee(platform, ledger, data_chain, root=home / "notary") as c:
        c.urls          # the members' deposit-check endpoints
        c.contracts     # C_sp, C_o, C_u on B_u
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from pervasive.chain import ContractCall, Ledger
from pervasive.crosschain.chains import DataChain
from pervasive.crosschain.committee_spec import CommitteeContracts, CommitteeMember, CommitteeSpec
from pervasive.crosschain.notary import NotaryService
from pervasive.crypto import PrivateKey
from pervasive.messaging import MqttClient
from pervasive.platform import Platform
from pervasive.storage import ContentStore

__all__ = ["MEMBER_FUNDING", "LocalCommittee", "free_port", "start_committee"]

MEMBER_FUNDING = 10**18
"""Wei each member gets on B_u for its transactions (deployment, penalties)."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class LocalCommittee:
    """The running members and what they agreed on."""

    spec: CommitteeSpec
    members: list[NotaryService]
    keys: list[PrivateKey]
    setup_seconds: float
    """Wall time from the first member's start to every member serving."""

    @property
    def urls(self) -> list[str]:
        """The members' HTTP endpoints, in index order."""
        return [m.url for m in self.members]

    @property
    def contracts(self) -> CommitteeContracts:
        """C_sp, C_o and C_u on B_u."""
        contracts = self.members[0].contracts
        assert contracts is not None  # every member serves once started
        return contracts


@asynccontextmanager
async def start_committee(
    platform: Platform,
    user_ledger: Ledger,
    data_chain: DataChain,
    *,
    root: Path,
    n: int = 4,
    threshold: int = 3,
    publish_window: int = 10,
    period: int = 3600,
    coef_percent: int = 150,
    dkg_step: float = 10.0,
    keys: list[PrivateKey] | None = None,
    artifacts: Path | None = None,
    timeout: float = 120.0,
) -> AsyncIterator[LocalCommittee]:
    """Run an ``n``-member committee with threshold ``threshold`` until the block exits."""
    keys = keys or [PrivateKey(secrets.token_bytes(32)) for _ in range(n)]
    funder = user_ledger.dev_signer(9)
    for key in keys:
        funding = ContractCall(to=key.address, data=b"", value=MEMBER_FUNDING, gas=21_000)
        await user_ledger.transactor(funder).transact(funding)
    now = time.time()
    spec = CommitteeSpec(
        chain_id=user_ledger.chain_id,
        threshold=threshold,
        setup_nonce=secrets.token_bytes(32),
        publish_window=publish_window,
        period_end=int(now) + period,
        coef_percent=coef_percent,
        dkg_start=now + 2.0,  # every member's inbox is subscribed by then
        dkg_step=dkg_step,
        members=tuple(
            CommitteeMember(i + 1, key.public_key, f"http://127.0.0.1:{free_port()}")
            for i, key in enumerate(keys)
        ),
    )
    spec.save(root / "committee.json")
    content = ContentStore(root / "content")
    async with contextlib.AsyncExitStack() as stack:
        members = []
        for member, key in zip(spec.members, keys, strict=True):
            # the client id is the certificate's identity: one per member key, so two
            # committees on one broker never take over each other's sessions
            identity = f"svc:notary.{member.address.lower().removeprefix('0x')}"
            options = platform.client_options(
                identity, outbox=root / f"m{member.index}-outbox.sqlite",
            )  # fmt: skip
            client = MqttClient(options)
            await client.connect()
            stack.push_async_callback(client.close)
            service = NotaryService(
                key=key, spec=spec, connection=client, user_ledger=user_ledger,
                data_chain=data_chain, database=root / f"m{member.index}.sqlite",
                content=content, port=int(member.url.rsplit(":", 1)[1]), artifacts=artifacts,
            )  # fmt: skip
            members.append(await stack.enter_async_context(service))
        for service in members:
            await service.wait_ready(timeout)
        committee = LocalCommittee(spec, members, keys, time.time() - now)
        committee.spec = spec.with_contracts(committee.contracts)
        committee.spec.save(root / "committee.json")
        yield committee
