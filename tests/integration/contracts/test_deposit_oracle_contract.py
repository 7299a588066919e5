"""The deposit oracle C_o (paper 003, Algorithm 2's on-chain half): t-of-n EIP-712
attestations by the notary members, on both backends.

The oracle must accept exactly the attestations ``threshold`` distinct members signed for
these very fields, in increasing signer order, before their expiry block.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pervasive.chain import Ledger
from pervasive.contracts.deposit_oracle import (
    DepositAttestation,
    DepositOracle,
    Refusal,
    attestation_digest,
    pack_signatures,
    sign_attestation,
)
from pervasive.crypto import PrivateKey, generate_private_key
from pervasive.errors import InvalidInput, TransactionReverted

MEMBERS = sorted((generate_private_key() for _ in range(4)), key=lambda k: int(k.address, 16))
OUTSIDER = generate_private_key()


async def _oracle(ledger: Ledger, artifacts: Path) -> DepositOracle:
    members = [k.address for k in reversed(MEMBERS)]  # any order: the wrapper sorts
    admin = ledger.dev_signer(0)
    return await DepositOracle.deploy(ledger, admin, members, 3, admin.address, artifacts=artifacts)


async def _attestation(ledger: Ledger, *, counter: int = 0, blocks: int = 10) -> DepositAttestation:
    consumer, provider = ledger.dev_signer(1).address, ledger.dev_signer(2).address
    return DepositAttestation(
        consumer, provider, 15 * 10**16, counter, await ledger.block_number() + blocks
    )


def _fields(a: DepositAttestation) -> tuple[str, str, int, int, int]:
    return (a.consumer, a.provider, a.required, a.counter, a.expiry)


def _sign(
    keys: list[PrivateKey], ledger: Ledger, oracle: DepositOracle, a: DepositAttestation
) -> dict[str, bytes]:
    return {
        k.address: sign_attestation(
            k,
            ledger.chain_id,
            oracle.address,
            a.consumer,
            a.provider,
            a.required,
            a.counter,
            a.expiry,
        )
        for k in keys
    }


async def test_threshold_members_are_accepted(ledger: Ledger, artifacts: Path) -> None:
    oracle = await _oracle(ledger, artifacts)
    a = await _attestation(ledger)
    assert await oracle.members() == tuple(k.address for k in MEMBERS)
    assert await oracle.digest(a) == attestation_digest(
        ledger.chain_id, oracle.address, *_fields(a)
    )
    for signers in (MEMBERS[:3], MEMBERS[1:], [MEMBERS[0], MEMBERS[2], MEMBERS[3]], MEMBERS):
        packed = pack_signatures(_sign(signers, ledger, oracle, a))
        assert await oracle.check(a, packed), [k.address for k in signers]
        assert await oracle.refusal(a, packed) is Refusal.ACCEPTED


async def test_what_the_oracle_refuses(ledger: Ledger, artifacts: Path) -> None:
    oracle = await _oracle(ledger, artifacts)
    a = await _attestation(ledger)
    signed = _sign(MEMBERS, ledger, oracle, a)
    ordered = [signed[k.address] for k in MEMBERS]
    outsider = _sign([OUTSIDER], ledger, oracle, a)
    other_counter = _sign(MEMBERS[:3], ledger, oracle, await _attestation(ledger, counter=1))
    cases = {
        "t-1 members": (pack_signatures(dict(list(signed.items())[:2])), Refusal.TOO_FEW),
        "a non-member": (
            pack_signatures({**dict(list(signed.items())[:2]), **outsider}),
            Refusal.NOT_MEMBER,
        ),
        "a duplicate": (ordered[0] + ordered[1] + ordered[1], Refusal.NOT_INCREASING),
        "unsorted": (ordered[1] + ordered[0] + ordered[2], Refusal.NOT_INCREASING),
        "another counter": (pack_signatures(other_counter), Refusal.NOT_MEMBER),
        "a truncated signature": (b"".join(ordered[:3])[:-1], Refusal.MALFORMED),
        "a garbage signature": (bytes(65) + ordered[1] + ordered[2], Refusal.BAD_SIGNATURE),
    }
    answers = {}
    for name, (packed, _) in cases.items():
        # straight to the contract: the wrapper refuses a truncated list before sending
        accepted = await oracle.contract.call("check", *_fields(a), packed)
        answers[name] = (
            accepted,
            Refusal(await oracle.contract.call("refusal", *_fields(a), packed)),
        )
    assert answers == {name: (False, why) for name, (_, why) in cases.items()}
    with pytest.raises(InvalidInput, match="65-byte"):
        await oracle.check(a, cases["a truncated signature"][0])


async def test_an_expired_attestation_is_refused(ledger: Ledger, artifacts: Path) -> None:
    oracle = await _oracle(ledger, artifacts)
    a = await _attestation(ledger, blocks=1)
    packed = pack_signatures(_sign(MEMBERS[:3], ledger, oracle, a))
    assert await oracle.check(a, packed)
    await ledger.mine(2)
    assert not await oracle.check(a, packed)
    assert await oracle.refusal(a, packed) is Refusal.EXPIRED


async def test_a_signature_for_another_oracle_is_refused(ledger: Ledger, artifacts: Path) -> None:
    first, second = await _oracle(ledger, artifacts), await _oracle(ledger, artifacts)
    a = await _attestation(ledger)
    packed = pack_signatures(_sign(MEMBERS[:3], ledger, first, a))
    assert await first.check(a, packed)
    assert not await second.check(a, packed)


async def test_bad_deployments_are_refused(ledger: Ledger, artifacts: Path) -> None:
    admin = ledger.dev_signer(0)
    members = [k.address for k in MEMBERS]
    with pytest.raises(InvalidInput, match="threshold"):
        await DepositOracle.deploy(ledger, admin, members, 5, admin.address, artifacts=artifacts)
    with pytest.raises(InvalidInput, match="twice"):
        await DepositOracle.deploy(
            ledger, admin, [*members, members[0]], 2, admin.address, artifacts=artifacts
        )
    # the contract's own guard, past the wrapper: unsorted members
    artifact = DepositOracle.artifact(artifacts)
    from pervasive.contracts.deployments import deploy

    with pytest.raises(TransactionReverted, match="members must be sorted"):
        await deploy(ledger, admin, artifact, list(reversed(members)), 2, admin.address)
