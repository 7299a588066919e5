"""The intermediate-node protocol as a sans-I/O state machine (paper 002, section 3, Fig. 2).

For each window ``t`` a node runs the paper's three phases:

1. **proof of computation**: compute ``f(w_i[t])``, draw a fresh 32-byte secret
   ``S_{t,i}``, build ``p_{t,i} = H(f || S || ID_i) || t || a || H(w_i[t])`` and collect
   every node's signature on every proof, either around the ring (Fig. 2A,
   :attr:`SigningMode.RING`) or through a leader (:attr:`SigningMode.LEADER`);
   a proof whose window hash differs from ours opens a window-hash dispute;
2. **agreement checking**: only once it holds every fully signed proof, the node
   broadcasts ``c_{t,i} = [f || S] : i`` and checks each reveal against its author's
   commitment (bad reveal) and against its own result (result mismatch);
3. **update**: on unanimity every node reports :class:`Agreed`, and exactly one node
   (:meth:`AgreementSpec.submitter_for`) emits :class:`SubmitUpdate` for a non-null result.

The fast protocol (Fig. 2B, :attr:`SigningMode.FAST`) is the leader protocol in which the
leader of round ``t`` piggybacks the compact ``P_{t-1}`` on its bundle; it is
implemented in :mod:`pervasive.offchain.fast`.

Inputs are :meth:`IntermediateNode.start_window`, :meth:`~IntermediateNode.receive` and
:meth:`~IntermediateNode.tick` (time is always an argument: a silent peer leads to
retries, then a :attr:`DisputeKind.TIMEOUT` dispute, never a hang). Outputs are lists
of :data:`Action`. Every inbound message must be signed by a node of the agreement;
a message seen before raises :class:`ReplayedMessage`.
"""

from __future__ import annotations

import collections
import enum
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from pervasive.crypto import PrivateKey, Signature, keccak256, recover_hash, sign_typed_data
from pervasive.errors import InvalidInput, InvalidSignature, ReplayedMessage
from pervasive.offchain.agreement import AgreementSpec, QoS, SigningMode
from pervasive.offchain.fast import CompactCollector
from pervasive.offchain.functions import FunctionMismatch, OffchainFunction
from pervasive.offchain.journal import (
    AGREED,
    DISPUTED,
    OPEN,
    JournalEntry,
    MemoryRoundJournal,
    RoundJournal,
)
from pervasive.offchain.messages import (
    MessageKind,
    ProofOfComputation,
    ProtocolMessage,
    Reveal,
    SignedProof,
    commitment,
    decode_dispute_body,
    decode_proofs_body,
    decode_protocol_message,
    decode_reveal_body,
    decode_signatures_body,
    encode_dispute_body,
    encode_proofs_body,
    encode_reveal_body,
    encode_signatures_body,
)
from pervasive.offchain.outcomes import (
    Action,
    Agreed,
    Dispute,
    DisputeEvidence,
    DisputeKind,
    FullUpdateCall,
    Send,
    SignedReveal,
    SubmitUpdate,
)
from pervasive.offchain.window import WindowArray
from pervasive.offchain.window_data import WindowData

__all__ = ["IntermediateNode", "MessageStats", "Phase"]

_RETAINED_WINDOWS = 256
"""How many past windows keep their replay sets and outboxes in memory."""

_RETRIED_KINDS = frozenset(
    {
        MessageKind.PROOF_RING,
        MessageKind.PROOF_TO_LEADER,
        MessageKind.PROOF_COMPLETE,
        MessageKind.REVEAL,
    }
)


class Phase(enum.Enum):
    """Where a node is in window ``t``."""

    WAITING = "waiting"
    """The node has not built ``w_i[t]`` yet; inbound messages are buffered."""
    COMMITTING = "committing"
    """Proof of computation: collecting every node's signature on every proof."""
    REVEALING = "revealing"
    """Agreement checking: own reveal sent, waiting for everyone else's."""
    AGREED = "agreed"
    DISPUTED = "disputed"


@dataclass
class MessageStats:
    """Counters for the benchmark and for operators."""

    sent: collections.Counter[str] = field(default_factory=collections.Counter)
    """Messages sent, by kind (a broadcast counts once per recipient: point-to-point)."""
    received: int = 0
    rejected: collections.Counter[str] = field(default_factory=collections.Counter)
    """Inbound messages refused: ``malformed``, ``signature``, ``replay``, ``late``."""
    retries: int = 0

    @property
    def deliveries(self) -> int:
        """Total point-to-point messages sent."""
        return sum(self.sent.values())


@dataclass
class _Round:
    t: int
    phase: Phase = Phase.WAITING
    entry: JournalEntry | None = None
    window: WindowArray | None = None
    proofs: dict[str, SignedProof] = field(default_factory=dict)
    reveals: dict[str, SignedReveal] = field(default_factory=dict)
    seen: set[bytes] = field(default_factory=set)
    buffered: list[ProtocolMessage] = field(default_factory=list)
    outbox: list[tuple[tuple[str, ...], MessageKind, bytes]] = field(default_factory=list)
    bundle_sent: bool = False
    complete_sent: bool = False
    answered: set[str] = field(default_factory=set)
    retries: int = 0
    deadline: float = 0.0


class IntermediateNode:
    """One intermediate node ``i`` of one agreement ``a``.

    Example::

        node = IntermediateNode(key, spec, registry.resolve(spec.function_name, spec.function_hash),
                                SQLiteRoundJournal(db, spec.address, key.address))
        actions = node.start_window(window_array, now=clock())
        actions += node.receive(payload, now=clock())
        actions += node.tick(now=clock())
    """

    def __init__(
        self,
        key: PrivateKey,
        agreement: AgreementSpec,
        function: OffchainFunction,
        journal: RoundJournal | None = None,
        *,
        timeout: float = 5.0,
        max_retries: int = 2,
        compact_wait: float | None = None,
        secret_source: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        if key.address not in agreement.nodes:
            raise InvalidInput(
                f"{key.address} is not an intermediate node of agreement {agreement.address}"
            )
        if function.source_hash != agreement.function_hash:
            raise FunctionMismatch(
                f"function {function.name!r} does not have the source hash the agreement pins"
            )
        self.key = key
        self.address = key.address
        self.agreement = agreement
        self.function = function
        self.journal: RoundJournal = journal if journal is not None else MemoryRoundJournal()
        self.timeout = timeout
        self.max_retries = max_retries
        self.compact_wait = timeout if compact_wait is None else compact_wait
        """Fast protocol: how long the leader holds ``P_{t-1}`` for round ``t``'s bundle."""
        self.stats = MessageStats()
        self._secret_source = secret_source
        self._domain = agreement.domain_separator
        self._others = tuple(n for n in agreement.nodes if n != self.address)
        self._rounds: dict[int, _Round] = {}
        self._agreed: dict[int, Agreed] = {}
        self._epoch = self.journal.next_epoch()
        self._counter = 0
        self.fast = CompactCollector(self) if agreement.mode is SigningMode.FAST else None

    # ------------------------------------------------------------------ inputs

    def start_window(self, windows: WindowArray, now: float) -> list[Action]:
        """Begin window ``t = windows.t`` with this node's local ``w_i[t]``.

        A window the journal shows as closed is ignored; one the node had already
        committed to before a crash reuses the stored secret and result.
        """
        round_ = self._round(windows.t)
        entry = self.journal.load(windows.t)
        if round_.phase is not Phase.WAITING or (entry is not None and entry.status != OPEN):
            return []
        if entry is None:
            result = self.function(windows)
            fresh = JournalEntry(windows.t, self._secret_source(32), result, windows.hash)
            entry = self.journal.commit(fresh)
        round_.entry, round_.window = entry, windows
        own = self._own_proof(entry)
        signed = SignedProof(self.address, own, {self.address: self._sign_proof(own)})
        round_.proofs[self.address] = signed
        round_.phase = Phase.COMMITTING
        round_.deadline = now + self.timeout
        actions: list[Action] = []
        mode = self.agreement.mode
        if mode is SigningMode.RING:
            nxt = self.agreement.next_in_ring(self.address)
            actions += self._send(
                round_, (nxt,), MessageKind.PROOF_RING, encode_proofs_body((signed,))
            )
        elif self.address != self.agreement.leader_for(windows.t):
            leader = (self.agreement.leader_for(windows.t),)
            actions += self._send(
                round_, leader, MessageKind.PROOF_TO_LEADER, encode_proofs_body((signed,))
            )
        buffered, round_.buffered = round_.buffered, []
        for message in buffered:
            actions += self._dispatch(round_, message, now)
            if round_.phase in (Phase.AGREED, Phase.DISPUTED):
                break
        return actions + self._progress(round_, now)

    def receive(self, data: bytes | ProtocolMessage, now: float) -> list[Action]:
        """Handle one inbound message (wire bytes or decoded).

        Raises :class:`InvalidInput` (malformed, wrong agreement), :class:`InvalidSignature`
        (not signed by a node of the agreement, or a bad signature inside) or
        :class:`ReplayedMessage`; each is counted in :attr:`stats`.
        """
        self.stats.received += 1
        try:
            message = decode_protocol_message(data) if isinstance(data, bytes) else data
            if message.agreement != self.agreement.address:
                raise InvalidInput(f"message is for agreement {message.agreement}, not this one")
            if message.sender not in self._others:
                raise InvalidSignature(f"{message.sender} is not another node of this agreement")
            digest = message.verify(self._domain)
        except InvalidSignature:
            self.stats.rejected["signature"] += 1
            raise
        except InvalidInput:
            self.stats.rejected["malformed"] += 1
            raise
        round_ = self._round(message.window)
        if digest in round_.seen:
            self.stats.rejected["replay"] += 1
            raise ReplayedMessage(
                f"message {digest.hex()[:16]} from {message.sender} was seen before"
            )
        round_.seen.add(digest)
        try:
            return self._accept(round_, message, now)
        except InvalidSignature:
            self.stats.rejected["signature"] += 1
            raise
        except InvalidInput:
            self.stats.rejected["malformed"] += 1
            raise

    def tick(self, now: float) -> list[Action]:
        """Advance time: retry what is overdue, give up with a timeout dispute after retries."""
        actions: list[Action] = []
        for round_ in list(self._rounds.values()):
            if round_.phase not in (Phase.COMMITTING, Phase.REVEALING) or now < round_.deadline:
                continue
            if round_.retries < self.max_retries:
                round_.retries += 1
                self.stats.retries += 1
                round_.deadline = now + self.timeout
                for recipients, kind, body in list(round_.outbox):
                    actions += self._emit(round_, recipients, kind, body)
                continue
            missing = self._missing(round_)
            evidence = DisputeEvidence(
                f"no answer from {', '.join(missing) or 'nobody'} in phase {round_.phase.value} "
                f"after {self.max_retries} retries",
                accused=missing[0] if len(missing) == 1 else None,
                window=round_.window,
            )
            actions += self._dispute(round_, DisputeKind.TIMEOUT, evidence)
        if self.fast is not None:
            actions += self.fast.tick(now)
        return actions

    def phase(self, t: int) -> Phase:
        """The phase of window ``t`` at this node (closed windows answer from the journal)."""
        if t in self._rounds:
            return self._rounds[t].phase
        entry = self.journal.load(t)
        if entry is None or entry.status == OPEN:
            return Phase.WAITING
        return Phase.AGREED if entry.status == AGREED else Phase.DISPUTED

    def agreed(self, t: int) -> Agreed | None:
        """The agreement reached on window ``t`` in this process, if any."""
        return self._agreed.get(t)

    # --------------------------------------------------------------- handlers

    def _accept(self, round_: _Round, message: ProtocolMessage, now: float) -> list[Action]:
        actions: list[Action] = []
        kind = message.kind
        if kind is MessageKind.DISPUTE_NOTICE:
            if round_.phase in (Phase.AGREED, Phase.DISPUTED):
                return actions
            disputed, accused = decode_dispute_body(message.body)
            evidence = DisputeEvidence(
                f"{message.sender} opened a dispute",
                accused=accused,
                notice=message,
                window=round_.window,
            )
            return self._dispute(round_, DisputeKind(disputed), evidence, notify=False)
        if kind is MessageKind.SIGNATURES:
            signatures, compact = decode_signatures_body(message.body)
            if compact is not None and self.fast is not None:
                actions += self.fast.on_signature(message.sender, *compact)
            if not signatures:
                return actions
        if kind is MessageKind.LEADER_BUNDLE and self.fast is not None:
            proofs, _, _ = decode_proofs_body(message.body, self.agreement.address, message.window)
            if not proofs:
                return actions + self.fast.on_standalone(message)
        if round_.phase is Phase.WAITING:
            round_.buffered.append(message)
            return actions
        if round_.phase in (Phase.AGREED, Phase.DISPUTED):
            return actions + self._answer_late(round_, message)
        return actions + self._dispatch(round_, message, now) + self._progress(round_, now)

    def _dispatch(self, round_: _Round, message: ProtocolMessage, now: float) -> list[Action]:
        kind = message.kind
        if kind is MessageKind.REVEAL:
            reveal, signature = decode_reveal_body(
                message.body, self.agreement.address, message.window
            )
            if recover_hash(reveal.typed_hash(self._domain).digest, signature) != message.sender:
                raise InvalidSignature(
                    f"reveal of window {round_.t} is not signed by {message.sender}"
                )
            round_.reveals.setdefault(
                message.sender, SignedReveal(message.sender, reveal, signature)
            )
            return []
        if kind is MessageKind.SIGNATURES:
            return self._on_signatures(round_, message)
        if kind is MessageKind.DISPUTE_NOTICE:
            return []
        proofs, _, _ = decode_proofs_body(message.body, self.agreement.address, message.window)
        actions: list[Action] = []
        for proof in proofs:
            actions += self._merge_proof(round_, proof)
            if round_.phase is Phase.DISPUTED:
                return actions
        if kind is MessageKind.PROOF_RING and len(proofs) == 1:
            actions += self._ring_step(round_, proofs[0].author)
        elif kind is MessageKind.PROOF_TO_LEADER and self.address != self.agreement.leader_for(
            round_.t
        ):
            raise InvalidInput(f"{message.sender} sent its proof to a node that is not the leader")
        elif kind is MessageKind.LEADER_BUNDLE and proofs:
            if message.sender != self.agreement.leader_for(round_.t):
                raise InvalidInput(f"{message.sender} is not the leader of window {round_.t}")
            mine = {p.author: self._sign_proof(p.proof) for p in proofs}
            for author, signature in mine.items():
                round_.proofs[author] = round_.proofs[author].with_signature(
                    self.address, signature
                )
            compact = None
            if self.fast is not None:
                disputes, compact = self.fast.review(message)
                actions += disputes
            body = encode_signatures_body(mine, compact)
            actions += self._send(round_, (message.sender,), MessageKind.SIGNATURES, body)
        return actions

    def _merge_proof(self, round_: _Round, incoming: SignedProof) -> list[Action]:
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
            return self._dispute(round_, DisputeKind.INVALID_PROOF, evidence)
        if incoming.proof.window_hash != round_.entry.window_hash:
            evidence = DisputeEvidence(
                f"H(w[{round_.t}]) of {incoming.author} is 0x{incoming.proof.window_hash.hex()}, "
                f"ours is 0x{round_.entry.window_hash.hex()}",
                proofs=(incoming, round_.proofs[self.address]),
                window=round_.window,
            )
            return self._dispute(round_, DisputeKind.WINDOW_HASH_MISMATCH, evidence)
        merged = dict(known.signatures) if known else {}
        merged.update(incoming.signatures)
        round_.proofs[incoming.author] = SignedProof(incoming.author, incoming.proof, merged)
        return []

    def _ring_step(self, round_: _Round, author: str) -> list[Action]:
        proof = round_.proofs[author]
        if author == self.address:
            return []
        proof = proof.with_signature(self.address, self._sign_proof(proof.proof))
        round_.proofs[author] = proof
        nxt = self.agreement.next_in_ring(self.address)
        target = author if proof.complete(self.agreement.nodes) else nxt
        return self._send(round_, (target,), MessageKind.PROOF_RING, encode_proofs_body((proof,)))

    def _on_signatures(self, round_: _Round, message: ProtocolMessage) -> list[Action]:
        signatures, _ = decode_signatures_body(message.body)
        for author, signature in signatures.items():
            proof = round_.proofs.get(author)
            if proof is None:
                raise InvalidInput(f"signature on an unknown proof by {author}")
            if (
                recover_hash(proof.proof.typed_hash(self._domain).digest, signature)
                != message.sender
            ):
                raise InvalidSignature(f"signature on proof of {author} is not by {message.sender}")
            round_.proofs[author] = proof.with_signature(message.sender, signature)
        return []

    # --------------------------------------------------------------- progress

    def _progress(self, round_: _Round, now: float) -> list[Action]:
        actions: list[Action] = []
        nodes = self.agreement.nodes
        have_all = all(n in round_.proofs for n in nodes)
        all_complete = have_all and all(round_.proofs[n].complete(nodes) for n in nodes)
        if round_.phase is Phase.COMMITTING:
            actions += self._leader_step(round_, have_all, all_complete, now)
            own = round_.proofs[self.address]
            if (
                self.agreement.mode is SigningMode.RING
                and own.complete(nodes)
                and not round_.complete_sent
            ):
                round_.complete_sent = True
                actions += self._send(
                    round_, self._others, MessageKind.PROOF_COMPLETE, encode_proofs_body((own,))
                )
            if all_complete:
                actions += self._reveal(round_, now)
        if round_.phase is Phase.REVEALING:
            actions += self._check_reveals(round_, now)
        return actions

    def _leader_step(
        self, round_: _Round, have_all: bool, all_complete: bool, now: float
    ) -> list[Action]:
        if self.agreement.mode is SigningMode.RING or self.address != self.agreement.leader_for(
            round_.t
        ):
            return []
        ordered = tuple(round_.proofs[n] for n in self.agreement.nodes) if have_all else ()
        if have_all and not round_.bundle_sent:
            round_.bundle_sent = True
            for proof in ordered:
                round_.proofs[proof.author] = proof.with_signature(
                    self.address, self._sign_proof(proof.proof)
                )
            ordered = tuple(round_.proofs[n] for n in self.agreement.nodes)
            compact, compact_signatures = (
                self.fast.piggyback(round_.t, now) if self.fast else (None, None)
            )
            body = encode_proofs_body(ordered, compact, compact_signatures)
            return self._send(round_, self._others, MessageKind.LEADER_BUNDLE, body)
        if all_complete and not round_.complete_sent:
            round_.complete_sent = True
            return self._send(
                round_, self._others, MessageKind.PROOF_COMPLETE, encode_proofs_body(ordered)
            )
        return []

    def _reveal(self, round_: _Round, now: float) -> list[Action]:
        """Phase 2 starts only here, after holding every fully signed proof (property P2)."""
        assert round_.entry is not None
        reveal = Reveal(self.agreement.address, round_.t, round_.entry.result, round_.entry.secret)
        signature = sign_typed_data(self.key, reveal.typed_hash(self._domain))
        round_.reveals[self.address] = SignedReveal(self.address, reveal, signature)
        round_.phase = Phase.REVEALING
        round_.deadline = now + self.timeout
        round_.retries = 0
        body = encode_reveal_body(reveal, signature)
        return self._send(round_, self._others, MessageKind.REVEAL, body)

    def _check_reveals(self, round_: _Round, now: float) -> list[Action]:
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
                return self._dispute(round_, DisputeKind.BAD_REVEAL, evidence)
            if signed.reveal.result != own:
                evidence = DisputeEvidence(
                    f"f(w[{round_.t}]) of {author} differs from ours",
                    proofs=(proof, round_.proofs[self.address]),
                    reveals=(signed, round_.reveals[self.address]),
                    window=round_.window,
                )
                return self._dispute(round_, DisputeKind.RESULT_MISMATCH, evidence)
        if len(round_.reveals) < len(self.agreement.nodes):
            return []
        return self._agree(round_, now)

    def _agree(self, round_: _Round, now: float) -> list[Action]:
        assert round_.entry is not None
        nodes = self.agreement.nodes
        round_.phase = Phase.AGREED
        proofs = tuple(round_.proofs[n] for n in nodes)
        reveals = tuple(round_.reveals[n] for n in nodes)
        result, window_hash = round_.entry.result, round_.entry.window_hash
        agreed = Agreed(round_.t, result, window_hash, proofs, reveals)
        self._agreed[round_.t] = agreed
        actions: list[Action] = [agreed]
        if self.fast is not None:
            # the compact update is signed later (round t+1) or after a restart: keep
            # what it commits to with the agreement, in the same journal write
            packed = self._packed_window_data(round_)
            data_hash = keccak256(packed) if packed else bytes(32)
            self.journal.close(
                round_.t, AGREED, proofs_hash=agreed.proofs_hash, data_hash=data_hash
            )
            return actions + self.fast.on_agreed(agreed, packed, now)
        self.journal.close(round_.t, AGREED)
        submitter = self.agreement.submitter_for(round_.t) == self.address
        if result is not None and submitter and self.journal.mark_submitted(round_.t):
            call = FullUpdateCall(
                round_.t, result, window_hash, nodes, proofs, reveals, self._window_data(round_)
            )
            actions.append(SubmitUpdate(call))
        return actions

    def _dispute(
        self, round_: _Round, kind: DisputeKind, evidence: DisputeEvidence, *, notify: bool = True
    ) -> list[Action]:
        round_.phase = Phase.DISPUTED
        self.journal.close(round_.t, DISPUTED)
        actions: list[Action] = [Dispute(round_.t, kind, evidence)]
        if notify:
            body = encode_dispute_body(int(kind), evidence.accused)
            actions += self._send(round_, self._others, MessageKind.DISPUTE_NOTICE, body)
        return actions

    # ---------------------------------------------------------------- helpers

    def window_data(self, t: int) -> bytes:
        """``w[t]`` in calldata form when the agreement's QoS is on-chain proof, else ``b""``."""
        round_ = self._rounds.get(t)
        return self._window_data(round_) if round_ is not None else b""

    def _window_data(self, round_: _Round) -> bytes:
        if self.agreement.qos is QoS.ONCHAIN_PROOF and round_.window is not None:
            return round_.window.encode()
        return b""

    def _packed_window_data(self, round_: _Round) -> bytes:
        """``w[t]`` in the contract's packed form (on-chain proof of storage), else ``b""``."""
        if self.agreement.qos is QoS.ONCHAIN_PROOF and round_.window is not None:
            return WindowData.from_windows(round_.window, self.agreement.sensors).encode()
        return b""

    def _own_proof(self, entry: JournalEntry) -> ProofOfComputation:
        commit = commitment(entry.result, entry.secret, self.address)
        return ProofOfComputation(commit, entry.t, self.agreement.address, entry.window_hash)

    def _sign_proof(self, proof: ProofOfComputation) -> Signature:
        return sign_typed_data(self.key, proof.typed_hash(self._domain))

    def _missing(self, round_: _Round) -> list[str]:
        if round_.phase is Phase.REVEALING:
            return [n for n in self.agreement.nodes if n not in round_.reveals]
        return [
            n
            for n in self._others
            if n not in round_.proofs or any(n not in p.signatures for p in round_.proofs.values())
        ]

    def _answer_late(self, round_: _Round, message: ProtocolMessage) -> list[Action]:
        """A peer still works on a window we closed: resend (once) what it may have missed."""
        sender = message.sender
        if sender in round_.answered or message.kind not in _RETRIED_KINDS:
            return []
        round_.answered.add(sender)
        actions: list[Action] = []
        for recipients, kind, body in round_.outbox:
            if sender in recipients and kind in _RETRIED_KINDS | {MessageKind.DISPUTE_NOTICE}:
                actions += self._emit(round_, (sender,), kind, body)
        return actions

    def _round(self, t: int) -> _Round:
        if t not in self._rounds:
            round_ = _Round(t)
            entry = self.journal.load(t)
            if entry is not None and entry.status != OPEN:
                round_.phase = Phase.AGREED if entry.status == AGREED else Phase.DISPUTED
            self._rounds[t] = round_
            for old in [k for k in self._rounds if k < t - _RETAINED_WINDOWS]:
                if self._rounds[old].phase in (Phase.AGREED, Phase.DISPUTED):
                    del self._rounds[old]
        return self._rounds[t]

    def bundle_sent(self, t: int) -> bool:
        """Whether this node (as leader) already sent its bundle for window ``t``."""
        round_ = self._rounds.get(t)
        return round_ is not None and round_.bundle_sent

    def _send(
        self, round_: _Round, recipients: tuple[str, ...], kind: MessageKind, body: bytes
    ) -> list[Action]:
        round_.outbox.append((recipients, kind, body))
        return self._emit(round_, recipients, kind, body)

    def _emit(
        self, round_: _Round, recipients: tuple[str, ...], kind: MessageKind, body: bytes
    ) -> list[Action]:
        return [self.send_message(round_.t, recipients, kind, body)]

    def send_message(
        self, t: int, recipients: tuple[str, ...], kind: MessageKind, body: bytes
    ) -> Send:
        """Sign a wire message for window ``t`` with a fresh nonce and count it."""
        self._counter += 1
        nonce = (self._epoch << 40) | self._counter
        message = ProtocolMessage.create(
            self.key,
            self._domain,
            agreement=self.agreement.address,
            window=t,
            kind=kind,
            nonce=nonce,
            body=body,
        )
        self.stats.sent[kind.name] += len(recipients)
        return Send(recipients, message)
