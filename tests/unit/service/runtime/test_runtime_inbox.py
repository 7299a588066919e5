"""The inbox: a reading and its sequence number in one transaction; a call's life."""

from __future__ import annotations

from pathlib import Path

import pytest

from pervasive.errors import NotFound, ReplayedMessage
from pervasive.service.inbox import CallStatus, Inbox, NewCall


def call(reference: str | None = None, source: str = "container-1") -> NewCall:
    return NewCall("mqtt", source, reference, "confirm_delivery", b"\x01\x02")


def test_a_reading_is_accepted_once_with_its_sequence_number(tmp_path: Path) -> None:
    inbox = Inbox.open(tmp_path / "inbox.sqlite")
    ids = inbox.accept_reading("0xS", 3, [call("0xS:3:0"), call("0xS:3:1")])
    assert [inbox.get(i).status for i in ids] == [CallStatus.PENDING] * 2
    with pytest.raises(ReplayedMessage, match="already accepted up to 3"):
        inbox.accept_reading("0xS", 3, [call("0xS:3:0")])
    with pytest.raises(ReplayedMessage):
        inbox.accept_reading("0xS", 2, [call("0xS:2:0")])
    inbox.close()
    again = Inbox.open(tmp_path / "inbox.sqlite")  # a restart
    assert again.last_sequence("0xS") == 3
    with pytest.raises(ReplayedMessage):
        again.accept_reading("0xS", 3, [call("0xS:3:9")])
    assert len(again.calls()) == 2


def test_a_refused_reading_writes_nothing() -> None:
    inbox = Inbox.open(":memory:")
    inbox.accept_reading("0xS", 5, [call("0xS:5:0")])
    with pytest.raises(ReplayedMessage):
        inbox.accept_reading("0xS", 4, [call("0xS:4:0")])
    assert inbox.last_sequence("0xS") == 5
    assert [c.reference for c in inbox.calls()] == ["0xS:5:0"]


def test_a_known_reference_returns_the_first_call() -> None:
    inbox = Inbox.open(":memory:")
    first = inbox.accept(call("trigger:ab"))
    assert inbox.accept(call("trigger:ab")) == first
    assert inbox.accept(call(None)) != inbox.accept(call(None))  # no reference: always new
    assert len(inbox.calls()) == 3


def test_a_call_moves_pending_signed_done_and_leaves_the_open_list() -> None:
    inbox = Inbox.open(":memory:")
    first, second = inbox.accept(call()), inbox.accept(call())
    inbox.mark_signed(first, 4, b"raw", "0xhash")
    assert [(c.id, c.status) for c in inbox.open_calls()] == [
        (first, CallStatus.SIGNED),
        (second, CallStatus.PENDING),
    ]
    signed = inbox.get(first)
    assert (signed.nonce, signed.raw, signed.transaction_hash) == (4, b"raw", "0xhash")
    inbox.mark_done(first, "0xhash", 12)
    inbox.mark_reverted(second, "refused shipment", None)
    assert inbox.open_calls() == []
    assert inbox.get(first).block_number == 12 and inbox.get(first).finished
    assert inbox.get(second).error == "refused shipment"
    assert inbox.counts() == {"done": 1, "reverted": 1}


def test_a_call_whose_nonce_was_taken_goes_back_to_pending_unsigned() -> None:
    inbox = Inbox.open(":memory:")
    first = inbox.accept(call())
    inbox.mark_signed(first, 4, b"raw", "0xhash")
    inbox.reset(first, "nonce 4 taken by another transaction")
    again = inbox.get(first)
    assert (again.status, again.raw, again.nonce, again.attempts) == (
        CallStatus.PENDING, None, None, 1,
    )  # fmt: skip
    inbox.mark_done(first, "0xother", 3)
    inbox.reset(first, "late")  # only a signed call can be reset
    assert inbox.get(first).status is CallStatus.DONE


def test_an_unknown_call_is_not_found() -> None:
    with pytest.raises(NotFound, match="no call 9"):
        Inbox.open(":memory:").get(9)
