"""What an intermediate node needs to know about an agreement ``a`` (paper 002, section 3).

The paper's contract is ``a = (U_a, S_a, Q_0, f_a, I_a, r_a) : U_a``. The off-chain
protocol needs: the contract address (the id ``a``), the chain id (for EIP-712
domains), the intermediate nodes ``I_a`` flattened into one ordered tuple (the ring
order of Fig. 2A), the sensors with ``Q_0``, sliding factor and window size, the name
and source hash of ``f_a``, the quality of service, and how proofs are collected.
Users and reactions ``r_a`` live on-chain only.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from pervasive.crypto import checksum_address, domain_separator
from pervasive.errors import InvalidInput
from pervasive.offchain.declaration import SensorDeclaration
from pervasive.offchain.window import WindowSpec

__all__ = [
    "AGREEMENT_DOMAIN_NAME",
    "AGREEMENT_DOMAIN_VERSION",
    "AgreementSpec",
    "QoS",
    "SigningMode",
]

AGREEMENT_DOMAIN_NAME = "DIVERSITY"
AGREEMENT_DOMAIN_VERSION = "1"


class QoS(enum.IntEnum):
    """The three qualities of service of section 2 (the value is the on-chain ``uint8``)."""

    NO_PROOF = 0
    """Window data is dropped once the nodes agree; kept if the window is disputed."""
    OFFCHAIN_PROOF = 1
    """Every window is kept in the node's store and served on request."""
    ONCHAIN_PROOF = 2
    """Window data goes on-chain in calldata with the (non-null) result or the dispute."""


class SigningMode(enum.StrEnum):
    """How every node's signature on every proof of computation is collected."""

    RING = "ring"
    """Fig. 2A: each proof travels the ring, returns to its author, who broadcasts it."""
    LEADER = "leader"
    """A leader gathers all proofs, collects everyone's signatures, broadcasts the result."""
    FAST = "fast"
    """Fig. 2B: as LEADER, and the leader piggybacks the compact ``P_{t-1}`` on round ``t``."""


@dataclass(frozen=True)
class AgreementSpec:
    """The off-chain view of agreement ``a``.

    Example::

        AgreementSpec(address=contract, chain_id=31337, nodes=(n1.address, n2.address),
                      sensors=(lock_decl,), window=WindowSpec((lock_decl.address,), (0,), 10, 10),
                      function_name="rental_time", function_hash=fn.source_hash)
    """

    address: str
    chain_id: int
    nodes: tuple[str, ...]
    sensors: tuple[SensorDeclaration, ...]
    window: WindowSpec
    function_name: str
    function_hash: bytes
    qos: QoS = QoS.OFFCHAIN_PROOF
    mode: SigningMode = SigningMode.RING
    static_leader: int | None = 0
    """Index of the leader in ``nodes``; ``None`` rotates the leader: ``nodes[t % n]``."""
    parties: tuple[str, ...] = ()
    """The parties ``U_a`` (they may ask the nodes for stored windows)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "address", checksum_address(self.address))
        object.__setattr__(self, "nodes", tuple(checksum_address(n) for n in self.nodes))
        object.__setattr__(self, "parties", tuple(checksum_address(p) for p in self.parties))
        if len(self.nodes) < 2 or len(set(self.nodes)) != len(self.nodes):
            raise InvalidInput("an agreement needs at least two distinct intermediate nodes")
        if tuple(d.address for d in self.sensors) != self.window.sensors:
            raise InvalidInput("the window spec must list the declared sensors in the same order")
        if len(self.function_hash) != 32:
            raise InvalidInput("function_hash is the 32-byte keccak256 of the function's source")
        if self.static_leader is not None and not 0 <= self.static_leader < len(self.nodes):
            raise InvalidInput(f"static_leader {self.static_leader} is not a node index")

    @property
    def domain_separator(self) -> bytes:
        """EIP-712 domain ``("DIVERSITY", "1", chain_id, address)`` of every node signature."""
        return domain_separator(
            AGREEMENT_DOMAIN_NAME, AGREEMENT_DOMAIN_VERSION, self.chain_id, self.address
        )

    def leader_for(self, t: int) -> str:
        """The leader of round ``t`` (static, or ``nodes[t % n]`` when rotating)."""
        index = t % len(self.nodes) if self.static_leader is None else self.static_leader
        return self.nodes[index]

    def submitter_for(self, t: int) -> str:
        """The one node that sends round ``t``'s update transaction.

        Ring mode rotates it (``nodes[t % n]``); leader modes use the leader. In the
        fast protocol the update of ``t`` is sent by the leader of ``t + 1``, who
        collects its compact signatures.
        """
        if self.mode is SigningMode.RING:
            return self.nodes[t % len(self.nodes)]
        if self.mode is SigningMode.FAST:
            return self.leader_for(t + 1)
        return self.leader_for(t)

    def next_in_ring(self, node: str) -> str:
        """The node after ``node`` in ring order."""
        return self.nodes[(self.nodes.index(node) + 1) % len(self.nodes)]
