"""The warehouse door device: scan a receipt, release the sale on-chain, open the door once.

Paper 004 sections 4.4-4.8 and Table 4, with the release design of issue 9. For each
scanned receipt :meth:`WarehouseDoor.scan` (an image) or :meth:`WarehouseDoor.scan_text`
(the barcode text):

1. decodes the QR code (``barcode.py``) and the receipt (:class:`SaleReceipt`), checks it
   is for this chain and signed by its buyer;
2. asks the order, through the ledger (the device's gateway in production),
   ``verifyOwnership(buyer)``; when false, its details say why (not sold, sold to someone
   else, already released); an order of another warehouse is refused by the release's
   gas estimate and explained the same way;
3. records in the :class:`ReleaseJournal` that it releases, sends ``release(buyer)`` from
   the warehouse account, records the hash, waits for the receipt, records the block;
4. opens the door through its shadow (:class:`ShadowDoor`, section 4.8), records that it
   opened; the door closes by itself after the hold time.

Any refusal comes back as a :class:`DoorDecision` with its reason (``decision.py``) and is
counted in :attr:`WarehouseDoor.refusals`; bad input never raises.

Never twice for one sale: the contract accepts ``release`` once, so a second scan (another
door, a copied receipt, the same receipt twice at once) finds ``verifyOwnership`` false;
scans of one order are serialised in this process; and the journal carries a release
across a restart. A row the journal left unfinished is settled from the chain before
anything is sent again: a release that is mined opens the door (at :meth:`start` or at the
next scan); one that is not is re-sent with the same signed bytes, so it cannot be mined
twice either. One warehouse account belongs to one door: an order released from this
account while the journal says this door was releasing it is this door's release.

Example::

    warehouse = WarehouseDoor("warehouse-7", gateway_ledger, account, journal, hold=5.0)
    await warehouse.start(mqtt_client)             # shadow synchronised, journal settled
    decision = await warehouse.scan(Path("inbox/frame-001.png"))
    print(decision.decision, decision.message)     # open  released at block 12, door open
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from pervasive.apps.salesorder.barcode import ImageSource, UnreadableImage, read_barcode_text
from pervasive.apps.salesorder.decision import (
    DoorDecision,
    DoorTimings,
    Refusal,
    failure_refusal,
    ownership_refusal,
)
from pervasive.apps.salesorder.door import Door
from pervasive.apps.salesorder.journal import ReleaseEntry, ReleaseJournal, Stage
from pervasive.apps.salesorder.shadow_door import ReleaseNote, ShadowDoor
from pervasive.chain import (
    ContractCall,
    Ledger,
    PendingTransaction,
    Receipt,
    RequestRefused,
    Signer,
    TransactionRefused,
)
from pervasive.contracts import SaleOrder, compile_contract
from pervasive.contracts.contract import Contract
from pervasive.domain import InvalidReceipt, SaleReceipt
from pervasive.errors import (
    ChainUnavailable,
    InternalError,
    NotFound,
    PervasiveError,
    TransactionReverted,
    TransactionTimeout,
    UserError,
)
from pervasive.gateway import OrderCheck
from pervasive.messaging import MqttClient

__all__ = ["WarehouseDoor"]

_log = logging.getLogger(__name__)

_ALREADY_SENT = ("already known", "already imported", "known transaction")


class _Clock:
    """Seconds since the scan began, per step."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.marks: dict[str, float] = {}

    def mark(self, step: str) -> None:
        self.marks[step] = time.perf_counter() - self.start

    def timings(self) -> DoorTimings:
        get = self.marks.get
        return DoorTimings(get("decoded"), get("verified"), get("released"), get("open"))


@dataclass
class _Scan:
    """One scan (or one recovery) on its way through the steps."""

    clock: _Clock
    order: str
    buyer: str
    recovered: bool = False


class _Refused(UserError):
    """A refusal on its way out of the steps (never leaves this module)."""

    def __init__(self, refusal: Refusal, message: str) -> None:
        super().__init__(message)
        self.refusal = refusal
        self.message = message


class WarehouseDoor:
    """One warehouse door: its account, ledger, journal and shadow-driven :class:`Door`.

    ``ledger`` is the device's view of the chain (``open_gateway_ledger`` in production,
    any :class:`Ledger` in tests); ``account`` the warehouse account sellers name;
    ``is_order`` is asked before the order when given (needed without a gateway, which
    otherwise refuses calls to addresses that are no sale order).
    """

    def __init__(
        self,
        thing: str,
        ledger: Ledger,
        account: Signer,
        journal: ReleaseJournal,
        *,
        door: Door | None = None,
        hold: float = 5.0,
        timeout: float = 10.0,
        is_order: OrderCheck | None = None,
        artifacts: Path | None = None,
    ) -> None:
        self.thing = thing
        self.ledger = ledger
        self.account = account
        self.journal = journal
        self.door = ShadowDoor(thing, door or Door(), hold=hold, timeout=timeout)
        self._is_order = is_order
        self._abi = compile_contract(SaleOrder.NAME, cache_dir=artifacts).abi
        self._orders: dict[str, tuple[asyncio.Lock, int]] = {}
        self.refusals: collections.Counter[str] = collections.Counter()
        """Refused scans by :class:`Refusal` value (for tests, the CLI and dashboards)."""
        self.opened = 0
        """Times this object opened the door for a release."""

    # -- lifecycle ----------------------------------------------------------------------
    async def start(self, client: MqttClient) -> list[DoorDecision]:
        """Follow the shadow over ``client``, then settle the journal's unfinished releases.

        Returns a decision per release recorded before a restart that is mined but whose
        door never opened: the door opens for each now (``recovered``). Unmined ones wait
        for the receipt to be scanned again.

        Example: ``for d in await warehouse.start(client): print(d.message)``.
        """
        await self.door.start(client)
        return await self.recover()

    async def stop(self) -> None:
        """Close the door if open and stop following the shadow (the journal stays open)."""
        await self.door.stop()

    async def recover(self) -> list[DoorDecision]:
        """Open the door for each journal release that is mined but was not opened for.

        Example: ``await warehouse.recover()``.
        """
        decisions = []
        for entry in self.journal.unfinished(self.ledger.chain_id):
            async with self._serialised(entry.order):
                current = self.journal.get(entry.chain_id, entry.order)
                if current is None or not current.unfinished:
                    continue
                scan = _Scan(_Clock(), current.order, current.buyer, recovered=True)
                try:
                    mined = await self._settle(current, scan, resend=False)
                except _Refused as refused:
                    _log.warning("release of %s left for a rescan: %s", entry.order, refused)
                    continue
                if mined is not None:
                    opening = functools.partial(self._open, mined, scan)
                    decisions.append(await self._decide(scan, opening))
        return decisions

    # -- scanning -----------------------------------------------------------------------
    async def scan(self, source: ImageSource) -> DoorDecision:
        """Decide on the receipt an image shows (file, bytes, PIL image or camera frame).

        Example: ``decision = await warehouse.scan(Path("inbox/frame-001.png"))``.
        """
        clock = _Clock()
        try:
            text = await asyncio.to_thread(read_barcode_text, source)
        except UnreadableImage as exc:
            return self._refuse(clock, Refusal.UNREADABLE, str(exc))
        return await self._scan_text(text, clock)

    async def scan_text(self, text: str) -> DoorDecision:
        """Decide on a receipt's barcode text (a handheld scanner types it; stdin).

        Example: ``await warehouse.scan_text("PVR1:31337:...")``.
        """
        return await self._scan_text(text, _Clock())

    async def _scan_text(self, text: str, clock: _Clock) -> DoorDecision:
        try:
            receipt = SaleReceipt.decode(text)
        except InvalidReceipt as exc:
            looks_like = text.strip().upper().startswith("PVR")
            return self._refuse(clock, Refusal.MALFORMED if looks_like else Refusal.UNREADABLE,
                                str(exc))  # fmt: skip
        clock.mark("decoded")
        try:
            receipt.verify(chain_id=self.ledger.chain_id)
        except InvalidReceipt as exc:
            wrong_chain = exc.kind == "wrong chain"
            refusal = Refusal.OTHER_CHAIN if wrong_chain else Refusal.FORGED
            return self._refuse(clock, refusal, str(exc), receipt.order, receipt.buyer)
        scan = _Scan(clock, receipt.order, receipt.buyer)
        async with self._serialised(receipt.order):
            return await self._decide(scan, functools.partial(self._release_and_open, scan))

    async def _decide(
        self, scan: _Scan, steps: Callable[[], Awaitable[DoorDecision]]
    ) -> DoorDecision:
        try:
            return await steps()
        except _Refused as refused:
            return self._refuse(
                scan.clock, refused.refusal, refused.message, scan.order, scan.buyer
            )

    # -- the steps ----------------------------------------------------------------------
    async def _release_and_open(self, scan: _Scan) -> DoorDecision:
        chain_id = self.ledger.chain_id
        entry = self.journal.get(chain_id, scan.order)
        if entry is not None and entry.buyer == scan.buyer:
            if not entry.unfinished:
                when = time.strftime("%H:%M:%S", time.localtime(entry.opened_at or 0))
                where = f" at block {entry.block}" if entry.block is not None else ""
                raise _Refused(Refusal.ALREADY_RELEASED,
                               f"order {_short(scan.order)} was already released{where}: "
                               f"this door opened for it at {when}; a receipt opens the "
                               "door only once")  # fmt: skip
            scan.recovered = True
            mined = await self._settle(entry, scan, resend=True)
            if mined is None:
                raise InternalError("a settled release has no mined entry")
            return await self._open(mined, scan)
        order = self._order(scan.order)
        await self._check_owned(order, scan.buyer, scan)
        entry = self.journal.begin(chain_id, scan.order, scan.buyer, self.account.address)
        return await self._open(await self._release(order, entry, scan), scan)

    async def _check_owned(self, order: SaleOrder, buyer: str, scan: _Scan) -> None:
        """Section 4.7: ``verifyOwnership(buyer)``; when false, the order's state says why.

        Whether this door's account is the order's warehouse is left to the release's gas
        estimate (it reverts, and :meth:`_explain_revert` says so): one call on the way in.
        """
        async with self._chain_errors():
            if self._is_order is not None and not await self._is_order(order.address):
                raise _Refused(Refusal.NOT_AN_ORDER,
                               f"{_short(order.address)} is not a sale order of this shop: "
                               "show the receipt the shop gave after the purchase")  # fmt: skip
            owned = await order.verify_ownership(buyer)
            item = None if owned else await order.item()
        scan.clock.mark("verified")
        if item is None:
            return
        known = self.journal.get(self.ledger.chain_id, order.address)
        refusal = ownership_refusal(item, buyer, self.account.address, owned=False,
                                    released_block=known.block if known else None)  # fmt: skip
        raise _Refused(*(refusal or (Refusal.OTHER_BUYER, "the chain does not confirm the sale")))

    async def _release(self, order: SaleOrder, entry: ReleaseEntry, scan: _Scan) -> ReleaseEntry:
        """Send ``release(buyer)``; return the journal's entry once it is mined."""
        manager = self.ledger.transactor(self.account)
        call = ContractCall(to=order.address, data=order.contract.encode("release", entry.buyer))
        try:
            async with self._chain_errors(releasing=True):
                try:
                    pending = await manager.send(call)
                except (RequestRefused, TransactionRefused, TransactionReverted):
                    # refused, or the estimate reverted: nothing reached the chain (a
                    # ChainUnavailable keeps the row: the bytes may have reached the node)
                    self.journal.forget(entry.chain_id, entry.order)
                    raise
        except TransactionReverted as reverted:
            raise await self._explain_revert(order, entry.buyer, reverted) from None
        self.journal.sent(entry.chain_id, entry.order, pending.hashes[0], pending.raw)
        return await self._await_mined(order, entry, pending, scan)

    async def _await_mined(
        self, order: SaleOrder, entry: ReleaseEntry, pending: PendingTransaction, scan: _Scan
    ) -> ReleaseEntry:
        manager = self.ledger.transactor(self.account)
        try:
            async with self._chain_errors(sent=pending.hashes[-1]):
                receipt = await manager.wait(pending)
        except TransactionReverted as reverted:
            self.journal.forget(entry.chain_id, entry.order)
            raise await self._explain_revert(order, entry.buyer, reverted) from None
        return self._mined(entry, receipt, scan)

    def _mined(self, entry: ReleaseEntry, receipt: Receipt | None, scan: _Scan) -> ReleaseEntry:
        scan.clock.mark("released")
        block = receipt.block_number if receipt is not None else None
        tx_hash = receipt.transaction_hash if receipt is not None else None
        return self.journal.released(entry.chain_id, entry.order, block=block, tx_hash=tx_hash)

    async def _settle(
        self, entry: ReleaseEntry, scan: _Scan, *, resend: bool
    ) -> ReleaseEntry | None:
        """Bring an unfinished journal entry to ``released`` from what the chain says.

        ``None`` (with ``resend=False``) when the release is not mined: it waits for a
        rescan. With ``resend=True`` an unmined release is sent again: the same signed
        bytes when the journal has them, so it cannot be mined twice.
        """
        if entry.stage is Stage.RELEASED:
            scan.clock.mark("verified")
            scan.clock.mark("released")
            return entry
        order = self._order(entry.order)
        async with self._chain_errors():
            mined = await self.ledger.receipt(entry.tx_hash) if entry.tx_hash else None
            if mined is not None and mined.succeeded:
                scan.clock.mark("verified")
                return self._mined(entry, mined, scan)
            item = await order.item()
        scan.clock.mark("verified")
        if item.released:
            ours = (item.buyer or "").lower() == entry.buyer.lower() and (
                item.warehouse.lower() == self.account.address.lower()
            )
            if ours:  # released from this door's account while it was releasing it
                return self._mined(entry, None, scan)
            self.journal.forget(entry.chain_id, entry.order)
            refusal = ownership_refusal(item, entry.buyer, self.account.address, owned=False)
            raise _Refused(*(refusal or (Refusal.ALREADY_RELEASED, "already released")))
        if not resend:
            return None
        await self._check_owned(order, entry.buyer, scan)  # still sold to them, not released
        if entry.raw is None or entry.tx_hash is None:
            return await self._release(order, entry, scan)
        if not await self._resend(entry.raw, entry.tx_hash):
            return await self._release(order, entry, scan)
        try:
            async with self._chain_errors(sent=entry.tx_hash):
                receipt = await self.ledger.rpc.wait_for_receipt([entry.tx_hash])
        except TransactionReverted as reverted:
            self.journal.forget(entry.chain_id, entry.order)
            raise await self._explain_revert(order, entry.buyer, reverted) from None
        return self._mined(entry, receipt, scan)

    async def _resend(self, raw: bytes, tx_hash: str) -> bool:
        """Send the journal's signed bytes again; ``False`` when they can never be mined."""
        async with self._chain_errors(sent=tx_hash):
            try:
                await self.ledger.rpc.send_raw(raw)
            except TransactionRefused as refused:
                if any(marker in refused.message.lower() for marker in _ALREADY_SENT):
                    return True
                # "nonce too low" and no receipt: its nonce went to another transaction
                _log.info("re-sending %s was refused (%s): signing anew", tx_hash, refused)
                return False
        return True

    async def _open(self, entry: ReleaseEntry, scan: _Scan) -> DoorDecision:
        note = ReleaseNote(entry.order, entry.buyer, entry.tx_hash, entry.block)
        where = f"at block {entry.block}" if entry.block is not None else "on-chain"
        try:
            await self.door.open(note)
        except (PervasiveError, OSError) as exc:  # DoorFault, BrokerUnavailable, TopicDenied
            raise _Refused(Refusal.DOOR_FAULT,
                           f"order {_short(entry.order)} is released {where}, but the door did "
                           f"not confirm it opened ({exc}); scan the receipt again to open "
                           "it") from None  # fmt: skip
        scan.clock.mark("open")
        self.journal.opened(entry.chain_id, entry.order)
        self.opened += 1
        before = " (released before a restart or fault)" if scan.recovered else ""
        return DoorDecision(
            opened=True,
            message=f"order {_short(entry.order)} released {where}{before}: door open",
            order=entry.order,
            buyer=entry.buyer,
            tx_hash=entry.tx_hash,
            block=entry.block,
            recovered=scan.recovered,
            timings=scan.clock.timings(),
        )

    # -- helpers ------------------------------------------------------------------------
    def _order(self, address: str) -> SaleOrder:
        return SaleOrder(Contract(self.ledger, address, self._abi), self.account)

    async def _explain_revert(
        self, order: SaleOrder, buyer: str, reverted: TransactionReverted
    ) -> _Refused:
        """Why the contract refused the release, from the order's state after the fact."""
        try:
            async with self._chain_errors():
                owned, item = await asyncio.gather(order.verify_ownership(buyer), order.item())
        except _Refused as refused:
            return refused
        refusal = ownership_refusal(item, buyer, self.account.address, owned=owned)
        if refusal is not None:
            return _Refused(*refusal)
        return _Refused(Refusal.RELEASE_REFUSED,
                        f"the order refused the release: {reverted.reason or 'no reason given'}; "
                        "nothing was opened")  # fmt: skip

    @contextlib.asynccontextmanager
    async def _chain_errors(
        self, *, releasing: bool = False, sent: str | None = None
    ) -> AsyncIterator[None]:
        """Turn the chain's and the gateway's failures into refusals at the door.

        ``releasing``: the calls send the release; ``sent``: the release with this hash
        was sent already (so it may be mined whatever the failure says).
        """
        try:
            yield
        except (ChainUnavailable, TransactionTimeout, RequestRefused, TransactionRefused) as exc:
            refusal, message = failure_refusal(exc, releasing=releasing or sent is not None)
            if sent is not None:
                message += (
                    f" The release {sent} was sent; it is checked on-chain before anything is "
                    "sent again."
                )
            raise _Refused(refusal, message) from None
        except NotFound as exc:  # no code at the address (a gateway refuses the call first)
            raise _Refused(Refusal.NOT_AN_ORDER,
                           f"{exc}: this is not a sale order of this shop; nothing was "
                           "opened") from None  # fmt: skip

    def _refuse(
        self,
        clock: _Clock,
        refusal: Refusal,
        message: str,
        order: str | None = None,
        buyer: str | None = None,
    ) -> DoorDecision:
        self.refusals[refusal.value] += 1
        return DoorDecision(
            opened=False,
            message=message,
            refusal=refusal,
            order=order,
            buyer=buyer,
            timings=clock.timings(),
        )

    @contextlib.asynccontextmanager
    async def _serialised(self, order: str) -> AsyncIterator[None]:
        """One scan of an order at a time in this process (the others wait their turn)."""
        key = order.lower()
        lock, users = self._orders.get(key, (asyncio.Lock(), 0))
        self._orders[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._orders[key]
            if users == 1:
                del self._orders[key]
            else:
                self._orders[key] = (lock, users - 1)


def _short(address: str) -> str:
    return f"{address[:6]}…{address[-4:]}"
