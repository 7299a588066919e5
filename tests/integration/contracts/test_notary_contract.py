"""The notary contract C_sp (paper 003 eq. 7 on-chain): penalties and releases under a
threshold BLS signature checked by the EIP-2537 precompiles.

A committee of n = 4, t = 3 runs a Feldman key generation (``crypto.threshold``); its
members sign with their shares and any 3 partials combine into the group signature the
contract must accept, while 2 partials, another message, another chain or notary, and
the point at infinity must be refused. Most tests run on anvil (a pairing takes about a
second on py-evm); one penalty runs on the embedded chain too.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from pervasive.chain import Ledger
from pervasive.contracts.notary import (
    Notary,
    NotaryTerms,
    penalty_message,
    release_message,
)
from pervasive.crypto import generate_private_key, keccak256
from pervasive.crypto.bls import bls_sign, g2_to_eip2537
from pervasive.crypto.threshold import (
    Polynomial,
    combine_shares,
    combine_signatures,
    group_public_key,
)
from pervasive.errors import TransactionReverted

ANVIL = [pytest.param("anvil", marks=pytest.mark.anvil)]
ETHER = 10**18
THRESHOLD, MEMBERS = 3, 4


@dataclass(frozen=True)
class Committee:
    """A committee's shares (member index -> secret share) and group key."""

    shares: Mapping[int, int]
    group_key: bytes

    def sign(self, message: bytes, members: tuple[int, ...] = (1, 2, 3)) -> bytes:
        return combine_signatures({j: bls_sign(self.shares[j], message) for j in members})


def _committee(seed: int) -> Committee:
    dealers = [
        Polynomial.from_seed(bytes([seed, i]) * 16, THRESHOLD) for i in range(1, MEMBERS + 1)
    ]
    shares = {j: combine_shares([d.evaluate(j) for d in dealers]) for j in range(1, MEMBERS + 1)}
    return Committee(shares, group_public_key([d.commitments()[0] for d in dealers]))


COMMITTEE = _committee(7)


async def _now(ledger: Ledger) -> int:
    block = await ledger.w3.eth.get_block("latest")
    return int(block["timestamp"])


async def _notary(
    ledger: Ledger, artifacts: Path, *, group_key: bytes = COMMITTEE.group_key, period: int = 3600
) -> Notary:
    terms = NotaryTerms(
        group_key=group_key,
        threshold=THRESHOLD,
        members=tuple(generate_private_key().address for _ in range(MEMBERS)),
        period_end=await _now(ledger) + period,
        publish_window=600,
        transcript="bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy",
    )
    return await Notary.deploy(ledger, ledger.dev_signer(0), terms, artifacts=artifacts)


def _challenge(n: int) -> bytes:
    return keccak256(b"challenge %d" % n)


async def _funded(ledger: Ledger, artifacts: Path, deposit: int = ETHER) -> Notary:
    notary = await _notary(ledger, artifacts)
    await notary.with_signer(ledger.dev_signer(1)).deposit(deposit)
    return notary


@pytest.mark.parametrize("ledger", ANVIL, indirect=True)
async def test_a_threshold_signature_penalizes_once(ledger: Ledger, artifacts: Path) -> None:
    notary = await _funded(ledger, artifacts)
    cheater, victim = ledger.dev_signer(1).address, ledger.dev_signer(2).address
    amount, challenge = ETHER // 4, _challenge(1)
    message = penalty_message(ledger.chain_id, notary.address, challenge, cheater, victim, amount)
    # any 3 of the 4 members give the same group signature
    assert COMMITTEE.sign(message, (1, 2, 3)) == COMMITTEE.sign(message, (2, 3, 4))
    signature = COMMITTEE.sign(message, (1, 2, 4))
    before = await ledger.balance(victim)

    receipt = await notary.penalize(challenge, cheater, victim, amount, signature)

    assert await ledger.balance(victim) == before + amount
    assert await notary.deposit_of(cheater) == ETHER - amount
    assert await notary.is_settled(challenge)
    (event,) = notary.contract.events(receipt, "Penalized")
    assert event.args == {
        "challenge_id": challenge,
        "cheater": cheater,
        "victim": victim,
        "amount": amount,
        "asked": amount,
    }
    assert receipt.gas_used < 200_000
    with pytest.raises(TransactionReverted, match="challenge already settled"):
        await notary.penalize(challenge, cheater, victim, amount, signature)
    assert await notary.deposit_of(cheater) == ETHER - amount


@pytest.mark.parametrize("ledger", ANVIL, indirect=True)
async def test_a_penalty_takes_at_most_the_deposit(ledger: Ledger, artifacts: Path) -> None:
    notary = await _funded(ledger, artifacts, deposit=ETHER // 10)
    cheater, victim = ledger.dev_signer(1).address, ledger.dev_signer(2).address
    message = penalty_message(
        ledger.chain_id, notary.address, _challenge(2), cheater, victim, ETHER
    )
    before = await ledger.balance(victim)
    receipt = await notary.penalize(_challenge(2), cheater, victim, ETHER, COMMITTEE.sign(message))
    assert await ledger.balance(victim) == before + ETHER // 10
    assert await notary.deposit_of(cheater) == 0
    (event,) = notary.contract.events(receipt, "Penalized")
    assert (event.args["amount"], event.args["asked"]) == (ETHER // 10, ETHER)


@pytest.mark.parametrize("ledger", ANVIL, indirect=True)
async def test_forged_signatures_are_refused(ledger: Ledger, artifacts: Path) -> None:
    notary = await _funded(ledger, artifacts)
    cheater, victim = ledger.dev_signer(1).address, ledger.dev_signer(2).address
    amount, challenge = ETHER // 4, _challenge(3)
    good = penalty_message(ledger.chain_id, notary.address, challenge, cheater, victim, amount)
    forgeries = {
        "t-1 partials combined": COMMITTEE.sign(good, (1, 2)),
        "a single member's partial": bls_sign(COMMITTEE.shares[1], good),
        "another amount": COMMITTEE.sign(
            penalty_message(ledger.chain_id, notary.address, challenge, cheater, victim, ETHER)
        ),
        "another chain id": COMMITTEE.sign(
            penalty_message(ledger.chain_id + 1, notary.address, challenge, cheater, victim, amount)
        ),
        "another notary": COMMITTEE.sign(
            penalty_message(ledger.chain_id, victim, challenge, cheater, victim, amount)
        ),
        "another committee": _committee(8).sign(good),
        "the point at infinity": bytes(128),
    }
    refused = {}
    for name, signature in forgeries.items():
        assert not await notary.verify(good, signature), name
        try:
            await notary.penalize(challenge, cheater, victim, amount, signature)
        except TransactionReverted as exc:
            refused[name] = exc.reason
    assert refused == dict.fromkeys(forgeries, "invalid notary signature")
    assert await notary.verify(good, COMMITTEE.sign(good))
    assert not await notary.is_settled(challenge)
    assert await notary.deposit_of(cheater) == ETHER


@pytest.mark.parametrize("ledger", ANVIL, indirect=True)
async def test_an_infinite_or_invalid_group_key_is_refused(ledger: Ledger, artifacts: Path) -> None:
    with pytest.raises(TransactionReverted, match="the group key is infinity"):
        await _notary(ledger, artifacts, group_key=bytes(256))
    off_curve = bytes(63) + b"\x01" + bytes(192)
    with pytest.raises(TransactionReverted, match="the group key is not a G2 point"):
        await _notary(ledger, artifacts, group_key=off_curve)


@pytest.mark.parametrize("ledger", ANVIL, indirect=True)
async def test_the_messages_match_the_contract(ledger: Ledger, artifacts: Path) -> None:
    notary = await _notary(ledger, artifacts)
    a, b = ledger.dev_signer(1).address, ledger.dev_signer(2).address
    on_chain = await notary.contract.call("penalty_message", _challenge(4), a, b, 5)
    assert on_chain == penalty_message(ledger.chain_id, notary.address, _challenge(4), a, b, 5)
    on_chain = await notary.contract.call("release_message", a, 7)
    assert on_chain == release_message(ledger.chain_id, notary.address, a, 7, nonce=0)
    assert await notary.group_key() == g2_to_eip2537(COMMITTEE.group_key)
    assert (await notary.threshold(), await notary.publish_window()) == (THRESHOLD, 600)
    assert len(await notary.members()) == MEMBERS
    assert (await notary.transcript()).startswith("bafkrei")


@pytest.mark.parametrize("ledger", ANVIL, indirect=True)
async def test_release_only_after_the_period_ends(ledger: Ledger, artifacts: Path) -> None:
    notary = await _funded(ledger, artifacts)
    account = ledger.dev_signer(1).address
    first = COMMITTEE.sign(release_message(ledger.chain_id, notary.address, account, ETHER // 2, 0))
    with pytest.raises(TransactionReverted, match="the deposit period has not ended"):
        await notary.release(account, ETHER // 2, first)

    await ledger.w3.provider.make_request("evm_increaseTime", [3601])
    await ledger.mine()
    assert await _now(ledger) > await notary.period_end()
    before = await ledger.balance(account)
    # anyone may send the release: the ether goes to the depositor
    receipt = await notary.release(account, ETHER // 2, first)
    assert await ledger.balance(account) == before + ETHER // 2
    assert await notary.release_nonce(account) == 1
    (event,) = notary.contract.events(receipt, "Released")
    assert event.args == {"account": account, "nonce": 0, "amount": ETHER // 2}

    with pytest.raises(TransactionReverted, match="invalid notary signature"):
        await notary.release(account, ETHER // 2, first)  # the nonce moved on
    second = COMMITTEE.sign(
        release_message(ledger.chain_id, notary.address, account, ETHER // 2, 1)
    )
    with pytest.raises(TransactionReverted, match="amount exceeds the deposit"):
        await notary.release(account, ETHER, second)
    await notary.release(account, ETHER // 2, second)
    assert await notary.deposit_of(account) == 0


@pytest.mark.parametrize("ledger", ["embedded"], indirect=True)
async def test_a_penalty_on_the_embedded_chain(ledger: Ledger, artifacts: Path) -> None:
    # py-evm's precompiles are an independent implementation of EIP-2537 (py_ecc)
    notary = await _funded(ledger, artifacts)
    cheater, victim = ledger.dev_signer(1).address, ledger.dev_signer(2).address
    message = penalty_message(ledger.chain_id, notary.address, _challenge(5), cheater, victim, 9)
    started = time.monotonic()
    await notary.penalize(_challenge(5), cheater, victim, 9, COMMITTEE.sign(message))
    assert await notary.deposit_of(cheater) == ETHER - 9
    assert time.monotonic() - started < 60
