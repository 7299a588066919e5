"""Exactly one transaction per round across a committee, durable across restarts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pervasive.chain import Receipt
from pervasive.committee import SubmissionStatus, Submitter, takeover_rank
from pervasive.errors import InvalidInput, TransactionReverted


@dataclass(frozen=True)
class Vote:
    """A transaction the committee agreed on (anything with ``encode``)."""

    round: int
    value: bytes

    def encode(self) -> bytes:
        return self.round.to_bytes(8, "big") + self.value

    @classmethod
    def decode(cls, blob: bytes) -> Vote:
        return cls(int.from_bytes(blob[:8], "big"), blob[8:])


@dataclass
class Contract:
    """The contract's rule the submitter relies on: a second transaction for a round reverts."""

    records: dict[int, bytes] = field(default_factory=dict)
    sent: int = 0
    queried: int = 0
    fail_next: bool = False

    async def recorded(self, round: int) -> bool:
        self.queried += 1
        return round in self.records

    async def submit(self, transaction: Vote) -> Receipt:
        if self.fail_next:
            self.fail_next = False
            raise TransactionReverted("out of gas")
        if transaction.round in self.records:
            raise TransactionReverted("round already recorded")
        self.records[transaction.round] = transaction.value
        self.sent += 1
        return Receipt(f"0x{self.sent:064x}", self.sent, "0x" + "00" * 32, 1, 21_000, 1, None, ())

    def already_recorded(self, error: TransactionReverted) -> bool:
        return error.reason == "round already recorded"


def _submitter(path: Path, contract: Contract) -> Submitter[Vote]:
    return Submitter(path, "0x" + "aa" * 20, contract, Vote.decode, takeover_after=10.0)


async def test_designated_sends_at_once_and_the_stand_in_then_skips(tmp_path: Path) -> None:
    contract = Contract()
    designated = _submitter(tmp_path / "a.sqlite", contract)
    stand_in = _submitter(tmp_path / "b.sqlite", contract)
    vote = Vote(3, b"agreed")
    assert designated.add(3, vote, designated=True, rank=0, now=0.0)
    assert not designated.add(3, vote, designated=True, rank=0, now=0.0)  # known: ignored
    assert stand_in.add(3, vote, designated=False, rank=1, now=0.0)
    assert stand_in.due(5.0) == []  # waits its turn
    [receipt] = await designated.run_due(0.0)
    assert receipt.gas_used == 21_000 and contract.queried == 0  # first try: no query
    assert await stand_in.run_due(10.0) == []
    assert (contract.sent, stand_in.skipped, designated.sent) == (1, 1, 1)
    row = stand_in.get(3)
    assert row is not None and row.status is SubmissionStatus.RECORDED and row.tx_hash is None


async def test_a_stand_in_takes_over_from_a_silent_designated_member(tmp_path: Path) -> None:
    contract = Contract()
    stand_ins = [_submitter(tmp_path / f"{i}.sqlite", contract) for i in range(2)]
    for rank, submitter in enumerate(stand_ins, start=1):
        submitter.add(0, Vote(0, b"v"), designated=False, rank=rank, now=0.0)
    assert await stand_ins[1].run_due(15.0) == []  # rank 2 is due at 20 s, not yet
    [receipt] = await stand_ins[0].run_due(10.0)
    assert receipt is not None and contract.records == {0: b"v"}
    assert await stand_ins[1].run_due(20.0) == []
    assert contract.sent == 1 and stand_ins[1].skipped == 1


async def test_a_failed_send_stays_pending_and_a_restart_resumes_it(tmp_path: Path) -> None:
    contract = Contract(fail_next=True)
    path = tmp_path / "a.sqlite"
    first = _submitter(path, contract)
    first.add(1, Vote(1, b"x"), designated=True, rank=0, now=0.0)
    with pytest.raises(TransactionReverted):
        await first.run_due(0.0)
    [row] = _submitter(path, contract).pending()  # a new process on the same table
    assert row.status is SubmissionStatus.WAITING and row.transaction == Vote(1, b"x")
    assert len(await _submitter(path, contract).run_due(1.0)) == 1
    assert _submitter(path, contract).pending() == []


def test_takeover_rank_follows_ring_order() -> None:
    members = ("a", "b", "c")
    assert [takeover_rank(members, "b", m) for m in members] == [2, 0, 1]
    with pytest.raises(InvalidInput):
        takeover_rank(members, "z", "a")
