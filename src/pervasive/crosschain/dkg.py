"""Distributed key generation of the notary committee, sans I/O (paper 003, V-A, eq. 2-5).

Each of the ``n`` members (indices 1..n) runs one :class:`DkgMember`. The phases, each
ending when every member has spoken or when its deadline in :class:`DkgSchedule` passes:

1. **deal**: member ``i`` draws ``f_i`` of degree ``t-1`` from a persisted seed (eq. 2)
   and broadcasts a DKG_DEAL: the commitments ``A_{i,k}``, a proof of possession of
   ``a_{i,0}`` and ``f_i(j)`` encrypted to each member ``j``;
2. **complain**: each member decrypts its shares, checks them against the commitments
   (eq. 3) and broadcasts one DKG_COMPLAINT listing the dealers whose share was missing,
   unreadable or wrong (an empty list when none), with the digest of the commitments it
   got from each dealer (an echo: a dealer who showed two polynomials is seen by all);
3. **justify**: an accused dealer broadcasts one DKG_JUSTIFICATION: its signed deal and
   the disputed shares in clear, which everyone checks against the commitments;
4. **agree**: the qualified set is the dealers with one deal (one set of commitments
   echoed by everyone) whose proof of possession verifies and whose every complaint was
   answered by a valid share. Then
   ``sk_j = sum_i s_{i,j}`` (eq. 4), ``PK = sum_i A_{i,0}`` (eq. 5), and every member's
   public share follows from the commitments. Each member broadcasts a signed DKG_RESULT;
   the key generation ends with :class:`DkgFinished` once at least ``t`` members (itself
   included) announced the same result, or :class:`DkgAborted` (and :class:`DkgFailed`
   from :meth:`DkgMember.outcome`) with fewer than ``t`` qualified dealers or agreeing
   members.

Crash safety: before anything is sent the member stores its dealing seed (encrypted to
its own secp256k1 key) and every envelope it sends or admits
(:mod:`pervasive.crosschain.dkg_store`). A restarted member replays them, sends the very
same envelopes again and finishes; it never deals a second, different polynomial.

The phases assume the deadlines leave time for every honest member's messages to
arrive (a synchronous network, as the paper's committee does); a member that saw
something else than the others finds out at the end, because its DKG_RESULT then
differs, and the ``t`` members that agree finish without it.

Example::

    member = DkgMember(key=key, index=1, members=public_keys, threshold=3, chain_id=31337,
                       setup_nonce=nonce, schedule=DkgSchedule.starting(now, step=10),
                       store=SQLiteDkgStore(db), epochs=SQLiteEpochs(db))
    actions = member.start(now)                  # [Send(deal)]
    actions += member.receive(payload, now)      # ... until DkgFinished(result, transcript)
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from pervasive.committee import EnvelopeReceiver, EnvelopeSigner, Send
from pervasive.committee.envelope import Envelope, decode_envelope
from pervasive.crosschain.dkg_bodies import (
    DKG_ROUND,
    ComplaintBody,
    DealBody,
    DealRecord,
    DkgAborted,
    DkgAction,
    DkgBody,
    DkgFinished,
    DkgKind,
    DkgPhase,
    DkgResult,
    DkgSchedule,
    DkgTranscript,
    JustificationBody,
    ResultBody,
    commitments_digest,
    decode_dkg_body,
    notary_domain,
    notary_session,
    share_context,
)
from pervasive.crosschain.dkg_store import DkgStore
from pervasive.crosschain.errors import DkgFailed
from pervasive.crypto import PrivateKey, PublicKey
from pervasive.crypto.bls import bls_prove_possession, bls_public_key, bls_verify_possession
from pervasive.crypto.encryption import decrypt_with, encrypt_to
from pervasive.crypto.threshold import (
    Polynomial,
    combine_shares,
    group_public_key,
    public_share,
    verify_share,
)
from pervasive.errors import InternalError, InvalidInput, InvalidSignature

__all__ = [
    "DkgMember",
]

_SEED_CONTEXT = b"pervasive.dkg.seed.v1"


class _Epochs(Protocol):
    def next(self, session: str, member: str) -> int: ...


@dataclass
class _Deal:
    wire: bytes
    body: DealBody
    valid: bool
    """Proof of possession verifies and the deal has ``t`` commitments and ``n`` shares."""
    my_share: int | None = None
    """My share, decrypted and checked against the commitments (eq. 3); None if not."""


class DkgMember:
    """One member's key generation; feed it envelopes and time, carry out its actions."""

    def __init__(
        self,
        *,
        key: PrivateKey,
        index: int,
        members: Mapping[int, PublicKey],
        threshold: int,
        chain_id: int,
        setup_nonce: bytes,
        schedule: DkgSchedule,
        store: DkgStore,
        epochs: _Epochs,
    ) -> None:
        n = len(members)
        if sorted(members) != list(range(1, n + 1)):
            raise InvalidInput("members must be indexed 1..n: give each public key its index")
        if index not in members or members[index].address != key.address:
            raise InvalidInput(f"member {index}'s public key is not the key given: check index")
        if not 1 <= threshold <= n:
            raise InvalidInput(f"threshold {threshold} must be between 1 and n = {n}")
        self.key, self.index, self.members, self.threshold = key, index, dict(members), threshold
        self.n, self.chain_id, self.schedule, self.store = n, chain_id, schedule, store
        self.addresses = {j: pk.address for j, pk in members.items()}
        self._index_of = {a: j for j, a in self.addresses.items()}
        self.session = notary_session(chain_id, list(self.addresses.values()), setup_nonce)
        self.domain = notary_domain(chain_id, self.session)
        self._others = tuple(a for j, a in sorted(self.addresses.items()) if j != index)
        self.receiver: EnvelopeReceiver[DkgBody] = EnvelopeReceiver(
            self.domain, self.session, senders=self._others, decode_body=decode_dkg_body
        )
        self.rejected = self.receiver.rejected
        """Refused envelopes by reason: the receiver's, plus ``late``, ``conflict``,
        ``duplicate``, ``evidence`` and ``index``."""
        self._signer = EnvelopeSigner(
            key, self.domain, self.session, epoch=epochs.next(self.session, key.address)
        )
        self.phase = DkgPhase.DEALING
        self._polynomial: Polynomial | None = None
        self._deals: dict[int, _Deal] = {}
        self._complaints: dict[int, ComplaintBody] = {}
        self._justifications: dict[int, JustificationBody] = {}
        self._results: dict[int, tuple[ResultBody, bytes]] = {}
        self._outbox: dict[DkgKind, Envelope] = {}
        self._pending: DkgResult | None = None
        """This member's result, computed, until enough members announced the same."""
        self.result: DkgResult | None = None
        self.transcript: DkgTranscript | None = None
        self.failure: str | None = None

    # -- driving ------------------------------------------------------------------------

    def start(self, now: float) -> list[DkgAction]:
        """Deal (or, after a restart, replay the store and send the same envelopes again).

        Call it once, before :meth:`receive`.
        """
        if self._polynomial is not None:
            raise InvalidInput("this member has started already: start() is called once")
        seed = secrets.token_bytes(32)
        context = _SEED_CONTEXT + share_context(self.session, self.key.address, self.key.address)
        sealed = self.store.keep_seed(
            self.session, self.key.address, encrypt_to(self.key.public_key, seed, context=context)
        )
        seed = decrypt_with(self.key, sealed, context=context)
        self._polynomial = Polynomial.from_seed(seed, self.threshold)
        floor = DkgPhase[self.store.phase(self.session, self.key.address) or "DEALING"]
        for direction, wire in self.store.messages(self.session, self.key.address):
            envelope = decode_envelope(wire)
            if direction == "out":
                self._outbox[DkgKind(envelope.kind)] = envelope
                self._apply(self.index, envelope, decode_dkg_body(envelope), None)
            else:
                received = self.receiver.accept(envelope)
                self._apply(self._index_of[received.sender], envelope, received.body, None)
        actions: list[DkgAction] = [Send(self._others, e) for e in self._outbox.values()]
        if DkgKind.DKG_DEAL not in self._outbox:
            actions += self._emit(DkgKind.DKG_DEAL, self._deal_body(self._polynomial))
        return actions + self._advance(now, floor)

    def receive(self, data: bytes | Envelope, now: float) -> list[DkgAction]:
        """Handle one inbound envelope; raise (and count) if it is refused at admission.

        Raises :class:`InvalidInput` (malformed, other session), :class:`InvalidSignature`
        (forged, or not from another member) or :class:`ReplayedMessage` (seen before).
        """
        if self._polynomial is None:
            raise InvalidInput("call start() before receive(): the member has not dealt yet")
        received = self.receiver.accept(data)
        sender = self._index_of[received.sender]
        if self._apply(sender, received.envelope, received.body, now):
            self.store.record(self.session, self.key.address, "in", received.envelope.encode())
        return self._advance(now)

    def tick(self, now: float) -> list[DkgAction]:
        """Advance past deadlines. Example: ``member.tick(time.time())``."""
        return self._advance(now)

    def outcome(self) -> DkgResult:
        """The result once finished; :class:`DkgFailed` if it failed or is still running."""
        if self.result is not None:
            return self.result
        raise DkgFailed(self.failure or f"the key generation is still in phase {self.phase.name}")

    # -- admission of one message ----------------------------------------------------------

    def _apply(self, sender: int, envelope: Envelope, body: DkgBody, now: float | None) -> bool:
        """Take one admitted message into the state; False if refused (and counted)."""
        kind = DkgKind(envelope.kind)
        deadline = {
            DkgKind.DKG_DEAL: self.schedule.deal_by,
            DkgKind.DKG_COMPLAINT: self.schedule.complain_by,
            DkgKind.DKG_JUSTIFICATION: self.schedule.justify_by,
            DkgKind.DKG_RESULT: self.schedule.result_by,
        }[kind]
        # Phases and kinds share their numbers: a member in phase k takes no messages of
        # the phases before it, which would change what it already concluded.
        if now is not None and (now >= deadline or self.phase > kind):
            return self._refuse("late")
        try:
            if isinstance(body, DealBody):
                return self._take_deal(sender, envelope.encode(), body)
            if isinstance(body, ComplaintBody):
                return self._take_complaint(sender, body)
            if isinstance(body, JustificationBody):
                return self._take_justification(sender, body)
            return self._take_result(sender, body, envelope.encode())
        except (InvalidInput, InvalidSignature):
            return self._refuse("evidence")

    def _take_deal(self, dealer: int, wire: bytes, body: DealBody) -> bool:
        if dealer in self._deals:
            return self._refuse("duplicate" if self._deals[dealer].body == body else "conflict")
        valid = (
            len(body.commitments) == self.threshold
            and len(body.shares) == self.n
            and bls_verify_possession(body.commitments[0], body.proof)
        )
        deal = _Deal(wire, body, valid)
        if valid:
            context = share_context(self.session, self.addresses[dealer], self.key.address)
            try:
                plain = decrypt_with(self.key, body.shares[self.index - 1], context=context)
            except InvalidInput:
                plain = b""
            share = int.from_bytes(plain, "big")
            if len(plain) == 32 and verify_share(body.commitments, self.index, share):
                deal.my_share = share
        self._deals[dealer] = deal
        return True

    def _take_complaint(self, complainer: int, body: ComplaintBody) -> bool:
        if complainer in self._complaints:
            return self._refuse("duplicate" if self._complaints[complainer] == body else "conflict")
        for accused, evidence in zip(body.accused, body.evidence, strict=True):
            if accused == complainer or accused not in self.addresses:
                return self._refuse("index")
            if evidence:
                self._signed_deal(accused, evidence)
        if len(body.seen) != self.n:
            return self._refuse("index")
        self._complaints[complainer] = body
        return True

    def _take_justification(self, dealer: int, body: JustificationBody) -> bool:
        if dealer in self._justifications:
            same = self._justifications[dealer] == body
            return self._refuse("duplicate" if same else "conflict")
        deal = self._signed_deal(dealer, body.deal)
        if dealer not in self._deals:
            self._take_deal(dealer, body.deal, deal)
        self._justifications[dealer] = body
        return True

    def _take_result(self, member: int, body: ResultBody, wire: bytes) -> bool:
        if member in self._results:
            return self._refuse("duplicate" if self._results[member][0] == body else "conflict")
        self._results[member] = (body, wire)
        return True

    def _signed_deal(self, dealer: int, wire: bytes) -> DealBody:
        envelope = decode_envelope(wire)
        if (
            envelope.session != self.session
            or envelope.kind != DkgKind.DKG_DEAL
            or envelope.sender != self.addresses[dealer]
        ):
            raise InvalidInput(f"the evidence is not member {dealer}'s deal in this session")
        envelope.verify(self.domain)
        body = decode_dkg_body(envelope)
        assert isinstance(body, DealBody)  # the kind was checked above
        return body

    def _refuse(self, reason: str) -> bool:
        self.rejected[reason] += 1
        return False

    # -- phases --------------------------------------------------------------------------

    def _advance(self, now: float, floor: DkgPhase = DkgPhase.DEALING) -> list[DkgAction]:
        actions: list[DkgAction] = []
        s = self.schedule
        if self.phase == DkgPhase.DEALING and (
            len(self._deals) == self.n or now >= s.deal_by or floor > self.phase
        ):
            self._enter(DkgPhase.COMPLAINING)
            actions += self._emit(DkgKind.DKG_COMPLAINT, self._my_complaints())
        if self.phase == DkgPhase.COMPLAINING and (
            len(self._complaints) == self.n or now >= s.complain_by or floor > self.phase
        ):
            self._enter(DkgPhase.JUSTIFYING)
            complainers = self._complainers_of(self.index)
            if complainers:
                actions += self._emit(DkgKind.DKG_JUSTIFICATION, self._justification(complainers))
        if self.phase == DkgPhase.JUSTIFYING and (
            all(d in self._justifications for d in self._accused())
            or now >= s.justify_by
            or floor > self.phase
        ):
            actions += self._conclude()
        if self.phase == DkgPhase.AGREEING and (
            len(self._results) == self.n or now >= s.result_by or floor > self.phase
        ):
            actions += self._finish()
        return actions

    def _enter(self, phase: DkgPhase) -> None:
        self.phase = phase
        self.store.set_phase(self.session, self.key.address, phase.name)

    def _emit(self, kind: DkgKind, body: DkgBody) -> list[DkgAction]:
        envelope = self._outbox.get(kind)
        if envelope is None:  # after a restart the stored envelope is the one sent
            envelope = self._signer.sign(DKG_ROUND, kind, body.encode())
            self.store.record(self.session, self.key.address, "out", envelope.encode())
            self._outbox[kind] = envelope
            self._apply(self.index, envelope, body, None)
            return [Send(self._others, envelope)]
        return []

    def _deal_body(self, polynomial: Polynomial) -> DealBody:
        shares = tuple(
            encrypt_to(
                self.members[j],
                polynomial.evaluate(j).to_bytes(32, "big"),
                context=share_context(self.session, self.key.address, self.addresses[j]),
            )
            for j in range(1, self.n + 1)
        )
        proof = bls_prove_possession(polynomial.coefficients[0])
        return DealBody(polynomial.commitments(), proof, shares)

    def _my_complaints(self) -> ComplaintBody:
        accused = [
            d
            for d in range(1, self.n + 1)
            if d != self.index
            and (d not in self._deals or (self._deals[d].valid and self._deals[d].my_share is None))
        ]
        evidence = [self._deals[d].wire if d in self._deals else b"" for d in accused]
        seen = tuple(
            commitments_digest(self._deals[d].body.commitments) if d in self._deals else bytes(32)
            for d in range(1, self.n + 1)
        )
        return ComplaintBody(tuple(accused), tuple(evidence), seen)

    def _complainers_of(self, dealer: int) -> tuple[int, ...]:
        return tuple(sorted(c for c, b in self._complaints.items() if dealer in b.accused))

    def _accused(self) -> set[int]:
        return {a for body in self._complaints.values() for a in body.accused}

    def _justification(self, complainers: tuple[int, ...]) -> JustificationBody:
        assert self._polynomial is not None  # start() draws it before any phase moves
        shares = tuple(self._polynomial.evaluate(c) for c in complainers)
        return JustificationBody(self._outbox[DkgKind.DKG_DEAL].encode(), complainers, shares)

    def _answered(self, dealer: int, complainer: int) -> int | None:
        """The dealer's valid share for ``complainer`` from its justification, if any (eq. 3)."""
        body = self._justifications.get(dealer)
        if body is None or complainer not in body.complainers:
            return None
        share = body.shares[body.complainers.index(complainer)]
        return (
            share if verify_share(self._deals[dealer].body.commitments, complainer, share) else None
        )

    def _commitments_shown(self, dealer: int) -> set[bytes]:
        """Digests of every set of commitments ``dealer`` was seen to sign.

        Every member echoes what it received in its complaint, and a justification
        carries the deal again, so all members see the same set: more than one means
        the dealer showed members different polynomials, and all exclude it.
        """
        shown = {body.seen[dealer - 1] for body in self._complaints.values()} - {bytes(32)}
        shown.add(commitments_digest(self._deals[dealer].body.commitments))
        if dealer in self._justifications:
            deal = decode_dkg_body(decode_envelope(self._justifications[dealer].deal))
            assert isinstance(deal, DealBody)  # checked when the justification was taken
            shown.add(commitments_digest(deal.commitments))
        return shown

    def _qualified(self) -> list[int]:
        return [
            d
            for d, deal in sorted(self._deals.items())
            if deal.valid
            and len(self._commitments_shown(d)) == 1
            and all(self._answered(d, c) is not None for c in self._complainers_of(d))
        ]

    def _conclude(self) -> list[DkgAction]:
        qualified = self._qualified()
        if len(qualified) < self.threshold:
            return self._fail(f"only {len(qualified)} qualified dealers, {self.threshold} needed")
        shares = []
        for d in qualified:
            share = self._deals[d].my_share
            if share is None:
                share = self._answered(d, self.index)
            if share is None:
                raise InternalError(
                    f"dealer {d} is qualified but member {self.index} lacks its share"
                )
            shares.append(share)
        commitments = [self._deals[d].body.commitments for d in qualified]
        try:
            # Summing the commitments first, C_k = sum_i A_{i,k}, gives each public share
            # from t points instead of (qualified x t): evaluation in the exponent is
            # linear, and decoding G2 points (subgroup checks) is what costs.
            summed = [group_public_key([c[k] for c in commitments]) for k in range(self.threshold)]
            group_key = summed[0]
            public = {j: public_share([summed], j) for j in range(1, self.n + 1)}
        except InvalidInput as exc:
            return self._fail(str(exc))
        secret = combine_shares(shares)
        if bls_public_key(secret) != public[self.index]:
            raise InternalError("the combined share does not match its public share (eq. 3-4)")
        self._pending = DkgResult(
            group_key, self.threshold, self.index, secret, public, tuple(qualified)
        )
        self._enter(DkgPhase.AGREEING)
        return self._emit(DkgKind.DKG_RESULT, ResultBody(tuple(qualified), group_key))

    def _finish(self) -> list[DkgAction]:
        mine = self._results[self.index][0]
        agreeing = [m for m, (body, _) in self._results.items() if body == mine]
        if len(agreeing) < self.threshold or self._pending is None:
            return self._fail(f"only {len(agreeing)} members announced this group key")
        self.result = self._pending
        self.transcript = self._transcript(mine)
        self._enter(DkgPhase.DONE)
        return [DkgFinished(self.result, self.transcript)]

    def _fail(self, reason: str) -> list[DkgAction]:
        self.failure = f"key generation failed: {reason}; run a new session"
        self._enter(DkgPhase.FAILED)
        return [DkgAborted(self.failure)]

    def _transcript(self, mine: ResultBody) -> DkgTranscript:
        return DkgTranscript(
            session=self.session,
            chain_id=self.chain_id,
            threshold=self.threshold,
            members=tuple(self.addresses[j] for j in range(1, self.n + 1)),
            deals=tuple(
                DealRecord(d, deal.body.commitments, deal.body.proof)
                for d, deal in sorted(self._deals.items())
            ),
            complaints=tuple(
                (c, a, e)
                for c, body in sorted(self._complaints.items())
                for a, e in zip(body.accused, body.evidence, strict=True)
            ),
            justifications=tuple(
                (d, c, s)
                for d, body in sorted(self._justifications.items())
                for c, s in zip(body.complainers, body.shares, strict=True)
            ),
            qualified=mine.qualified,
            group_key=mine.group_key,
            results=tuple(
                (m, wire) for m, (body, wire) in sorted(self._results.items()) if body == mine
            ),
        )
