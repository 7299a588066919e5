"""The transaction manager: nonces, fees, gas, signing, sending, receipts, replacement.

One manager per signer per ledger (``ledger.transactor(signer)``), talking to the node
through the ledger's :class:`~pervasive.chain.rpc.RpcClient`. It keeps the next
nonce locally so that many transactions can be signed and sent without a round trip
each, and re-reads it from the node whenever a send fails, so a refused or dropped
transaction never leaves a gap or a duplicate:

- refused (``TransactionRefused``: nonce, funds, fees): nothing was sent; the nonce is
  re-read before the next send.
- dropped (the connection fails while sending): the same signed bytes are re-sent a
  few times; a node that already has them answers "already known" (or "nonce too low"
  once mined), which counts as sent. If the node stays unreachable the nonce is
  re-read on the next send, and ``ChainUnavailable`` says which hash may be pending.

Signing is local (:mod:`pervasive.chain.signing`, ~0.1 ms) and :meth:`submit_many`
sends whole JSON-RPC batches, so thousands of calls a second leave one process.

Reorganisations: a sender that must not lose a transaction (a payment, a node's
update) signs it with :meth:`~TransactionManager.prepare`, stores the signed bytes,
sends them with :meth:`~TransactionManager.broadcast` and asks
:meth:`~TransactionManager.settle` until the receipt is ``confirmations`` blocks deep in
the canonical chain. A receipt a
reorganisation took away makes ``settle`` send the same bytes again (one nonce: they
are applied at most once); if another transaction took that nonce meanwhile, ours can
never be mined and ``settle`` says so (:attr:`Finality.DISPLACED`).

Example::

    pending = await manager.prepare(call)
    store(pending.hashes[0], pending.raw)              # before anything leaves
    await manager.broadcast(pending.hashes[0], pending.raw)
    settled = await manager.wait_final(pending.hashes[0], pending.raw, confirmations=2)
"""

from __future__ import annotations

import asyncio
import enum
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from coincurve import PrivateKey
from eth_utils.address import to_canonical_address

from pervasive.chain.accounts import Signer
from pervasive.chain.records import Receipt
from pervasive.chain.rpc import RpcClient, TransactionRefused
from pervasive.chain.signing import SignedTransaction, UnsignedTransaction, sign_transaction
from pervasive.errors import ChainUnavailable, NotFound, TransactionReverted, TransactionTimeout

__all__ = [
    "ContractCall",
    "Finality",
    "PendingTransaction",
    "Settlement",
    "TransactionManager",
    "already_sent",
    "nonce_too_low",
]

_FEE_BUMP = 1.125  # nodes require at least +10% on both fees to accept a replacement
_FEE_REFRESH_SECONDS = 2.0
_SEND_RETRIES = (0.1, 0.3, 1.0)  # seconds between re-sends of the same bytes
_ALREADY_SENT = ("already known", "already imported", "known transaction")
_BATCH_TIMEOUT = 5.0  # seconds; a late batch is re-sent (the same bytes, so harmless)
_SETTLE_POLL = (0.05, 1.0)  # seconds between looks in wait_final: first, then at most


@dataclass(frozen=True)
class ContractCall:
    """A transaction to send: target (``None`` deploys), calldata, value and optional gas."""

    to: str | None
    data: bytes
    value: int = 0
    gas: int | None = None


@dataclass
class PendingTransaction:
    """A sent transaction: its nonce and every hash sent for it (original first).

    ``hashes`` grows when :meth:`TransactionManager.wait` replaces a stuck transaction;
    at most one of them is ever mined, because they share the nonce.
    """

    call: ContractCall
    nonce: int
    gas: int
    fees: tuple[int, int]
    hashes: list[str] = field(default_factory=list)
    raw: bytes = b""
    """The signed bytes first sent: what a counterparty keeps as evidence (paper 003)."""


class Finality(enum.Enum):
    """Where a sent transaction stands on the canonical chain (``TransactionManager.settle``)."""

    FINAL = "final"
    """Mined in a canonical block with at least ``confirmations`` blocks on top."""
    CONFIRMING = "confirming"
    """Mined in a canonical block, not deep enough yet."""
    PENDING = "pending"
    """No receipt; the node holds the signed bytes (sent again if it had lost them)."""
    DISPLACED = "displaced"
    """No receipt, and another transaction used its nonce: it can never be mined."""


@dataclass(frozen=True)
class Settlement:
    """One look at a sent transaction: where it stands, its receipt, whether it was re-sent."""

    finality: Finality
    receipt: Receipt | None = None
    resent: bool = False
    """No receipt was found and the node took the same signed bytes again (a reorganisation
    dropped the transaction, or the node's pool lost it)."""


class TransactionManager:
    """Signs and sends ``signer``'s transactions through ``rpc``.

    Example::

        manager = ledger.transactor(signer)
        receipt = await manager.transact(ContractCall(to=address, data=calldata))
    """

    def __init__(self, rpc: RpcClient, signer: Signer) -> None:
        self.rpc = rpc
        self.signer = signer
        self._key = PrivateKey(signer.private_key)
        self._nonce: int | None = None
        self._nonce_lock = asyncio.Lock()
        self._fees: tuple[int, int] | None = None
        self._fees_at = -math.inf
        self._targets: dict[str, bytes] = {}

    # -- building blocks --------------------------------------------------------------
    async def _current_fees(self) -> tuple[int, int]:
        now = asyncio.get_running_loop().time()
        if self._fees is None or now - self._fees_at > _FEE_REFRESH_SECONDS:
            self._fees = await self.rpc.fees()
            self._fees_at = now
        return self._fees

    async def _reserve_nonces(self, count: int) -> int:
        async with self._nonce_lock:
            if self._nonce is None:
                self._nonce = await self.rpc.nonce(self.signer.address)
            first = self._nonce
            self._nonce += count
            return first

    def forget_nonce(self) -> None:
        """Re-read the nonce from the node before the next send (after a failure)."""
        self._nonce = None

    async def _gas_for(self, call: ContractCall) -> int:
        if call.gas is not None:
            return call.gas
        estimate = await self.rpc.estimate_gas(self.signer.address, call.to, call.data, call.value)
        return math.ceil(estimate * self.rpc.options.gas_margin)

    def _target(self, to: str) -> bytes:
        target = self._targets.get(to)
        if target is None:
            target = self._targets[to] = bytes(to_canonical_address(to))
        return target

    def _sign(
        self, call: ContractCall, nonce: int, gas: int, fees: tuple[int, int]
    ) -> SignedTransaction:
        unsigned = UnsignedTransaction(
            chain_id=self.rpc.chain_id,
            nonce=nonce,
            max_priority_fee_per_gas=fees[0],
            max_fee_per_gas=fees[1],
            gas=gas,
            to=self._target(call.to) if call.to else None,
            value=call.value,
            data=call.data,
        )
        return sign_transaction(unsigned, self._key)

    # -- one transaction --------------------------------------------------------------
    async def prepare(self, call: ContractCall) -> PendingTransaction:
        """Estimate, price and sign ``call`` at the node's next nonce; send nothing.

        For a sender that stores the signed bytes before broadcasting them, so that a
        restart re-sends exactly those (one nonce: at most one of them is ever mined).
        The nonce is the node's pending count, or above it when this manager has reserved
        nonces for transactions it is still sending, so :meth:`send` of the same manager
        never reuses it. Another process sending from the same account may take it: then
        :meth:`settle` reports :attr:`Finality.DISPLACED`.

        Example: ``pending = await manager.prepare(call); store(pending.raw, pending.hashes[0])``.
        """
        gas = await self._gas_for(call)
        fees = await self.rpc.fees()
        async with self._nonce_lock:
            nonce = await self.rpc.nonce(self.signer.address)
            if self._nonce is not None:
                nonce = max(nonce, self._nonce)
            self._nonce = nonce + 1
        signed = self._sign(call, nonce, gas, fees)
        return PendingTransaction(
            call=call, nonce=nonce, gas=gas, fees=fees, hashes=[signed.hash_hex], raw=signed.raw
        )

    async def send(self, call: ContractCall) -> PendingTransaction:
        """Sign and send ``call``; return at once with its nonce and hash.

        Gas is estimated (times the ledger's ``gas_margin``) unless given, so a call that
        would revert raises :class:`TransactionReverted` before a nonce is used.

        Example: ``pending = await manager.send(call); receipt = await manager.wait(pending)``.
        """
        gas = await self._gas_for(call)
        fees = await self._current_fees()
        nonce = await self._reserve_nonces(1)
        pending = PendingTransaction(call=call, nonce=nonce, gas=gas, fees=fees)
        signed = self._sign(call, nonce, gas, fees)
        pending.raw = signed.raw
        try:
            pending.hashes.append(await self._send(signed))
        except (TransactionRefused, ChainUnavailable):
            self.forget_nonce()
            raise
        return pending

    async def wait(self, pending: PendingTransaction) -> Receipt:
        """Wait for ``pending``'s confirmed receipt, replacing it while it is stuck.

        Every ``replace_after`` seconds without a receipt the call is re-signed with the
        same nonce and both fees raised by 12.5% (at least to the network's current
        fees); the first of its hashes to be mined wins.
        """
        options = self.rpc.options
        deadline = asyncio.get_running_loop().time() + options.receipt_timeout
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            try:
                return await self.rpc.wait_for_receipt(
                    pending.hashes, timeout=max(0.01, min(options.replace_after, remaining))
                )
            except TransactionTimeout:
                if remaining <= options.replace_after:
                    raise
            await self._replace(pending)

    async def transact(self, call: ContractCall) -> Receipt:
        """Send ``call`` and wait for its confirmed receipt (:meth:`send` then :meth:`wait`).

        Example: ``await manager.transact(ContractCall(to=token, data=calldata))``.
        """
        return await self.wait(await self.send(call))

    async def deploy(self, bytecode: bytes, *, value: int = 0, gas: int | None = None) -> Receipt:
        """Deploy ``bytecode`` (constructor arguments appended) and return the receipt.

        Example: ``address = (await manager.deploy(bytecode)).contract_address``.
        """
        return await self.transact(ContractCall(to=None, data=bytecode, value=value, gas=gas))

    # -- reorganisation-safe sending ---------------------------------------------------
    async def broadcast(self, tx_hash: str, raw: bytes) -> None:
        """Send signed bytes made by :meth:`prepare` (again, harmlessly, if the node has them).

        Raises :class:`TransactionRefused` (e.g. its nonce was used by another transaction)
        or :class:`ChainUnavailable`; the bytes stay valid, :meth:`settle` sends them again.

        Example: ``await manager.broadcast(pending.hashes[0], pending.raw)``.
        """
        try:
            await self.rpc.send_raw(raw)
        except TransactionRefused as refused:
            if already_sent(refused.message):
                return
            if nonce_too_low(refused.message) and await self.rpc.receipt(tx_hash) is not None:
                return  # mined meanwhile: the node saw these very bytes before
            raise TransactionRefused(refused.message, tx_hash=tx_hash) from refused

    async def settle(self, tx_hash: str, raw: bytes, *, confirmations: int) -> Settlement:
        """Look once where the transaction ``tx_hash`` (signed bytes ``raw``) stands.

        Final when its receipt's block is canonical with ``confirmations`` blocks on top
        (0: the receipt alone). Without a receipt (never mined, or reorganised away) the
        same bytes are sent again; a node answering that the nonce is used and still no
        receipt means another transaction took the nonce (:attr:`Finality.DISPLACED`).
        A final receipt that reverted raises :class:`TransactionReverted` with the reason.

        Example: ``if (await manager.settle(h, raw, confirmations=2)).finality is Finality.FINAL``.
        """
        receipt = await self.rpc.receipt(tx_hash)
        if receipt is not None and confirmations > 0:
            try:
                canonical = await self.rpc.block(receipt.block_number)
            except NotFound:
                canonical = None
            if canonical is None or canonical.hash != receipt.block_hash:
                receipt = None  # the node's index still names a block off the chain
        if receipt is not None:
            if await self.rpc.block_number() < receipt.block_number + confirmations:
                return Settlement(Finality.CONFIRMING, receipt)
            if not receipt.succeeded:
                await self.rpc.wait_for_receipt([tx_hash])  # raises with the decoded reason
                raise TransactionReverted(None, tx_hash=tx_hash)
            return Settlement(Finality.FINAL, receipt)
        try:
            await self.rpc.send_raw(raw)
        except TransactionRefused as refused:
            if already_sent(refused.message):
                return Settlement(Finality.PENDING)
            if not nonce_too_low(refused.message):
                raise TransactionRefused(refused.message, tx_hash=tx_hash) from refused
            if await self.rpc.receipt(tx_hash) is not None:  # mined between the two looks
                return await self.settle(tx_hash, raw, confirmations=confirmations)
            return Settlement(Finality.DISPLACED)
        return Settlement(Finality.PENDING, resent=True)

    async def wait_final(
        self, tx_hash: str, raw: bytes, *, confirmations: int, timeout: float | None = None
    ) -> Settlement:
        """:meth:`settle` until the transaction is final or displaced; count the re-sends.

        Raises :class:`TransactionTimeout` after ``timeout`` (the ledger's
        ``receipt_timeout``) seconds; the bytes stay valid for a later call.

        Example: ``receipt = (await manager.wait_final(h, raw, confirmations=2)).receipt``.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (timeout or self.rpc.options.receipt_timeout)
        delay, resent = _SETTLE_POLL[0], False
        while True:
            settled = await self.settle(tx_hash, raw, confirmations=confirmations)
            resent = resent or settled.resent
            if settled.finality in (Finality.FINAL, Finality.DISPLACED):
                return Settlement(settled.finality, settled.receipt, resent)
            if loop.time() > deadline:
                where = (
                    f"mined in block {settled.receipt.block_number}, not yet {confirmations} "
                    "blocks deep"
                    if settled.receipt
                    else "not mined"
                )
                raise TransactionTimeout(
                    f"transaction {tx_hash} is {where}; its signed bytes stay valid: "
                    "check it again later"
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, _SETTLE_POLL[1])

    async def _replace(self, pending: PendingTransaction) -> None:
        network = await self.rpc.fees()
        priority = max(math.ceil(pending.fees[0] * _FEE_BUMP), network[0])
        fees = (priority, max(math.ceil(pending.fees[1] * _FEE_BUMP), network[1], priority))
        signed = self._sign(pending.call, pending.nonce, pending.gas, fees)
        try:
            pending.hashes.append(await self._send(signed))
        except TransactionRefused as refused:
            if nonce_too_low(refused.message):
                return  # one of the earlier hashes was mined meanwhile: keep waiting for it
            raise
        pending.fees = fees

    async def _send(self, signed: SignedTransaction) -> str:
        """Send ``signed``; re-send the same bytes while the connection fails."""
        attempts = 0
        while True:
            try:
                return await self.rpc.send_raw(signed.raw)
            except TransactionRefused as refused:
                # a lost answer to an earlier attempt (ours, or the HTTP client's own
                # retry) makes the node see these very bytes again
                text = refused.message.lower()
                if any(marker in text for marker in _ALREADY_SENT):
                    return signed.hash_hex
                mined = nonce_too_low(text)
                if mined and await self.rpc.receipt(signed.hash_hex) is not None:
                    return signed.hash_hex
                raise TransactionRefused(refused.message, tx_hash=signed.hash_hex) from refused
            except ChainUnavailable as unavailable:
                if attempts == len(_SEND_RETRIES):
                    raise ChainUnavailable(
                        f"{unavailable} Transaction {signed.hash_hex} (nonce {signed.nonce}) "
                        "may or may not have reached the node; the nonce is re-read on the "
                        "next send."
                    ) from unavailable
                await asyncio.sleep(_SEND_RETRIES[attempts])
                attempts += 1

    # -- many transactions ------------------------------------------------------------
    async def submit_many(
        self, calls: Sequence[ContractCall], *, gas: int | None = None, batch_size: int = 250
    ) -> list[str]:
        """Sign ``calls`` with consecutive nonces and send them in JSON-RPC batches.

        All calls share ``gas`` when given (else each call's own ``gas``, else an
        estimate of the first call, applied to all). Nothing waits for receipts: use
        :meth:`wait_all`. If the node refuses any transaction, the nonce is re-read and
        :class:`TransactionRefused` says how many were accepted.

        Example: ``await manager.wait_all(await manager.submit_many(calls))``.
        """
        if not calls:
            return []
        shared_gas = gas or calls[0].gas or await self._gas_for(calls[0])
        total_gas = sum(call.gas or shared_gas for call in calls)
        fees = await self.rpc.fees(total_gas=total_gas)
        first = await self._reserve_nonces(len(calls))

        def sign_chunk(start: int) -> list[SignedTransaction]:
            chunk = calls[start : start + batch_size]
            return [
                self._sign(call, first + start + index, call.gas or shared_gas, fees)
                for index, call in enumerate(chunk)
            ]

        # Up to ``batches_in_flight`` batches are on the wire at once (1: strictly in
        # nonce order, for nodes that drop transactions arriving ahead of a gap); the
        # next batch is signed in a worker thread meanwhile.
        window = asyncio.Semaphore(max(1, self.rpc.options.batches_in_flight))
        sends: list[asyncio.Task[list[str]]] = []
        try:
            for start in range(0, len(calls), batch_size):
                chunk = await asyncio.to_thread(sign_chunk, start)
                await window.acquire()
                send = asyncio.create_task(
                    self._send_batch(chunk, accepted=start, total=len(calls))
                )
                send.add_done_callback(lambda _: window.release())
                sends.append(send)
            batches = await asyncio.gather(*sends)
        except BaseException:
            for send in sends:
                send.cancel()
            await asyncio.gather(*sends, return_exceptions=True)
            self.forget_nonce()
            raise
        return [tx_hash for batch in batches for tx_hash in batch]

    async def _send_batch(
        self, chunk: list[SignedTransaction], *, accepted: int, total: int
    ) -> list[str]:
        """Send one batch; re-send the same bytes when the answer is lost or late."""
        attempts = 0
        while True:
            try:
                results = await asyncio.wait_for(
                    self.rpc.send_raw_batch([signed.raw for signed in chunk]), _BATCH_TIMEOUT
                )
                break
            except (ChainUnavailable, TimeoutError) as lost:
                if attempts == len(_SEND_RETRIES):
                    raise ChainUnavailable(
                        f"{lost or 'no answer in time'}; {accepted} of {total} transactions "
                        "were accepted, the next batch may or may not have reached the node"
                    ) from lost
                await asyncio.sleep(_SEND_RETRIES[attempts])
                attempts += 1
        hashes: list[str] = []
        for signed, result in zip(chunk, results, strict=True):
            if isinstance(result, str):
                hashes.append(result)
                continue
            text = result.message.lower()
            seen = any(marker in text for marker in _ALREADY_SENT)
            if not seen and nonce_too_low(text):
                seen = await self.rpc.receipt(signed.hash_hex) is not None
            if not seen:
                raise TransactionRefused(
                    f"accepted {accepted + len(hashes)} of {total} transactions, then: "
                    f"{result.message}",
                    tx_hash=signed.hash_hex,
                ) from result
            hashes.append(signed.hash_hex)  # an earlier attempt reached the node
        return hashes

    async def wait_all(
        self, tx_hashes: Sequence[str], *, timeout: float | None = None
    ) -> list[Receipt]:
        """Confirmed receipts of ``tx_hashes`` in order, polled in batches.

        Raises :class:`TransactionReverted` for the first reverted transaction and
        :class:`TransactionTimeout` when some are still pending at the deadline.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (timeout or self.rpc.options.receipt_timeout)
        found: dict[str, Receipt] = {}
        delay = 0.01
        progress_at = loop.time()
        while len(found) < len(tx_hashes):
            missing = [h for h in tx_hashes if h not in found]
            for tx_hash, receipt in zip(missing, await self.rpc.receipts(missing), strict=True):
                if receipt is not None:
                    found[tx_hash] = receipt
                    progress_at = loop.time()
            if len(found) == len(tx_hashes):
                break
            if loop.time() - progress_at > 1.0 and await self.rpc.nudge_stuck_pool():
                progress_at = loop.time()
            if loop.time() > deadline:
                raise TransactionTimeout(
                    f"{len(tx_hashes) - len(found)} of {len(tx_hashes)} transactions have no "
                    "receipt yet; they may still be mined"
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.2)
        receipts = [found[h] for h in tx_hashes]
        if self.rpc.options.confirmations > 0 or not all(r.succeeded for r in receipts):
            # the slow path re-reads each receipt after its confirmations and decodes reverts
            remaining = max(0.01, deadline - loop.time())
            return [await self.rpc.wait_for_receipt([h], timeout=remaining) for h in tx_hashes]
        return receipts


_EXPECTED_NONCE = re.compile(r"invalid transaction nonce: expected (\d+), but got (\d+)")


def already_sent(message: str) -> bool:
    """Does a node's refusal say it holds this very transaction already (a harmless re-send)?

    Example: ``already_sent("already known")`` is ``True``.
    """
    text = message.lower()
    return any(marker in text for marker in _ALREADY_SENT)


def nonce_too_low(message: str) -> bool:
    """Does a node's refusal say the nonce was used already?

    geth, anvil and Besu say "nonce too low"; the embedded chain (eth-tester) says
    "Invalid transaction nonce: Expected N, but got M", too low when M < N.
    """
    text = message.lower()
    if "nonce too low" in text:
        return True
    found = _EXPECTED_NONCE.search(text)
    return found is not None and int(found.group(2)) < int(found.group(1))
