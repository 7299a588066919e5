"""The dashboard's chain sources: paper 002's agreements and paper 004's sale orders.

A source finds its contract through the deployment book (:meth:`locate`: the block to
start reading from, or ``None`` while it is not deployed) and turns a block range into
:class:`Put` s (rows) and :class:`Note` s (log lines) with :meth:`read`. A read does
every request first and changes the source's own state only when all of them
answered, so a node failing half-way leaves nothing half-applied and the same range
can be read again. :class:`~pervasive.web.feed.DashboardFeed` decides which ranges.

Example::

    source = OrderSource(ledger, book)
    start = await source.locate()          # None: no factory yet (see source.description)
    effects = await source.read(start, await ledger.block_number())
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from pervasive.chain import Ledger, Log
from pervasive.contracts import (
    AGREEMENT,
    REGISTRY,
    Agreement,
    DecodedEvent,
    DeploymentBook,
    Registry,
    compile_contract,
)
from pervasive.contracts.sale_order import SALE_ORDER_FACTORY, SaleOrderFactory
from pervasive.errors import NotFound
from pervasive.web.feed_rows import (
    AgreementRow,
    Row,
    Table,
    agreement_row,
    describe_sale,
    order_row,
    short_value,
)

__all__ = ["AgreementSource", "ChainSource", "Effect", "Note", "OrderSource", "Put"]


@dataclass(frozen=True)
class Put:
    """Put ``row`` into ``table`` under ``key``."""

    table: Table
    key: str
    row: Row


@dataclass(frozen=True)
class Note:
    """Add a line to the recent-events log."""

    source: str
    subject: str
    text: str
    block: int | None = None


Effect = Put | Note
"""What reading a block range asks the feed to show."""


class ChainSource(Protocol):
    """One contract family the feed follows on the chain."""

    name: Table
    description: str
    """Where the source stands, for the status table."""

    async def locate(self) -> int | None:
        """The first block to read, or ``None`` while the contract is not deployed."""
        ...

    async def read(self, first: int, last: int) -> list[Effect]:
        """What blocks ``first..last`` add (all requests answered, or nothing changes)."""
        ...

    def forget(self, key: str) -> None:
        """Stop following the row ``key`` (the feed dropped it from its bounded table)."""
        ...

    def reset(self) -> None:
        """Forget everything read (a reorganisation): the next :meth:`locate` starts over."""
        ...


def _deployed_at(book: DeploymentBook | None, chain_id: int, name: str) -> int | None:
    known = book.get(chain_id, name) if book is not None else None
    return None if known is None else known.block


class AgreementSource:
    """Agreements recorded in the registry, with their updates and disputes (paper 002)."""

    name: Table = "agreements"

    def __init__(
        self, ledger: Ledger, book: DeploymentBook | None, *, artifacts: Path | None = None
    ) -> None:
        self.ledger = ledger
        self.book = book
        self.artifacts = artifacts
        self.description = "no registry deployed: no agreements yet"
        self._registry: Registry | None = None
        self._agreements: dict[str, Agreement] = {}
        self._rows: dict[str, AgreementRow] = {}

    async def locate(self) -> int | None:
        """The registry's deployment block, once the book records a live registry."""
        start = _deployed_at(self.book, self.ledger.chain_id, REGISTRY)
        if start is None or self.book is None:
            return None
        # the ABIs come from the artifact cache; a first compilation runs off the event loop
        await asyncio.to_thread(compile_contract, AGREEMENT, cache_dir=self.artifacts)
        await asyncio.to_thread(compile_contract, REGISTRY, cache_dir=self.artifacts)
        try:
            self._registry = await Registry.find(self.ledger, self.book, artifacts=self.artifacts)
        except NotFound as exc:
            self.description = f"no agreements: {exc}"
            return None
        self.description = f"registry {self._registry.address}"
        return start

    def forget(self, key: str) -> None:
        """Stop following agreement ``key``."""
        self._agreements.pop(key, None)
        self._rows.pop(key, None)

    def reset(self) -> None:
        """Forget the registry and every agreement read."""
        self._registry = None
        self._agreements.clear()
        self._rows.clear()

    async def read(self, first: int, last: int) -> list[Effect]:
        """New agreements (``AgreementRecorded``) and every event of the known ones."""
        registry = self._registry
        if registry is None:
            return []
        logs = list(await self.ledger.logs(registry.address, first, last))
        if self._agreements:
            logs += await self.ledger.logs(list(self._agreements), first, last)
        fresh: list[tuple[Agreement, str, int]] = []
        for event in registry.contract.decode_logs(logs, "AgreementRecorded"):
            address = str(event.args["agreement"])
            agreement = await Agreement.at(self.ledger, address, artifacts=self.artifacts)
            fresh.append((agreement, str(event.args["creator"]), event.log.block_number))
        if fresh:
            logs += await self.ledger.logs([a.address for a, _, _ in fresh], first, last)
        # every request answered: from here on nothing awaits, so nothing half-applies
        effects: list[Effect] = []
        for agreement, creator, block in fresh:
            self._agreements[agreement.address] = agreement
            self._rows[agreement.address] = agreement_row(agreement, creator, block)
            effects.append(Put("agreements", agreement.address, self._rows[agreement.address]))
            effects.append(Note("agreement", agreement.address, f"created by {creator}", block))
        for log in sorted(logs, key=lambda item: (item.block_number, item.log_index)):
            known = self._agreements.get(log.address)
            if known is not None:
                for event in known.contract.decode_logs([log]):
                    effects.extend(self._apply(known.address, event, log))
        return effects

    def _apply(self, address: str, event: DecodedEvent, log: Log) -> list[Effect]:
        args, row = event.args, self._rows[address]
        if event.name in ("Updated", "UpdatedWithData"):
            result = short_value(bytes(args["result"]))
            row = replace(row, updates=row.updates + 1, last_window=str(args["window"]),
                          last_result=result)  # fmt: skip
            text = f"window {args['window']} updated: result {result}"
        elif event.name == "Disputed":
            dispute = f"window {args['window']}, kind {args['kind']}, by {args['opener']}"
            row = replace(row, disputes=row.disputes + 1, last_dispute=dispute)
            text = f"dispute on {dispute}"
        elif event.name == "Activated":
            return []  # the creation line says it
        else:
            fields = ", ".join(f"{k}={short_value(v)}" for k, v in args.items())
            text = f"{event.name}: {fields}"
        if row is self._rows[address]:
            return [Note("agreement", address, text, log.block_number)]
        self._rows[address] = row
        return [Put("agreements", address, row), Note("agreement", address, text, log.block_number)]


class OrderSource:
    """Sale orders of the factory: listed, sold, released (paper 004)."""

    name: Table = "orders"

    def __init__(
        self,
        ledger: Ledger,
        book: DeploymentBook | None,
        *,
        artifacts: Path | None = None,
        limit: int = 500,
    ) -> None:
        self.ledger = ledger
        self.book = book
        self.artifacts = artifacts
        self.limit = limit
        self.description = "no sale-order factory deployed: no orders yet"
        self._factory: SaleOrderFactory | None = None

    async def locate(self) -> int | None:
        """The factory's deployment block, once the book records a live factory."""
        start = _deployed_at(self.book, self.ledger.chain_id, SALE_ORDER_FACTORY)
        if start is None or self.book is None:
            return None
        try:
            self._factory = await SaleOrderFactory.find(
                self.ledger, self.book, artifacts=self.artifacts
            )
        except NotFound as exc:
            self.description = f"no sale orders: {exc}"
            return None
        self.description = f"sale-order factory {self._factory.address}"
        return start

    def forget(self, key: str) -> None:
        """Nothing to forget: an order's row is read whole from the chain each time."""

    def reset(self) -> None:
        """Forget the factory."""
        self._factory = None

    async def read(self, first: int, last: int) -> list[Effect]:
        """A log line per factory event, and the row of each order they touched."""
        factory = self._factory
        if factory is None:
            return []
        events = await factory.events(first, last)
        latest = {event.order: event for event in events}
        touched = list(latest)[-self.limit :]
        items = await factory.items(touched) if touched else []
        effects: list[Effect] = [
            Note("order", event.order, describe_sale(event), event.block) for event in events
        ]
        for item in items:
            row = order_row(item, latest[item.address].block)
            effects.append(Put("orders", item.address, row))
        return effects
