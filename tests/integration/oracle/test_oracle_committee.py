"""Three oracle nodes answer a contract's query with a proof the hub checks (paper 001, §4).

One world per backend (embedded py-evm, anvil): a consumer contract asks the hub for the
shipment cost of paper 001's example, ``ShipmentCost?device=VerticalPump``, served by a
local HTTP service; three nodes (asyncio tasks, t = 2) answer. Each test asks its own
queries and checks the outcome on-chain: the consumer's stored answer and the hub's events.
"""

from __future__ import annotations

import asyncio
import secrets
import time

import pytest
from oracle_harness import (
    COSTS,
    MAX_ATTEMPTS,
    OracleWorld,
    ask,
    cost_body,
    hub_events,
    wait_state,
)

from pervasive.committee import EnvelopeSigner, member_inbox_topic
from pervasive.contracts.contract import decode_values
from pervasive.contracts.oracle_hub import (
    Fulfillment,
    QueryAnswered,
    QueryRetried,
    QueryState,
    QueryTimedOut,
    Report,
)
from pervasive.crypto import PrivateKey, keccak256
from pervasive.errors import TransactionReverted
from pervasive.messaging import MqttClient
from pervasive.oracle import ORACLE_PREFIX, REPORT, ReportBody, committee_domain

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.xdist_group("oracle-committee"),
]


def _answers(events: list[object]) -> list[QueryAnswered]:
    return [e for e in events if isinstance(e, QueryAnswered)]


async def test_the_committee_answers_a_url_query_with_t_signatures(
    oracle_world: OracleWorld,
) -> None:
    w = oracle_world
    query_id = await ask(w, w.cost_url, "cost")
    await wait_state(w, query_id, QueryState.ANSWERED)
    assert await w.consumer.call("cost", query_id) == COSTS["VerticalPump"]
    (answer,) = _answers(await hub_events(w, query_id))
    assert answer.value == COSTS["VerticalPump"] and answer.signers == 2 and answer.callback_ok
    # the digest binds the exact bytes the service sent; the consumer got it in its callback
    assert answer.digest == keccak256(cost_body("VerticalPump"))
    receipt = await w.ledger.receipt(answer.transaction_hash)
    assert receipt is not None
    (quoted,) = w.consumer.events(receipt, "CostQuoted")
    assert quoted.args["digest"] == answer.digest and quoted.args["cost"] == answer.value


async def test_one_lying_node_does_not_change_the_answer(oracle_world: OracleWorld) -> None:
    w = oracle_world
    liar = w.nodes[2]
    before = [n.refusals["disagree"] for n in w.nodes[:2]]
    liar.fetcher.lying = True  # type: ignore[attr-defined]
    try:
        ids = [await ask(w, w.cost_url, "cost") for _ in range(3)]  # one is the liar's to send
        for query_id in ids:
            await wait_state(w, query_id, QueryState.ANSWERED)
            assert await w.consumer.call("cost", query_id) == COSTS["VerticalPump"]
            assert len(_answers(await hub_events(w, query_id))) == 1
        # the honest nodes saw the lie and refused it (once they had their own observation)
        await w.nodes[0].wait_for(lambda n: n.refusals["disagree"] > before[0], timeout=10)
    finally:
        liar.fetcher.lying = False  # type: ignore[attr-defined]


async def test_an_unregistered_signer_and_a_replayed_fulfill_are_refused(
    oracle_world: OracleWorld,
) -> None:
    w = oracle_world
    query_id = await ask(w, w.cost_url, "cost")
    await wait_state(w, query_id, QueryState.ANSWERED)
    (answer,) = _answers(await hub_events(w, query_id))
    # the exact fulfill the committee sent, sent again: the hub refuses a second answer
    transaction = await w.ledger.rpc.w3.eth.get_transaction(answer.transaction_hash)  # type: ignore[arg-type]
    fulfill = w.hub.contract.function("fulfill", 4)
    _, _, _, packed = decode_values(fulfill.inputs, bytes(transaction["input"])[4:])
    sent = Fulfillment(query_id, answer.digest, answer.value, bytes(packed))
    sender = w.hub.with_signer(w.ledger.dev_signer(5))
    with pytest.raises(TransactionReverted, match="not pending"):
        await sender.fulfill(sent)

    # an outsider's report next to an honest one: refused on-chain...
    fresh = await ask(w, f"{w.service.url}/ShipmentCost?device=Compressor", "cost")
    outsider = PrivateKey(secrets.token_bytes(32))
    report = Report(fresh, keccak256(b"x"), 5, int(time.time()), f"{w.service.url}/x")
    honest = Report(fresh, keccak256(b"x"), 5, int(time.time()), report.source)
    with pytest.raises(TransactionReverted, match="unregistered key"):
        await sender.fulfill(
            Fulfillment.of([
                report.sign(outsider, w.ledger.chain_id, w.hub.address),
                honest.sign(w.keys[0], w.ledger.chain_id, w.hub.address),
            ])
        )  # fmt: skip
    await wait_state(w, fresh, QueryState.ANSWERED)
    assert await w.consumer.call("cost", fresh) == COSTS["Compressor"]

    # ...and by the nodes when it comes over MQTT
    before = w.nodes[0].refusals["unregistered"]
    client = MqttClient(w.platform.client_options("svc:oracle.outsider"))
    await client.connect()
    try:
        domain = committee_domain(w.ledger.chain_id, w.hub.address)
        signer = EnvelopeSigner(outsider, domain, w.hub.address, epoch=1)
        signed = report.sign(outsider, w.ledger.chain_id, w.hub.address)
        envelope = signer.sign(fresh, REPORT, ReportBody.of(signed, attempt=1).encode())
        inbox = member_inbox_topic(ORACLE_PREFIX, w.hub.address, w.keys[0].address)
        await client.publish(inbox, envelope.encode(), qos=1)
        await w.nodes[0].wait_for(lambda n: n.refusals["unregistered"] > before, timeout=10)
    finally:
        await client.close()


async def test_a_dead_source_ends_in_retry_then_timeout_events(oracle_world: OracleWorld) -> None:
    w = oracle_world
    failures = [n.stats.fetch_failures for n in w.nodes]
    query_id = await ask(w, f"{w.service.url}/dead", "cost")
    await wait_state(w, query_id, QueryState.TIMED_OUT, timeout=40)
    events = await hub_events(w, query_id)
    retried = [e for e in events if isinstance(e, QueryRetried)]
    timed_out = [e for e in events if isinstance(e, QueryTimedOut)]
    assert [e.attempt for e in retried] == list(range(2, MAX_ATTEMPTS + 1))
    assert len(timed_out) == 1 and timed_out[0].attempt == MAX_ATTEMPTS
    assert not _answers(events)
    assert await w.consumer.call("cost", query_id) == 0
    # every node tried the source on every attempt and reported nothing
    for node, failed_before in zip(w.nodes, failures, strict=True):
        assert node.stats.fetch_failures >= failed_before + MAX_ATTEMPTS
    assert w.service.requests["/dead"] >= 3 * MAX_ATTEMPTS


async def test_a_source_outside_the_allowed_prefixes_is_not_fetched(
    oracle_world: OracleWorld,
) -> None:
    w = oracle_world
    before = [n.refusals["not_allowed"] for n in w.nodes]
    query_id = await ask(w, f"{w.service.url}/admin", "cost")
    async with asyncio.timeout(10):
        while not all(n.refusals["not_allowed"] > b for n, b in zip(w.nodes, before, strict=True)):
            await asyncio.sleep(0.05)
    assert w.service.requests["/admin"] == 0
    assert (await w.hub.query_status(query_id)).state is QueryState.PENDING
