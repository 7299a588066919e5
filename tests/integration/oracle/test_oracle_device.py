"""DEVICE queries (kind 2): a contract asks for a device's value, the committee answers it
with the device's own signed reading as the proof (paper 001, section 4).

One world per backend (embedded py-evm, anvil), the embedded broker: devices registered
in the on-chain registry after the nodes started publish signed ``flow`` readings on
their topics; the nodes read the registry again, verify and keep them; the consumer asks
``query(2, "<device>/flow", "litres")``. The answer is the device's value, its digest
``keccak256`` of the exact signed bytes (whose signature anyone checks off-chain), and a
forged reading is refused by every node and never answers a query.
"""

from __future__ import annotations

import asyncio
import math
import time

import pytest
from oracle_harness import FLOW, MAX_ATTEMPTS, OracleWorld, Pump, ask, hub_events, wait_state

from pervasive.contracts.oracle_hub import QueryAnswered, QueryKind, QueryState, QueryTimedOut
from pervasive.crypto import PrivateKey, keccak256
from pervasive.devices import ReadingVerifier

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.xdist_group("oracle-device"),
]


async def held_by_all(w: OracleWorld, pump: Pump, sequence: int) -> None:
    """Until every node keeps ``pump``'s reading ``sequence``."""

    def holds(node: object) -> bool:
        readings = getattr(node, "readings", None)
        latest = readings.latest(pump.name, "flow") if readings is not None else None
        return latest is not None and latest.sequence >= sequence

    for node in w.nodes:
        await node.wait_for(holds, timeout=10)


async def after_the_second_of_arrival() -> None:
    """Let the next block's (whole-second) time be past the readings' arrival: the rule
    answers with the newest reading received at or before the query's block time."""
    await asyncio.sleep(math.ceil(time.time()) - time.time() + 0.05)


async def test_a_device_query_is_answered_with_the_devices_signed_value(
    oracle_world: OracleWorld,
) -> None:
    w = oracle_world
    pump = await w.pump()
    first, second = pump.reading(1, 1250), pump.reading(2, 1317)
    await pump.publish(first)
    await pump.publish(second)
    await held_by_all(w, pump, 2)
    await after_the_second_of_arrival()
    query_id = await ask(w, pump.source, "litres", QueryKind.DEVICE)
    await wait_state(w, query_id, QueryState.ANSWERED)
    assert await w.consumer.call("cost", query_id) == 1317
    (answer,) = [e for e in await hub_events(w, query_id) if isinstance(e, QueryAnswered)]
    assert answer.value == 1317 and answer.signers == 2 and answer.callback_ok
    # the digest is of the exact bytes the device signed: whoever holds them checks the
    # device's own signature against its declaration, off-chain
    assert answer.digest == keccak256(second)
    checked = ReadingVerifier([FLOW.declaration(pump.key.public_key)]).verify(second)
    assert checked.sequence == 2 and checked.values == (1317, "dock-4")
    # a pinned sequence answers that reading, even with a newer one kept
    pinned = await ask(w, pump.source, "litres@1", QueryKind.DEVICE)
    await wait_state(w, pinned, QueryState.ANSWERED)
    assert await w.consumer.call("cost", pinned) == 1250
    (answer,) = [e for e in await hub_events(w, pinned) if isinstance(e, QueryAnswered)]
    assert answer.digest == keccak256(first)


async def test_a_forged_reading_is_refused_and_never_answers(oracle_world: OracleWorld) -> None:
    w = oracle_world
    pump, silent = await w.pump(), await w.pump()
    before = [(n.refusals["reading_signature"], n.refusals["reading_schema"]) for n in w.nodes]
    genuine = pump.reading(1, 500)
    await pump.publish(genuine)
    await held_by_all(w, pump, 1)
    # newer readings nobody may answer with: the declared key claimed with another
    # signature, and a key the registry never declared
    forger = PrivateKey(b"\x07" * 32)
    tampered = bytearray(pump.reading(2, 999_999))
    tampered[-40] ^= 1
    await pump.publish(bytes(tampered))
    await pump.publish(pump.reading(3, 999_999, key=forger))
    await silent.publish(silent.reading(1, 777, key=forger))  # silent's only "reading"
    for node, (signature, schema) in zip(w.nodes, before, strict=True):
        await node.wait_for(
            lambda n, s=signature, c=schema: (
                n.refusals["reading_signature"] > s and n.refusals["reading_schema"] >= c + 2
            ),
            timeout=10,
        )
        assert node.readings is not None
        latest = node.readings.latest(pump.name, "flow")
        assert latest is not None and latest.wire == genuine
        assert node.readings.latest(silent.name, "flow") is None
    await after_the_second_of_arrival()
    answered = await ask(w, pump.source, "litres", QueryKind.DEVICE)
    unanswerable = await ask(w, silent.source, "litres", QueryKind.DEVICE)
    await wait_state(w, answered, QueryState.ANSWERED)
    assert await w.consumer.call("cost", answered) == 500
    (answer,) = [e for e in await hub_events(w, answered) if isinstance(e, QueryAnswered)]
    assert answer.digest == keccak256(genuine)
    # nodes that saw no (genuine) reading report nothing: retried, then timed out
    await wait_state(w, unanswerable, QueryState.TIMED_OUT, timeout=40)
    events = await hub_events(w, unanswerable)
    assert not [e for e in events if isinstance(e, QueryAnswered)]
    assert [e.attempt for e in events if isinstance(e, QueryTimedOut)] == [MAX_ATTEMPTS]
    assert all(n.refusals["no_reading"] >= MAX_ATTEMPTS for n in w.nodes)


async def test_a_non_integer_field_is_refused_with_a_reason(oracle_world: OracleWorld) -> None:
    w = oracle_world
    pump = await w.pump()
    await pump.publish(pump.reading(1, 5))
    await held_by_all(w, pump, 1)
    before = [n.refusals["not_integer"] for n in w.nodes]
    query_id = await ask(w, pump.source, "site", QueryKind.DEVICE)
    for node, count in zip(w.nodes, before, strict=True):
        await node.wait_for(lambda n, c=count: n.refusals["not_integer"] > c, timeout=10)
    assert (await w.hub.query_status(query_id)).state is QueryState.PENDING
