"""What the door decides for one scanned receipt, and why, in words for the person there.

A scan ends in a :class:`DoorDecision`: the door opened, or a :class:`Refusal` with a
message that says what is wrong and what to do. The checks run in this order (paper 004
sections 4.4 and 4.7, Table 4), each refusal counted under its :class:`Refusal` value:

1. a QR code can be read and is a sale receipt (``unreadable``), well formed
   (``malformed``), for this chain (``other chain``), signed by its buyer (``forged``);
2. the address is a sale order (``not a sale order``); ``verifyOwnership(buyer)`` is
   true, else the order is ``not sold``, ``sold to someone else`` or ``already released``;
   this door's account is the order's warehouse (``other warehouse``);
3. the release transaction is accepted and mined (``release refused``; the gateway
   refusing this device: ``device refused``; no answer: ``unreachable``);
4. the door reports ``open`` through its shadow (``door fault`` if not: the release is
   kept and a new scan of the same receipt opens the door).

:func:`ownership_refusal` is step 2's explanation from the order's state and
:func:`failure_refusal` step 3's from a failed request, both without I/O.

Example::

    decision = await warehouse.scan(Path("frame.png"))
    if not decision.opened:
        print(decision.refusal, decision.message)     # already released: ...
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from pervasive.chain import RequestRefused, TransactionRefused
from pervasive.contracts import SaleItem
from pervasive.errors import TransactionTimeout, UserError

__all__ = ["DoorDecision", "DoorTimings", "Refusal", "failure_refusal", "ownership_refusal"]


class Refusal(enum.StrEnum):
    """Why the door stayed closed; the value is the key refusals are counted under."""

    UNREADABLE = "unreadable"
    """No QR code could be read, the image cannot be opened, or the code is no receipt."""
    MALFORMED = "malformed"
    """A receipt whose fields are damaged (cut short, wrong characters, bad signature form)."""
    OTHER_CHAIN = "other chain"
    """A receipt of a sale on another chain."""
    FORGED = "forged"
    """The signature does not recover the receipt's buyer (tampered with or forged)."""
    NOT_AN_ORDER = "not a sale order"
    """The receipt's order address is not a sale order (the gateway or the factory says so)."""
    NOT_SOLD = "not sold"
    """The order exists but nobody bought it."""
    OTHER_BUYER = "sold to someone else"
    """The order was bought by another account than the receipt's buyer (Table 4, invalid)."""
    ALREADY_RELEASED = "already released"
    """The item was handed out before: the receipt was used already."""
    OTHER_WAREHOUSE = "other warehouse"
    """The seller named another warehouse account for this order."""
    RELEASE_REFUSED = "release refused"
    """The node refused the release transaction (e.g. the account cannot pay its fee)."""
    DEVICE_REFUSED = "device refused"
    """The gateway refuses this device (certificate revoked, role withdrawn)."""
    UNREACHABLE = "unreachable"
    """The gateway or the node did not answer; nothing was opened."""
    DOOR_FAULT = "door fault"
    """The release is on-chain but the door did not confirm it opened (kept for a rescan)."""


@dataclass(frozen=True)
class DoorTimings:
    """Seconds from the moment the scan began to each step it reached (``None``: not reached).

    ``decoded``: the receipt text parsed; ``verified``: signature and ``verifyOwnership``
    checked; ``released``: the release transaction mined; ``reported_open``: the shadow
    service accepted the door's ``reported.door = "open"``.
    """

    decoded: float | None = None
    verified: float | None = None
    released: float | None = None
    reported_open: float | None = None

    @property
    def scan_to_open(self) -> float | None:
        """Seconds from the decoded receipt to the reported ``open`` (the bench's figure)."""
        if self.decoded is None or self.reported_open is None:
            return None
        return self.reported_open - self.decoded


@dataclass(frozen=True)
class DoorDecision:
    """The outcome of one scan (or of a recovery after a restart)."""

    opened: bool
    message: str
    """One line for the person at the door."""
    refusal: Refusal | None = None
    order: str | None = None
    buyer: str | None = None
    tx_hash: str | None = None
    """The release transaction (when one was sent)."""
    block: int | None = None
    """The block of the release, when known."""
    recovered: bool = False
    """The door opened for a release this device recorded before a restart or a fault."""
    timings: DoorTimings = field(default_factory=DoorTimings)

    @property
    def decision(self) -> str:
        """``"open"`` or ``"refused"``."""
        return "open" if self.opened else "refused"


def _short(address: str) -> str:
    return f"{address[:6]}…{address[-4:]}"


def ownership_refusal(
    item: SaleItem,
    buyer: str,
    warehouse: str,
    *,
    owned: bool,
    released_block: int | None = None,
) -> tuple[Refusal, str] | None:
    """Why ``buyer``'s receipt of ``item`` cannot be released at ``warehouse``, or ``None``.

    ``owned`` is what ``verifyOwnership(buyer)`` answered; ``released_block`` the block of
    an earlier release when this door knows it.

    Example: ``ownership_refusal(item, receipt.buyer, door_account, owned=False)``
    returns ``(Refusal.NOT_SOLD, "this item is not sold yet: ...")`` for an unsold item.
    """
    order = _short(item.address)
    if not owned:
        if not item.sold or item.buyer is None:
            return Refusal.NOT_SOLD, (
                f"order {order} ({item.make} {item.model}) is not sold yet: the buyer must "
                "buy it before collecting it"
            )
        if item.buyer.lower() != buyer.lower():
            return Refusal.OTHER_BUYER, (
                f"order {order} was bought by another account, not by {_short(buyer)}: "
                "only the buyer's own receipt opens the door"
            )
        if item.released:
            where = f" at block {released_block}" if released_block is not None else ""
            return Refusal.ALREADY_RELEASED, (
                f"order {order} was already released{where}: this receipt was used before "
                "and opens the door only once"
            )
        return Refusal.OTHER_BUYER, (
            f"the chain does not confirm that {_short(buyer)} owns order {order}"
        )
    if item.warehouse.lower() != warehouse.lower():
        return Refusal.OTHER_WAREHOUSE, (
            f"order {order} is collected at another warehouse (account "
            f"{_short(item.warehouse)}), not at this door ({_short(warehouse)})"
        )
    return None


def failure_refusal(exc: UserError, *, releasing: bool) -> tuple[Refusal, str]:
    """The refusal a failed chain or gateway request means, and what to tell the person.

    ``exc`` is a :class:`ChainUnavailable`, :class:`TransactionTimeout`,
    :class:`RequestRefused` (the gateway's words) or :class:`TransactionRefused`;
    ``releasing``: it failed while sending the release.

    Example: ``failure_refusal(RequestRefused("... is revoked ...", status=403),
    releasing=False)[0] is Refusal.DEVICE_REFUSED``.
    """
    cause = exc.__cause__ if isinstance(exc, TransactionRefused) else None
    if isinstance(cause, RequestRefused):  # send_raw: the gateway refused it, not the node
        exc = cause
    if isinstance(exc, RequestRefused):
        if exc.status == 429:
            return Refusal.UNREACHABLE, (
                f"the gateway asks this door to slow down ({exc.message}); scan again in a "
                "moment; nothing was opened."
            )
        if exc.status == 403 and "not a sale order" in exc.message:
            return Refusal.NOT_AN_ORDER, (
                f"the gateway refuses to ask this address ({exc.message}): it is not a sale "
                "order of this shop; nothing was opened."
            )
        return Refusal.DEVICE_REFUSED, (
            f"the gateway refuses this door ({exc.message}): its certificate may be revoked "
            "or its warehouse role withdrawn; ask the operator. Nothing was opened."
        )
    if isinstance(exc, TransactionRefused):
        if releasing and "nonce" not in exc.message.lower():
            return Refusal.RELEASE_REFUSED, (
                f"the node refused the release transaction ({exc.message}): check the "
                "warehouse account's funds; nothing was opened."
            )
        return Refusal.UNREACHABLE, (
            f"the node refused the release transaction ({exc.message}); scan again; "
            "nothing was opened."
        )
    if isinstance(exc, TransactionTimeout):
        return Refusal.UNREACHABLE, (
            f"the release is not confirmed yet ({exc}); scan again in a moment; nothing was opened."
        )
    return Refusal.UNREACHABLE, (
        f"the chain cannot be reached through the gateway ({exc}); nothing was opened: "
        "check the network and scan again."
    )
