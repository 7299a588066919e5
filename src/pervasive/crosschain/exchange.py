"""The fast cross-chain exchange itself: C pays on B_u, P delivers on B_d, nobody waits.

Paper 003, section V-B, Fig. 3 steps 6-7, from both sides:

- :class:`Consumer` (C): asks the members' ``POST /attest`` in parallel and keeps the
  first ``t`` signatures (Algorithm 2 at each member), signs and sends ``pay`` to C_u
  (Algorithm 1; the transaction is in B_u's pool, not yet mined), hands the signed
  transaction to P's Sys (``POST /exchange``), opens the data index sealed to its key
  and fetches the data with a signed challenge.
- :class:`ProviderDesk` (P, inside Sys): reads C's signed transaction without waiting
  for the chain (:func:`~pervasive.crosschain.payments.decode_payment`: sender
  recovered, the attestation checked exactly as C_o will check it), seals the index
  to C's key, starts posting it on B_d and answers at once. P keeps C's signed
  transaction: it is the evidence of an ``unpaid`` challenge should the payment vanish
  from B_u (a double spend). P's Sys serves the data as soon as P has *sent* the
  posting (:class:`OwnPostings`): if the posting never lands, it is P whom an
  ``undelivered`` challenge punishes, so only P bears that risk.

Example::

    consumer = Consumer(signer=c, ledger=b_u, user_contract=user, members=urls,
                        threshold=3, session=http)
    result = await consumer.exchange(sys_url, provider=p.address, dataset=digest,
                                     amount=10**15)
    result.readings
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from pervasive.chain import ContractCall, Ledger, PendingTransaction, Signer
from pervasive.contracts.deposit_oracle import pack_signatures
from pervasive.contracts.user_contract import UserContract, payment_id
from pervasive.crosschain.chains import DataChain, PostedIndex
from pervasive.crosschain.data_exchange import DataExchange, Refusal, ServedReading, fetch_dataset
from pervasive.crosschain.data_index import IndexRecord, open_index
from pervasive.crosschain.errors import DepositInsufficient
from pervasive.crosschain.payments import Payment, check_attestation, decode_payment
from pervasive.crypto import PrivateKey, PublicKey, checksum_address
from pervasive.errors import InvalidInput, UserError

__all__ = ["Consumer", "ExchangeResult", "ExchangeTerms", "OwnPostings", "ProviderDesk"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExchangeTerms:
    """What P checks a payment against: B_u's contracts and the committee."""

    chain_id: int
    user_contract: str
    oracle: str
    members: tuple[str, ...]
    threshold: int
    coef_percent: int


class OwnPostings:
    """P's view of its own data index postings: sent counts before mined (see module doc).

    Wraps the data chain for Sys: ``find_index`` answers from the chain when the posting
    is mined and from P's own record while it is on its way.
    """

    def __init__(self, chain: DataChain, provider: str) -> None:
        self.chain = chain
        self.name = chain.name
        self.provider = provider
        self._sent: dict[bytes, PostedIndex] = {}
        self.tasks: set[asyncio.Task[str]] = set()
        self.failed = 0

    def post(self, payment_id: bytes, consumer: str, ciphertext: bytes) -> None:
        """Record the posting and start sending it (never blocks the exchange)."""
        self._sent[payment_id] = PostedIndex(
            chain=self.chain.name, payment_id=payment_id, tx_id="", block_number=0,
            block_hash="", block_time=int(time.time()), provider=self.provider,
            consumer=consumer, ciphertext_digest=hashlib.sha256(ciphertext).digest(),
            ciphertext=ciphertext,
        )  # fmt: skip
        task = asyncio.create_task(self.chain.post_index(payment_id, consumer, ciphertext))
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[str]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.failed += 1
            _log.error("posting a data index failed: %s", task.exception())

    async def find_index(
        self, payment_id: bytes, *, provider: str | None = None
    ) -> PostedIndex | None:
        """P's own record of a posting it sent, else whatever the chain holds."""
        sent = self._sent.get(payment_id)
        if sent is not None:
            return sent
        return await self.chain.find_index(payment_id, provider=provider)

    async def drain(self) -> None:
        """Wait for every posting started so far to be mined (or fail)."""
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)


class ProviderDesk:
    """P's side of the exchange inside Sys: ``POST /exchange`` (see the module doc)."""

    def __init__(
        self,
        *,
        exchange: DataExchange,
        postings: OwnPostings,
        user_ledger: Ledger,
        terms: ExchangeTerms,
        prices: Mapping[bytes, int],
        sys_url: str,
        index_ttl: int = 3600,
    ) -> None:
        self.exchange = exchange
        self.postings = postings
        self.user_ledger = user_ledger
        self.user = UserContract.at(user_ledger, terms.user_contract)
        self.terms = terms
        self.prices = dict(prices)
        self.sys_url = sys_url
        self.index_ttl = index_ttl
        self.provider = checksum_address(postings.provider)
        self.accepted: list[tuple[Payment, bytes]] = []
        """Every payment taken, with C's signed transaction: the evidence P keeps."""
        self.refusals: Counter[str] = Counter()

    async def accept(self, raw: bytes, consumer_key: PublicKey, dataset: bytes) -> bytes:
        """Check C's pay transaction, seal and post the index; return the sealed index."""
        payment = decode_payment(
            raw,
            chain_id=self.terms.chain_id,
            user_contract=self.terms.user_contract,
            pay_selector=self.user.contract.function("pay", 4).selector,
            coef_percent=self.terms.coef_percent,
        )
        if payment.provider != self.provider:
            raise InvalidInput("the payment is for another provider")
        if consumer_key.address != payment.consumer:
            raise InvalidInput("the public key given is not the payer's: send your own key")
        price = self.prices.get(dataset)
        if price is None:
            raise InvalidInput("no such dataset on offer: check GET /datasets/<digest> first")
        if payment.amount < price:
            raise DepositInsufficient(f"the dataset costs {price} wei, the payment is less")
        head, confirmed = await asyncio.gather(
            self.user_ledger.block_number(), self.user.counter(payment.consumer)
        )
        if payment.counter < confirmed and not await self._mined(payment.tx_hash):
            raise InvalidInput(f"counter {payment.counter} is already used: pay with the next one")
        check_attestation(
            payment, chain_id=self.terms.chain_id, oracle=self.terms.oracle,
            members=self.terms.members, threshold=self.terms.threshold, head=head,
        )  # fmt: skip
        ciphertext = self.exchange.seal(
            payment.payment_id, dataset, consumer_key,
            int(time.time()) + self.index_ttl, sys_url=self.sys_url,
        )  # fmt: skip
        self.postings.post(payment.payment_id, payment.consumer, ciphertext)
        self.accepted.append((payment, raw))
        return ciphertext

    async def _mined(self, tx_hash: str) -> bool:
        """Whether this very payment is already in a block (it consumed its counter)."""
        receipt = await self.user_ledger.receipt(tx_hash)
        return receipt is not None and bool(receipt.status)

    def install(self, app: web.Application) -> None:
        """Add ``POST /exchange`` to Sys's application (before it starts)."""
        app.router.add_post("/exchange", self._http_exchange)

    async def _http_exchange(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            raw = bytes.fromhex(str(body["raw"]).removeprefix("0x"))
            key = PublicKey.from_bytes(bytes.fromhex(str(body["public_key"]).removeprefix("0x")))
            dataset = bytes.fromhex(str(body["dataset"]).removeprefix("0x"))
            ciphertext = await self.accept(raw, key, dataset)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, UserError) as exc:
            reason = type(exc).__name__
            self.refusals[reason] += 1
            return web.json_response({"error": reason, "message": str(exc)}, status=400)
        return web.json_response({"ciphertext": "0x" + ciphertext.hex()})


@dataclass
class ExchangeResult:
    """What C holds after one exchange, and how long each step took (seconds)."""

    payment_id: bytes
    pay: PendingTransaction
    ciphertext: bytes
    index: IndexRecord
    readings: tuple[ServedReading, ...]
    timings: dict[str, float] = field(default_factory=dict)


class Consumer:
    """C's client: attest, pay, exchange, fetch (see the module doc)."""

    def __init__(
        self,
        *,
        signer: Signer,
        ledger: Ledger,
        user_contract: UserContract,
        members: Sequence[str],
        threshold: int,
        session: aiohttp.ClientSession,
    ) -> None:
        self.signer = signer
        self.key = PrivateKey(signer.private_key)
        self.ledger = ledger
        self.user = user_contract
        self.members = list(members)
        self.threshold = threshold
        self.session = session
        self._next_counter: int | None = None

    async def attest(
        self, provider: str, amount: int, counter: int, *, rounds: int = 5
    ) -> tuple[int, int, bytes]:
        """The first ``t`` member attestations: ``(required, expiry, packed signatures)``.

        Each member signs its own expiry (its head + a validity): only signatures over the
        same ``(required, expiry)`` combine into one C_o accepts, so the first ``t`` that
        agree are kept. Members one block apart in their view of B_u disagree for a moment;
        then all are asked again (up to ``rounds`` times, their reservations do not add up:
        a member holds the largest per counter).
        """
        body = {"consumer": self.signer.address, "provider": provider,
                "amount": amount, "counter": counter}  # fmt: skip
        for attempt in range(rounds):
            signed, errors = await self._attest_round(body)
            for (required, expiry), alike in signed.items():
                if len(alike) >= self.threshold:
                    return required, expiry, pack_signatures(alike)
            if len(signed) <= 1 or attempt == rounds - 1:
                break
            await asyncio.sleep(0.1 * (attempt + 1))
        if len(signed) > 1:
            errors.append(
                f"members signed different expiries {sorted(e for _, e in signed)}: "
                "their views of B_u differ by a block; ask again"
            )
        most = max((len(alike) for alike in signed.values()), default=0)
        raise DepositInsufficient(
            f"only {most} of {self.threshold} members attested alike: {'; '.join(errors)}"
        )

    async def _attest_round(
        self, body: Mapping[str, object]
    ) -> tuple[dict[tuple[int, int], dict[str, bytes]], list[str]]:
        """Ask every member once; signatures grouped by ``(required, expiry)``, and errors.

        Returns as soon as one group holds ``t`` signatures.
        """
        tasks = [asyncio.create_task(self._ask(url, body)) for url in self.members]
        signed: dict[tuple[int, int], dict[str, bytes]] = {}
        errors: list[str] = []
        try:
            for next_done in asyncio.as_completed(tasks):
                answer = await next_done
                if not answer.get("ok"):
                    errors.append(str(answer.get("error", answer)))
                    continue
                terms = (int(answer["required"]), int(answer["expiry"]))
                alike = signed.setdefault(terms, {})
                alike[str(answer["signer"])] = bytes.fromhex(answer["signature"][2:])
                if len(alike) == self.threshold:
                    break
        finally:
            for task in tasks:
                task.cancel()
        return signed, errors

    async def _ask(self, url: str, body: Mapping[str, object]) -> dict[str, Any]:
        try:
            async with self.session.post(f"{url}/attest", json=body) as reply:
                answer: dict[str, Any] = await reply.json(content_type=None)
                return answer
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            return {"ok": False, "error": f"{url} unreachable: {exc}"}

    async def next_counter(self) -> int:
        """The counter of C's next payment (the chain's, plus C's own payments since)."""
        if self._next_counter is None:
            self._next_counter = await self.user.counter(self.signer.address)
        return self._next_counter

    async def pay(self, provider: str, amount: int) -> PendingTransaction:
        """Attest and send ``pay`` (returns once the node has it; not mined yet)."""
        counter = await self.next_counter()
        _, expiry, packed = await self.attest(provider, amount, counter)
        data = self.user.contract.encode("pay", provider, counter, expiry, packed)
        call = ContractCall(to=self.user.address, data=data, value=amount)
        pending = await self.ledger.transactor(self.signer).send(call)
        self._next_counter = counter + 1
        return pending

    async def exchange(
        self, sys_url: str, *, provider: str, dataset: bytes, amount: int
    ) -> ExchangeResult:
        """One whole exchange, from the attestation to C holding the readings."""
        started = time.perf_counter()
        counter = await self.next_counter()
        pending = await self.pay(provider, amount)
        paid = time.perf_counter()
        body = {"raw": "0x" + pending.raw.hex(),
                "public_key": "0x" + self.key.public_key.to_bytes().hex(),
                "dataset": "0x" + dataset.hex()}  # fmt: skip
        async with self.session.post(f"{sys_url}/exchange", json=body) as reply:
            answer = await reply.json(content_type=None)
            if reply.status != 200:
                raise InvalidInput(f"the provider refused the payment: {answer.get('message')}")
        ciphertext = bytes.fromhex(answer["ciphertext"][2:])
        delivered = time.perf_counter()
        pid = payment_id(self.ledger.chain_id, self.user.address, self.signer.address, counter)
        index = open_index(ciphertext, self.key, payment_id=pid)
        readings = await fetch_dataset(self.session, index, ciphertext, self.key)
        if isinstance(readings, Refusal):
            raise InvalidInput(f"the provider's Sys refused the data: {readings.message}")
        done = time.perf_counter()
        return ExchangeResult(
            pid, pending, ciphertext, index, readings,
            {"pay": paid - started, "index": delivered - paid, "data": done - delivered,
             "total": done - started},
        )  # fmt: skip
