"""A service's call that a reorganisation removes is applied again, exactly once (issue 11.8).

A pervasive-contract service sends each accepted call from its inbox
(:class:`~pervasive.service.calls.CallSender`). With ``confirmations`` > 0 a call is
``mined`` at its receipt and ``done`` only once it is that deep; ``anvil_reorg`` replaces
the block holding it with an empty one (anvil forgets the transaction), so the sender
finds the receipt gone and sends the same signed bytes again; if another transaction of
the operator took the nonce meanwhile, the call is signed anew. Either way the contract
database holds one ``RecordSet`` for the call, and the call is done once.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from anvil_control import anvil_call
from pervasive.chain import ContractCall, Ledger, TransactionManager
from pervasive.contracts.contract_database import ContractDatabase, record_key
from pervasive.service.calls import CallSender
from pervasive.service.inbox import CallStatus, Inbox, NewCall

pytestmark = pytest.mark.anvil

DEPTH = 2
KEY = record_key("cost", "ship-1")


@pytest.fixture
async def world(ledger: Ledger, tmp_path: Path) -> tuple[CallSender, ContractDatabase, int]:
    """A sender whose one call is mined, then reorganised away before it was deep."""
    owner, operator = ledger.dev_signer(0), ledger.dev_signer(1)
    database = await ContractDatabase.deploy(ledger, owner)
    await database.set_writer(operator.address)
    ledger.options = replace(ledger.options, confirmations=DEPTH)  # the sender takes it
    inbox = Inbox.open(tmp_path / "inbox.sqlite")
    sender = CallSender(inbox, ledger, operator, database.address)
    calldata = database.contract.encode("set_uint", KEY, 42)
    call_id = inbox.accept(NewCall("rest", "lock-7", "ref-1", "set_uint", calldata))
    assert await sender.send_open()
    call = inbox.get(call_id)
    assert call.status is CallStatus.MINED and call.transaction_hash is not None
    assert not await sender.settle_mined()  # mined in a block nothing is on top of yet
    await anvil_call(ledger, "anvil_reorg", [1, []])  # that block replaced by an empty one
    assert await ledger.rpc.receipt(call.transaction_hash) is None
    assert await database.get_uint(KEY) == 0
    return sender, database, call_id


async def _settle(ledger: Ledger, sender: CallSender) -> None:
    """Let blocks come (anvil mines only with transactions) until every call is done."""
    for _ in range(4):
        await sender.send_open()
        if await sender.settle_mined() and not sender.inbox.open_calls():
            return
        await ledger.mine(DEPTH)
    raise AssertionError(f"still open: {sender.inbox.counts()}")


async def _applied_once(ledger: Ledger, sender: CallSender, database: ContractDatabase) -> str:
    (call,) = sender.inbox.calls()
    assert call.status is CallStatus.DONE and call.transaction_hash is not None
    head = await ledger.block_number()
    writes = database.contract.decode_logs(await ledger.logs(database.address, 0, head))
    assert [event.name for event in writes].count("RecordSet") == 1
    assert await database.get_uint(KEY) == 42
    receipt = await ledger.rpc.receipt(call.transaction_hash)
    assert receipt is not None and head >= receipt.block_number + DEPTH
    return call.transaction_hash


async def test_a_reorganised_call_is_sent_again_and_applied_once(
    ledger: Ledger, world: tuple[CallSender, ContractDatabase, int]
) -> None:
    sender, database, call_id = world
    lost = sender.inbox.get(call_id).transaction_hash
    await ledger.mine(DEPTH)  # the chain grows past the call's old height without it

    await _settle(ledger, sender)

    assert await _applied_once(ledger, sender, database) == lost  # the same signed bytes
    assert sender.counters["resent"] == 1 and sender.counters["applied"] == 1


async def test_a_call_whose_nonce_was_taken_is_signed_anew_and_applied_once(
    ledger: Ledger, world: tuple[CallSender, ContractDatabase, int]
) -> None:
    sender, database, call_id = world
    lost = sender.inbox.get(call_id).transaction_hash
    # another process of the operator's account uses the freed nonce first
    elsewhere = TransactionManager(ledger.rpc, ledger.dev_signer(1))
    await elsewhere.send(ContractCall(to=ledger.dev_signer(7).address, data=b"", value=1))
    await ledger.mine(DEPTH)

    await _settle(ledger, sender)

    assert await _applied_once(ledger, sender, database) != lost
    assert sender.counters["resigned"] == 1 and sender.counters["applied"] == 1
