"""A smart-lock agreement on a real chain and a real broker, and nodes to run on it.

``Harness.create`` registers two parties (provider = party 0, insurer = party 1), one
or more locks and ``n`` nodes, creates and approves the agreement, funds the
provider's escrow, and starts a broker with a platform CA. ``harness.node(i)`` builds
node ``i``'s service (optionally with a lying function or a lossy connection), and
``harness.publish_month()`` plays the simulated month through MQTT as the locks.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pervasive.apps.smartlock import (
    RENTAL_TIME,
    RentalMonth,
    simulate_month,
    smart_lock_declaration,
)
from pervasive.chain import Ledger, Signer
from pervasive.config import NodeSettings, Settings
from pervasive.contracts import Agreement, DeploymentBook, Registry
from pervasive.crypto import PrivateKey
from pervasive.domain import QoS, Reaction, ReactionKind, SigningMode
from pervasive.messaging import ClientOptions, EmbeddedBroker, MqttClient, MqttMessage
from pervasive.offchain import OffchainFunction
from pervasive.offchain.node import (
    AgreementPlan,
    ContractAgreementPort,
    IntermediateNodeService,
    NodePlan,
    PartyPlan,
    SensorPlan,
    load_agreement,
    provision_agreement,
    sensor_topic,
)
from pervasive.pki import CertificateAuthority
from pervasive.platform import Platform
from pervasive.sensing import SensorMessage, sign_sensor_message

RATE = 10**9
"""Premium in wei per rental second."""
ESCROW = 10**18


@dataclass
class Harness:
    ledger: Ledger
    root: Path
    agreement: Agreement
    registry: Registry
    ca: CertificateAuthority
    broker: EmbeddedBroker
    month: RentalMonth
    lock_keys: tuple[PrivateKey, ...]
    node_signers: tuple[Signer, ...]
    mode: SigningMode
    artifacts: Path
    plan: AgreementPlan | None = None
    platform: Platform | None = None
    clients: list[MqttClient] = field(default_factory=list)

    @classmethod
    async def create(
        cls,
        ledger: Ledger,
        root: Path,
        artifacts: Path,
        *,
        nodes: int = 2,
        locks: int = 1,
        rentals: int = 3,
        qos: QoS = QoS.OFFCHAIN_PROOF,
        mode: SigningMode = SigningMode.RING,
        book: DeploymentBook | None = None,
    ) -> Harness:
        month = simulate_month(2026, 3, locks=locks, rentals=rentals, tokens=4, seed=11)
        parties = (
            PartyPlan("provider", ledger.dev_signer(0)),
            PartyPlan("insurer", ledger.dev_signer(1)),
        )
        lock_keys = tuple(PrivateKey(bytes([0x40 + i]) * 32) for i in range(locks))
        sensors = tuple(
            SensorPlan(f"lock-{i}", key, smart_lock_declaration(key.public_key.to_bytes()), owner=0)
            for i, key in enumerate(lock_keys)
        )
        signers = tuple(ledger.dev_signer(2 + i) for i in range(nodes))
        node_plans = tuple(NodePlan(f"node-{i}", s, party=i % 2) for i, s in enumerate(signers))
        plan = AgreementPlan(
            parties=parties,
            sensors=sensors,
            nodes=node_plans,
            function=RENTAL_TIME,
            window_size=month.window_size,
            sliding_factor=month.window_size,
            qos=qos,
            reaction=Reaction(ReactionKind.PAY_PER_UNIT, payer=0, payee=1, amount=RATE),
            escrow={0: ESCROW},
            mode=mode,
        )
        registry = await Registry.open(ledger, ledger.dev_signer(0), artifacts=artifacts, book=book)
        agreement = await provision_agreement(
            ledger, ledger.dev_signer(0), plan, registry=registry, artifacts=artifacts
        )
        settings = Settings(home=root, broker="embedded", password="test password")
        platform = Platform(settings)  # CA and broker; the ledger is the test's
        broker = await platform.broker()
        assert isinstance(broker, EmbeddedBroker)
        return cls(
            ledger, root, agreement, registry, platform.authority, broker, month, lock_keys,
            signers, mode, artifacts, plan, platform=platform,
        )  # fmt: skip

    def options(self, identity: str, *, durable: bool = False) -> ClientOptions:
        creds = self.ca.client_credentials(identity, self.root / "mqtt")
        outbox = self.root / "outbox" / f"{identity.replace(':', '_')}.sqlite" if durable else None
        return ClientOptions("127.0.0.1", self.broker.port, creds, ack_timeout=5.0, outbox=outbox)

    async def client(self, identity: str) -> MqttClient:
        client = MqttClient(self.options(identity))
        await self.broker.settle()  # the new identity's ACL is applied in the background
        await client.connect()
        self.clients.append(client)
        return client

    async def node(
        self,
        index: int,
        *,
        function: OffchainFunction = RENTAL_TIME,
        options: NodeSettings | None = None,
        wrap: Callable[[Any], Any] | None = None,
    ) -> IntermediateNodeService:
        signer = self.node_signers[index]
        loaded = await load_agreement(
            self.ledger,
            self.registry,
            self.agreement.address,
            artifacts=self.artifacts,
        )
        connection: Any = await self.client(f"svc:node.n{index}")
        if wrap is not None:
            connection = wrap(connection)
        return IntermediateNodeService(
            key=PrivateKey(signer.private_key),
            agreement=loaded.spec,
            function=function,
            connection=connection,
            chain=ContractAgreementPort(loaded.contract, signer),
            database=self.root / f"node-{index}.sqlite",
            sensor_ids=loaded.sensor_ids,
            options=options
            or NodeSettings(gap_timeout=1.0, protocol_timeout=2.0, takeover_after=1.0),
        )

    def lock_messages(self) -> list[tuple[int, SensorMessage]]:
        """Every lock message of the month, signed, in time order."""
        out = []
        for lock, q, values in self.month.messages():
            key = self.lock_keys[lock]
            declaration = smart_lock_declaration(key.public_key.to_bytes())
            out.append((lock, sign_sensor_message(key, declaration, q, list(values))))
        return out

    async def publish(self, items: Sequence[tuple[int, bytes]]) -> None:
        """Publish raw payloads as lock ``i`` (one MQTT session per lock)."""
        sessions: dict[int, MqttClient] = {}
        for lock, payload in items:
            if lock not in sessions:
                sessions[lock] = await self.client(f"lock-{lock}")
            await sessions[lock].publish(sensor_topic(f"lock-{lock}"), payload)

    async def publish_month(self) -> None:
        await self.publish([(lock, m.encode()) for lock, m in self.lock_messages()])

    async def close(self) -> None:
        for client in self.clients:
            with contextlib.suppress(Exception):
                await client.close()
        if self.platform is not None:
            await self.platform.stop()


@contextlib.asynccontextmanager
async def running(*services: IntermediateNodeService) -> AsyncIterator[None]:
    for service in services:
        await service.start()
    try:
        yield
    finally:
        for service in services:
            await service.stop()


class Lossy:
    """An MQTT connection that loses the sensor messages ``drop`` selects (a network fault)."""

    def __init__(self, inner: MqttClient, drop: Callable[[MqttMessage], bool]) -> None:
        self.inner = inner
        self.drop = drop
        self.dropped = 0

    @property
    def client_id(self) -> str:
        return self.inner.client_id

    async def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> None:
        await self.inner.publish(topic, payload, qos=qos, retain=retain)

    async def subscribe(self, topic_filter: str, *, qos: int = 1) -> None:
        await self.inner.subscribe(topic_filter, qos=qos)

    async def messages(self) -> AsyncIterator[MqttMessage]:
        async for message in self.inner.messages():
            if self.drop(message):
                self.dropped += 1
                continue
            yield message


async def settle(seconds: float = 0.2) -> None:
    await asyncio.sleep(seconds)
