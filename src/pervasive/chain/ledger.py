"""The ledger: one chain, whatever the backend, as the layers above see it.

A thin facade over two objects that do the work: the JSON-RPC client
(:class:`~pervasive.chain.rpc.RpcClient`, reachable as ``ledger.rpc``) and a
:class:`~pervasive.chain.transactions.TransactionManager` per signer
(``ledger.transactor(signer)``). The ledger adds what belongs to the chain as a whole:
its funded development accounts and the things to stop on close (an anvil node, the
embedded EVM's store). Dependencies point one way: ledger → transactions → rpc.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from web3 import AsyncWeb3

from pervasive.chain.accounts import Signer
from pervasive.chain.records import Log, Receipt
from pervasive.chain.rpc import BlockRef, LedgerOptions, RpcClient
from pervasive.chain.transactions import TransactionManager
from pervasive.errors import ChainUnavailable

__all__ = ["Ledger"]


class Ledger:
    """A connected chain. Build one with :func:`pervasive.chain.open_ledger`.

    The reads callers use every day are here; the transaction plumbing (raw sends,
    fee reads, receipt batches and waits) is on ``ledger.rpc``.

    Example::

        async with await open_ledger(settings) as ledger:
            print(await ledger.block_number())
    """

    def __init__(
        self,
        rpc: RpcClient,
        *,
        dev_keys: Sequence[bytes] = (),
        on_close: Sequence[Callable[[], Awaitable[None]]] = (),
    ) -> None:
        self.rpc = rpc
        self._dev_keys = tuple(dev_keys)
        self._on_close = list(on_close)
        self._managers: dict[str, TransactionManager] = {}

    # -- the chain --------------------------------------------------------------------
    @property
    def kind(self) -> str:
        """The backend: ``embedded``, ``anvil`` or ``rpc``."""
        return self.rpc.kind

    @property
    def chain_id(self) -> int:
        """The chain's EIP-155 id."""
        return self.rpc.chain_id

    @property
    def url(self) -> str | None:
        """The node's JSON-RPC URL (``None`` for the in-process EVM)."""
        return self.rpc.url

    @property
    def w3(self) -> AsyncWeb3[Any]:
        """web3.py's client, for what this package does not wrap (tests, benchmarks)."""
        return self.rpc.w3

    @property
    def options(self) -> LedgerOptions:
        """Transaction policy of every signer here.

        Settable on purpose: ``ledger.options = replace(ledger.options, confirmations=2)``.
        """
        return self.rpc.options

    @options.setter
    def options(self, value: LedgerOptions) -> None:
        self.rpc.options = value

    # -- accounts ---------------------------------------------------------------------
    def dev_signer(self, index: int = 0) -> Signer:
        """A funded development account (embedded and anvil only)."""
        if not self._dev_keys:
            raise ChainUnavailable(
                f"the {self.kind} backend has no funded development accounts; "
                "use a keystore account (pervasive account create)"
            )
        return Signer.from_key(self._dev_keys[index])

    def transactor(self, signer: Signer) -> TransactionManager:
        """The transaction manager of ``signer`` on this ledger (one per address)."""
        manager = self._managers.get(signer.address)
        if manager is None:
            manager = TransactionManager(self.rpc, signer)
            self._managers[signer.address] = manager
        return manager

    # -- reads (see RpcClient for the details) ----------------------------------------
    async def balance(self, address: str) -> int:
        """Balance of ``address`` in wei."""
        return await self.rpc.balance(address)

    async def block_number(self) -> int:
        """The latest block number."""
        return await self.rpc.block_number()

    async def block(self, number: int | str = "latest") -> BlockRef:
        """Number, hash and parent of a block; ``NotFound`` beyond the head."""
        return await self.rpc.block(number)

    async def code(self, address: str) -> bytes:
        """The runtime bytecode at ``address`` (empty for an account without code)."""
        return await self.rpc.code(address)

    async def call(
        self, to: str, data: bytes, *, sender: str | None = None, block: int | str = "latest"
    ) -> bytes:
        """``eth_call``; a revert raises ``TransactionReverted`` with the decoded reason."""
        return await self.rpc.call(to, data, sender=sender, block=block)

    async def estimate_gas(self, sender: str, to: str | None, data: bytes, value: int = 0) -> int:
        """Gas the transaction needs, before the margin (``TransactionReverted`` on a revert)."""
        return await self.rpc.estimate_gas(sender, to, data, value)

    async def nonce(self, address: str) -> int:
        """The next nonce of ``address``, counting pending transactions."""
        return await self.rpc.nonce(address)

    async def logs(
        self,
        address: str | Sequence[str],
        from_block: int,
        to_block: int,
        topics: Sequence[bytes | None] | None = None,
    ) -> list[Log]:
        """Logs of ``address`` in blocks ``from_block..to_block`` (inclusive), in chain order."""
        return await self.rpc.logs(address, from_block, to_block, topics)

    async def receipt(self, tx_hash: str) -> Receipt | None:
        """The receipt of ``tx_hash``, or ``None`` while it is pending (or unknown)."""
        return await self.rpc.receipt(tx_hash)

    async def mine(self, blocks: int = 1) -> None:
        """Mine ``blocks`` empty blocks at once (embedded and anvil only)."""
        await self.rpc.mine(blocks)

    # -- lifecycle --------------------------------------------------------------------
    async def close(self) -> None:
        """Disconnect and stop whatever this ledger started (an anvil node, the EVM store)."""
        await self.rpc.close()
        for closer in reversed(self._on_close):
            await closer()
        self._on_close.clear()

    async def __aenter__(self) -> Ledger:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
