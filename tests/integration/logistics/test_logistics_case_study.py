"""Paper 001's logistics case study end to end on the embedded chain and broker.

One run per module (about five seconds): the oracle hub with three real oracle nodes,
the three pervasive contracts deployed from their spec files and served by their
runtimes, two simulated devices over MQTT. The tests read what a user of the demo
cares about, on-chain where the chain can say it.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from pervasive.apps.logistics import (
    CONTAINER,
    DEVICE_CATEGORY,
    GOODS_PRICE,
    PRICES,
    SHIPMENT,
    THRESHOLD,
    LogisticsReport,
    write_chart,
)
from pervasive.chain import Ledger
from pervasive.config import Settings
from pervasive.contracts.asset_tracking import AssetTracking
from pervasive.contracts.contract import Contract
from pervasive.contracts.contract_database import ContractDatabase
from pervasive.contracts.oracle_hub import OracleHub, QueryAnswered
from pervasive.crypto import keccak256
from pervasive.platform import Platform

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.xdist_group("logistics")]

EXPECTED_STREAM = [
    ("shipping", "shipment-created"),
    ("shipping", "cost-requested"),
    ("shipping", "cost-quoted"),
    ("asset-tracking", "tracking-opened"),
    ("payment", "escrow-opened"),
    ("asset-tracking", "money-sent"),
    ("payment", "delivery-confirmed"),
    ("payment", "payment-released"),
]


@dataclass
class Run:
    report: LogisticsReport
    ledger: Ledger
    artifacts: Path


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def run(tmp_path_factory: pytest.TempPathFactory, artifacts: Path) -> AsyncIterator[Run]:
    from pervasive.apps.logistics import run_logistics

    home = tmp_path_factory.mktemp("logistics")
    shutil.copytree(artifacts, home / "artifacts")
    settings = Settings(home=home, broker="embedded")
    async with Platform(settings, password="test password", persist=False) as platform:
        report = await run_logistics(platform, root=home / "run")
        yield Run(report, await platform.ledger(), home / "artifacts")


def _step_time(report: LogisticsReport, party: str, what: str) -> float:
    return next(s.at for s in report.steps if s.party == party and s.what == what)


async def test_the_cost_comes_from_the_local_service_with_a_2_of_3_proof_checked_on_chain(
    run: Run,
) -> None:
    report, ledger = run.report, run.ledger
    oracle = report.oracle
    assert oracle is not None
    assert oracle.cost == PRICES[DEVICE_CATEGORY]
    assert oracle.source.endswith(f"/ShipmentCost?device={DEVICE_CATEGORY}")
    # the hub verified at least t signatures of registered oracles and called Shipping back
    hub_abi = OracleHub.artifact(run.artifacts).abi
    hub = OracleHub(Contract(ledger, report.contracts["oracle-hub"], hub_abi))
    answers = [e for e in await hub.events() if isinstance(e, QueryAnswered)]
    assert len(answers) == 1
    answer = answers[0]
    assert answer.signers >= THRESHOLD and answer.callback_ok
    assert answer.consumer == report.contracts["shipping"]
    # the digest is of the very bytes the ShipmentCost service answers
    body = json.dumps({"device": DEVICE_CATEGORY, "cost": PRICES[DEVICE_CATEGORY]}).encode()
    assert answer.digest == keccak256(body)
    # stored in Shipping's C_d under keccak256(abi_encode("cost", "ship-1"))
    database_abi = ContractDatabase.artifact(run.artifacts).abi
    database = ContractDatabase(Contract(ledger, report.databases["shipping"], database_abi))
    assert await database.read("cost", SHIPMENT, "uint256") == PRICES[DEVICE_CATEGORY]
    assert await database.writer() == report.contracts["shipping"]


async def test_send_money_paid_the_carrier_exactly_once_while_they_stayed_together(
    run: Run,
) -> None:
    report, ledger = run.report, run.ledger
    fee = PRICES[DEVICE_CATEGORY]
    assert report.send_money_calls == 1
    assert report.co_located_readings >= 6
    tracking_abi = AssetTracking.artifact(run.artifacts).abi
    tracking = AssetTracking(Contract(ledger, report.contracts["asset-tracking"], tracking_abi))
    shipment = await tracking.get_shipment(SHIPMENT)
    assert (shipment.payments, shipment.balance) == (1, 2 * fee)  # escrow held three fees
    carrier = [p for p in report.payments if p.payee == "carrier"]
    assert [(p.amount, p.received) for p in carrier] == [(fee, fee)]
    assert report.counters["asset-tracking"]["fired"] == 1


async def test_the_payment_is_released_once_after_the_container_came_back_online(
    run: Run,
) -> None:
    report = run.report
    offline = _step_time(report, CONTAINER, "offline")
    online = _step_time(report, CONTAINER, "back online")
    assert report.offline_seconds >= 1.0
    confirmed = [e for e in report.events if e.short_type == "delivery-confirmed"]
    assert len(confirmed) == 1
    assert offline < online < confirmed[0].at
    assert confirmed[0].data["container"] == CONTAINER
    supplier = [p for p in report.payments if p.payee == "supplier"]
    assert [(p.amount, p.received) for p in supplier] == [(GOODS_PRICE, GOODS_PRICE)]
    counters = report.counters["payment"]
    assert (counters["accepted"], counters["applied"], counters["reverted"]) == (1, 1, 0)


async def test_the_cloudevents_stream_has_each_step_once_in_chain_order(run: Run) -> None:
    report = run.report
    events = report.events
    assert [(e.service, e.short_type) for e in events] == EXPECTED_STREAM
    ids = [e.id for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    for event in events:
        assert event.source == f"eip155:{report.chain_id}:{report.contracts[event.service]}"
        assert event.type == f"dev.pervasive.logistics.{event.short_type}"
        assert event.dataschema == f"urn:pervasive:schema:logistics:{event.short_type}:1"
        assert event.topic.startswith(f"pervasive/events/{report.chain_id}/")
    assert events[2].data["cost"] == PRICES[DEVICE_CATEGORY]
    assert {e.subject for e in events if e.short_type != "money-sent"} == {SHIPMENT}


async def test_the_timeline_is_drawn_with_one_lane_per_party(run: Run, tmp_path: Path) -> None:
    chart = write_chart(run.report, tmp_path / "timeline.png")
    assert chart.read_bytes().startswith(b"\x89PNG")
    assert run.report.gas["sendMoney by the trigger (AssetTracking)"] > 21_000
