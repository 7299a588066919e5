"""What an intermediate node needs to know about an agreement ``a`` (paper 002, section 3).

The paper's contract is ``a = (U_a, S_a, Q_0, f_a, I_a, r_a) : U_a``. Its terms are the
ones every party signed (:class:`~pervasive.domain.AgreementTerms`, read from the
chain); a node adds what the chain knows besides: the contract address (the id ``a``),
the chain id (for EIP-712 domains) and the sensors' declarations ``d_s`` from the
registry. Everything else (nodes ``I_a`` in ring order, window parameters, ``f_a``'s
name and hash, quality of service, signing mode and leader) is read from the terms,
so the nodes of one agreement cannot disagree on it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from pervasive.crypto import checksum_address
from pervasive.domain import AgreementTerms, QoS, SigningMode, agreement_domain
from pervasive.errors import InvalidInput
from pervasive.offchain.window import WindowSpec
from pervasive.sensing import SensorDeclaration

__all__ = ["AgreementSpec"]


@dataclass(frozen=True)
class AgreementSpec:
    """The off-chain view of agreement ``a``: its address and chain, its terms, its sensors.

    Example::

        AgreementSpec(address=contract, chain_id=31337, terms=terms, sensors=(lock_decl,))
    """

    address: str
    chain_id: int
    terms: AgreementTerms
    sensors: tuple[SensorDeclaration, ...]
    """The declarations of ``terms.sensors``, in the same order."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "address", checksum_address(self.address))
        object.__setattr__(self, "sensors", tuple(self.sensors))
        if tuple(d.address for d in self.sensors) != self.terms.sensors:
            raise InvalidInput("give the declarations of the agreement's sensors, in its order")

    @functools.cached_property
    def window(self) -> WindowSpec:
        """Sensors, ``Q_0``, sliding factor ``sl`` and window size ``z``."""
        t = self.terms
        return WindowSpec(t.sensors, t.start_points, t.sliding_factor, t.window_size)

    @property
    def nodes(self) -> tuple[str, ...]:
        """The intermediate nodes ``I_a``, in ring order."""
        return self.terms.nodes

    @property
    def parties(self) -> tuple[str, ...]:
        """The parties ``U_a`` (they may ask the nodes for stored windows)."""
        return self.terms.parties

    @property
    def function_name(self) -> str:
        """The name of ``f_a``."""
        return self.terms.function_name

    @property
    def function_hash(self) -> bytes:
        """``keccak256`` of ``f_a``'s source (the digest of its CID)."""
        return self.terms.function_hash

    @property
    def qos(self) -> QoS:
        """The quality of service of window storage."""
        return self.terms.qos

    @property
    def mode(self) -> SigningMode:
        """How the nodes collect their signatures (ring, leader or fast)."""
        return self.terms.signing

    @functools.cached_property
    def domain_separator(self) -> bytes:
        """EIP-712 domain ``("DIVERSITY", "1", chain_id, address)`` of every node signature."""
        return agreement_domain(self.chain_id, self.address)

    def leader_for(self, t: int) -> str:
        """The leader of round ``t`` (see :meth:`AgreementTerms.leader_for`)."""
        return self.terms.leader_for(t)

    def submitter_for(self, t: int) -> str:
        """The node that sends round ``t``'s update (see :meth:`AgreementTerms.submitter_for`)."""
        return self.terms.submitter_for(t)

    def next_in_ring(self, node: str) -> str:
        """The node after ``node`` in ring order."""
        return self.terms.next_in_ring(node)
