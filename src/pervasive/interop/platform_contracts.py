"""The platform's own contracts into a feed: the sale-order factory and DIVERSITY agreements.

:class:`PlatformContracts` looks at the data directory's
:class:`~pervasive.contracts.DeploymentBook` and makes an :class:`InteropFeed` follow,
with the built-in mappings (``builtin/``):

- the sale-order factory of paper 004 (``sale_order_factory``: orders created, sold,
  released), from its deployment block, once the book records it (``pervasive up``
  may start before the first order deploys it);
- every DIVERSITY agreement the registry recorded (``agreement_count`` /
  ``agreement_at``; updates, updates with data, disputes), each on its own follower
  from the registry's deployment block, as soon as it is recorded.

A recorded contract whose code is not on this chain (a book of another chain's life)
is skipped. Each contract gets its own follower with its own checkpoint
(``<feed>:<address>``), so a restart resumes each where it stopped and a contract
found later is read from its beginning: every event once.

Example::

    contracts = PlatformContracts(feed, ledger, platform.deployments(), artifacts=path)
    await contracts.look()                # follow what is recorded now
    task = asyncio.create_task(contracts.watch(1.0))   # and what comes, until cancelled
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from pervasive.chain import Ledger
from pervasive.contracts import (
    AGREEMENT,
    REGISTRY,
    SALE_ORDER_FACTORY,
    Contract,
    DeploymentBook,
    compile_contract,
)
from pervasive.contracts.deployments import Deployment, code_hash_at
from pervasive.errors import ChainUnavailable
from pervasive.interop.declarations import compile_builtin
from pervasive.interop.feed import InteropFeed
from pervasive.interop.mapping import CompiledMappings

__all__ = ["PlatformContracts"]

_log = logging.getLogger(__name__)


class PlatformContracts:
    """Makes ``feed`` follow the factory and the agreements ``book`` leads to on ``ledger``."""

    def __init__(
        self,
        feed: InteropFeed,
        ledger: Ledger,
        book: DeploymentBook,
        *,
        artifacts: Path | None = None,
    ) -> None:
        self.feed = feed
        self.ledger = ledger
        self.book = book
        self.artifacts = artifacts
        self._mappings: dict[str, CompiledMappings] = {}
        self._registry: Contract | None = None
        self._agreements = 0
        """How many of the registry's agreements are followed (its index order)."""

    async def look(self) -> int:
        """Follow what the book and the registry record now and was not followed; how many.

        Example: ``await contracts.look()`` == ``1`` after the factory's deployment.
        """
        added = 0
        factory = await self._live(SALE_ORDER_FACTORY)
        if factory is not None and not self.feed.follows(factory.address):
            self.feed.follow(
                factory.address, self._compiled(SALE_ORDER_FACTORY), start_block=factory.block
            )
            added += 1
        registry = await self._live(REGISTRY)
        if registry is not None:
            added += await self._follow_agreements(registry)
        return added

    async def watch(self, interval: float) -> None:
        """:meth:`look` every ``interval`` seconds until cancelled (a lost node is retried)."""
        while True:
            try:
                await self.look()
            except ChainUnavailable as exc:
                _log.warning("platform events: %s; retrying", exc)
            await asyncio.sleep(interval)

    async def _follow_agreements(self, registry: Deployment) -> int:
        if self._registry is None or self._registry.address != registry.address:
            abi = compile_contract(REGISTRY, cache_dir=self.artifacts).abi
            self._registry = Contract(self.ledger, registry.address, abi)
            self._agreements = 0
        count = int(await self._registry.call("agreement_count"))
        added = 0
        while self._agreements < count:
            address = str(await self._registry.call("agreement_at", self._agreements))
            if not self.feed.follows(address):
                self.feed.follow(address, self._compiled(AGREEMENT), start_block=registry.block)
                added += 1
            self._agreements += 1
        return added

    async def _live(self, name: str) -> Deployment | None:
        known = self.book.get(self.ledger.chain_id, name)
        if known is None:
            return None
        seen = self._registry.address if name == REGISTRY and self._registry else None
        if self.feed.follows(known.address) or seen == known.address:
            return known  # its code was checked when it was first found
        if await code_hash_at(self.ledger, known.address) != known.code_hash:
            return None
        return known

    def _compiled(self, name: str) -> CompiledMappings:
        if name not in self._mappings:
            abi = compile_contract(name, cache_dir=self.artifacts).abi
            self._mappings[name] = compile_builtin(name, abi)
        return self._mappings[name]
