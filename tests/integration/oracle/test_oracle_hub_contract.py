"""The oracle hub contract on both backends: the report digest it computes, what it
accepts (t distinct registered signers on one attempt before its deadline) and refuses,
expiry, the owner's set replacement, and the callback transaction's gas."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import pytest

from pervasive.chain import Ledger, Signer
from pervasive.contracts.compiler import compile_source
from pervasive.contracts.contract import Contract
from pervasive.contracts.deployments import deploy
from pervasive.contracts.oracle_hub import (
    Fulfillment,
    OracleHub,
    QueryAnswered,
    QueryKind,
    QueryRequested,
    QueryState,
    Report,
    hub_domain,
)
from pervasive.crypto import PrivateKey, keccak256
from pervasive.errors import InvalidInput, NotFound, TransactionReverted

HERE = Path(__file__).resolve().parent
SOURCE = "http://127.0.0.1:8080/ShipmentCost?device=VerticalPump"
BODY = b'{"device":"VerticalPump","cost":1234}'
CALLBACK_GAS_TARGET = 80_000


async def _world(
    ledger: Ledger, artifacts: Path, threshold: int = 2
) -> tuple[OracleHub, list[PrivateKey]]:
    keys = [PrivateKey(secrets.token_bytes(32)) for _ in range(3)]
    hub = await OracleHub.open(
        ledger, ledger.dev_signer(0), oracles=[k.address for k in keys], threshold=threshold,
        timeout=600, max_attempts=2, artifacts=artifacts,
    )  # fmt: skip
    return hub, keys


async def _consumer(ledger: Ledger, hub: OracleHub, name: str) -> Contract:
    artifact = compile_source(name, (HERE / f"{name}.vy").read_text())
    deployment = await deploy(ledger, ledger.dev_signer(0), artifact, hub.address)
    return Contract(ledger, deployment.address, artifact.abi)


async def _ask(ledger: Ledger, consumer: Contract, hub: OracleHub) -> QueryRequested:
    receipt = await consumer.transact(ledger.dev_signer(0), "ask", 1, SOURCE, "cost")
    (asked,) = [e for e in hub.receipt_events(receipt) if isinstance(e, QueryRequested)]
    return asked


def _report(query_id: int, value: int = 1234, *, at: int | None = None) -> Report:
    return Report(query_id, keccak256(BODY), value, at or int(time.time()), SOURCE)


async def test_the_hub_computes_the_report_digest_the_oracles_sign(
    ledger: Ledger, artifacts: Path
) -> None:
    hub, _ = await _world(ledger, artifacts)
    assert await hub.domain_separator() == hub_domain(ledger.chain_id, hub.address)
    for report in (_report(1), Report(2**200, bytes(32), 2**256 - 1, 2**64 - 1, "ü" * 128)):
        assert await hub.report_digest(report) == report.digest(ledger.chain_id, hub.address)


async def test_two_of_three_answer_with_one_callback_within_the_gas_target(
    ledger: Ledger, artifacts: Path
) -> None:
    hub, keys = await _world(ledger, artifacts)
    consumer = await _consumer(ledger, hub, "shipping_consumer")
    asked = await _ask(ledger, consumer, hub)
    assert asked.consumer == consumer.address and asked.attempt == 1
    # each oracle observed at its own time
    signed = [_report(asked.query_id, at=1_700_000_000 + i).sign(k, ledger.chain_id, hub.address)
              for i, k in enumerate(keys[:2])]  # fmt: skip
    sender = hub.with_signer(ledger.dev_signer(3))  # anyone may send it
    receipt = await sender.fulfill(Fulfillment.of(signed))
    (answered,) = [e for e in hub.receipt_events(receipt) if isinstance(e, QueryAnswered)]
    assert (answered.value, answered.signers, answered.callback_ok) == (1234, 2, True)
    assert await consumer.call("cost", asked.query_id) == 1234
    assert receipt.gas_used <= CALLBACK_GAS_TARGET, receipt.gas_used
    status = await hub.query_status(asked.query_id)
    assert status.state is QueryState.ANSWERED and status.consumer == consumer.address
    with pytest.raises(TransactionReverted, match="not pending"):
        await sender.fulfill(Fulfillment.of(signed))  # a replay
    with pytest.raises(NotFound):
        await hub.query_status(asked.query_id + 100)


async def test_too_few_duplicate_unregistered_or_disagreeing_reports_are_refused(
    ledger: Ledger, artifacts: Path
) -> None:
    hub, keys = await _world(ledger, artifacts)
    asked = await hub.with_signer(ledger.dev_signer(0)).query(QueryKind.URL, SOURCE, "cost")
    q = asked.query_id
    one = _report(q).sign(keys[0], ledger.chain_id, hub.address)
    twice = _report(q, at=123).sign(keys[0], ledger.chain_id, hub.address)
    outsider = _report(q).sign(PrivateKey(secrets.token_bytes(32)), ledger.chain_id, hub.address)
    other_value = _report(q, 999).sign(keys[1], ledger.chain_id, hub.address)
    other_hub = _report(q).sign(keys[1], ledger.chain_id, ledger.dev_signer(9).address)
    sender = hub.with_signer(ledger.dev_signer(3))
    digest = keccak256(BODY)
    cases = {
        "too few": Fulfillment.of([one]),
        "increasing": Fulfillment(q, digest, 1234, one.entry() + twice.entry()),
        "unregistered": Fulfillment.of([one, outsider]),
        # other_value signed 999: checked as if it said 1234, it recovers to a stranger
        "unregistered key": Fulfillment(q, digest, 1234, b"".join(
            s.entry() for s in sorted([one, other_value], key=lambda s: int(s.signer, 16))
        )),
        "another hub's": Fulfillment(q, digest, 1234, b"".join(
            s.entry() for s in sorted([one, other_hub], key=lambda s: int(s.signer, 16))
        )),
        "73 bytes": Fulfillment(q, digest, 1234, one.entry() + b"\x00"),
    }  # fmt: skip
    for name, fulfillment in cases.items():
        with pytest.raises(TransactionReverted) as refused:
            await sender.fulfill(fulfillment)
        assert refused.value.reason, name
    assert (await hub.query_status(q)).state is QueryState.PENDING
    with pytest.raises(TransactionReverted, match="not past its deadline"):
        await sender.expire(q)
    with pytest.raises(InvalidInput):
        await hub.query(QueryKind.URL, "", "")


async def test_a_refusing_consumer_does_not_block_the_answer(
    ledger: Ledger, artifacts: Path
) -> None:
    hub, keys = await _world(ledger, artifacts)
    consumer = await _consumer(ledger, hub, "refusing_consumer")
    asked = await _ask(ledger, consumer, hub)
    signed = [_report(asked.query_id).sign(k, ledger.chain_id, hub.address) for k in keys[:2]]
    receipt = await hub.with_signer(ledger.dev_signer(3)).fulfill(Fulfillment.of(signed))
    (answered,) = [e for e in hub.receipt_events(receipt) if isinstance(e, QueryAnswered)]
    assert answered.callback_ok is False
    assert (await hub.query_status(asked.query_id)).state is QueryState.ANSWERED


async def test_the_owner_replaces_the_set_and_old_keys_stop_counting(
    ledger: Ledger, artifacts: Path
) -> None:
    hub, keys = await _world(ledger, artifacts)
    newcomer = PrivateKey(secrets.token_bytes(32))
    with pytest.raises(TransactionReverted, match="only the owner"):
        await hub.with_signer(ledger.dev_signer(4)).replace_oracles([newcomer.address], 1)
    owner = hub.with_signer(ledger.dev_signer(0))
    await owner.replace_oracles([keys[1].address, newcomer.address], 2)
    assert await hub.epoch() == 2 and await hub.threshold() == 2
    assert not await hub.is_oracle(keys[0].address) and await hub.is_oracle(newcomer.address)
    asked = await owner.query(QueryKind.URL, SOURCE, "cost")
    old = [_report(asked.query_id).sign(k, ledger.chain_id, hub.address) for k in keys[:2]]
    with pytest.raises(TransactionReverted, match="unregistered"):
        await owner.fulfill(Fulfillment.of(old))
    new = [_report(asked.query_id).sign(k, ledger.chain_id, hub.address)
           for k in (keys[1], newcomer)]  # fmt: skip
    await owner.fulfill(Fulfillment.of(new))
    assert (await hub.query_status(asked.query_id)).state is QueryState.ANSWERED


async def test_open_reuses_a_hub_of_the_same_configuration_only(
    ledger: Ledger, artifacts: Path, tmp_path: Path
) -> None:
    from pervasive.contracts import DeploymentBook

    book = DeploymentBook(tmp_path / "deployments.sqlite")
    signer: Signer = ledger.dev_signer(0)
    oracles = [ledger.dev_signer(i).address for i in (1, 2, 3)]
    options = {"timeout": 30, "max_attempts": 3, "book": book, "artifacts": artifacts}
    first = await OracleHub.open(ledger, signer, oracles=oracles, threshold=2, **options)
    again = await OracleHub.open(ledger, signer, oracles=oracles[::-1], threshold=2, **options)
    other = await OracleHub.open(ledger, signer, oracles=oracles, threshold=3, **options)
    assert again.address == first.address != other.address
    assert (await OracleHub.find(ledger, book, artifacts=artifacts)).address == other.address
    book.close()
