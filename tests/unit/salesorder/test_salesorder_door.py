"""The door's pieces without a network: the actuator, the journal, the refusals' words."""

from __future__ import annotations

from pathlib import Path

import pytest

from pervasive.apps.salesorder import (
    Door,
    DoorState,
    Refusal,
    ReleaseJournal,
    Stage,
    failure_refusal,
    ownership_refusal,
)
from pervasive.chain import RequestRefused, TransactionRefused
from pervasive.contracts import SaleItem
from pervasive.crypto import checksum_address
from pervasive.errors import (
    ChainUnavailable,
    InternalError,
    InvalidInput,
    TransactionTimeout,
    UserError,
)

ORDER, BUYER, OTHER, HERE, THERE = (checksum_address("0x" + c * 40) for c in "abcde")


def item(*, buyer: str | None, released: bool = False, warehouse: str = HERE) -> SaleItem:
    return SaleItem(ORDER, "Tesla", "alpha", 2019, 50 * 10**18, "4AA6", OTHER, warehouse,
                    buyer, buyer is not None, released)  # fmt: skip


async def test_a_door_logs_its_movements_and_ignores_no_ops() -> None:
    door = Door()
    assert door.state is DoorState.CLOSED
    assert await door.move(DoorState.CLOSED) is DoorState.CLOSED
    await door.move(DoorState.OPEN, sale=(ORDER, BUYER))
    await door.move(DoorState.OPEN, sale=(ORDER, BUYER))  # already open: nothing happens
    await door.move(DoorState.CLOSED, sale=(ORDER, BUYER))  # a closing is for no sale
    assert [(e.state, e.order) for e in door.events] == [
        (DoorState.OPEN, ORDER),
        (DoorState.CLOSED, None),
    ]
    assert door.openings == 1 and door.openings_for(ORDER.lower()) == 1
    assert door.openings_for(BUYER) == 0


async def test_a_failing_actuator_leaves_the_door_where_it_was() -> None:
    class Broken:
        async def move(self, state: DoorState) -> None:
            raise OSError("relay does not answer")

    door = Door(Broken())
    with pytest.raises(OSError, match="relay"):
        await door.move(DoorState.OPEN)
    assert door.state is DoorState.CLOSED and door.events == []


def test_door_states_parse_only_open_and_closed() -> None:
    assert DoorState.parse("open") is DoorState.OPEN
    for value in ("OPEN", "ajar", 1, None, True):
        with pytest.raises(InvalidInput, match="'open' or 'closed'"):
            DoorState.parse(value)


def test_a_journal_row_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    journal = ReleaseJournal.open(path)
    journal.begin(31337, ORDER, BUYER, HERE)
    with pytest.raises(InternalError, match="already holds a release"):
        journal.begin(31337, ORDER.lower(), BUYER, HERE)
    journal.sent(31337, ORDER, "0x" + "11" * 32, b"\x02raw")
    journal.close()
    again = ReleaseJournal.open(path)
    (entry,) = again.unfinished(31337)
    assert (entry.stage, entry.tx_hash, entry.raw) == (Stage.SENT, "0x" + "11" * 32, b"\x02raw")
    assert again.unfinished(1) == [], "rows belong to their chain"
    again.released(31337, ORDER, block=9)
    again.opened(31337, ORDER)
    assert again.unfinished(31337) == []
    done = again.get(31337, ORDER)
    assert done is not None and (done.stage, done.block) == (Stage.OPENED, 9)
    assert done.opened_at is not None and done.released_at is not None
    again.forget(31337, ORDER)
    assert again.get(31337, ORDER) is None
    with pytest.raises(InternalError, match="holds no release"):
        again.opened(31337, ORDER)
    again.close()


@pytest.mark.parametrize(
    ("state", "owned", "expected"),
    [
        (item(buyer=None), False, Refusal.NOT_SOLD),
        (item(buyer=OTHER), False, Refusal.OTHER_BUYER),
        (item(buyer=BUYER, released=True), False, Refusal.ALREADY_RELEASED),
        (item(buyer=BUYER, warehouse=THERE), True, Refusal.OTHER_WAREHOUSE),
        (item(buyer=BUYER), True, None),
    ],
    ids=["not-sold", "other-buyer", "released", "other-warehouse", "releasable"],
)
def test_the_order_state_explains_each_refusal(
    state: SaleItem, owned: bool, expected: Refusal | None
) -> None:
    found = ownership_refusal(state, BUYER, HERE, owned=owned, released_block=12)
    assert (found[0] if found else None) is expected
    if expected is Refusal.ALREADY_RELEASED:
        assert found is not None and "already released at block 12" in found[1]


@pytest.mark.parametrize(
    ("failure", "releasing", "expected"),
    [
        (RequestRefused("x is not a sale order; the warehouse role ...", status=403), False,
         Refusal.NOT_AN_ORDER),
        (RequestRefused("the certificate of 'door-1' is revoked", status=403), False,
         Refusal.DEVICE_REFUSED),
        (RequestRefused("too many calls", status=429), False, Refusal.UNREACHABLE),
        (ChainUnavailable("cannot reach the rpc node"), True, Refusal.UNREACHABLE),
        (TransactionTimeout("no receipt after 120s"), True, Refusal.UNREACHABLE),
        (TransactionRefused("insufficient funds for gas * price + value"), True,
         Refusal.RELEASE_REFUSED),
        (TransactionRefused("nonce too low"), True, Refusal.UNREACHABLE),
    ],
    ids=["not-an-order", "revoked", "rate-limited", "unreachable", "timeout", "funds", "nonce"],
)  # fmt: skip
def test_failed_requests_become_refusals_that_say_nothing_opened(
    failure: UserError, releasing: bool, expected: Refusal
) -> None:
    refusal, message = failure_refusal(failure, releasing=releasing)
    assert refusal is expected
    assert "nothing was opened" in message.lower()


def test_a_gateway_refusal_of_a_send_is_the_gateways() -> None:
    # send_raw turns the gateway's 403 into TransactionRefused; the cause still tells
    try:
        try:
            raise RequestRefused("the certificate of 'door-1' is revoked", status=403)
        except RequestRefused as refused:
            raise TransactionRefused(refused.message) from refused
    except TransactionRefused as failure:
        assert failure_refusal(failure, releasing=True)[0] is Refusal.DEVICE_REFUSED
