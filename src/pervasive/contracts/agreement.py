"""The typed Python wrapper of ``vyper/agreement.vy``: one deployed DIVERSITY agreement.

Paper 002, section 3: an agreement created by
:class:`~pervasive.contracts.agreement_factory.AgreementFactory` is updated once per
window with a result signed by every node (:class:`~pervasive.domain.Update`), or disputed with
signed evidence; it holds the parties' escrow, runs the reaction ``r_a`` and pays the
nodes' rewards. Under on-chain proof of storage the update carries the packed window
data (built by :class:`pervasive.offchain.window_data.WindowData`); this wrapper only
sends those bytes and binds their hash. See ``docs/agreement-contract.md``.

Example::

    agreement = await Agreement.at(ledger, address)
    update = agreement.update_payload(t=0, result=b"...", window_hash=h)
    await agreement.update(signer, update, [update.sign(k, ledger.chain_id) for k in node_keys])
    await agreement.submit(signer, signed_update)   # a SignedUpdate the nodes assembled
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pervasive.chain import ContractCall, Ledger, Receipt, Signer
from pervasive.contracts.agreement_records import (
    DisputeRecord,
    ProofEvidence,
    Record,
    RevealEvidence,
    compact_signature,
    expand_signature,
)
from pervasive.contracts.compiler import compile_contract
from pervasive.contracts.contract import Contract, DecodedEvent
from pervasive.crypto import Signature, checksum_address
from pervasive.domain import AgreementTerms, QoS, SignedUpdate, Update, agreement_domain
from pervasive.errors import InvalidInput, NotFound

__all__ = ["AGREEMENT", "MAX_CLAIM", "MAX_DATA", "MAX_RESULT", "Agreement"]

AGREEMENT = "agreement"
"""The agreement's contract name (``vyper/agreement.vy``)."""
MAX_RESULT = 512
"""Bytes of ``f(w[t])`` an update may carry."""
MAX_DATA = 65536
"""Bytes of packed window data an on-chain-QoS update may carry."""
MAX_CLAIM = 256
"""Windows one reward claim may name."""
_ZERO = bytes(32)


class Agreement:
    """A deployed agreement. Build one with :meth:`at` or :meth:`AgreementFactory.create`."""

    def __init__(
        self, contract: Contract, terms: AgreementTerms, created_at: int, factory: str
    ) -> None:
        self.contract = contract
        self.terms = terms
        self.created_at = created_at
        self._factory = factory

    @classmethod
    async def at(cls, ledger: Ledger, address: str, *, artifacts: Path | None = None) -> Agreement:
        """The agreement at ``address`` with its terms read from the chain.

        Example: ``agreement = await Agreement.at(ledger, "0x...")``.
        """
        artifact = compile_contract(AGREEMENT, cache_dir=artifacts)
        contract = Contract(ledger, checksum_address(address), artifact.abi)
        if not await ledger.code(contract.address):
            raise NotFound(f"no agreement is deployed at {address}")
        terms = AgreementTerms.from_abi(await contract.call("terms"))
        created_at = int(await contract.call("CREATED_AT"))
        return cls(contract, terms, created_at, checksum_address(await contract.call("FACTORY")))

    @property
    def address(self) -> str:
        """The agreement's address (``a`` in the paper)."""
        return self.contract.address

    @property
    def ledger(self) -> Ledger:
        """The chain it lives on."""
        return self.contract.ledger

    @property
    def domain_separator(self) -> bytes:
        """EIP-712 domain of every signature this agreement checks."""
        return agreement_domain(self.ledger.chain_id, self.address)

    @property
    def factory(self) -> str:
        """The factory that created it (the domain the parties signed the terms in)."""
        return self._factory

    async def terms_digest(self) -> bytes:
        """The digest the parties signed, as the contract computes it."""
        return bytes(await self.contract.call("terms_digest"))

    # -- escrow -----------------------------------------------------------------------
    async def deposit(self, signer: Signer, amount: int) -> Receipt:
        """Add ``amount`` wei to ``signer``'s escrow (``signer`` must be a party)."""
        if amount <= 0:
            raise InvalidInput("deposit a positive amount of wei")
        call = ContractCall(self.address, self.contract.encode("deposit"), value=amount)
        receipt: Receipt = await self.ledger.transactor(signer).transact(call)
        return receipt

    async def escrow_of(self, party: str) -> int:
        """The escrow ``party`` holds in the agreement."""
        return int(await self.contract.call("escrow", checksum_address(party)))

    async def credit_of(self, account: str) -> int:
        """What ``account`` may withdraw now."""
        return int(await self.contract.call("credit", checksum_address(account)))

    async def arrears(self) -> int:
        """Reaction payments the payer's escrow could not cover yet."""
        return int(await self.contract.call("arrears"))

    async def reward_cursor(self, node: str) -> int:
        """The first window ``node`` may still claim a reward for."""
        return int(await self.contract.call("reward_cursor", checksum_address(node)))

    async def unclaimed_windows(self, node: str) -> list[int]:
        """Recorded windows ``node`` has not claimed its reward for, in order."""
        cursor = await self.reward_cursor(node)
        return sorted(r.window for r in await self.records() if r.window >= cursor)

    async def claim_reward(
        self, signer: Signer, node: str, windows: Sequence[int] | None = None
    ) -> Receipt:
        """Credit ``node`` its reward for ``windows`` (default: every unclaimed record).

        Example: ``await agreement.claim_reward(node_signer, node_signer.address)``.
        """
        chosen = list(windows) if windows is not None else await self.unclaimed_windows(node)
        if not chosen:
            raise InvalidInput(f"node {node} has no recorded window left to claim")
        return await self.contract.transact(
            signer, "claim_reward", checksum_address(node), chosen[:MAX_CLAIM]
        )

    async def release_escrow(self, signer: Signer) -> Receipt:
        """After expiry, credit ``signer``'s free escrow back to it."""
        return await self.contract.transact(signer, "release_escrow")

    async def withdraw(self, signer: Signer) -> Receipt:
        """Send ``signer`` its whole credited balance."""
        return await self.contract.transact(signer, "withdraw")

    # -- updates ----------------------------------------------------------------------
    def update_payload(
        self,
        t: int,
        result: bytes | None,
        window_hash: bytes,
        *,
        proofs_hash: bytes = _ZERO,
        data: bytes | None = None,
    ) -> Update:
        """The struct the nodes sign for window ``t`` (``None`` = the null result)."""
        return Update.for_window(
            self.address, t, result, window_hash, proofs_hash=proofs_hash, data=data
        )

    def update_call(
        self, payload: Update, signatures: Sequence[Signature], data: bytes | None = None
    ) -> bytes:
        """Calldata of the update transaction (signatures in the agreement's node order)."""
        if len(signatures) != len(self.terms.nodes):
            raise InvalidInput(
                f"give one signature per node ({len(self.terms.nodes)}), in node order"
            )
        if len(payload.result) > MAX_RESULT:
            raise InvalidInput(f"a result is at most {MAX_RESULT} bytes")
        sigs = [compact_signature(s) for s in signatures]
        head = (payload.window, payload.result, payload.window_hash, payload.proofs_hash)
        if self.terms.qos is QoS.ONCHAIN_PROOF:
            if data is None or len(data) > MAX_DATA:
                raise InvalidInput(
                    f"on-chain QoS: give the packed window data (<= {MAX_DATA} bytes)"
                )
            return self.contract.encode("update_with_data", *head, data, sigs)
        if data is not None:
            raise InvalidInput("this agreement's QoS keeps window data off-chain: give no data")
        return self.contract.encode("update", *head, sigs)

    async def update(
        self,
        signer: Signer,
        payload: Update,
        signatures: Sequence[Signature],
        data: bytes | None = None,
    ) -> Receipt:
        """Send the update of ``payload.window``; a revert raises :class:`TransactionReverted`.

        Example: ``await agreement.update(node_signer, payload, [sig_1, sig_2])``.
        """
        call = ContractCall(self.address, self.update_call(payload, signatures, data))
        receipt: Receipt = await self.ledger.transactor(signer).transact(call)
        return receipt

    async def submit(self, signer: Signer, signed: SignedUpdate) -> Receipt:
        """Send an update the nodes assembled (its window data under on-chain QoS).

        Example: ``await agreement.submit(node_signer, signed_update)``.
        """
        return await self.update(signer, signed.update, signed.signatures, signed.data or None)

    @property
    def _update_event(self) -> str:
        return "UpdatedWithData" if self.terms.qos is QoS.ONCHAIN_PROOF else "Updated"

    async def record(self, t: int) -> Record | None:
        """The record of window ``t`` (checked against the stored commitment), or ``None``."""
        commitment = bytes(await self.contract.call("record_of", t))
        if commitment == _ZERO:
            return None
        topics = [self._topic(self._update_event), t.to_bytes(32, "big")]
        head = await self.ledger.block_number()
        logs = await self.ledger.logs(self.address, self.created_at, head, topics)
        for event in self.contract.decode_logs(logs, self._update_event):
            record = self._record(event)
            if record.commitment == commitment:
                return record
        raise NotFound(f"window {t} has a commitment but no matching update event")

    async def records(self) -> list[Record]:
        """Every record, in chain order."""
        topics = [self._topic(self._update_event)]
        head = await self.ledger.block_number()
        logs = await self.ledger.logs(self.address, self.created_at, head, topics)
        return [self._record(e) for e in self.contract.decode_logs(logs, self._update_event)]

    def _record(self, event: DecodedEvent) -> Record:
        a = event.args
        payload = Update(
            self.address, int(a["window"]), bytes(a["result"]), bytes(a["window_hash"]),
            bytes(a["proofs_hash"]), bytes(a.get("data_hash", _ZERO)),
        )  # fmt: skip
        return Record(
            payload.window, payload.result, payload.window_hash, payload.proofs_hash,
            payload.data_hash, payload.struct_hash(), event.log.block_number,
            event.log.transaction_hash,
        )  # fmt: skip

    def _topic(self, name: str) -> bytes:
        return next(spec.topic for spec in self.contract._events.values() if spec.name == name)

    # -- disputes ---------------------------------------------------------------------
    async def dispute(
        self,
        signer: Signer,
        t: int,
        kind: int,
        *,
        proofs: Sequence[ProofEvidence] = (),
        reveals: Sequence[RevealEvidence] = (),
        data: bytes = b"",
    ) -> Receipt:
        """Open a dispute on window ``t`` from node ``signer`` with signed evidence."""
        return await self.contract.transact(
            signer, "dispute", t, int(kind),
            [p.as_abi() for p in proofs], [r.as_abi() for r in reveals], data,
        )  # fmt: skip

    async def disputes(self) -> list[DisputeRecord]:
        """Every dispute with its evidence, in order."""
        logs = await self.ledger.logs(
            self.address,
            self.created_at,
            await self.ledger.block_number(),
            [self._topic("Disputed")],
        )
        out = []
        for event in self.contract.decode_logs(logs, "Disputed"):
            a = event.args
            proofs = tuple(
                ProofEvidence(int(p[0]), bytes(p[1]), bytes(p[2]), expand_signature(p[3]))
                for p in a["proofs"]
            )
            reveals = tuple(
                RevealEvidence(
                    int(r[0]), bytes(r[2]) if r[1] else None, bytes(r[3]), expand_signature(r[4])
                )
                for r in a["reveals"]
            )
            out.append(
                DisputeRecord(
                    int(a["index"]),
                    int(a["window"]),
                    int(a["kind"]),
                    checksum_address(a["opener"]),
                    proofs,
                    reveals,
                    bytes(a["data_hash"]),
                    event.log.block_number,
                    event.log.transaction_hash,
                )
            )
        return out

    async def dispute_count(self) -> int:
        """How many disputes were opened."""
        return int(await self.contract.call("dispute_count"))
