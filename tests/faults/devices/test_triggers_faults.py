"""A crash between sending the payment and recording it never pays twice; forged, replayed
and misplaced readings are refused with their documented errors and counted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pervasive.chain import Ledger, open_ledger
from pervasive.config import Settings
from pervasive.contracts.asset_tracking import AssetTracking
from pervasive.crypto import PrivateKey
from pervasive.devices import sensor_topic, sign_reading
from pervasive.devices.simulator import LOCATION_SENSOR
from pervasive.errors import InvalidInput, InvalidSignature, ReplayedMessage, SchemaViolation
from pervasive.service.triggers import (
    CoLocated,
    ContextSource,
    ContextTrigger,
    EpisodeStatus,
    SendMoney,
    TriggerService,
    TriggerStore,
)

AMOUNT = 10**15
KEYS = {"container-1": PrivateKey(b"\x01" * 32), "retailer-1": PrivateKey(b"\x02" * 32)}
DECLARATIONS = {n: LOCATION_SENSOR.declaration(k.public_key) for n, k in KEYS.items()}


def reading(device: str, q: int, cell: str, moment: int) -> tuple[str, bytes]:
    wire = sign_reading(KEYS[device], DECLARATIONS[device], q, {"cell": cell, "time": moment})
    return sensor_topic(device, "location"), wire


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[Ledger]:
    chain = await open_ledger(Settings(home=tmp_path / "home"), persist=False)
    try:
        yield chain
    finally:
        await chain.close()


async def make_service(ledger: Ledger, path: Path) -> tuple[TriggerService, AssetTracking]:
    payer, operator, payee = (ledger.dev_signer(i) for i in range(3))
    tracking = await AssetTracking.open(ledger, payer)
    await tracking.open_shipment("ship-1", payee.address, operator.address,
                                 amount=AMOUNT, deposit=3 * AMOUNT)  # fmt: skip
    action = SendMoney(tracking.with_signer(operator), "ship-1")
    trigger = ContextTrigger("deliver", CoLocated(tuple(KEYS), window=60), scope=action.scope)
    sources = [ContextSource(n, d) for n, d in DECLARATIONS.items()]
    return TriggerService(
        TriggerStore.open(path), [trigger], {"deliver": action}, sources
    ), tracking


async def test_crash_after_sending_before_recording_pays_once(
    ledger: Ledger, tmp_path: Path
) -> None:
    service, tracking = await make_service(ledger, tmp_path / "t.sqlite")
    service.accept(*reading("container-1", 0, "c-1", 100))
    (firing,) = service.accept(*reading("retailer-1", 0, "c-1", 110))
    # the process sends the transaction, then dies before marking the episode done
    await service.actions["deliver"].execute(firing.key)
    assert [e.status for e in service.store.pending()] == [EpisodeStatus.PENDING]
    service.store.close()
    restarted = TriggerService(
        TriggerStore.open(tmp_path / "t.sqlite"),
        service.engine.triggers.values(),
        service.actions,
        [ContextSource(n, d) for n, d in DECLARATIONS.items()],
    )
    assert await restarted.execute_pending() == 1
    assert not restarted.store.pending()
    assert (await tracking.get_shipment("ship-1")).payments == 1
    # the same readings delivered again (QoS 1 redelivery) are replays, not a new episode
    with pytest.raises(ReplayedMessage):
        restarted.accept(*reading("retailer-1", 0, "c-1", 110))
    assert restarted.fired == 0


async def test_bad_readings_are_refused_counted_and_change_nothing(
    ledger: Ledger, tmp_path: Path
) -> None:
    service, _ = await make_service(ledger, tmp_path / "t.sqlite")
    service.accept(*reading("container-1", 5, "c-1", 100))
    topic, wire = reading("retailer-1", 0, "c-1", 100)
    forged = bytearray(wire)
    forged[-40] ^= 0xFF
    stranger = PrivateKey(b"\x03" * 32)
    alien = sign_reading(
        stranger, LOCATION_SENSOR.declaration(stranger.public_key), 0, {"cell": "c-1", "time": 100}
    )
    cases = [
        (topic, bytes(forged), InvalidSignature),
        (topic, wire[:-7], InvalidInput),
        (topic, alien, SchemaViolation),
        (sensor_topic("container-1", "location"), wire, InvalidSignature),  # impostor
        (*reading("container-1", 5, "c-1", 100), ReplayedMessage),
        (*reading("container-1", 4, "c-1", 100), ReplayedMessage),
        ("pervasive/devices/x/telemetry", wire, InvalidInput),
    ]
    for bad_topic, payload, error in cases:
        with pytest.raises(error):
            service.accept(bad_topic, payload)
    assert service.rejections == {
        "signature": 1, "malformed": 2, "schema": 1, "impostor": 1, "replay": 2,
    }  # fmt: skip
    assert service.accepted == 1 and service.fired == 0
    assert service.store.last_sequence(DECLARATIONS["container-1"].address) == 5
    (firing,) = service.accept(topic, wire)  # the genuine reading still counts
    assert firing.episode == 1
