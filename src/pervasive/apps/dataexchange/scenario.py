"""The case study end to end: setup, honest exchanges, a provider that withholds.

What :func:`run_dataexchange` does (paper 003, sections IV-V), on the world
:func:`~pervasive.apps.dataexchange.world.exchange_world` builds:

1. **setup** (V-A): the committee's DKG, its contracts on B_u, C's and P's deposits;
   P's thermometer publishes signed readings that P's Sys keeps;
2. **honest exchanges** (V-B): C checks the dataset exists, gets ``t`` attestations,
   pays through C_u, P seals the index to C's key and posts it on B_d, C fetches the
   readings; nothing waits for a confirmation;
3. **a provider that withholds** (V-C): C pays, P never posts the index; after ``T``
   C challenges, the members find no posting, threshold-sign the penalty and C_sp
   moves ``required`` of P's deposit to C.

The caller (the CLI) gets progress through ``on_step`` and renders the
:class:`DataExchangeReport`.

Example::

    report = await run_dataexchange(platform, root=home / "dataexchange")
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pervasive.apps.dataexchange.world import DataChainKind, ExchangeWorld, exchange_world
from pervasive.crosschain.challenge import Challenge, ChallengeKind
from pervasive.platform import Platform

__all__ = ["DataExchangeReport", "Step", "run_dataexchange"]


@dataclass(frozen=True)
class Step:
    """One line of the timeline: seconds since the start, what happened, a detail."""

    at: float
    what: str
    detail: str = ""


@dataclass
class DataExchangeReport:
    """What happened, for the CLI's tables and chart."""

    data_chain: str
    user_chain: str
    members: int
    threshold: int
    group_key: str = ""
    transcript: str = ""
    notary: str = ""
    dkg_seconds: float = 0.0
    steps: list[Step] = field(default_factory=list)
    exchanges: list[dict[str, float]] = field(default_factory=list)
    """Per honest exchange: pay, index, data and total seconds."""
    readings: int = 0
    deposits_before: dict[str, int] = field(default_factory=dict)
    deposits_after: dict[str, int] = field(default_factory=dict)
    credit_of_provider: int = 0
    gas: dict[str, int] = field(default_factory=dict)
    penalty_reason: str = ""


async def run_dataexchange(
    platform: Platform,
    *,
    root: Path,
    data: DataChainKind = "evm",
    exchanges: int = 3,
    publish_window: int = 5,
    artifacts: Path | None = None,
    on_step: Callable[[Step], None] = lambda step: None,
) -> DataExchangeReport:
    """Run the case study on ``platform``; return what happened."""
    started = time.perf_counter()

    def step(what: str, detail: str = "") -> None:
        entry = Step(time.perf_counter() - started, what, detail)
        report.steps.append(entry)
        on_step(entry)

    ledger = await platform.ledger()
    report = DataExchangeReport(data, f"evm:{ledger.chain_id}", 4, 3)
    step("start", f"user chain B_u = evm:{ledger.chain_id}, data chain B_d = {data}")
    async with exchange_world(
        platform, root=root, data=data, publish_window=publish_window, artifacts=artifacts
    ) as world:
        _setup_facts(report, world)
        step("committee ready", f"DKG, contracts deployed and checked by all {report.members}")
        names = {"C": world.consumer_signer.address, "P": world.provider.address}
        report.deposits_before = {n: await world.notary.deposit_of(a) for n, a in names.items()}
        step("deposits locked", "C and P deposit into C_sp under the group key")
        await world.publish_readings(12)
        step("device readings", "P's thermometer published 12 signed readings into Sys")
        pays = []
        for _ in range(exchanges):
            result = await world.consumer.exchange(
                world.sys.url, provider=world.provider.address,
                dataset=world.dataset.digest, amount=world.price,
            )  # fmt: skip
            report.exchanges.append(result.timings)
            pays.append(result.pay)
            report.readings = len(result.readings)
            step(
                "honest exchange",
                f"C holds {len(result.readings)} readings "
                f"{result.timings['total'] * 1000:.0f} ms after asking",
            )
        await world.desk.postings.drain()
        transactor = world.user_ledger.transactor(world.consumer_signer)
        receipts = [await transactor.wait(pending) for pending in pays]
        step("payments mined", "the chain catches up after the exchanges ended")
        if receipts:
            report.gas["pay, C's first (new counter)"] = receipts[0].gas_used
        if len(receipts) > 1:
            report.gas["pay, C's later ones"] = receipts[-1].gas_used
        await _withholding(world, report, step, publish_window)
        report.deposits_after = {n: await world.notary.deposit_of(a) for n, a in names.items()}
        report.credit_of_provider = await world.user.credit(world.provider.address)
    step("done")
    return report


def _setup_facts(report: DataExchangeReport, world: ExchangeWorld) -> None:
    member = world.committee.members[0]
    assert member.key_record is not None
    report.group_key = "0x" + member.key_record.result.group_key.hex()
    report.transcript = member.key_record.transcript
    report.notary = world.committee.contracts.notary
    report.dkg_seconds = max(m.stats.dkg_seconds or 0.0 for m in world.committee.members)
    report.data_chain = world.data_chain.name


async def _withholding(
    world: ExchangeWorld,
    report: DataExchangeReport,
    step: Callable[[str, str], None],
    publish_window: int,
) -> None:
    pending = await world.consumer.pay(world.provider.address, world.price)
    receipt = await world.user_ledger.transactor(world.consumer_signer).wait(pending)
    payment = world.user.payments(receipt)[0]
    step("withholding provider", f"C paid {payment.amount} wei; P never posts the index")
    challenge = Challenge(
        ChallengeKind.UNDELIVERED, payment.payment_id, bytes.fromhex(receipt.transaction_hash[2:])
    )
    first = world.committee.members[0]
    async with world.session.post(f"{first.url}/challenge", json=challenge.to_json()) as reply:
        answer = await reply.json(content_type=None)
    step("challenge", f"C asks member 1 (HTTP {reply.status}); relayed to all members")
    async with asyncio.timeout(publish_window + 60):
        while not await world.notary.is_settled(challenge.id):
            await asyncio.sleep(0.2)
    record = first.state.challenge(challenge.id)
    report.penalty_reason = record.verdict.reason if record and record.verdict else ""
    gas = [g for m in world.committee.members for g in m.stats.penalty_gas]
    if gas:
        report.gas["penalize (C_sp, BLS verify on-chain)"] = gas[0]
    challenge_id = str(answer.get("challenge_id", ""))[:10]
    step("penalty on-chain", f"challenge {challenge_id}…: {report.penalty_reason}")
