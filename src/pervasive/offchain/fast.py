"""The fast protocol's compact update ``P_{t-1}`` (paper 002, section 3, Fig. 2B).

"A leader node ``i`` reaches its proof of computation message ``p_{t,i}`` with a message
``P_{t-1} = f(w[t-1])`` that contains the computation agreed in the previous run
``t-1``. This is sent by the leader node and signed by all the nodes. When the leader
gets all the signatures, the on-chain SC is updated."

The leader of round ``t`` (static or rotating) owns the compact update of ``t-1``:

- when window ``t-1`` is agreed and has a non-null result, it signs the
  :class:`CompactUpdate` and waits to piggyback it on its ``LEADER_BUNDLE`` of round ``t``;
  if that bundle already left, or no round ``t`` starts within the node's
  ``compact_wait``, it sends the compact update alone (a bundle without proofs);
- every other node signs it only if it equals its own agreed result and window hash
  (otherwise a :attr:`DisputeKind.COMPACT_MISMATCH` dispute), answering inside its
  ``SIGNATURES`` for round ``t`` (no extra message), or alone once it agrees on ``t-1``;
- with every signature the leader emits exactly one :class:`SubmitUpdate` for ``t-1``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pervasive.crypto import Signature, keccak256, recover_hash, sign_typed_data
from pervasive.errors import InvalidInput, InvalidSignature
from pervasive.offchain.journal import AGREED, JournalEntry
from pervasive.offchain.messages import (
    CompactUpdate,
    MessageKind,
    ProtocolMessage,
    decode_proofs_body,
    encode_proofs_body,
    encode_signatures_body,
)
from pervasive.offchain.outcomes import (
    Action,
    Agreed,
    CompactUpdateCall,
    Dispute,
    DisputeEvidence,
    DisputeKind,
    SubmitUpdate,
)

if TYPE_CHECKING:
    from pervasive.offchain.protocol import IntermediateNode

__all__ = ["CompactCollector"]


@dataclass
class _Pending:
    update: CompactUpdate
    signatures: dict[str, Signature]
    window_data: bytes
    created: float | None
    sent: bool = False
    deadline: float = 0.0
    retries: int = 0


@dataclass
class _Deferred:
    leader: str
    update: CompactUpdate


@dataclass
class CompactCollector:
    """Compact-update bookkeeping of one node in a fast-protocol agreement."""

    node: IntermediateNode
    pending: dict[int, _Pending] = field(default_factory=dict)
    deferred: dict[int, _Deferred] = field(default_factory=dict)
    contested: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        spec, me = self.node.agreement, self.node.address
        for entry in self.node.journal.unsubmitted_agreed():
            if spec.leader_for(entry.t + 1) == me and entry.result is not None:
                update = CompactUpdate(
                    spec.address,
                    entry.t,
                    entry.result,
                    entry.window_hash,
                    entry.proofs_hash,
                    entry.data_hash,
                )
                # the window data (on-chain QoS) is the adapter's to add from its store
                self.pending[entry.t] = _Pending(
                    update, {me: self._sign(update)}, b"", created=None
                )

    def _sign(self, update: CompactUpdate) -> Signature:
        return sign_typed_data(
            self.node.key, update.typed_hash(self.node.agreement.domain_separator)
        )

    # ------------------------------------------------------------ leader side

    def on_agreed(self, agreed: Agreed, window_data: bytes, now: float) -> list[Action]:
        """Window ``agreed.t`` closed with agreement at this node.

        ``window_data`` is the packed ``w[t]`` under on-chain proof of storage, else ``b""``.
        """
        actions = self._answer_deferred(agreed.t)
        spec, me, u = self.node.agreement, self.node.address, agreed.t
        if agreed.result is None or spec.leader_for(u + 1) != me:
            return actions
        entry = self.node.journal.load(u)
        if entry is not None and entry.submitted:
            return actions
        update = CompactUpdate(
            spec.address,
            u,
            agreed.result,
            agreed.window_hash,
            agreed.proofs_hash,
            keccak256(window_data) if window_data else bytes(32),
        )
        pending = _Pending(update, {me: self._sign(update)}, window_data, created=now)
        self.pending[u] = pending
        if self.node.bundle_sent(u + 1):
            actions += self._send_alone(pending, now)
        return actions

    def piggyback(
        self, t: int, now: float
    ) -> tuple[CompactUpdate | None, dict[str, Signature] | None]:
        """The compact ``P_{t-1}`` (and the leader's signature) to ride on round ``t``'s bundle."""
        pending = self.pending.get(t - 1)
        if pending is None or pending.sent:
            return None, None
        pending.sent, pending.deadline = True, now + self.node.timeout
        me = self.node.address
        return pending.update, {me: pending.signatures[me]}

    def on_signature(self, sender: str, u: int, signature: Signature) -> list[Action]:
        """A node's signature on the compact update of window ``u``."""
        pending = self.pending.get(u)
        if pending is None:
            return []
        digest = pending.update.typed_hash(self.node.agreement.domain_separator).digest
        if recover_hash(digest, signature) != sender:
            raise InvalidSignature(f"signature on P_{u} is not by {sender}")
        pending.signatures[sender] = signature
        nodes = self.node.agreement.nodes
        if not all(n in pending.signatures for n in nodes):
            return []
        del self.pending[u]
        if not self.node.journal.mark_submitted(u):
            return []
        ordered = tuple(pending.signatures[n] for n in nodes)
        return [
            SubmitUpdate(CompactUpdateCall(pending.update, nodes, ordered, pending.window_data))
        ]

    def _send_alone(self, pending: _Pending, now: float) -> list[Action]:
        pending.sent, pending.deadline = True, now + self.node.timeout
        me = self.node.address
        body = encode_proofs_body((), pending.update, {me: pending.signatures[me]})
        others = tuple(
            n for n in self.node.agreement.nodes if n != me and n not in pending.signatures
        )
        return [
            self.node.send_message(pending.update.window, others, MessageKind.LEADER_BUNDLE, body)
        ]

    def tick(self, now: float) -> list[Action]:
        """Send compact updates that found no bundle to ride on; retry, then give up."""
        actions: list[Action] = []
        for u, pending in list(self.pending.items()):
            if not pending.sent:
                if pending.created is None or now - pending.created >= self.node.compact_wait:
                    actions += self._send_alone(pending, now)
            elif now >= pending.deadline:
                if pending.retries < self.node.max_retries:
                    pending.retries += 1
                    self.node.stats.retries += 1
                    actions += self._send_alone(pending, now)
                else:
                    del self.pending[u]
                    missing = [n for n in self.node.agreement.nodes if n not in pending.signatures]
                    evidence = DisputeEvidence(
                        f"no signature on P_{u} from {', '.join(missing)}",
                        accused=missing[0] if len(missing) == 1 else None,
                    )
                    actions.append(Dispute(u, DisputeKind.TIMEOUT, evidence))
        return actions

    # -------------------------------------------------------- follower side

    def review(self, message: ProtocolMessage) -> tuple[list[Action], tuple[int, Signature] | None]:
        """Check the compact update in a leader's bundle; return our signature if it is right."""
        spec = self.node.agreement
        _, update, signatures = decode_proofs_body(message.body, spec.address, message.window)
        if update is None:
            return [], None
        u = update.window
        if message.sender != spec.leader_for(u + 1):
            raise InvalidInput(f"{message.sender} is not the leader entitled to send P_{u}")
        leader_signature = signatures.get(message.sender)
        digest = update.typed_hash(spec.domain_separator).digest
        if leader_signature is None or recover_hash(digest, leader_signature) != message.sender:
            raise InvalidSignature(f"P_{u} is not signed by its leader {message.sender}")
        entry = self.node.journal.load(u)
        if entry is None or entry.status != AGREED:
            if entry is None or entry.status == "open":
                self.deferred[u] = _Deferred(message.sender, update)
            return [], None
        if not _matches(entry, update):
            if u in self.contested:
                return [], None
            self.contested.add(u)
            evidence = DisputeEvidence(
                f"leader {message.sender} proposed P_{u} different from the agreed result",
                accused=message.sender,
                notice=message,
            )
            return [Dispute(u, DisputeKind.COMPACT_MISMATCH, evidence)], None
        return [], (u, self._sign(update))

    def on_standalone(self, message: ProtocolMessage) -> list[Action]:
        """A bundle carrying only a compact update: answer it alone."""
        actions, answer = self.review(message)
        if answer is not None:
            body = encode_signatures_body({}, answer)
            actions.append(
                self.node.send_message(answer[0], (message.sender,), MessageKind.SIGNATURES, body)
            )
        return actions

    def _answer_deferred(self, u: int) -> list[Action]:
        deferred = self.deferred.pop(u, None)
        if deferred is None:
            return []
        entry = self.node.journal.load(u)
        if entry is None:
            return []
        if not _matches(entry, deferred.update):
            self.contested.add(u)
            evidence = DisputeEvidence(
                f"leader {deferred.leader} proposed P_{u} different from the agreed result",
                accused=deferred.leader,
            )
            return [Dispute(u, DisputeKind.COMPACT_MISMATCH, evidence)]
        body = encode_signatures_body({}, (u, self._sign(deferred.update)))
        return [self.node.send_message(u, (deferred.leader,), MessageKind.SIGNATURES, body)]


def _matches(entry: JournalEntry, update: CompactUpdate) -> bool:
    """Whether the leader's ``P_u`` is exactly what this node agreed on (and journalled)."""
    return (
        entry.result == update.result
        and entry.window_hash == update.window_hash
        and entry.proofs_hash == update.proofs_hash
        and entry.data_hash == update.data_hash
    )
