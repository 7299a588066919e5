"""P's desk takes C's signed pay transaction only when C_o will accept it (paper 003, V-B).

No network: B_u is a stand-in answering the three reads the desk makes (head block,
C's confirmed counter, a receipt); Sys's sealing and B_d's posting are recorded. The
transaction and the member signatures are real.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from eth_abi import encode as eth_abi_encode
from eth_account import Account
from eth_hash.auto import keccak

from pervasive.chain import Ledger
from pervasive.contracts.deposit_oracle import pack_signatures, sign_attestation
from pervasive.contracts.user_contract import UserContract, required_deposit
from pervasive.crosschain.chains import DataChain
from pervasive.crosschain.data_exchange import DataExchange
from pervasive.crosschain.errors import DepositInsufficient
from pervasive.crosschain.exchange import ExchangeTerms, OwnPostings, ProviderDesk
from pervasive.crosschain.payments import PAY_ARGUMENTS
from pervasive.crypto import PrivateKey, checksum_address
from pervasive.errors import InvalidInput, InvalidSignature

CHAIN_ID = 31337
USER_CONTRACT = checksum_address("0x" + "5a" * 20)
ORACLE = checksum_address("0x" + "0c" * 20)
PROVIDER = PrivateKey(b"\x0b" * 32)
CONSUMER = PrivateKey(b"\x0c" * 32)
MEMBERS = [PrivateKey(bytes([i]) * 32) for i in range(1, 5)]
TERMS = ExchangeTerms(CHAIN_ID, USER_CONTRACT, ORACLE, tuple(m.address for m in MEMBERS), 3, 150)
DATASET = b"\xda" * 32
PRICE = 10**15
HEAD = 100
EXPIRY = 120


@dataclass
class FakeUserChain:
    """B_u as the desk reads it: head, ``counters(C)`` and receipts."""

    head: int = HEAD
    counter: int = 0
    mined: set[str] = field(default_factory=set)

    async def block_number(self) -> int:
        return self.head

    async def call(self, to: str, data: bytes, *, sender: str | None = None) -> bytes:
        assert to == USER_CONTRACT
        assert data[:4] == keccak(b"counters(address)")[:4]
        return self.counter.to_bytes(32, "big")

    async def receipt(self, tx_hash: str) -> Any:
        return type("Receipt", (), {"status": 1})() if tx_hash in self.mined else None


class FakeDataChain:
    name = "evm:2"

    def __init__(self) -> None:
        self.posted: list[tuple[bytes, str, bytes]] = []

    async def post_index(self, payment_id: bytes, consumer: str, ciphertext: bytes) -> str:
        self.posted.append((payment_id, consumer, ciphertext))
        return "0x" + "99" * 32


class FakeExchange:
    def seal(
        self, payment_id: bytes, dataset: bytes, key: Any, expires: int, *, sys_url: str
    ) -> bytes:
        return b"sealed:" + payment_id + dataset


def pay(
    *, amount: int = PRICE, counter: int = 0, signers: list[PrivateKey] = MEMBERS[:3],
    provider: str = PROVIDER.address, to: str = USER_CONTRACT, chain_id: int = CHAIN_ID,
) -> bytes:  # fmt: skip
    required = required_deposit(amount, TERMS.coef_percent)
    packed = pack_signatures({
        k.address: sign_attestation(
            k, CHAIN_ID, ORACLE, CONSUMER.address, provider, required, counter, EXPIRY
        )
        for k in signers
    })  # fmt: skip
    data = keccak(b"pay(address,uint256,uint256,bytes)")[:4] + eth_abi_encode(
        list(PAY_ARGUMENTS), [provider, counter, EXPIRY, packed]
    )
    fields = {"type": 2, "nonce": counter, "gas": 300_000, "maxFeePerGas": 10**9,
              "maxPriorityFeePerGas": 1, "to": to, "value": amount, "data": data,
              "chainId": chain_id}  # fmt: skip
    return bytes(Account.sign_transaction(fields, CONSUMER.secret).raw_transaction)


_ARTIFACT = UserContract.artifact()


@pytest.fixture(autouse=True)
def compiled_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # UserContract.at compiles the Vyper source on every call (~0.4 s): compile it once
    monkeypatch.setattr(UserContract, "artifact", staticmethod(lambda artifacts=None: _ARTIFACT))


class Desk:
    def __init__(self, chain: FakeUserChain | None = None) -> None:
        self.user_chain = chain or FakeUserChain()
        self.data_chain = FakeDataChain()
        self.desk = ProviderDesk(
            exchange=cast(DataExchange, FakeExchange()),
            postings=OwnPostings(cast(DataChain, self.data_chain), PROVIDER.address),
            user_ledger=cast(Ledger, self.user_chain),
            terms=TERMS,
            prices={DATASET: PRICE},
            sys_url="http://sys",
        )

    def accept(self, raw: bytes, key: Any = None, dataset: bytes = DATASET) -> bytes:
        async def run() -> bytes:
            try:
                return await self.desk.accept(raw, key or CONSUMER.public_key, dataset)
            finally:
                await self.desk.postings.drain()

        return asyncio.run(run())


def test_a_good_payment_is_sealed_posted_and_kept_as_evidence() -> None:
    desk = Desk()
    raw = pay(amount=PRICE * 2)
    ciphertext = desk.accept(raw)
    payment, kept = desk.desk.accepted[0]
    assert kept == raw
    assert payment.consumer == CONSUMER.address
    assert ciphertext == b"sealed:" + payment.payment_id + DATASET
    assert desk.data_chain.posted == [(payment.payment_id, CONSUMER.address, ciphertext)]


def test_a_payment_already_mined_with_its_counter_is_still_accepted() -> None:
    raw = pay(counter=0)
    chain = FakeUserChain(counter=1, mined={"0x" + keccak(raw).hex()})
    assert Desk(chain).accept(raw)


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: pay(to=checksum_address("0x" + "5b" * 20)), InvalidInput, "user contract"),
        (lambda: pay(chain_id=1), InvalidInput, "for chain 1"),
        (lambda: pay(provider=MEMBERS[0].address), InvalidInput, "another provider"),
        (lambda: pay(amount=PRICE - 1), DepositInsufficient, "costs"),
        (lambda: pay(signers=MEMBERS[:2]), InvalidSignature, "oracle needs 3"),
        (lambda: pay(signers=[*MEMBERS[:2], PROVIDER]), InvalidSignature, "no member"),
        (lambda: b"\x02garbage", InvalidInput, "not a signed EVM transaction"),
    ],
)
def test_refusals(make: Any, error: type[Exception], message: str) -> None:
    desk = Desk()
    with pytest.raises(error, match=message):
        desk.accept(make())
    assert desk.desk.accepted == []
    assert desk.data_chain.posted == []


def test_someone_elses_key_is_refused() -> None:
    desk = Desk()
    with pytest.raises(InvalidInput, match="not the payer's"):
        desk.accept(pay(), key=PROVIDER.public_key)
    assert desk.data_chain.posted == []


def test_an_unknown_dataset_is_refused() -> None:
    with pytest.raises(InvalidInput, match="no such dataset"):
        Desk().accept(pay(), dataset=b"\x00" * 32)


def test_a_used_counter_is_refused() -> None:
    desk = Desk(FakeUserChain(counter=1))
    with pytest.raises(InvalidInput, match="counter 0 is already used"):
        desk.accept(pay(counter=0))
    assert desk.data_chain.posted == []


def test_an_expired_attestation_is_refused() -> None:
    with pytest.raises(InvalidInput, match="expired"):
        Desk(FakeUserChain(head=EXPIRY + 1)).accept(pay())
