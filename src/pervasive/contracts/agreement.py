"""The typed Python wrapper of ``vyper/agreement.vy`` and ``vyper/agreement_factory.vy``.

An agreement ``a = (U_a, S_a, Q_0, f_a, I_a, r_a) : U_a`` (paper 002, section 3) is
created by the factory (which checks its parties, nodes and sensors in the registry),
only with every party's EIP-712 signature over its :class:`AgreementTerms` (the
paper's ``: U_a``, so it is active from birth), then updated once per window with a
result signed by every node (:class:`UpdatePayload`) or disputed with signed evidence. See
``docs/agreement-contract.md`` for every typed struct and the gas design.

Under on-chain proof of storage the window data travels in the update's calldata in
the compact packed form of :class:`WindowData` (``encode``/``decode``); decoding it
reproduces ``H(w[t])`` and every sensor signature (see the docs).

Example::

    factory = await AgreementFactory.open(ledger, deployer, registry)
    approvals = [factory.sign_terms(key, terms) for key in party_keys]   # each party, locally
    agreement = await factory.create(signer, terms, ["lock-1"], approvals)
    update = agreement.update_payload(t=0, result=b"...", window_hash=h)
    await agreement.update(signer, update, [update.sign(k, ledger.chain_id) for k in node_keys])
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pervasive.chain import ContractCall, Ledger, Receipt, Signer
from pervasive.contracts.compiler import Artifact, compile_contract
from pervasive.contracts.contract import Contract, DecodedEvent
from pervasive.contracts.deployments import deploy
from pervasive.contracts.registry import Registry
from pervasive.crypto import (
    PrivateKey,
    PublicKey,
    Signature,
    TypedDataHash,
    abi_encode,
    checksum_address,
    domain_separator,
    keccak256,
    sign_typed_data,
    struct_hash,
    type_hash,
    typed_data_digest,
)
from pervasive.errors import InvalidInput, NotFound

__all__ = [
    "AGREEMENT",
    "AGREEMENT_FACTORY",
    "TERMS_TYPE",
    "UPDATE_TYPE",
    "Agreement",
    "AgreementFactory",
    "AgreementTerms",
    "DisputeRecord",
    "ProofEvidence",
    "QoSLevel",
    "Reaction",
    "ReactionKind",
    "Record",
    "RevealEvidence",
    "UpdatePayload",
    "agreement_domain",
    "blueprint_deploy_code",
    "compact_signature",
]

AGREEMENT = "agreement"
AGREEMENT_FACTORY = "agreement_factory"
MAX_PARTIES = MAX_NODES = MAX_SENSORS = 8
MAX_RESULT = 512
MAX_DATA = 65536
MAX_CLAIM = 256

TERMS_TYPE = (
    "Terms(address[] parties,address[] sensors,uint64[] startPoints,uint64 windowSize,"
    "uint64 slidingFactor,string functionName,bytes32 functionHash,address[] nodes,"
    "uint8[] nodeParties,uint8 qos,uint256 reward,uint8 reaction,uint8 payer,uint8 payee,"
    "uint256 amount,uint64 expiry)"
)
"""The EIP-712 type every party signs to approve an agreement."""
UPDATE_TYPE = (
    "Update(address agreement,uint256 window,bytes result,bytes32 windowHash,"
    "bytes32 proofsHash,bytes32 dataHash)"
)
"""The EIP-712 type every node signs for an on-chain update of window ``t``."""
_TERMS_ABI = (
    "(address[],address[],uint64[],uint64,uint64,string,bytes32,address[],uint8[],"
    "uint8,uint256,uint8,uint8,uint8,uint256,uint64)"
)
_ZERO = bytes(32)


class QoSLevel(enum.IntEnum):
    """Quality of service (paper 002, section 2); same values as ``offchain.QoS``."""

    NO_PROOF = 0
    OFFCHAIN_PROOF = 1
    ONCHAIN_PROOF = 2


class ReactionKind(enum.IntEnum):
    """The closed set of reactions ``r_a`` (see docs/agreement-contract.md)."""

    NONE = 0
    EMIT = 1
    """An ``Actuation(window, command=result)`` event for an actuator."""
    PAY_FIXED = 2
    """``amount`` wei from the payer's escrow to the payee per non-null result."""
    PAY_PER_UNIT = 3
    """``amount`` x the result's first uint256 word, from the payer's escrow to the payee."""


@dataclass(frozen=True)
class Reaction:
    """``r_a``: its kind and, for payments, payer and payee (party indices) and amount/rate."""

    kind: ReactionKind = ReactionKind.NONE
    payer: int = 0
    payee: int = 0
    amount: int = 0


def agreement_domain(chain_id: int, address: str) -> bytes:
    """EIP-712 domain separator ``("DIVERSITY", "1", chainId, agreement)``.

    Example: ``agreement_domain(31337, agreement.address)``.
    """
    return domain_separator("DIVERSITY", "1", chain_id, checksum_address(address))


def compact_signature(signature: Signature) -> tuple[bytes, bytes]:
    """EIP-2098 ``(r, vs)``: the top bit of ``vs`` is ``v - 27``.

    Example: ``r, vs = compact_signature(sig)``.
    """
    vs = ((signature.v - 27) << 255) | signature.s
    return signature.r.to_bytes(32, "big"), vs.to_bytes(32, "big")


def _packed(kind: str, values: Sequence[Any]) -> bytes:
    # EIP-712 encodeData of an array of atomic values: keccak256 of the 32-byte words.
    return keccak256(b"".join(abi_encode([kind], [v]) for v in values))


@dataclass(frozen=True)
class AgreementTerms:
    """The terms of an agreement, as the parties sign them (EIP-712 :data:`TERMS_TYPE`).

    ``node_parties[i]`` is the index of the party that trusts ``nodes[i]`` (``I_{u}``)
    and pays its rewards; ``reward`` is wei per node per recorded window; ``expiry``
    a unix time after which no update is accepted and escrow is released.

    Example::

        AgreementTerms(parties=(sp, insurer), sensors=(lock,), start_points=(0,),
                       window_size=200, sliding_factor=200, function_name="rental_time",
                       function_hash=fn_hash, nodes=(n1, n2), node_parties=(0, 1),
                       qos=QoSLevel.NO_PROOF, reward=10**12,
                       reaction=Reaction(ReactionKind.PAY_PER_UNIT, 0, 1, 10**9),
                       expiry=now + 86400 * 365)
    """

    parties: tuple[str, ...]
    sensors: tuple[str, ...]
    start_points: tuple[int, ...]
    window_size: int
    sliding_factor: int
    function_name: str
    function_hash: bytes
    nodes: tuple[str, ...]
    node_parties: tuple[int, ...]
    qos: QoSLevel
    reward: int
    reaction: Reaction
    expiry: int

    def __post_init__(self) -> None:
        for name in ("parties", "sensors", "nodes"):
            object.__setattr__(self, name, tuple(checksum_address(a) for a in getattr(self, name)))
        object.__setattr__(self, "qos", QoSLevel(self.qos))
        object.__setattr__(self, "start_points", tuple(self.start_points))
        object.__setattr__(self, "node_parties", tuple(self.node_parties))
        reaction = self.reaction
        object.__setattr__(
            self, "reaction", Reaction(ReactionKind(reaction.kind), *_rest(reaction))
        )
        self._check()

    def _check(self) -> None:
        if not 2 <= len(self.parties) <= MAX_PARTIES or len(set(self.parties)) != len(self.parties):
            raise InvalidInput(f"an agreement needs 2 to {MAX_PARTIES} distinct parties")
        if not 2 <= len(self.nodes) <= MAX_NODES or len(set(self.nodes)) != len(self.nodes):
            raise InvalidInput(f"an agreement needs 2 to {MAX_NODES} distinct intermediate nodes")
        if not 1 <= len(self.sensors) <= MAX_SENSORS or len(set(self.sensors)) != len(self.sensors):
            raise InvalidInput(f"an agreement needs 1 to {MAX_SENSORS} distinct sensors")
        if len(self.start_points) != len(self.sensors) or min(self.start_points) < 0:
            raise InvalidInput("give one window start point q_{s,0} >= 0 per sensor")
        if len(self.node_parties) != len(self.nodes) or any(
            not 0 <= p < len(self.parties) for p in self.node_parties
        ):
            raise InvalidInput("give, for each node, the index of the party that trusts it")
        if self.window_size < 1 or self.sliding_factor < 1:
            raise InvalidInput("window size z and sliding factor sl must be >= 1")
        if not self.function_name or len(self.function_name.encode()) > 64:
            raise InvalidInput("the off-chain function needs a name of 1-64 bytes")
        if len(self.function_hash) != 32 or self.function_hash == _ZERO:
            raise InvalidInput("function_hash is the 32-byte keccak256 of the function's source")
        if self.reward < 0:
            raise InvalidInput("the reward may not be negative")
        r = self.reaction
        if r.kind >= ReactionKind.PAY_FIXED and (
            not (0 <= r.payer < len(self.parties) and 0 <= r.payee < len(self.parties))
            or r.payer == r.payee
            or r.amount <= 0
        ):
            raise InvalidInput(
                "a payment reaction needs distinct payer/payee parties and amount > 0"
            )

    def as_abi(self) -> tuple[Any, ...]:
        """The ``Terms`` tuple as the contracts take it."""
        r = self.reaction
        return (
            list(self.parties), list(self.sensors), list(self.start_points), self.window_size,
            self.sliding_factor, self.function_name, self.function_hash, list(self.nodes),
            list(self.node_parties), int(self.qos), self.reward, int(r.kind), r.payer, r.payee,
            r.amount, self.expiry,
        )  # fmt: skip

    @classmethod
    def from_abi(cls, raw: Sequence[Any]) -> AgreementTerms:
        """Inverse of :meth:`as_abi` (what ``terms()`` returns)."""
        return cls(
            parties=tuple(raw[0]), sensors=tuple(raw[1]), start_points=tuple(raw[2]),
            window_size=raw[3], sliding_factor=raw[4], function_name=raw[5],
            function_hash=bytes(raw[6]), nodes=tuple(raw[7]), node_parties=tuple(raw[8]),
            qos=QoSLevel(raw[9]), reward=raw[10],
            reaction=Reaction(ReactionKind(raw[11]), raw[12], raw[13], raw[14]), expiry=raw[15],
        )  # fmt: skip

    def struct_hash(self) -> bytes:
        """EIP-712 ``hashStruct`` of the terms (arrays hashed as EIP-712 prescribes)."""
        r = self.reaction
        values = [
            type_hash(TERMS_TYPE),
            _packed("address", self.parties), _packed("address", self.sensors),
            _packed("uint64", self.start_points), self.window_size, self.sliding_factor,
            keccak256(self.function_name.encode()), self.function_hash,
            _packed("address", self.nodes), _packed("uint8", self.node_parties), int(self.qos),
            self.reward, int(r.kind), r.payer, r.payee, r.amount, self.expiry,
        ]  # fmt: skip
        types = ["bytes32"] * 4 + ["uint64", "uint64", "bytes32", "bytes32", "bytes32", "bytes32"]
        types += ["uint8", "uint256", "uint8", "uint8", "uint8", "uint256", "uint64"]
        return keccak256(abi_encode(types, values))

    def typed_hash(self, chain_id: int, factory: str) -> TypedDataHash:
        """The digest each party signs: the terms in the factory's domain.

        The agreement's address does not exist before every party signed, so the terms
        are signed for the factory that will create it (``verifyingContract``).
        """
        return typed_data_digest(agreement_domain(chain_id, factory), self.struct_hash())

    def sign(self, key: PrivateKey, chain_id: int, factory: str) -> Signature:
        """A party's approval of the terms. Example: ``terms.sign(key, 31337, factory.address)``."""
        return sign_typed_data(key, self.typed_hash(chain_id, factory))

    def typed_document(self, chain_id: int, factory: str) -> dict[str, Any]:
        """The full ``eth_signTypedData_v4`` document, for wallets that show what they sign."""
        members = TERMS_TYPE[len("Terms(") : -1].split(",")
        r = self.reaction
        message = {
            "parties": list(self.parties), "sensors": list(self.sensors),
            "startPoints": list(self.start_points), "windowSize": self.window_size,
            "slidingFactor": self.sliding_factor, "functionName": self.function_name,
            "functionHash": self.function_hash, "nodes": list(self.nodes),
            "nodeParties": list(self.node_parties), "qos": int(self.qos), "reward": self.reward,
            "reaction": int(r.kind), "payer": r.payer, "payee": r.payee, "amount": r.amount,
            "expiry": self.expiry,
        }  # fmt: skip
        return {
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"},
                ],
                "Terms": [{"name": m.split(" ")[1], "type": m.split(" ")[0]} for m in members],
            },
            "primaryType": "Terms",
            "domain": {
                "name": "DIVERSITY",
                "version": "1",
                "chainId": chain_id,
                "verifyingContract": checksum_address(factory),
            },
            "message": message,
        }


def _rest(reaction: Reaction) -> tuple[int, int, int]:
    return reaction.payer, reaction.payee, reaction.amount


@dataclass(frozen=True)
class UpdatePayload:
    """The struct every node signs for window ``t`` (EIP-712 :data:`UPDATE_TYPE`).

    ``proofs_hash`` binds the off-chain proofs of computation ``P_t`` and ``data_hash``
    is ``keccak256`` of the packed window data (zero unless the QoS is on-chain).
    Its struct hash is also the record's commitment stored on-chain.
    """

    agreement: str
    window: int
    result: bytes
    window_hash: bytes
    proofs_hash: bytes = _ZERO
    data_hash: bytes = _ZERO

    def struct_hash(self) -> bytes:
        """EIP-712 ``hashStruct`` of the update (the on-chain record commitment)."""
        values = [
            checksum_address(self.agreement), self.window, self.result, self.window_hash,
            self.proofs_hash, self.data_hash,
        ]  # fmt: skip
        return struct_hash(UPDATE_TYPE, values)

    def typed_hash(self, chain_id: int) -> TypedDataHash:
        """The digest every node signs."""
        return typed_data_digest(agreement_domain(chain_id, self.agreement), self.struct_hash())

    def sign(self, key: PrivateKey, chain_id: int) -> Signature:
        """A node's signature. Example: ``payload.sign(node_key, ledger.chain_id)``."""
        return sign_typed_data(key, self.typed_hash(chain_id))


@dataclass(frozen=True)
class Record:
    """The on-chain record of window ``t``: ``(f(w[t]), P_t, w[t])`` as commitments."""

    window: int
    result: bytes
    window_hash: bytes
    proofs_hash: bytes
    data_hash: bytes
    commitment: bytes
    block_number: int
    transaction_hash: str


@dataclass(frozen=True)
class ProofEvidence:
    """A signed proof of computation ``p_{t,author}`` as dispute evidence."""

    author: int
    commitment: bytes
    window_hash: bytes
    signature: Signature

    def as_abi(self) -> tuple[Any, ...]:
        """The ``ProofEvidence`` tuple the contract takes."""
        return (self.author, self.commitment, self.window_hash, compact_signature(self.signature))


@dataclass(frozen=True)
class RevealEvidence:
    """A signed reveal ``c_{t,author}`` as dispute evidence (``result`` None = null)."""

    author: int
    result: bytes | None
    secret: bytes
    signature: Signature

    def as_abi(self) -> tuple[Any, ...]:
        """The ``RevealEvidence`` tuple the contract takes."""
        present = self.result is not None
        sig = compact_signature(self.signature)
        return (self.author, present, self.result or b"", self.secret, sig)


@dataclass(frozen=True)
class DisputeRecord:
    """A dispute as recorded on-chain, with its evidence read back from the event."""

    index: int
    window: int
    kind: int
    opener: str
    proofs: tuple[ProofEvidence, ...]
    reveals: tuple[RevealEvidence, ...]
    data_hash: bytes
    block_number: int
    transaction_hash: str


def _signature(raw: Sequence[bytes]) -> Signature:
    r, vs = bytes(raw[0]), int.from_bytes(bytes(raw[1]), "big")
    return Signature(int.from_bytes(r, "big"), vs & ((1 << 255) - 1), 27 + (vs >> 255))


def blueprint_deploy_code(init_code: bytes) -> bytes:
    """Deploy code of an ERC-5202 blueprint (``0xFE7100`` preamble) holding ``init_code``.

    Example: ``await deploy_raw(ledger, signer, blueprint_deploy_code(artifact.bytecode))``.
    """
    container = b"\xfe\x71\x00" + init_code
    if len(container) > 0xFFFF:
        raise InvalidInput("a blueprint holds at most 65535 bytes")
    return b"\x61" + len(container).to_bytes(2, "big") + bytes.fromhex("3d81600a3d39f3") + container


class AgreementFactory:
    """The deployed factory; creates agreements from the blueprint."""

    def __init__(self, contract: Contract, registry: Registry, artifacts: Path | None) -> None:
        self.contract = contract
        self.registry = registry
        self._artifacts = artifacts

    @classmethod
    async def open(
        cls, ledger: Ledger, signer: Signer, registry: Registry, *, artifacts: Path | None = None
    ) -> AgreementFactory:
        """The registry's factory; deploys blueprint and factory and registers them if unset.

        ``signer`` must be the registry's deployer when no factory is set yet.

        Example: ``factory = await AgreementFactory.open(ledger, deployer, registry)``.
        """
        artifact = compile_contract(AGREEMENT_FACTORY, cache_dir=artifacts)
        current = checksum_address(await registry.contract.call("agreement_factory"))
        if int(current, 16) != 0:
            return cls(Contract(ledger, current, artifact.abi), registry, artifacts)
        init_code = compile_contract(AGREEMENT, cache_dir=artifacts).bytecode
        blueprint = Artifact("agreement_blueprint", (), blueprint_deploy_code(init_code), "")
        blueprint_at = (await deploy(ledger, signer, blueprint)).address
        factory_at = (
            await deploy(ledger, signer, artifact, registry.address, blueprint_at)
        ).address
        await registry.contract.transact(signer, "set_agreement_factory", factory_at)
        return cls(Contract(ledger, factory_at, artifact.abi), registry, artifacts)

    @property
    def address(self) -> str:
        """The factory's address (the ``verifyingContract`` of the parties' signatures)."""
        return self.contract.address

    def sign_terms(self, key: PrivateKey, terms: AgreementTerms) -> Signature:
        """A party's EIP-712 approval of ``terms`` for this factory (local, nothing sent)."""
        return terms.sign(key, self.contract.ledger.chain_id, self.address)

    async def create(
        self,
        signer: Signer,
        terms: AgreementTerms,
        sensor_ids: Sequence[str],
        approvals: Sequence[Signature],
    ) -> Agreement:
        """Create agreement ``terms`` signed by every party (``approvals`` in party order).

        ``sensor_ids`` are the registry ids of ``terms.sensors``. Raises
        :class:`InvalidInput` when a sensor id does not belong to the address given or an
        approval is missing; the chain refuses a bad signature or an unregistered entity
        (:class:`TransactionReverted` with the reason).

        Example: ``agreement = await factory.create(signer, terms, ["lock-1"], [sig_a, sig_b])``.
        """
        if len(sensor_ids) != len(terms.sensors):
            raise InvalidInput("give one registry id per sensor of the terms")
        if len(approvals) != len(terms.parties):
            raise InvalidInput("every party must sign the terms: give one approval per party")
        keys = []
        for sensor_id, address in zip(sensor_ids, terms.sensors, strict=True):
            declared = await self.registry.get_sensor(sensor_id)
            key = PublicKey.from_bytes(declared.public_key)
            if key.address != address:
                raise InvalidInput(f"sensor {sensor_id!r} has address {key.address}, not {address}")
            keys.append(key.to_bytes())
        sigs = [compact_signature(a) for a in approvals]
        receipt = await self.contract.transact(
            signer, "create", terms.as_abi(), list(sensor_ids), keys, sigs
        )
        [created] = self.contract.events(receipt, "AgreementCreated")
        return await Agreement.at(
            self.contract.ledger, str(created.args["agreement"]), artifacts=self._artifacts
        )


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
    ) -> UpdatePayload:
        """The struct the nodes sign for window ``t`` (``None`` = the null result)."""
        data_hash = keccak256(data) if data is not None else _ZERO
        return UpdatePayload(self.address, t, result or b"", window_hash, proofs_hash, data_hash)

    def update_call(
        self, payload: UpdatePayload, signatures: Sequence[Signature], data: bytes | None = None
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
        if self.terms.qos is QoSLevel.ONCHAIN_PROOF:
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
        payload: UpdatePayload,
        signatures: Sequence[Signature],
        data: bytes | None = None,
    ) -> Receipt:
        """Send the update of ``payload.window``; a revert raises :class:`TransactionReverted`.

        Example: ``await agreement.update(node_signer, payload, [sig_1, sig_2])``.
        """
        call = ContractCall(self.address, self.update_call(payload, signatures, data))
        receipt: Receipt = await self.ledger.transactor(signer).transact(call)
        return receipt

    @property
    def _update_event(self) -> str:
        return "UpdatedWithData" if self.terms.qos is QoSLevel.ONCHAIN_PROOF else "Updated"

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
        payload = UpdatePayload(
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
                ProofEvidence(int(p[0]), bytes(p[1]), bytes(p[2]), _signature(p[3]))
                for p in a["proofs"]
            )
            reveals = tuple(
                RevealEvidence(
                    int(r[0]), bytes(r[2]) if r[1] else None, bytes(r[3]), _signature(r[4])
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


# -- packed window data (on-chain proof of storage) -----------------------------------

SENSOR_MESSAGE_TYPE = (
    "SensorMessage(bytes publicKey,string sensorType,uint64 sequence,bytes values)"
)
"""The EIP-712 type of ``m_{s,q}`` (as ``pervasive.offchain.sensor_message``)."""
SENSOR_DOMAIN = domain_separator("DIVERSITY Sensor", "1")
WINDOW_DATA_VERSION = 1
_FIELD_CODES = (
    "bool",
    "int64",
    "uint64",
    "int256",
    "uint256",
    "string",
    "bytes",
    "bytes32",
    "address",
)
_FIXED_WIDTH = {
    "bool": 1,
    "int64": 8,
    "uint64": 8,
    "int256": 32,
    "uint256": 32,
    "bytes32": 32,
    "address": 20,
}


@dataclass(frozen=True)
class PackedMessage:
    """One message of a window: ``d_q`` (its canonical ABI encoding) and ``: s`` (65 bytes)."""

    values: bytes
    signature: bytes


@dataclass(frozen=True)
class SensorWindowData:
    """``w_s(t)`` as it goes on-chain: sensor key, type, field types, start ``q`` and messages.

    A ``None`` message is one the nodes never received (leaf ``bytes32(0)``).
    """

    public_key: bytes
    sensor_type: str
    field_types: tuple[str, ...]
    start: int
    messages: tuple[PackedMessage | None, ...]

    def leaf(self, i: int) -> bytes:
        """The window-hash leaf of message ``start + i``: its EIP-712 struct hash."""
        message = self.messages[i]
        if message is None:
            return _ZERO
        values = [self.public_key, self.sensor_type, self.start + i, message.values]
        return struct_hash(SENSOR_MESSAGE_TYPE, values)

    @property
    def hash(self) -> bytes:
        """``H(w_s(t))``: keccak256 of the leaves."""
        return keccak256(b"".join(self.leaf(i) for i in range(len(self.messages))))

    def verify_signatures(self) -> None:
        """Check every message is signed by this sensor; :class:`InvalidSignature` otherwise."""
        from pervasive.crypto import verify_hash

        address = PublicKey.from_bytes(self.public_key).address
        for i, message in enumerate(self.messages):
            if message is not None:
                digest = typed_data_digest(SENSOR_DOMAIN, self.leaf(i)).digest
                verify_hash(digest, message.signature, address)


@dataclass(frozen=True)
class WindowData:
    """``w[t]`` in the packed calldata form of on-chain proof of storage.

    Layout (big-endian): ``version:1 | k:1`` then per sensor ``public key:64 |
    len:1 type | h:1 field codes:h | q0:8 | z:2 | presence bitmap:ceil(z/8)`` then per
    present message its values packed at their natural width (bool 1, (u)int64 8,
    (u)int256 and bytes32 32, address 20, string/bytes 2-byte length + bytes) and its
    65-byte signature ``r||s||v``. No per-message ``q``: a window is consecutive.

    Example: ``WindowData.decode(data.encode()) == data``.
    """

    sensors: tuple[SensorWindowData, ...]

    @property
    def hash(self) -> bytes:
        """``H(w[t])``, as ``pervasive.offchain.window.WindowArray.hash``."""
        return keccak256(b"".join(s.hash for s in self.sensors))

    def verify_signatures(self) -> None:
        """Check every sensor signature in the window."""
        for sensor in self.sensors:
            sensor.verify_signatures()

    def encode(self) -> bytes:
        """The packed bytes (their keccak256 is the update's ``dataHash``)."""
        if not 1 <= len(self.sensors) <= 255:
            raise InvalidInput("window data holds 1 to 255 sensors")
        out = bytearray([WINDOW_DATA_VERSION, len(self.sensors)])
        for s in self.sensors:
            kind = s.sensor_type.encode()
            if len(s.public_key) != 64 or not 1 <= len(kind) <= 255 or len(s.field_types) > 255:
                raise InvalidInput("a sensor needs a 64-byte key, a 1-255 byte type, <= 255 fields")
            if len(s.messages) > 0xFFFF or not 0 <= s.start < 2**64:
                raise InvalidInput("a sensor window holds at most 65535 messages from q0 < 2^64")
            out += s.public_key + bytes([len(kind)]) + kind + bytes([len(s.field_types)])
            out += bytes(_FIELD_CODES.index(_known(t)) for t in s.field_types)
            out += s.start.to_bytes(8, "big") + len(s.messages).to_bytes(2, "big")
            bitmap = bytearray((len(s.messages) + 7) // 8)
            for i, m in enumerate(s.messages):
                if m is not None:
                    bitmap[i // 8] |= 1 << (i % 8)
            out += bitmap
            for m in s.messages:
                if m is not None:
                    if len(m.signature) != 65:
                        raise InvalidInput("a sensor signature is 65 bytes r||s||v")
                    out += _pack_values(s.field_types, m.values) + m.signature
        return bytes(out)

    @classmethod
    def decode(cls, data: bytes) -> WindowData:
        """Parse packed window data; :class:`InvalidInput` unless it is one canonical encoding."""
        reader = _Reader(data)
        if reader.int(1) != WINDOW_DATA_VERSION:
            raise InvalidInput(f"window data version must be {WINDOW_DATA_VERSION}")
        sensors = []
        for _ in range(reader.int(1)):
            public_key = reader.take(64)
            try:
                kind = reader.take(reader.int(1)).decode()
            except UnicodeDecodeError:
                raise InvalidInput("a sensor type is not UTF-8") from None
            codes = reader.take(reader.int(1))
            if any(c >= len(_FIELD_CODES) for c in codes):
                raise InvalidInput("unknown field type code in window data")
            types = tuple(_FIELD_CODES[c] for c in codes)
            start, count = reader.int(8), reader.int(2)
            bitmap = reader.take((count + 7) // 8)
            if count % 8 and bitmap[-1] >> (count % 8):
                raise InvalidInput("presence bitmap has bits past the window's end")
            messages: list[PackedMessage | None] = []
            for i in range(count):
                if bitmap[i // 8] >> (i % 8) & 1:
                    values = _unpack_values(types, reader)
                    messages.append(PackedMessage(values, reader.take(65)))
                else:
                    messages.append(None)
            sensors.append(SensorWindowData(public_key, kind, types, start, tuple(messages)))
        if not reader.done:
            raise InvalidInput("trailing bytes after the window data")
        return cls(tuple(sensors))


def _known(kind: str) -> str:
    if kind not in _FIELD_CODES:
        raise InvalidInput(f"field type {kind!r} is not one of {', '.join(_FIELD_CODES)}")
    return kind


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, n: int) -> bytes:
        if self.at + n > len(self.data):
            raise InvalidInput("window data ends early")
        chunk = self.data[self.at : self.at + n]
        self.at += n
        return chunk

    def int(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    @property
    def done(self) -> bool:
        return self.at == len(self.data)


def _pack_values(types: Sequence[str], encoded: bytes) -> bytes:
    from pervasive.crypto import abi_decode

    out = bytearray()
    for kind, value in zip(types, abi_decode(types, encoded), strict=True):
        if kind in ("string", "bytes"):
            raw = value.encode() if kind == "string" else bytes(value)
            if len(raw) > 0xFFFF:
                raise InvalidInput("a string or bytes value is at most 65535 bytes")
            out += len(raw).to_bytes(2, "big") + raw
        elif kind == "address":
            out += bytes.fromhex(value[2:])
        elif kind == "bytes32":
            out += bytes(value)
        elif kind == "bool":
            out.append(int(value))
        else:
            out += int(value).to_bytes(_FIXED_WIDTH[kind], "big", signed=kind.startswith("int"))
    return bytes(out)


def _unpack_values(types: Sequence[str], reader: _Reader) -> bytes:
    values: list[Any] = []
    for kind in types:
        if kind in ("string", "bytes"):
            raw = reader.take(reader.int(2))
            try:
                values.append(raw.decode() if kind == "string" else raw)
            except UnicodeDecodeError:
                raise InvalidInput("a string value is not UTF-8") from None
        else:
            raw = reader.take(_FIXED_WIDTH[kind])
            if kind == "bool":
                if raw[0] > 1:
                    raise InvalidInput("a bool value is 0 or 1")
                values.append(raw[0] == 1)
            elif kind == "address":
                values.append(checksum_address(raw))
            elif kind == "bytes32":
                values.append(raw)
            else:
                values.append(int.from_bytes(raw, "big", signed=kind.startswith("int")))
    return abi_encode(types, values)
