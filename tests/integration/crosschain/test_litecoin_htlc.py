"""The native Script HTLC on litecoind regtest: the baseline paper 003's scheme replaces.

Alice (A) locks coins for Bob (B) under SHA-256(preimage); B claims with the preimage and
so reveals it on-chain, where A reads it; A refunds only once the chain reaches the
locktime. Every rule is enforced by the real node, not by our code.

Example: ``pytest tests/integration/crosschain/test_litecoin_htlc.py -q -s``.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from coincurve import PrivateKey

from pervasive.crosschain.litecoin import (
    HtlcLock,
    HtlcTerms,
    LitecoinHtlc,
    LitecoinNode,
    LitecoinRpcError,
    revealed_preimage,
)
from pervasive.errors import InvalidInput

pytestmark = [
    pytest.mark.litecoin,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.xdist_group("litecoin-htlc"),
]

ALICE, BOB = (
    PrivateKey(hashlib.sha256(b"alice").digest()),
    PrivateKey(hashlib.sha256(b"bob").digest()),
)
AMOUNT = 50_000_000  # 0.5 LTC


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def node(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LitecoinNode]:
    started = LitecoinNode(datadir=tmp_path_factory.mktemp("litecoin-htlc"))
    await started.start()
    await started.fund()
    yield started
    await started.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def htlc(node: LitecoinNode) -> LitecoinHtlc:
    return LitecoinHtlc(node.rpc, wallet=node.wallet)


async def _lock(node: LitecoinNode, htlc: LitecoinHtlc, preimage: bytes, wait: int) -> HtlcLock:
    height = await node.rpc.call("getblockcount")
    terms = HtlcTerms(
        hashlock=hashlib.sha256(preimage).digest(),
        recipient_key=BOB.public_key.format(),
        sender_key=ALICE.public_key.format(),
        locktime=height + wait,
    )
    return await htlc.lock(terms, AMOUNT)


async def _confirmed(node: LitecoinNode, tx_id: str) -> int:
    return int(
        (await node.rpc.call("gettransaction", tx_id, True, wallet=node.wallet))["confirmations"]
    )


async def test_a_claim_with_the_preimage_confirms_and_reveals_it(
    node: LitecoinNode, htlc: LitecoinHtlc
) -> None:
    preimage = os.urandom(32)
    started = time.perf_counter()
    lock = await _lock(node, htlc, preimage, wait=20)
    await node.mine(1)
    destination = await htlc.wallet_script()
    claim_id = await htlc.claim(lock, preimage, BOB, destination)
    await node.mine(1)
    elapsed = time.perf_counter() - started
    claim = await node.rpc.call("getrawtransaction", claim_id, True)
    assert claim["confirmations"] == 1
    assert claim["vout"][0]["scriptPubKey"]["hex"] == destination.hex()
    assert round(claim["vout"][0]["value"] * 10**8) == AMOUNT - 10_000
    script_sig = bytes.fromhex(claim["vin"][0]["scriptSig"]["hex"])
    assert revealed_preimage(script_sig, lock.terms.hashlock) == preimage
    assert await htlc.find_preimage(lock) == preimage  # what Alice reads from the chain
    # The lock output is spent: nobody, Alice included, can take it again.
    assert await node.rpc.call("gettxout", lock.tx_id, lock.vout) is None
    print(f"HTLC lock -> claim, 1 confirmation each: {elapsed * 1000:.1f} ms")


async def test_a_wrong_preimage_is_rejected_by_the_script(
    node: LitecoinNode, htlc: LitecoinHtlc
) -> None:
    preimage = os.urandom(32)
    lock = await _lock(node, htlc, preimage, wait=20)
    await node.mine(1)
    with pytest.raises(LitecoinRpcError, match="EQUALVERIFY") as refused:
        await htlc.claim(lock, os.urandom(32), BOB, await htlc.wallet_script())
    assert refused.value.code == -26
    # Alice's key is not Bob's: the right preimage with the wrong key fails CHECKSIG.
    with pytest.raises(LitecoinRpcError, match="-26"):
        await htlc.claim(lock, preimage, ALICE, await htlc.wallet_script())
    assert await node.rpc.call("gettxout", lock.tx_id, lock.vout) is not None
    assert await htlc.find_preimage(lock) is None


async def test_a_refund_is_non_final_before_the_locktime_and_works_after(
    node: LitecoinNode, htlc: LitecoinHtlc
) -> None:
    lock = await _lock(node, htlc, os.urandom(32), wait=5)
    await node.mine(1)
    destination = await htlc.wallet_script()
    with pytest.raises(LitecoinRpcError, match="non-final"):
        await htlc.refund(lock, ALICE, destination)
    with pytest.raises(LitecoinRpcError, match="-26"):  # Bob cannot take the refund path
        await htlc.refund(lock, BOB, destination)
    height = await node.rpc.call("getblockcount")
    await node.mine(lock.terms.locktime - height)  # the tip reaches the locktime
    refund_id = await htlc.refund(lock, ALICE, destination)
    await node.mine(1)
    assert await _confirmed(node, refund_id) == 1
    assert await node.rpc.call("gettxout", lock.tx_id, lock.vout) is None


async def test_bad_terms_are_refused_before_any_transaction(htlc: LitecoinHtlc) -> None:
    key = BOB.public_key.format()
    with pytest.raises(InvalidInput, match="32-byte SHA-256"):
        HtlcTerms(b"short", key, key, 100)
    with pytest.raises(InvalidInput, match="compressed"):
        HtlcTerms(bytes(32), BOB.public_key.format(compressed=False), key, 100)
    with pytest.raises(InvalidInput, match="block height"):
        HtlcTerms(bytes(32), key, key, 600_000_000)
    with pytest.raises(InvalidInput, match="lock more"):
        await htlc.lock(HtlcTerms(bytes(32), key, key, 100), 1_000)
