"""Phases 1 and 2 of a window: proof of computation, then agreement checking (paper 002, §3).

For window ``t`` each node ``i``:

1. **proof of computation**: computes ``f(w_i[t])``, draws a fresh 32-byte secret
   ``S_{t,i}`` (both journalled before anything is sent, so a restart reuses them),
   builds ``p_{t,i} = H(f || S || ID_i) || t || a || H(w_i[t])`` and collects every
   node's signature on every proof, around the ring (Fig. 2A, ``SigningMode.RING``) or
   through the round's leader (``LEADER`` and ``FAST``); a proof whose window hash
   differs from its own opens a window-hash dispute, two different proofs by one node
   an invalid-proof dispute;
2. **agreement checking**: only once it holds every fully signed proof (property P2)
   the node broadcasts ``c_{t,i} = [f || S] : i`` and checks each reveal against its
   author's commitment (bad reveal) and its own result (result mismatch); when every
   reveal matches, the window is agreed (property P1) and journalled with the update's
   ``proofsHash`` and ``dataHash``.

:class:`CommitReveal` works on :class:`~pervasive.offchain.rounds.Round` objects with
plain inputs (typed bodies, the sender, ``now``) and returns actions; the node protocol
(``node_protocol.py``) routes messages to it and runs phase 3 (the update) after it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from pervasive.crypto import PrivateKey, Signature, keccak256, recover_hash, sign_typed_data
from pervasive.domain import QoS, SigningMode, Update
from pervasive.errors import InvalidInput, InvalidSignature
from pervasive.offchain.agreement import AgreementSpec
from pervasive.offchain.bodies import (
    DisputeNotice,
    MessageKind,
    ProofsBody,
    RevealBody,
    SignaturesBody,
)
from pervasive.offchain.functions import OffchainFunction
from pervasive.offchain.journal import JournalEntry, RoundJournal, RoundStatus
from pervasive.offchain.outcomes import Action, Agreed, Dispute, DisputeEvidence, DisputeKind
from pervasive.offchain.rounds import Phase, Round, RoundMessenger
from pervasive.offchain.signed import (
    ProofOfComputation,
    Reveal,
    SignedProof,
    SignedReveal,
    commitment,
)
from pervasive.offchain.window import WindowArray
from pervasive.offchain.window_data import pack_window

__all__ = ["CommitReveal", "Compact"]

Compact = tuple[Update | None, Mapping[str, Signature]]
"""The fast protocol's ``P_{t-1}`` and the leader's signature, riding on a bundle."""


class CommitReveal:
    """Proofs of computation and reveals of one node in one agreement."""

    def __init__(
        self,
        key: PrivateKey,
        agreement: AgreementSpec,
        function: OffchainFunction,
        journal: RoundJournal,
        messenger: RoundMessenger,
        *,
        timeout: float,
        secret_source: Callable[[int], bytes],
    ) -> None:
        self.key = key
        self.address = key.address
        self.agreement = agreement
        self.function = function
        self.journal = journal
        self.messenger = messenger
        self.timeout = timeout
        self._secret_source = secret_source
        self._domain = agreement.domain_separator
        self._others = tuple(n for n in agreement.nodes if n != self.address)

    # ------------------------------------------------------------- phase 1

    def begin(self, round_: Round, windows: WindowArray, now: float) -> list[Action]:
        """Commit to ``f(w_i[t])`` (or reuse the journalled commitment) and send the own proof."""
        entry = self.journal.load(windows.t)
        if entry is None:
            result = self.function(windows)
            fresh = JournalEntry(windows.t, self._secret_source(32), result, windows.hash)
            entry = self.journal.commit(fresh)
        round_.entry, round_.window = entry, windows
        own = self._own_proof(entry)
        signed = SignedProof(self.address, own, {self.address: self.sign_proof(own)})
        round_.proofs[self.address] = signed
        round_.phase = Phase.COMMITTING
        round_.deadline = now + self.timeout
        mode = self.agreement.mode
        body = ProofsBody((signed,)).encode()
        if mode is SigningMode.RING:
            nxt = self.agreement.next_in_ring(self.address)
            return list(self.messenger.send(round_, (nxt,), MessageKind.PROOF_RING, body))
        leader = self.agreement.leader_for(windows.t)
        if self.address != leader:
            return list(self.messenger.send(round_, (leader,), MessageKind.PROOF_TO_LEADER, body))
        return []

    def on_proofs(
        self, round_: Round, kind: MessageKind, sender: str, body: ProofsBody
    ) -> list[Action]:
        """Merge the proofs of a PROOF_* message; take the ring step it asks for."""
        actions: list[Action] = []
        for proof in body.proofs:
            actions += self._merge_proof(round_, proof)
            if round_.phase is Phase.DISPUTED:
                return actions
        if kind is MessageKind.PROOF_RING and len(body.proofs) == 1:
            actions += self._ring_step(round_, body.proofs[0].author)
        elif kind is MessageKind.PROOF_TO_LEADER and self.address != self.agreement.leader_for(
            round_.t
        ):
            raise InvalidInput(f"{sender} sent its proof to a node that is not the leader")
        return actions

    def sign_bundle(self, round_: Round, sender: str, body: ProofsBody) -> dict[str, Signature]:
        """This node's signature on every proof of the leader's bundle (already merged)."""
        if sender != self.agreement.leader_for(round_.t):
            raise InvalidInput(f"{sender} is not the leader of window {round_.t}")
        mine = {p.author: self.sign_proof(p.proof) for p in body.proofs}
        for author, signature in mine.items():
            round_.proofs[author] = round_.proofs[author].with_signature(self.address, signature)
        return mine

    def answer_bundle(
        self,
        round_: Round,
        leader: str,
        mine: Mapping[str, Signature],
        compact: tuple[int, Signature] | None,
    ) -> list[Action]:
        """Send the leader this node's signatures (and its signature on ``P_{t-1}``)."""
        body = SignaturesBody(mine, compact).encode()
        return list(self.messenger.send(round_, (leader,), MessageKind.SIGNATURES, body))

    def on_signatures(self, round_: Round, sender: str, body: SignaturesBody) -> list[Action]:
        """A node's signatures on the proofs this node (as leader) bundled."""
        for author, signature in body.signatures.items():
            proof = round_.proofs.get(author)
            if proof is None:
                raise InvalidInput(f"signature on an unknown proof by {author}")
            if recover_hash(proof.proof.typed_hash(self._domain).digest, signature) != sender:
                raise InvalidSignature(f"signature on proof of {author} is not by {sender}")
            round_.proofs[author] = proof.with_signature(sender, signature)
        return []

    def bundle_due(self, round_: Round) -> bool:
        """Whether this node leads the round and now holds every proof to bundle."""
        return (
            round_.phase is Phase.COMMITTING
            and self.agreement.mode is not SigningMode.RING
            and self.address == self.agreement.leader_for(round_.t)
            and not round_.bundle_sent
            and all(n in round_.proofs for n in self.agreement.nodes)
        )

    # ------------------------------------------------------------- phase 2

    def on_reveal(self, round_: Round, sender: str, body: RevealBody) -> list[Action]:
        """Keep a node's signed reveal (checked against its commitment in :meth:`progress`)."""
        if recover_hash(body.reveal.typed_hash(self._domain).digest, body.signature) != sender:
            raise InvalidSignature(f"reveal of window {round_.t} is not signed by {sender}")
        round_.reveals.setdefault(sender, SignedReveal(sender, body.reveal, body.signature))
        return []

    def progress(self, round_: Round, now: float, compact: Compact | None = None) -> list[Action]:
        """Move the round on as far as what it holds allows.

        ``compact`` rides on the leader's bundle when :meth:`bundle_due` (fast protocol).
        """
        actions: list[Action] = []
        nodes = self.agreement.nodes
        have_all = all(n in round_.proofs for n in nodes)
        all_complete = have_all and all(round_.proofs[n].complete(nodes) for n in nodes)
        if round_.phase is Phase.COMMITTING:
            actions += self._leader_step(round_, have_all, all_complete, compact)
            own = round_.proofs[self.address]
            if (
                self.agreement.mode is SigningMode.RING
                and own.complete(nodes)
                and not round_.complete_sent
            ):
                round_.complete_sent = True
                body = ProofsBody((own,)).encode()
                actions += self.messenger.send(
                    round_, self._others, MessageKind.PROOF_COMPLETE, body
                )
            if all_complete:
                actions += self._reveal(round_, now)
        if round_.phase is Phase.REVEALING:
            actions += self._check_reveals(round_)
        return actions

    def missing(self, round_: Round) -> list[str]:
        """The nodes this round still waits for."""
        if round_.phase is Phase.REVEALING:
            return [n for n in self.agreement.nodes if n not in round_.reveals]
        return [
            n
            for n in self._others
            if n not in round_.proofs or any(n not in p.signatures for p in round_.proofs.values())
        ]

    def dispute(
        self, round_: Round, kind: DisputeKind, evidence: DisputeEvidence, *, notify: bool = True
    ) -> list[Action]:
        """Close the round in dispute (journalled); unless learned from a peer, tell the peers."""
        round_.phase = Phase.DISPUTED
        self.journal.close(round_.t, RoundStatus.DISPUTED)
        actions: list[Action] = [Dispute(round_.t, kind, evidence)]
        if notify:
            body = DisputeNotice(int(kind), evidence.accused).encode()
            actions += self.messenger.send(round_, self._others, MessageKind.DISPUTE_NOTICE, body)
        return actions

    def sign_proof(self, proof: ProofOfComputation) -> Signature:
        """This node's signature on a proof of computation."""
        return sign_typed_data(self.key, proof.typed_hash(self._domain))

    # ------------------------------------------------------------- helpers

    def _own_proof(self, entry: JournalEntry) -> ProofOfComputation:
        commit = commitment(entry.result, entry.secret, self.address)
        return ProofOfComputation(commit, entry.t, self.agreement.address, entry.window_hash)

    def _merge_proof(self, round_: Round, incoming: SignedProof) -> list[Action]:
        assert round_.entry is not None
        known = round_.proofs.get(incoming.author)
        checked = known.signatures if known is not None and known.proof == incoming.proof else None
        incoming.verify(self._domain, self.agreement.nodes, checked)
        if known is not None and known.proof != incoming.proof:
            evidence = DisputeEvidence(
                f"{incoming.author} signed two different proofs for window {round_.t}",
                accused=incoming.author,
                proofs=(known, incoming),
                window=round_.window,
            )
            return self.dispute(round_, DisputeKind.INVALID_PROOF, evidence)
        if incoming.proof.window_hash != round_.entry.window_hash:
            evidence = DisputeEvidence(
                f"H(w[{round_.t}]) of {incoming.author} is 0x{incoming.proof.window_hash.hex()}, "
                f"ours is 0x{round_.entry.window_hash.hex()}",
                proofs=(incoming, round_.proofs[self.address]),
                window=round_.window,
            )
            return self.dispute(round_, DisputeKind.WINDOW_HASH_MISMATCH, evidence)
        merged = dict(known.signatures) if known else {}
        merged.update(incoming.signatures)
        round_.proofs[incoming.author] = SignedProof(incoming.author, incoming.proof, merged)
        return []

    def _ring_step(self, round_: Round, author: str) -> list[Action]:
        proof = round_.proofs[author]
        if author == self.address:
            return []
        proof = proof.with_signature(self.address, self.sign_proof(proof.proof))
        round_.proofs[author] = proof
        nxt = self.agreement.next_in_ring(self.address)
        target = author if proof.complete(self.agreement.nodes) else nxt
        body = ProofsBody((proof,)).encode()
        return list(self.messenger.send(round_, (target,), MessageKind.PROOF_RING, body))

    def _leader_step(
        self, round_: Round, have_all: bool, all_complete: bool, compact: Compact | None
    ) -> list[Action]:
        if self.agreement.mode is SigningMode.RING or self.address != self.agreement.leader_for(
            round_.t
        ):
            return []
        nodes = self.agreement.nodes
        ordered = tuple(round_.proofs[n] for n in nodes) if have_all else ()
        if have_all and not round_.bundle_sent:
            round_.bundle_sent = True
            for proof in ordered:
                round_.proofs[proof.author] = proof.with_signature(
                    self.address, self.sign_proof(proof.proof)
                )
            ordered = tuple(round_.proofs[n] for n in nodes)
            update, signatures = compact if compact is not None else (None, {})
            body = ProofsBody(ordered, update, signatures).encode()
            return list(self.messenger.send(round_, self._others, MessageKind.LEADER_BUNDLE, body))
        if all_complete and not round_.complete_sent:
            round_.complete_sent = True
            body = ProofsBody(ordered).encode()
            return list(self.messenger.send(round_, self._others, MessageKind.PROOF_COMPLETE, body))
        return []

    def _reveal(self, round_: Round, now: float) -> list[Action]:
        """Phase 2 starts only here, after holding every fully signed proof (property P2)."""
        assert round_.entry is not None
        reveal = Reveal(self.agreement.address, round_.t, round_.entry.result, round_.entry.secret)
        signature = sign_typed_data(self.key, reveal.typed_hash(self._domain))
        round_.reveals[self.address] = SignedReveal(self.address, reveal, signature)
        round_.phase = Phase.REVEALING
        round_.deadline = now + self.timeout
        round_.retries = 0
        body = RevealBody(reveal, signature).encode()
        return list(self.messenger.send(round_, self._others, MessageKind.REVEAL, body))

    def _check_reveals(self, round_: Round) -> list[Action]:
        assert round_.entry is not None
        own = round_.entry.result
        for author, signed in round_.reveals.items():
            proof = round_.proofs[author]
            if not signed.reveal.matches(proof.proof, author):
                evidence = DisputeEvidence(
                    f"the reveal of {author} does not open its commitment",
                    accused=author,
                    proofs=(proof,),
                    reveals=(signed,),
                    window=round_.window,
                )
                return self.dispute(round_, DisputeKind.BAD_REVEAL, evidence)
            if signed.reveal.result != own:
                evidence = DisputeEvidence(
                    f"f(w[{round_.t}]) of {author} differs from ours",
                    proofs=(proof, round_.proofs[self.address]),
                    reveals=(signed, round_.reveals[self.address]),
                    window=round_.window,
                )
                return self.dispute(round_, DisputeKind.RESULT_MISMATCH, evidence)
        if len(round_.reveals) < len(self.agreement.nodes):
            return []
        return [self._agree(round_)]

    def _agree(self, round_: Round) -> Agreed:
        assert round_.entry is not None
        nodes = self.agreement.nodes
        round_.phase = Phase.AGREED
        proofs = tuple(round_.proofs[n] for n in nodes)
        reveals = tuple(round_.reveals[n] for n in nodes)
        agreed = Agreed(round_.t, round_.entry.result, round_.entry.window_hash, proofs, reveals)
        if self.agreement.qos is QoS.ONCHAIN_PROOF and round_.window is not None:
            round_.packed = pack_window(round_.window, self.agreement.sensors)
        # the update is signed later (phase 3, or round t+1 in the fast protocol, or after
        # a restart): keep what it commits to with the agreement, in the same journal write
        data_hash = keccak256(round_.packed) if round_.packed else bytes(32)
        self.journal.close(
            round_.t, RoundStatus.AGREED, proofs_hash=agreed.proofs_hash, data_hash=data_hash
        )
        round_.agreed = agreed
        return agreed
