"""The terms of an agreement ``a = (U_a, S_a, Q_0, f_a, I_a, r_a)`` as its parties sign them.

Paper 002, section 3: an agreement is created only with every party's signature
(``: U_a``). The parties sign :class:`AgreementTerms` as EIP-712 typed data
(:data:`TERMS_TYPE`) in the domain :func:`agreement_domain` of the factory that will
create it; the contract recomputes the same digest. Pure values over
:mod:`pervasive.crypto`, no chain access: the contract wrappers
(``contracts/agreement_factory.py``, ``contracts/agreement.py``) send them, and the
nodes run the protocol they fix (``offchain/``). Every struct is described in
``docs/agreement-contract.md``.

Example::

    terms = AgreementTerms(parties=(sp, insurer), sensors=(lock,), start_points=(0,), ...)
    approval = terms.sign(party_key, ledger.chain_id, factory.address)
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from pervasive.crypto import (
    PrivateKey,
    Signature,
    TypedDataHash,
    abi_encode,
    checksum_address,
    domain_separator,
    keccak256,
    sign_typed_data,
    type_hash,
    typed_data_digest,
)
from pervasive.errors import InvalidInput

__all__ = [
    "DOMAIN_NAME",
    "DOMAIN_VERSION",
    "LEADER_ROTATING",
    "MAX_NODES",
    "MAX_PARTIES",
    "MAX_SENSORS",
    "TERMS_TYPE",
    "AgreementTerms",
    "QoS",
    "Reaction",
    "ReactionKind",
    "SigningMode",
    "agreement_domain",
]

MAX_PARTIES = MAX_NODES = MAX_SENSORS = 8
"""Bounds of the contract's arrays (``agreement.vy``)."""

TERMS_TYPE = (
    "Terms(address[] parties,address[] sensors,uint64[] startPoints,uint64 windowSize,"
    "uint64 slidingFactor,string functionName,bytes32 functionHash,address[] nodes,"
    "uint8[] nodeParties,uint8 qos,uint256 reward,uint8 reaction,uint8 payer,uint8 payee,"
    "uint256 amount,uint64 expiry,uint8 signing,uint8 leader)"
)
"""The EIP-712 type every party signs to approve an agreement."""
DOMAIN_NAME = "DIVERSITY"
DOMAIN_VERSION = "1"
"""The EIP-712 domain of every agreement signature: the parties' and the nodes'."""
_ZERO = bytes(32)


class QoS(enum.IntEnum):
    """The qualities of service of paper 002, section 2 (the value is the on-chain ``uint8``)."""

    NO_PROOF = 0
    """Window data is dropped once the nodes agree; kept if the window is disputed."""
    OFFCHAIN_PROOF = 1
    """Every window is kept in the node's store and served on request."""
    ONCHAIN_PROOF = 2
    """Window data goes on-chain in calldata with the (non-null) result or the dispute."""


class SigningMode(enum.IntEnum):
    """How every node's signature on every proof of computation is collected (paper 002, Fig. 2).

    The value is the on-chain ``signing`` term; :attr:`label` the name users type.
    """

    RING = 0
    """Fig. 2A: each proof travels the ring, returns to its author, who broadcasts it."""
    LEADER = 1
    """A leader gathers all proofs, collects everyone's signatures, broadcasts the result."""
    FAST = 2
    """Fig. 2B: as LEADER, and the leader piggybacks the compact ``P_{t-1}`` on round ``t``."""

    @property
    def label(self) -> str:
        """``ring``, ``leader`` or ``fast``. Example: ``SigningMode.FAST.label == "fast"``."""
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> SigningMode:
        """The mode named ``text`` (``ring``, ``leader`` or ``fast``); :class:`InvalidInput` else.

        Example: ``SigningMode.parse("leader") is SigningMode.LEADER``.
        """
        try:
            return cls[text.strip().upper()]
        except KeyError:
            choices = ", ".join(m.label for m in cls)
            raise InvalidInput(f"unknown signing mode {text!r}; choose one of: {choices}") from None


LEADER_ROTATING = 255
"""``leader`` on-chain for a rotating leader (``nodes[t % n]``)."""


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


@functools.lru_cache(maxsize=256)
def agreement_domain(chain_id: int, address: str) -> bytes:
    """EIP-712 domain separator ``("DIVERSITY", "1", chainId, address)``.

    ``address`` is the agreement (for the nodes' updates) or, for the parties' approval
    of terms that have no agreement address yet, the factory.

    Example: ``agreement_domain(31337, agreement.address)``.
    """
    return domain_separator(DOMAIN_NAME, DOMAIN_VERSION, chain_id, checksum_address(address))


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
                       qos=QoS.NO_PROOF, reward=10**12,
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
    qos: QoS
    reward: int
    reaction: Reaction
    expiry: int
    signing: SigningMode = SigningMode.RING
    leader: int | None = 0
    """Index of the leader in ``nodes`` (leader and fast signing); ``None`` rotates it."""

    def __post_init__(self) -> None:
        for name in ("parties", "sensors", "nodes"):
            object.__setattr__(self, name, tuple(checksum_address(a) for a in getattr(self, name)))
        object.__setattr__(self, "qos", QoS(self.qos))
        object.__setattr__(self, "signing", SigningMode(self.signing))
        object.__setattr__(self, "start_points", tuple(self.start_points))
        object.__setattr__(self, "node_parties", tuple(self.node_parties))
        object.__setattr__(
            self, "reaction", replace(self.reaction, kind=ReactionKind(self.reaction.kind))
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
        if self.leader is not None and not 0 <= self.leader < len(self.nodes):
            raise InvalidInput(f"leader {self.leader} is not a node index (None rotates it)")
        r = self.reaction
        if r.kind >= ReactionKind.PAY_FIXED and (
            not (0 <= r.payer < len(self.parties) and 0 <= r.payee < len(self.parties))
            or r.payer == r.payee
            or r.amount <= 0
        ):
            raise InvalidInput(
                "a payment reaction needs distinct payer/payee parties and amount > 0"
            )

    def leader_for(self, t: int) -> str:
        """The leader of round ``t``: ``nodes[leader]``, or ``nodes[t % n]`` when rotating."""
        index = t % len(self.nodes) if self.leader is None else self.leader
        return self.nodes[index]

    def submitter_for(self, t: int) -> str:
        """The one node that sends round ``t``'s update transaction.

        Ring signing rotates it (``nodes[t % n]``); leader signing uses the leader. In the
        fast protocol the update of ``t`` is sent by the leader of ``t + 1``, who collects
        its signatures inside round ``t + 1``.
        """
        if self.signing is SigningMode.RING:
            return self.nodes[t % len(self.nodes)]
        if self.signing is SigningMode.FAST:
            return self.leader_for(t + 1)
        return self.leader_for(t)

    def next_in_ring(self, node: str) -> str:
        """The node after ``node`` in ring order (Fig. 2A)."""
        return self.nodes[(self.nodes.index(node) + 1) % len(self.nodes)]

    def as_abi(self) -> tuple[Any, ...]:
        """The ``Terms`` tuple as the contracts take it."""
        r = self.reaction
        return (
            list(self.parties), list(self.sensors), list(self.start_points), self.window_size,
            self.sliding_factor, self.function_name, self.function_hash, list(self.nodes),
            list(self.node_parties), int(self.qos), self.reward, int(r.kind), r.payer, r.payee,
            r.amount, self.expiry, int(self.signing), self._leader_code,
        )  # fmt: skip

    @property
    def _leader_code(self) -> int:
        return LEADER_ROTATING if self.leader is None else self.leader

    @classmethod
    def from_abi(cls, raw: Sequence[Any]) -> AgreementTerms:
        """Inverse of :meth:`as_abi` (what ``terms()`` returns)."""
        return cls(
            parties=tuple(raw[0]), sensors=tuple(raw[1]), start_points=tuple(raw[2]),
            window_size=raw[3], sliding_factor=raw[4], function_name=raw[5],
            function_hash=bytes(raw[6]), nodes=tuple(raw[7]), node_parties=tuple(raw[8]),
            qos=QoS(raw[9]), reward=raw[10],
            reaction=Reaction(ReactionKind(raw[11]), raw[12], raw[13], raw[14]), expiry=raw[15],
            signing=SigningMode(raw[16]), leader=None if raw[17] == LEADER_ROTATING else raw[17],
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
            int(self.signing), self._leader_code,
        ]  # fmt: skip
        types = ["bytes32"] * 4 + ["uint64", "uint64", "bytes32", "bytes32", "bytes32", "bytes32"]
        types += ["uint8", "uint256", "uint8", "uint8", "uint8", "uint256", "uint64"]
        types += ["uint8", "uint8"]
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
            "expiry": self.expiry, "signing": int(self.signing), "leader": self._leader_code,
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
                "name": DOMAIN_NAME,
                "version": DOMAIN_VERSION,
                "chainId": chain_id,
                "verifyingContract": checksum_address(factory),
            },
            "message": message,
        }
