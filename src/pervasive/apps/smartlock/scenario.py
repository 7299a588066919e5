"""The smart-lock case study end to end: chain, broker, registry, agreement, nodes, rentals.

What :func:`run_month` does (paper 002, sections 2 and 4), on a :class:`Platform`
(:func:`demo_platform` builds the demo's own):

1. starts the platform's CA and MQTT broker (the demo's: in ``<home>/smartlock``, the
   embedded broker unless the settings insist on mosquitto);
2. registers the provider and the insurer (users), the locks (sensors declaring
   ``[bicycle, token, unlocked, time]``) and one intermediate node per party, creates
   the agreement (window = one month of each lock, ``f`` = :data:`RENTAL_TIME`, reaction =
   ``PAY_PER_UNIT``: ``rate`` wei per rental second from the provider's escrow to the
   insurer), has both parties sign it and funds the provider's escrow;
3. runs both nodes as tasks of this process through :func:`running_node`, the code
   ``pervasive node run`` runs;
4. publishes the month's lock messages over MQTT, each signed by its lock, and waits
   until the window is recorded on-chain (or disputed).

The caller (the CLI) gets progress through callbacks and renders the :class:`MonthReport`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from pervasive.apps.smartlock.rental import (
    FUNCTIONS,
    RENTAL_TIME,
    decode_monthly_rental,
    rental_table,
    smart_lock_declaration,
)
from pervasive.apps.smartlock.simulation import RentalMonth, simulate_month
from pervasive.chain import Ledger, Receipt
from pervasive.config import Settings
from pervasive.contracts import Agreement, Registry
from pervasive.crypto import PrivateKey, keccak256
from pervasive.domain import QoS, Reaction, ReactionKind
from pervasive.messaging import MqttClient
from pervasive.offchain.node import (
    AgreementPlan,
    IntermediateNodeService,
    NodeEvent,
    NodePlan,
    PartyPlan,
    SensorPlan,
    provision_agreement,
    sensor_topic,
)
from pervasive.offchain.node.runner import running_node
from pervasive.platform import Platform
from pervasive.sensing.message import sign_sensor_message

__all__ = ["DEMO_PASSWORD", "MonthReport", "NodeReport", "demo_platform", "lock_key", "run_month"]

DEMO_PASSWORD = "pervasive smart-lock demo"  # noqa: S105 - a local demo CA, documented as such
"""Password of the demo's own CA (``<home>/smartlock/pki``); not the platform's."""


def lock_key(index: int) -> PrivateKey:
    """Lock ``index``'s key, derived from its id so reruns declare the same ``PU_s``."""
    return PrivateKey(keccak256(f"pervasive smart-lock demo lock-{index}".encode()))


@dataclass
class NodeReport:
    """What one node saw and did."""

    id: str
    address: str
    accepted: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    protocol_messages: int = 0
    protocol_bytes: int = 0
    updates_sent: int = 0
    update_gas: int = 0
    window_built_at: float | None = None
    agreed_at: float | None = None


@dataclass
class MonthReport:
    """The outcome of one simulated month."""

    month: RentalMonth
    agreement: str
    rate: int
    window_size: int
    result_seconds: int | None = None
    result_month: int | None = None
    rentals: int | None = None
    tokens: int | None = None
    daily_table: list[tuple[str, int, int]] = field(default_factory=list)
    update: Receipt | None = None
    premium_paid: int = 0
    escrow_left: int = 0
    disputes: int = 0
    nodes: list[NodeReport] = field(default_factory=list)
    published_at: float = 0.0
    recorded_at: float | None = None
    message_count: int = 0
    message_bytes: int = 0

    @property
    def latency(self) -> float | None:
        """Seconds from the month's last lock message to the update receipt."""
        return None if self.recorded_at is None else self.recorded_at - self.published_at


def demo_platform(settings: Settings, *, persist: bool = True) -> Platform:
    """The demo's platform: the chain of ``settings``, its own CA in ``<home>/smartlock``.

    The CA's password is :data:`DEMO_PASSWORD`, so the demo never asks for the
    platform's; its broker is the embedded one unless ``settings.broker`` is
    ``mosquitto``.

    Example: ``async with demo_platform(settings) as platform: await run_month(platform)``.
    """
    if settings.broker == "auto":
        settings = replace(settings, broker="embedded")
    pki = settings.home / "smartlock" / "pki"
    return Platform(settings, password=DEMO_PASSWORD, persist=persist, pki=pki)


async def run_month(
    platform: Platform,
    *,
    year: int = 2026,
    month: int = 3,
    locks: int = 4,
    rentals: int = 40,
    tokens: int = 25,
    rate: int = 10**9,
    seed: int = 7,
    artifacts: Path | None = None,
    on_setup: Callable[[str], None] = lambda step: None,
    on_message: Callable[[int, int], None] = lambda done, total: None,
    on_event: Callable[[NodeEvent], None] = lambda event: None,
    timeout: float = 120.0,
) -> MonthReport:
    """Run the case study for one month on ``platform``; return what happened.

    Example: ``report = await run_month(demo_platform(settings), locks=2, rentals=10)``.
    """
    simulated = simulate_month(year, month, locks=locks, rentals=rentals, tokens=tokens, seed=seed)
    on_setup("certificate authority and MQTT broker")
    ledger = await platform.ledger()
    await platform.broker()
    return await _run(
        platform, ledger, simulated=simulated, rate=rate, artifacts=artifacts,
        on_setup=on_setup, on_message=on_message, on_event=on_event, timeout=timeout,
    )  # fmt: skip


def _plan(ledger: Ledger, simulated: RentalMonth, rate: int) -> AgreementPlan:
    provider, insurer = ledger.dev_signer(0), ledger.dev_signer(1)
    sensors = tuple(
        SensorPlan(
            f"lock-{i}", lock_key(i), smart_lock_declaration(lock_key(i).public_key.to_bytes()), 0
        )
        for i in range(len(simulated.locks))
    )
    premium_bound = rate * 86_400 * 31 * len(simulated.locks)
    return AgreementPlan(
        parties=(PartyPlan("rental-provider", provider), PartyPlan("insurer", insurer)),
        sensors=sensors,
        nodes=(
            NodePlan("node-provider", ledger.dev_signer(3), party=0),
            NodePlan("node-insurer", ledger.dev_signer(2), party=1),
        ),
        function=RENTAL_TIME,
        window_size=simulated.window_size,
        sliding_factor=simulated.window_size,
        qos=QoS.OFFCHAIN_PROOF,
        reward=10**12,
        reaction=Reaction(ReactionKind.PAY_PER_UNIT, payer=0, payee=1, amount=rate),
        escrow={0: premium_bound},
    )


async def _run(
    platform: Platform,
    ledger: Ledger,
    *,
    simulated: RentalMonth,
    rate: int,
    artifacts: Path | None,
    on_setup: Callable[[str], None],
    on_message: Callable[[int, int], None],
    on_event: Callable[[NodeEvent], None],
    timeout: float,
) -> MonthReport:
    plan = _plan(ledger, simulated, rate)
    on_setup("registry: users, locks, intermediate nodes")
    registry = await Registry.open(ledger, ledger.dev_signer(0), artifacts=artifacts)
    on_setup("agreement: create, sign by both parties, fund escrow")
    agreement = await provision_agreement(
        ledger, ledger.dev_signer(0), plan, registry=registry, artifacts=artifacts
    )
    report = MonthReport(simulated, agreement.address, rate, simulated.window_size)
    on_setup("intermediate nodes")
    root = platform.root
    async with contextlib.AsyncExitStack() as stack:
        services: list[IntermediateNodeService] = []
        for node in plan.nodes:
            identity = f"svc:node.{node.id}"
            options = platform.client_options(
                identity, outbox=root / "nodes" / f"{node.id}-outbox.sqlite"
            )
            service = await stack.enter_async_context(
                running_node(
                    ledger, registry, agreement.address, node.signer, options,
                    database=root / "nodes" / f"{node.id}.sqlite", functions=FUNCTIONS,
                    options=platform.node_options(gap_timeout=2.0, takeover_after=5.0),
                    on_event=on_event, artifacts=artifacts,
                )
            )  # fmt: skip
            services.append(service)
            report.nodes.append(NodeReport(node.id, node.signer.address))
        await _publish(platform, simulated, report, on_message=on_message)
        report.published_at = time.time()
        await _await_outcome(services, timeout)
        _collect(report, services)
    await _read_chain(report, agreement, plan)
    return report


async def _publish(
    platform: Platform,
    simulated: RentalMonth,
    report: MonthReport,
    *,
    on_message: Callable[[int, int], None],
) -> None:
    total = 2 * sum(len(lock) for lock in simulated.locks)
    sessions: dict[int, MqttClient] = {}
    try:
        for i in range(len(simulated.locks)):
            sessions[i] = MqttClient(platform.client_options(f"lock-{i}"))
            await sessions[i].connect()
        declarations = [smart_lock_declaration(lock_key(i).public_key.to_bytes()) for i in sessions]
        per_lock: dict[int, list[bytes]] = {i: [] for i in sessions}
        for lock, q, values in simulated.messages():
            message = sign_sensor_message(lock_key(lock), declarations[lock], q, list(values))
            per_lock[lock].append(message.encode())
        done = 0

        async def play(lock: int) -> None:
            # each lock publishes its own trace in order; the locks run side by side
            nonlocal done
            for payload in per_lock[lock]:
                await sessions[lock].publish(sensor_topic(f"lock-{lock}"), payload)
                report.message_count += 1
                report.message_bytes += len(payload)
                done += 1
                on_message(done, total)

        await asyncio.gather(*(play(lock) for lock in sessions))
    finally:
        for session in sessions.values():
            await session.close()


async def _await_outcome(services: list[IntermediateNodeService], timeout: float) -> None:
    def finished(service: IntermediateNodeService) -> bool:
        return any(e.kind in ("recorded", "disputed", "error") and e.t == 0 for e in service.events)

    await asyncio.gather(*(s.wait_for(finished, timeout) for s in services))


def _collect(report: MonthReport, services: list[IntermediateNodeService]) -> None:
    for node, service in zip(report.nodes, services, strict=True):
        stats = service.stats
        node.accepted = stats.accepted
        node.rejected = {k: v for k, v in stats.rejected.items() if v}
        node.protocol_messages = sum(stats.protocol_sent.values())
        node.protocol_bytes = stats.protocol_bytes
        node.updates_sent = stats.updates_sent
        node.update_gas = stats.update_gas
        node.window_built_at = service.built_at.get(0)
        for event in service.events:
            if event.kind == "agreed" and event.t == 0:
                node.agreed_at = event.at
                windows = service.store.serve(0) if _held(service) else None
                if windows is not None and not report.daily_table:
                    report.daily_table, _ = rental_table(windows)
            if event.kind == "recorded" and event.t == 0 and event.receipt is not None:
                report.update = event.receipt
                report.recorded_at = event.at


def _held(service: IntermediateNodeService) -> bool:
    return 0 in service.store.held()


async def _read_chain(report: MonthReport, agreement: Agreement, plan: AgreementPlan) -> None:
    insurer, provider = plan.parties[1].signer.address, plan.parties[0].signer.address
    report.premium_paid = await agreement.credit_of(insurer)
    report.escrow_left = await agreement.escrow_of(provider)
    report.disputes = await agreement.dispute_count()
    if report.update is not None:
        for event in agreement.contract.decode_logs(report.update.logs):
            if event.name.startswith("Updated"):
                result = decode_monthly_rental(bytes(event.args["result"]))
                report.result_seconds, report.result_month = result.seconds, result.month
                report.rentals, report.tokens = result.rentals, result.tokens
