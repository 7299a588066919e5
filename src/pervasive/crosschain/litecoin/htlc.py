"""The native hash time-locked contract on Litecoin: the baseline paper 003 compares against.

A hash-locked swap (§II's HTLC baseline, which the notary committee of §V replaces) locks
coins under the P2SH redeem script

    OP_IF OP_SHA256 <h> OP_EQUALVERIFY <pk_B>
    OP_ELSE <locktime> OP_CHECKLOCKTIMEVERIFY OP_DROP <pk_A> OP_ENDIF OP_CHECKSIG

B claims with ``<sig_B> <preimage> OP_1`` and so reveals the preimage on-chain; A refunds
with ``<sig_A> OP_0`` once the chain passes ``locktime`` (a block height), in a
transaction whose ``nLockTime`` is ``locktime`` (litecoind refuses it as non-final
before). The transactions are built and signed here (python-bitcoinlib for
serialisation and the legacy sighash, coincurve for low-S ECDSA); only the lock is funded
by the node's wallet, through the P2SH address ``decodescript`` names, so no address
prefixes are hard-coded.

Example::

    htlc = LitecoinHtlc(node.rpc, wallet=node.wallet)
    terms = HtlcTerms(sha256(preimage), bob.public_key.format(), alice.public_key.format(),
                      locktime=height + 10)
    lock = await htlc.lock(terms, amount=10**8)
    await node.mine(1)
    claim_id = await htlc.claim(lock, preimage, bob, await htlc.wallet_script())
    assert await htlc.find_preimage(lock) == preimage
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from bitcoin.core import (
    CMutableTransaction,
    CMutableTxIn,
    CMutableTxOut,
    COutPoint,
    lx,
)
from bitcoin.core.script import (
    OP_0,
    OP_1,
    OP_CHECKLOCKTIMEVERIFY,
    OP_CHECKSIG,
    OP_DROP,
    OP_ELSE,
    OP_ENDIF,
    OP_EQUALVERIFY,
    OP_IF,
    OP_SHA256,
    SIGHASH_ALL,
    CScript,
    SignatureHash,
)
from coincurve import PrivateKey

from pervasive.crosschain.litecoin.rpc import LitecoinRpc
from pervasive.errors import InvalidInput

__all__ = [
    "DEFAULT_FEE",
    "HtlcLock",
    "HtlcTerms",
    "LitecoinHtlc",
    "claim_transaction",
    "refund_transaction",
    "revealed_preimage",
]

DEFAULT_FEE = 10_000
"""Litoshi paid by a claim or refund (about 30 litoshi/byte; regtest relays from 1)."""

_LOCKTIME_THRESHOLD = 500_000_000  # below: a block height; above: unix time
_FINAL_BUT_LOCKTIME = 0xFFFFFFFE  # a sequence that keeps nLockTime enforced


@dataclass(frozen=True)
class HtlcTerms:
    """What both parties agree on before A locks: hash, keys and refund height."""

    hashlock: bytes
    """SHA-256 of B's preimage (32 bytes)."""
    recipient_key: bytes
    """pk_B, 33-byte compressed secp256k1: may claim with the preimage."""
    sender_key: bytes
    """pk_A, 33-byte compressed: may refund from ``locktime`` on."""
    locktime: int
    """Block height from which the refund is final."""

    def __post_init__(self) -> None:
        if len(self.hashlock) != 32:
            raise InvalidInput(f"the hashlock is a 32-byte SHA-256, not {len(self.hashlock)} bytes")
        for name, key in (("recipient_key", self.recipient_key), ("sender_key", self.sender_key)):
            if len(key) != 33 or key[0] not in (2, 3):
                raise InvalidInput(f"{name} must be a 33-byte compressed secp256k1 public key")
        if not 0 < self.locktime < _LOCKTIME_THRESHOLD:
            raise InvalidInput(f"locktime is a block height below {_LOCKTIME_THRESHOLD}")

    def redeem_script(self) -> bytes:
        """The HTLC script the P2SH output commits to."""
        return bytes(
            CScript(
                [
                    OP_IF, OP_SHA256, self.hashlock, OP_EQUALVERIFY, self.recipient_key,
                    OP_ELSE, self.locktime, OP_CHECKLOCKTIMEVERIFY, OP_DROP, self.sender_key,
                    OP_ENDIF, OP_CHECKSIG,
                ]
            )
        )  # fmt: skip


@dataclass(frozen=True)
class HtlcLock:
    """A funded HTLC output: where it is and what it holds."""

    terms: HtlcTerms
    tx_id: str
    vout: int
    amount: int
    """Litoshi locked."""
    address: str
    """The P2SH address, as the node spells it."""


def _spend(
    lock: HtlcLock,
    key: PrivateKey,
    destination: bytes,
    fee: int,
    *,
    unlock: list[bytes | int],
    locktime: int,
    sequence: int,
) -> bytes:
    if fee <= 0 or fee >= lock.amount:
        raise InvalidInput(f"the fee must be positive and below the locked {lock.amount} litoshi")
    redeem = CScript(lock.terms.redeem_script())
    tx = CMutableTransaction(
        [CMutableTxIn(COutPoint(lx(lock.tx_id), lock.vout), nSequence=sequence)],
        [CMutableTxOut(lock.amount - fee, CScript(destination))],
        nLockTime=locktime,
    )
    digest = SignatureHash(redeem, tx, 0, SIGHASH_ALL)
    signature = key.sign(digest, hasher=None) + bytes([SIGHASH_ALL])
    tx.vin[0].scriptSig = CScript([signature, *unlock, redeem])
    return bytes(tx.serialize())


def claim_transaction(
    lock: HtlcLock, preimage: bytes, key: PrivateKey, destination: bytes, fee: int = DEFAULT_FEE
) -> bytes:
    """B's signed claim of ``lock`` to the script ``destination``; reveals ``preimage``.

    Example: ``await rpc.call("sendrawtransaction", claim_transaction(lock, p, bob, s).hex())``.
    """
    return _spend(
        lock, key, destination, fee, unlock=[preimage, OP_1], locktime=0, sequence=0xFFFFFFFF
    )


def refund_transaction(
    lock: HtlcLock, key: PrivateKey, destination: bytes, fee: int = DEFAULT_FEE
) -> bytes:
    """A's signed refund of ``lock``; final only once the chain's height reaches ``locktime``."""
    return _spend(
        lock,
        key,
        destination,
        fee,
        unlock=[OP_0],
        locktime=lock.terms.locktime,
        sequence=_FINAL_BUT_LOCKTIME,
    )


def revealed_preimage(script_sig: bytes, hashlock: bytes) -> bytes | None:
    """The data pushed by ``script_sig`` whose SHA-256 is ``hashlock``, if any.

    Example: ``revealed_preimage(claim_input_script, terms.hashlock) == preimage``.
    """
    try:
        pushes = [op for op in CScript(script_sig) if isinstance(op, bytes)]
    except Exception:
        return None
    return next((p for p in pushes if hashlib.sha256(p).digest() == hashlock), None)


@dataclass
class LitecoinHtlc:
    """Lock, claim, refund and watch HTLCs through one node (its wallet funds the locks).

    Example::

        lock = await LitecoinHtlc(node.rpc).lock(terms, amount=50_000_000)
    """

    rpc: LitecoinRpc
    wallet: str = "pervasive"

    async def wallet_script(self) -> bytes:
        """A fresh scriptPubKey of the wallet, to receive a claim or refund."""
        address = await self.rpc.call("getnewaddress", wallet=self.wallet)
        info = await self.rpc.call("getaddressinfo", address, wallet=self.wallet)
        return bytes.fromhex(info["scriptPubKey"])

    async def lock(self, terms: HtlcTerms, amount: int) -> HtlcLock:
        """Fund the HTLC's P2SH output with ``amount`` litoshi from the wallet; broadcast it."""
        if amount <= DEFAULT_FEE:
            raise InvalidInput(f"lock more than the {DEFAULT_FEE} litoshi a claim pays in fees")
        redeem = terms.redeem_script()
        address = (await self.rpc.call("decodescript", redeem.hex()))["p2sh"]
        coins = f"{amount // 10**8}.{amount % 10**8:08d}"
        raw = await self.rpc.call("createrawtransaction", [], [{address: coins}])
        funded = await self.rpc.call("fundrawtransaction", raw, wallet=self.wallet)
        signed = await self.rpc.call(
            "signrawtransactionwithwallet", funded["hex"], wallet=self.wallet
        )
        tx_id = str(await self.rpc.call("sendrawtransaction", signed["hex"]))
        decoded = await self.rpc.call("decoderawtransaction", signed["hex"])
        p2sh = CScript(redeem).to_p2sh_scriptPubKey().hex()
        vout = next(o["n"] for o in decoded["vout"] if o["scriptPubKey"]["hex"] == p2sh)
        return HtlcLock(terms, tx_id, int(vout), amount, str(address))

    async def claim(
        self, lock: HtlcLock, preimage: bytes, key: PrivateKey, destination: bytes
    ) -> str:
        """Broadcast B's claim; litecoind refuses a wrong preimage (``LitecoinRpcError`` -26)."""
        raw = claim_transaction(lock, preimage, key, destination)
        return str(await self.rpc.call("sendrawtransaction", raw.hex()))

    async def refund(self, lock: HtlcLock, key: PrivateKey, destination: bytes) -> str:
        """Broadcast A's refund; refused as non-final (-26) before ``locktime``."""
        raw = refund_transaction(lock, key, destination)
        return str(await self.rpc.call("sendrawtransaction", raw.hex()))

    async def find_preimage(self, lock: HtlcLock, from_height: int | None = None) -> bytes | None:
        """The preimage revealed by a canonical transaction spending ``lock``, or None.

        Scans blocks from the lock's block (or ``from_height``) to the tip: what A does
        to learn the secret that unlocks the other chain's leg of the swap.
        """
        if from_height is None:
            found = await self.rpc.call("getrawtransaction", lock.tx_id, True)
            if "blockhash" not in found:
                return None
            from_height = int((await self.rpc.call("getblockheader", found["blockhash"]))["height"])
        best = int(await self.rpc.call("getblockcount"))
        for height in range(from_height, best + 1):
            block = await self.rpc.call("getblock", await self.rpc.call("getblockhash", height), 2)
            for tx in block["tx"]:
                for spent in tx["vin"]:
                    if spent.get("txid") == lock.tx_id and spent.get("vout") == lock.vout:
                        script = bytes.fromhex(spent["scriptSig"]["hex"])
                        return revealed_preimage(script, lock.terms.hashlock)
        return None
