"""One intermediate node's protocol for one agreement, sans I/O (paper 002, section 3, Fig. 2).

For each window ``t`` a node runs the paper's three phases:

1. proof of computation and 2. agreement checking (``commit_reveal.py``);
3. the update: every node signs the agreed :class:`~pervasive.domain.Update`; in the
   ring and leader protocols right after agreeing (``update_exchange.py``), in the fast
   protocol (Fig. 2B) inside the next round, through its leader (``compact.py``).

Inputs are :meth:`NodeProtocol.start_window`, :meth:`~NodeProtocol.receive` and
:meth:`~NodeProtocol.tick` (time is always an argument: a silent peer leads to retries,
then a :attr:`~pervasive.offchain.outcomes.DisputeKind.TIMEOUT` dispute, never a hang).
Outputs are lists of :data:`~pervasive.offchain.outcomes.Action`. Every inbound message
is a committee :class:`~pervasive.committee.Envelope` admitted by an
:class:`~pervasive.committee.EnvelopeReceiver` (signed by another node of the agreement,
never seen before) and decoded once into its typed body (``bodies.py``); this module
only routes bodies to the phase they belong to.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from pervasive.committee import Envelope, EnvelopeReceiver, EnvelopeSigner, Received
from pervasive.crypto import PrivateKey
from pervasive.domain import SigningMode
from pervasive.errors import InvalidInput, InvalidSignature
from pervasive.offchain.agreement import AgreementSpec
from pervasive.offchain.bodies import (
    Body,
    DisputeNotice,
    MessageKind,
    ProofsBody,
    RevealBody,
    SignaturesBody,
    UpdateSignature,
    decode_body,
)
from pervasive.offchain.commit_reveal import CommitReveal
from pervasive.offchain.compact import CompactPhase
from pervasive.offchain.functions import FunctionMismatch, OffchainFunction
from pervasive.offchain.journal import MemoryRoundJournal, RoundJournal, RoundStatus
from pervasive.offchain.outcomes import Action, Agreed, DisputeEvidence, DisputeKind
from pervasive.offchain.rounds import MessageStats, Phase, Round, RoundMessenger
from pervasive.offchain.update_exchange import UpdateExchange
from pervasive.offchain.window import WindowArray

__all__ = ["NodeProtocol"]

_RETAINED_WINDOWS = 256
"""How many past windows keep their state (and replay sets) in memory."""

_RETRIED_KINDS = frozenset(
    {
        MessageKind.PROOF_RING,
        MessageKind.PROOF_TO_LEADER,
        MessageKind.PROOF_COMPLETE,
        MessageKind.REVEAL,
    }
)


class NodeProtocol:
    """The protocol of intermediate node ``i`` in agreement ``a``.

    Example::

        node = NodeProtocol(key, spec, registry.resolve(spec.function_name, spec.function_hash),
                            SQLiteRoundJournal(db, spec.address, key.address))
        actions = node.start_window(window_array, now=clock())
        actions += node.receive(payload, now=clock())
        actions += node.tick(now=clock())

    ``stored_window_data(t)`` is the packed ``w[t]`` the node still holds under on-chain
    proof of storage: a fast-protocol leader needs it for an update it still owes after
    a restart.
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
        stored_window_data: Callable[[int], bytes] | None = None,
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
        domain = agreement.domain_separator
        others = tuple(n for n in agreement.nodes if n != self.address)
        self.receiver: EnvelopeReceiver[Body] = EnvelopeReceiver(
            domain,
            agreement.address,
            senders=others,
            decode_body=decode_body,
            retained_rounds=_RETAINED_WINDOWS,
        )
        self.stats = MessageStats(rejected=self.receiver.rejected)
        signer = EnvelopeSigner(key, domain, agreement.address, epoch=self.journal.next_epoch())
        self.messenger = RoundMessenger(signer, self.stats)
        self.commit = CommitReveal(
            key, agreement, function, self.journal, self.messenger,
            timeout=timeout, secret_source=secret_source,
        )  # fmt: skip
        self.compact: CompactPhase | None = None
        self.exchange: UpdateExchange | None = None
        if agreement.mode is SigningMode.FAST:
            self.compact = CompactPhase(
                key, agreement, self.journal, self.messenger, self.stats,
                timeout=timeout, max_retries=max_retries, compact_wait=self.compact_wait,
                stored_window_data=stored_window_data,
            )  # fmt: skip
        else:
            self.exchange = UpdateExchange(
                key, agreement, self.journal, self.messenger, stored_window_data
            )
        self._rounds: dict[int, Round] = {}

    # ------------------------------------------------------------------ inputs

    def start_window(self, windows: WindowArray, now: float) -> list[Action]:
        """Begin window ``t = windows.t`` with this node's local ``w_i[t]``.

        A window the journal shows as closed is ignored; one the node had already
        committed to before a crash reuses the stored secret and result.
        """
        round_ = self._round(windows.t)
        entry = self.journal.load(windows.t)
        if round_.phase is not Phase.WAITING or (
            entry is not None and entry.status is not RoundStatus.OPEN
        ):
            return []
        actions = self.commit.begin(round_, windows, now)
        buffered, round_.buffered = round_.buffered, []
        for received in buffered:
            actions += self._dispatch(round_, received, now)
            if round_.closed:
                break
        return actions + self._progress(round_, now)

    def receive(self, data: bytes | Envelope, now: float) -> list[Action]:
        """Handle one inbound message (wire bytes or a decoded envelope).

        Raises :class:`InvalidInput` (malformed, wrong agreement, out of turn),
        :class:`InvalidSignature` (not signed by another node of the agreement, or a
        bad signature inside) or :class:`~pervasive.errors.ReplayedMessage`; each is
        counted in :attr:`stats`.
        """
        self.stats.received += 1
        received = self.receiver.accept(data)
        try:
            return self._accept(received, now)
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
                actions += [self.messenger.resend(round_, sent) for sent in list(round_.outbox)]
                continue
            missing = self.commit.missing(round_)
            evidence = DisputeEvidence(
                f"no answer from {', '.join(missing) or 'nobody'} in phase {round_.phase.value} "
                f"after {self.max_retries} retries",
                accused=missing[0] if len(missing) == 1 else None,
                window=round_.window,
            )
            actions += self.commit.dispute(round_, DisputeKind.TIMEOUT, evidence)
        if self.compact is not None:
            actions += self.compact.tick(now)
        if self.exchange is not None:
            actions += self.exchange.resume()
        return actions

    def phase(self, t: int) -> Phase:
        """The phase of window ``t`` at this node (closed windows answer from the journal)."""
        if t in self._rounds:
            return self._rounds[t].phase
        entry = self.journal.load(t)
        if entry is None or entry.status is RoundStatus.OPEN:
            return Phase.WAITING
        return Phase.AGREED if entry.status is RoundStatus.AGREED else Phase.DISPUTED

    def agreed(self, t: int) -> Agreed | None:
        """The agreement reached on window ``t`` in this process, if any."""
        round_ = self._rounds.get(t)
        return None if round_ is None else round_.agreed

    def bundle_sent(self, t: int) -> bool:
        """Whether this node (as leader) already sent its bundle for window ``t``."""
        round_ = self._rounds.get(t)
        return round_ is not None and round_.bundle_sent

    # --------------------------------------------------------------- routing

    def _accept(self, received: Received[Body], now: float) -> list[Action]:
        body, sender = received.body, received.sender
        if isinstance(body, UpdateSignature):
            if self.exchange is None:
                raise InvalidInput("a fast-protocol agreement signs its updates inside rounds")
            return self.exchange.on_signature(sender, received.round, body)
        round_ = self._round(received.round)
        if isinstance(body, DisputeNotice):
            return self._on_notice(round_, received, body)
        if not isinstance(body, ProofsBody | SignaturesBody | RevealBody):
            raise InvalidInput(f"a {type(body).__name__} does not belong in a node's inbox")
        actions: list[Action] = []
        if isinstance(body, SignaturesBody):
            if body.compact is not None and self.compact is not None:
                actions += self.compact.on_signature(sender, *body.compact)
            if not body.signatures:
                return actions
        if isinstance(body, ProofsBody) and not body.proofs and self.compact is not None:
            if received.envelope.kind != MessageKind.LEADER_BUNDLE:
                raise InvalidInput("a proof message without proofs")
            return actions + self.compact.on_standalone(received.envelope, body)
        if round_.phase is Phase.WAITING:
            round_.buffered.append(received)
            return actions
        if round_.closed:
            return actions + self._answer_late(round_, received)
        return actions + self._dispatch(round_, received, now) + self._progress(round_, now)

    def _on_notice(
        self, round_: Round, received: Received[Body], body: DisputeNotice
    ) -> list[Action]:
        """A peer opened a dispute on this window: close it too, without telling anyone."""
        if round_.closed:
            return []
        try:
            kind = DisputeKind(body.kind)
        except ValueError:
            raise InvalidInput(f"unknown dispute kind {body.kind}") from None
        evidence = DisputeEvidence(
            f"{received.sender} opened a dispute",
            accused=body.accused,
            notice=received.envelope,
            window=round_.window,
        )
        return self.commit.dispute(round_, kind, evidence, notify=False)

    def _dispatch(self, round_: Round, received: Received[Body], now: float) -> list[Action]:
        body, sender = received.body, received.sender
        if isinstance(body, RevealBody):
            return self.commit.on_reveal(round_, sender, body)
        if isinstance(body, SignaturesBody):
            return self.commit.on_signatures(round_, sender, body)
        if not isinstance(body, ProofsBody):
            return []
        kind = MessageKind(received.envelope.kind)
        actions = self.commit.on_proofs(round_, kind, sender, body)
        if round_.phase is Phase.DISPUTED:
            return actions
        if kind is MessageKind.LEADER_BUNDLE and body.proofs:
            mine = self.commit.sign_bundle(round_, sender, body)
            answer = None
            if self.compact is not None:
                disputes, answer = self.compact.review(received.envelope, body)
                actions += disputes
            actions += self.commit.answer_bundle(round_, sender, mine, answer)
        return actions

    def _progress(self, round_: Round, now: float) -> list[Action]:
        compact = None
        if self.compact is not None and self.commit.bundle_due(round_):
            compact = self.compact.piggyback(round_.t, now)
        first_agreement = round_.agreed is None
        actions = self.commit.progress(round_, now, compact)
        if first_agreement and round_.agreed is not None:
            actions += self._after_agreed(round_, round_.agreed, now)
        return actions

    def _after_agreed(self, round_: Round, agreed: Agreed, now: float) -> list[Action]:
        """Phase 3: sign the update now (ring, leader) or in the next round (fast)."""
        if self.compact is not None:
            return self.compact.on_agreed(
                agreed, round_.packed, now, bundle_sent=self.bundle_sent(round_.t + 1)
            )
        assert self.exchange is not None
        return self.exchange.on_agreed(agreed, round_.packed)

    def _answer_late(self, round_: Round, received: Received[Body]) -> list[Action]:
        """A peer still works on a window we closed: resend (once) what it may have missed."""
        sender = received.sender
        if sender in round_.answered or received.envelope.kind not in _RETRIED_KINDS:
            return []
        round_.answered.add(sender)
        kinds = _RETRIED_KINDS | {MessageKind.DISPUTE_NOTICE}
        return [
            self.messenger.resend(round_, sent, to=(sender,))
            for sent in round_.outbox
            if sender in sent[0] and sent[1] in kinds
        ]

    def _round(self, t: int) -> Round:
        if t not in self._rounds:
            round_ = Round(t)
            entry = self.journal.load(t)
            if entry is not None and entry.status is not RoundStatus.OPEN:
                agreed = entry.status is RoundStatus.AGREED
                round_.phase = Phase.AGREED if agreed else Phase.DISPUTED
            self._rounds[t] = round_
            for old in [k for k in self._rounds if k < t - _RETAINED_WINDOWS]:
                if self._rounds[old].closed:
                    del self._rounds[old]
        return self._rounds[t]
