"""The ledger: one connection to one chain, whatever the backend.

Reads (calls, logs, blocks, receipts) live here; writes go through a
:class:`~pervasive.chain.transactions.TransactionManager` per signer, which this
object hands out. web3.py's ``AsyncWeb3`` is the node client for both the HTTP
backends and the in-process EVM; the throughput path sends raw transactions as one
JSON-RPC batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.exceptions import (
    ContractLogicError,
    TransactionNotFound,
    Web3RPCError,
)

from pervasive.chain.accounts import Signer
from pervasive.chain.records import Log, Receipt
from pervasive.chain.reverts import decode_revert
from pervasive.errors import ChainUnavailable, TransactionReverted, TransactionTimeout

__all__ = ["BlockRef", "Ledger", "LedgerOptions"]


@dataclass(frozen=True)
class LedgerOptions:
    """Transaction policy shared by every signer on this ledger."""

    confirmations: int = 0
    receipt_timeout: float = 120.0
    gas_margin: float = 1.2
    replace_after: float = 30.0
    """Seconds without a receipt before a pending transaction is re-sent with higher fees."""


@dataclass(frozen=True)
class BlockRef:
    """A block's number, hash and parent hash: enough to notice a reorganisation."""

    number: int
    hash: str
    parent_hash: str


def _hexstr(value: Any) -> str:
    return "0x" + bytes(value).hex() if isinstance(value, bytes | bytearray) else str(value)


class Ledger:
    """A connected chain. Build one with :func:`pervasive.chain.open_ledger`.

    Example::

        async with open_ledger(settings) as ledger:
            print(await ledger.block_number())
    """

    def __init__(
        self,
        w3: AsyncWeb3[Any],
        *,
        kind: str,
        chain_id: int,
        dev_keys: Sequence[bytes] = (),
        url: str | None = None,
        options: LedgerOptions | None = None,
        on_close: Sequence[Callable[[], Awaitable[None]]] = (),
    ) -> None:
        self.w3 = w3
        self.kind = kind
        self.chain_id = chain_id
        self.url = url
        self.options = options or LedgerOptions()
        self._dev_keys = tuple(dev_keys)
        self._on_close = list(on_close)
        self._managers: dict[str, Any] = {}

    # -- accounts ---------------------------------------------------------------------
    def dev_signer(self, index: int = 0) -> Signer:
        """A funded development account (embedded and anvil only)."""
        if not self._dev_keys:
            raise ChainUnavailable(
                f"the {self.kind} backend has no funded development accounts; "
                "use a keystore account (pervasive account create)"
            )
        return Signer.from_key(self._dev_keys[index])

    def transactor(self, signer: Signer) -> Any:
        """The transaction manager of ``signer`` on this ledger (one per address)."""
        from pervasive.chain.transactions import TransactionManager

        manager = self._managers.get(signer.address)
        if manager is None:
            manager = TransactionManager(self, signer)
            self._managers[signer.address] = manager
        return manager

    async def balance(self, address: str) -> int:
        """Balance of ``address`` in wei."""
        return int(await self._guard(self.w3.eth.get_balance(address)))  # type: ignore[arg-type]

    # -- reads ------------------------------------------------------------------------
    async def block_number(self) -> int:
        """The latest block number."""
        return int(await self._guard(self.w3.eth.block_number))

    async def block(self, number: int | str = "latest") -> BlockRef:
        """Number, hash and parent of a block."""
        raw = await self._guard(self.w3.eth.get_block(number))  # type: ignore[arg-type]
        return BlockRef(int(raw["number"]), _hexstr(raw["hash"]), _hexstr(raw["parentHash"]))

    async def call(
        self, to: str, data: bytes, *, sender: str | None = None, block: int | str = "latest"
    ) -> bytes:
        """``eth_call``: run ``data`` against ``to`` without a transaction.

        Raises :class:`TransactionReverted` with the decoded reason when the call reverts.
        """
        tx: dict[str, Any] = {"to": to, "data": data}
        if sender:
            tx["from"] = sender
        try:
            result = await self._guard(self.w3.eth.call(tx, block))  # type: ignore[arg-type]
        except ContractLogicError as exc:
            raise TransactionReverted(_reason(exc)) from exc
        return bytes(result)

    async def estimate_gas(self, sender: str, to: str | None, data: bytes, value: int = 0) -> int:
        """Gas the transaction needs, before the margin. Reverts raise with their reason."""
        tx: dict[str, Any] = {"from": sender, "data": data, "value": value}
        if to:
            tx["to"] = to
        try:
            return int(await self._guard(self.w3.eth.estimate_gas(tx)))  # type: ignore[arg-type]
        except ContractLogicError as exc:
            raise TransactionReverted(_reason(exc)) from exc

    async def fees(self) -> tuple[int, int]:
        """``(max_priority_fee_per_gas, max_fee_per_gas)`` for a transaction sent now."""
        block = await self._guard(self.w3.eth.get_block("latest"))
        base_fee = int(block.get("baseFeePerGas") or 0)
        try:
            priority = int(await self._guard(self.w3.eth.max_priority_fee))
        except (Web3RPCError, ValueError):
            priority = 10**9
        return priority, 2 * base_fee + priority

    async def nonce(self, address: str) -> int:
        """The next nonce of ``address``, counting pending transactions."""
        return int(await self._guard(self.w3.eth.get_transaction_count(address, "pending")))  # type: ignore[arg-type]

    async def logs(
        self,
        address: str | Sequence[str],
        from_block: int,
        to_block: int,
        topics: Sequence[bytes | None] | None = None,
    ) -> list[Log]:
        """Logs of ``address`` in blocks ``from_block..to_block`` (inclusive), in chain order."""
        params: dict[str, Any] = {
            "address": address if isinstance(address, str) else list(address),
            "fromBlock": from_block,
            "toBlock": to_block,
        }
        if topics:
            params["topics"] = [("0x" + t.hex()) if t is not None else None for t in topics]
        raw = await self._guard(self.w3.eth.get_logs(params))  # type: ignore[arg-type]
        logs = [Log.from_rpc(entry) for entry in raw]
        return sorted(logs, key=lambda log: (log.block_number, log.log_index))

    async def receipt(self, tx_hash: str) -> Receipt | None:
        """The receipt of ``tx_hash``, or ``None`` while it is pending."""
        try:
            raw = await self._guard(self.w3.eth.get_transaction_receipt(tx_hash))  # type: ignore[arg-type]
        except TransactionNotFound:
            return None
        return Receipt.from_rpc(raw)

    async def wait_for_receipt(
        self, tx_hashes: Sequence[str], *, timeout: float | None = None
    ) -> Receipt:
        """Wait until one of ``tx_hashes`` (replacements of one nonce) is mined and confirmed.

        A reverted receipt raises :class:`TransactionReverted` with the reason found by
        replaying the call.
        """
        deadline = asyncio.get_running_loop().time() + (timeout or self.options.receipt_timeout)
        delay = 0.002
        while True:
            for tx_hash in tx_hashes:
                receipt = await self.receipt(tx_hash)
                if receipt is not None:
                    await self._await_confirmations(receipt, deadline)
                    if not receipt.succeeded:
                        raise TransactionReverted(
                            await self._revert_reason(receipt), tx_hash=tx_hash
                        )
                    return receipt
            if asyncio.get_running_loop().time() > deadline:
                raise TransactionTimeout(
                    f"no receipt for {tx_hashes[-1]} after {timeout or self.options.receipt_timeout}s;"
                    " it may still be mined: check it later or raise --receipt-timeout"
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)

    async def _await_confirmations(self, receipt: Receipt, deadline: float) -> None:
        while self.options.confirmations > 0:
            if await self.block_number() >= receipt.block_number + self.options.confirmations:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise TransactionTimeout(
                    f"{receipt.transaction_hash} is mined but not yet "
                    f"{self.options.confirmations} blocks deep"
                )
            await asyncio.sleep(0.1)

    async def _revert_reason(self, receipt: Receipt) -> str | None:
        tx = await self._guard(self.w3.eth.get_transaction(receipt.transaction_hash))  # type: ignore[arg-type]
        try:
            await self.call(
                str(tx["to"]), bytes(tx["input"]), sender=str(tx["from"]),
                block=max(receipt.block_number - 1, 0),
            )  # fmt: skip
        except TransactionReverted as reverted:
            return reverted.reason
        return "reverted in its block (the replayed call succeeds on the parent state)"

    # -- writes -----------------------------------------------------------------------
    async def send_raw(self, raw: bytes) -> str:
        """Send one signed transaction; return its hash."""
        return _hexstr(await self._guard(self.w3.eth.send_raw_transaction(raw)))

    async def send_raw_batch(self, raws: Sequence[bytes]) -> list[str | Exception]:
        """Send signed transactions as one JSON-RPC batch where the node supports it.

        Each item is the transaction hash or the error the node returned for it.
        """
        provider = self.w3.provider
        if not isinstance(provider, AsyncHTTPProvider):
            results: list[str | Exception] = []
            for raw in raws:
                try:
                    results.append(await self.send_raw(raw))
                except (Web3RPCError, ContractLogicError, ValueError) as exc:
                    results.append(exc)
            return results
        calls = [("eth_sendRawTransaction", ["0x" + raw.hex()]) for raw in raws]
        responses = await self._guard(provider.make_batch_request(calls))  # type: ignore[arg-type]
        if isinstance(responses, dict):
            error = Web3RPCError(str(responses.get("error")))
            return [error] * len(raws)
        out: list[str | Exception] = []
        for response in responses:
            if response.get("error"):
                out.append(Web3RPCError(str(response["error"])))
            else:
                out.append(str(response["result"]))
        return out

    # -- lifecycle --------------------------------------------------------------------
    async def close(self) -> None:
        """Disconnect and stop whatever this ledger started (an anvil node, the EVM store)."""
        provider = self.w3.provider
        if isinstance(provider, AsyncHTTPProvider):
            await provider.disconnect()
        for closer in reversed(self._on_close):
            await closer()
        self._on_close.clear()

    async def __aenter__(self) -> Ledger:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _guard(self, awaitable: Awaitable[Any]) -> Any:
        try:
            return await awaitable
        except (OSError, asyncio.TimeoutError) as exc:
            raise ChainUnavailable(
                f"cannot reach the {self.kind} node at {self.url or 'in-process EVM'}: {exc}. "
                "Is it running? Check --backend and --rpc-url."
            ) from exc


def _reason(exc: ContractLogicError) -> str | None:
    data = exc.data if isinstance(exc.data, str | bytes) else None
    decoded = decode_revert(data)
    if decoded:
        return decoded
    message = str(exc.message or exc)
    return message.removeprefix("execution reverted: ").removeprefix("execution reverted") or None
