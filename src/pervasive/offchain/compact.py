"""The fast protocol's compact update ``P_{t-1}`` (paper 002, section 3, Fig. 2B).

"A leader node ``i`` reaches its proof of computation message ``p_{t,i}`` with a message
``P_{t-1} = f(w[t-1])`` that contains the computation agreed in the previous run
``t-1``. This is sent by the leader node and signed by all the nodes. When the leader
gets all the signatures, the on-chain SC is updated."

``P_{t-1}`` is the contract's :class:`~pervasive.domain.Update` of ``t-1``. The leader of
round ``t`` (static or rotating) owns it:

- when window ``t-1`` is agreed with a non-null result, it signs the update and waits
  to piggyback it on its ``LEADER_BUNDLE`` of round ``t``; if that bundle already left,
  or no round ``t`` starts within ``compact_wait``, it sends the update alone (a bundle
  without proofs);
- every other node signs it only if it equals its own journalled agreement (otherwise
  a :attr:`~pervasive.offchain.outcomes.DisputeKind.COMPACT_MISMATCH` dispute),
  answering inside its ``SIGNATURES`` of round ``t`` (no extra message), or alone once
  it agrees on ``t-1``;
- with every signature the leader returns exactly one :class:`~pervasive.committee.Submit`.

:class:`CompactPhase` takes plain values (the agreement, the journal, a messenger,
timings) and returns actions; it knows nothing of the node that drives it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pervasive.committee import Envelope, Submit
from pervasive.crypto import PrivateKey, Signature, keccak256, recover_hash
from pervasive.domain import SignedUpdate, Update
from pervasive.errors import InvalidInput, InvalidSignature
from pervasive.offchain.agreement import AgreementSpec
from pervasive.offchain.bodies import MessageKind, ProofsBody, SignaturesBody
from pervasive.offchain.journal import JournalEntry, RoundJournal, RoundStatus
from pervasive.offchain.outcomes import Action, Agreed, Dispute, DisputeEvidence, DisputeKind
from pervasive.offchain.rounds import MessageStats, RoundMessenger

__all__ = ["CompactPhase"]


@dataclass
class _Pending:
    update: Update
    signatures: dict[str, Signature]
    window_data: bytes
    created: float | None
    sent: bool = False
    deadline: float = 0.0
    retries: int = 0


@dataclass
class _Deferred:
    leader: str
    update: Update


class CompactPhase:
    """Compact-update bookkeeping of one node in a fast-protocol agreement."""

    def __init__(
        self,
        key: PrivateKey,
        agreement: AgreementSpec,
        journal: RoundJournal,
        messenger: RoundMessenger,
        stats: MessageStats,
        *,
        timeout: float,
        max_retries: int,
        compact_wait: float,
        stored_window_data: Callable[[int], bytes] | None = None,
    ) -> None:
        """``stored_window_data(t)`` gives the packed ``w[t]`` kept under on-chain proof of
        storage, for an update this leader still owes after a restart (empty if not held)."""
        self.key = key
        self.address = key.address
        self.agreement = agreement
        self.journal = journal
        self.messenger = messenger
        self.stats = stats
        self.timeout = timeout
        self.max_retries = max_retries
        self.compact_wait = compact_wait
        self.pending: dict[int, _Pending] = {}
        self.deferred: dict[int, _Deferred] = {}
        self.contested: set[int] = set()
        for entry in journal.unsubmitted_agreed():
            if agreement.leader_for(entry.t + 1) == self.address and entry.result is not None:
                update = Update(
                    agreement.address,
                    entry.t,
                    entry.result,
                    entry.window_hash,
                    entry.proofs_hash,
                    entry.data_hash,
                )
                data = b""
                if entry.data_hash != bytes(32) and stored_window_data is not None:
                    data = stored_window_data(entry.t)
                if (keccak256(data) if data else bytes(32)) != entry.data_hash:
                    continue  # the window data is gone: this update cannot be sent
                self.pending[entry.t] = _Pending(
                    update, {self.address: self._sign(update)}, data, created=None
                )

    def _sign(self, update: Update) -> Signature:
        return update.sign(self.key, self.agreement.chain_id)

    # ------------------------------------------------------------ leader side

    def on_agreed(
        self, agreed: Agreed, window_data: bytes, now: float, *, bundle_sent: bool
    ) -> list[Action]:
        """Window ``agreed.t`` closed with agreement at this node.

        ``window_data`` is the packed ``w[t]`` under on-chain proof of storage, else
        ``b""``; ``bundle_sent`` whether this node already sent round ``t+1``'s bundle.
        """
        actions = self._answer_deferred(agreed.t)
        u = agreed.t
        if agreed.result is None or self.agreement.leader_for(u + 1) != self.address:
            return actions
        entry = self.journal.load(u)
        if entry is not None and entry.submitted:
            return actions
        update = Update(
            self.agreement.address,
            u,
            agreed.result,
            agreed.window_hash,
            agreed.proofs_hash,
            keccak256(window_data) if window_data else bytes(32),
        )
        pending = _Pending(update, {self.address: self._sign(update)}, window_data, created=now)
        self.pending[u] = pending
        if bundle_sent:
            actions += self._send_alone(pending, now)
        return actions

    def piggyback(self, t: int, now: float) -> tuple[Update | None, Mapping[str, Signature]]:
        """The compact ``P_{t-1}`` (and the leader's signature) to ride on round ``t``'s bundle."""
        pending = self.pending.get(t - 1)
        if pending is None or pending.sent:
            return None, {}
        pending.sent, pending.deadline = True, now + self.timeout
        return pending.update, {self.address: pending.signatures[self.address]}

    def on_signature(self, sender: str, u: int, signature: Signature) -> list[Action]:
        """A node's signature on the compact update of window ``u``."""
        pending = self.pending.get(u)
        if pending is None:
            return []
        digest = pending.update.typed_hash(self.agreement.chain_id).digest
        if recover_hash(digest, signature) != sender:
            raise InvalidSignature(f"signature on P_{u} is not by {sender}")
        pending.signatures[sender] = signature
        nodes = self.agreement.nodes
        if not all(n in pending.signatures for n in nodes):
            return []
        del self.pending[u]
        if not self.journal.mark_submitted(u):
            return []
        ordered = tuple(pending.signatures[n] for n in nodes)
        return [Submit(u, SignedUpdate(pending.update, ordered, pending.window_data))]

    def _send_alone(self, pending: _Pending, now: float) -> list[Action]:
        pending.sent, pending.deadline = True, now + self.timeout
        me = self.address
        body = ProofsBody((), pending.update, {me: pending.signatures[me]}).encode()
        others = tuple(n for n in self.agreement.nodes if n != me and n not in pending.signatures)
        return [self.messenger.emit(pending.update.window, others, MessageKind.LEADER_BUNDLE, body)]

    def tick(self, now: float) -> list[Action]:
        """Send compact updates that found no bundle to ride on; retry, then give up."""
        actions: list[Action] = []
        for u, pending in list(self.pending.items()):
            if not pending.sent:
                if pending.created is None or now - pending.created >= self.compact_wait:
                    actions += self._send_alone(pending, now)
            elif now >= pending.deadline:
                if pending.retries < self.max_retries:
                    pending.retries += 1
                    self.stats.retries += 1
                    actions += self._send_alone(pending, now)
                else:
                    del self.pending[u]
                    missing = [n for n in self.agreement.nodes if n not in pending.signatures]
                    evidence = DisputeEvidence(
                        f"no signature on P_{u} from {', '.join(missing)}",
                        accused=missing[0] if len(missing) == 1 else None,
                    )
                    actions.append(Dispute(u, DisputeKind.TIMEOUT, evidence))
        return actions

    # -------------------------------------------------------- follower side

    def review(
        self, envelope: Envelope, body: ProofsBody
    ) -> tuple[list[Action], tuple[int, Signature] | None]:
        """Check the compact update in a leader's bundle; return our signature if it is right."""
        update = body.compact
        if update is None:
            return [], None
        u, leader = update.window, envelope.sender
        if leader != self.agreement.leader_for(u + 1):
            raise InvalidInput(f"{leader} is not the leader entitled to send P_{u}")
        leader_signature = body.compact_signatures.get(leader)
        digest = update.typed_hash(self.agreement.chain_id).digest
        if leader_signature is None or recover_hash(digest, leader_signature) != leader:
            raise InvalidSignature(f"P_{u} is not signed by its leader {leader}")
        entry = self.journal.load(u)
        if entry is None or entry.status is not RoundStatus.AGREED:
            if entry is None or entry.status is RoundStatus.OPEN:
                self.deferred[u] = _Deferred(leader, update)
            return [], None
        if not _matches(entry, update):
            if u in self.contested:
                return [], None
            self.contested.add(u)
            evidence = DisputeEvidence(
                f"leader {leader} proposed P_{u} different from the agreed result",
                accused=leader,
                notice=envelope,
            )
            return [Dispute(u, DisputeKind.COMPACT_MISMATCH, evidence)], None
        return [], (u, self._sign(update))

    def on_standalone(self, envelope: Envelope, body: ProofsBody) -> list[Action]:
        """A bundle carrying only a compact update: answer it alone."""
        actions, answer = self.review(envelope, body)
        if answer is not None:
            reply = SignaturesBody({}, answer).encode()
            actions.append(
                self.messenger.emit(answer[0], (envelope.sender,), MessageKind.SIGNATURES, reply)
            )
        return actions

    def _answer_deferred(self, u: int) -> list[Action]:
        deferred = self.deferred.pop(u, None)
        if deferred is None:
            return []
        entry = self.journal.load(u)
        if entry is None:
            return []
        if not _matches(entry, deferred.update):
            self.contested.add(u)
            evidence = DisputeEvidence(
                f"leader {deferred.leader} proposed P_{u} different from the agreed result",
                accused=deferred.leader,
            )
            return [Dispute(u, DisputeKind.COMPACT_MISMATCH, evidence)]
        body = SignaturesBody({}, (u, self._sign(deferred.update))).encode()
        return [self.messenger.emit(u, (deferred.leader,), MessageKind.SIGNATURES, body)]


def _matches(entry: JournalEntry, update: Update) -> bool:
    """Whether the leader's ``P_u`` is exactly what this node agreed on (and journalled)."""
    return (
        entry.result == update.result
        and entry.window_hash == update.window_hash
        and entry.proofs_hash == update.proofs_hash
        and entry.data_hash == update.data_hash
    )
