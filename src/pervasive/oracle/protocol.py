"""One oracle node's protocol, sans I/O: queries in, reports exchanged, one answer out.

Paper 001, section 4 (the Oraclize flow, with a proof the hub checks). Inputs are what
the node's adapter (:mod:`pervasive.oracle.node`) learns; outputs are actions:

```
chain: QueryRequested / QueryRetried ─▶ query_seen(query) ─▶ [Fetch(query)]
fetch done ─▶ observed(id, attempt, observation) ─▶ sign Report ─▶ [Send(report to all)]
peer bytes ─▶ receive(payload) ─▶ admission (registered? signature? replay? attempt?)
           ─▶ t reports agreeing with our own ─▶ [Submit(round, Fulfillment)]
clock ─▶ tick(now): past the deadline ─▶ [Submit(round, Expiry)]   (retry or time out)
chain: QueryAnswered / QueryTimedOut ─▶ finished(id): forgotten
```

A node only answers with a value it saw itself: it counts the reports that agree with
its own observation on (response digest, value) and submits when it holds ``t`` of
them (its own included). A report that disagrees, comes from a key outside the
registered set, is not signed by its sender, repeats an envelope or answers an older
attempt is refused and counted in :attr:`OracleProtocol.refusals`. A node that could
not fetch sends nothing. Reports for a query (or an attempt) this node has not seen
on-chain yet wait in a bounded buffer until it has.

Which member sends: the committee kit's :class:`~pervasive.committee.Submitter` gets
every ``Submit``; :meth:`OracleProtocol.designated` (``oracles[query_id % n]``) sends at
once, the others after ``takeover_after`` times their ring distance if the hub still
lacks the answer. Rounds are ``query_id << 8 | attempt`` (:func:`submission_round`), so
each attempt of a query is answered, or expired, once.

Example::

    protocol = OracleProtocol(key=key, chain_id=31337, hub=hub.address, oracles=members,
                              threshold=2, envelopes=signer)
    actions = protocol.query_seen(query, now)          # [Fetch(query)]
    actions = protocol.observed(query.query_id, 1, observation)   # [Send(...)]
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from pervasive.committee import (
    Envelope,
    EnvelopeReceiver,
    EnvelopeSigner,
    Send,
    Submit,
    decode_envelope,
    takeover_rank,
)
from pervasive.contracts.oracle_hub import Expiry, Fulfillment, SignedReport
from pervasive.contracts.oracle_hub import Report as HubReport
from pervasive.crypto import PrivateKey
from pervasive.errors import InvalidInput, InvalidSignature, ReplayedMessage
from pervasive.oracle.reports import REPORT, ReportBody, committee_domain, decode_report_body
from pervasive.oracle.sources import Observation

__all__ = [
    "Action",
    "Fetch",
    "OracleProtocol",
    "Query",
    "submission_round",
]


@dataclass(frozen=True)
class Query:
    """A query attempt as the chain announced it."""

    query_id: int
    kind: int
    source: str
    path: str
    deadline: int
    """Unix time after which this attempt may be expired."""
    attempt: int


@dataclass(frozen=True)
class Fetch:
    """Observe the source of ``query`` and report back with :meth:`OracleProtocol.observed`."""

    query: Query


Action = Fetch | Send | Submit[Fulfillment] | Submit[Expiry]
"""What :class:`OracleProtocol` asks its adapter to do."""


def submission_round(query_id: int, attempt: int) -> int:
    """The submitter's round of one attempt of a query: ``query_id << 8 | attempt``.

    Example: ``submission_round(7, 1) == 1793``.
    """
    if not 0 < attempt < 256:
        raise InvalidInput(f"attempt {attempt} is not 1..255")
    return query_id << 8 | attempt


@dataclass
class _Open:
    query: Query
    own: SignedReport | None = None
    reports: dict[str, SignedReport] = field(default_factory=dict)
    disagreeing: set[str] = field(default_factory=set)
    submitted: bool = False
    expired: bool = False


class OracleProtocol:
    """The state machine of one member of an oracle committee (see the module docstring)."""

    def __init__(
        self,
        *,
        key: PrivateKey,
        chain_id: int,
        hub: str,
        oracles: Sequence[str],
        threshold: int,
        envelopes: EnvelopeSigner,
        expire_grace: float = 1.0,
        max_buffered: int = 1024,
    ) -> None:
        self.key = key
        self.me = key.address
        self.chain_id = chain_id
        self.hub = hub
        self.domain = committee_domain(chain_id, hub)
        self.envelopes = envelopes
        self.expire_grace = expire_grace
        self.max_buffered = max_buffered
        self.oracles: tuple[str, ...] = ()
        self.threshold = 0
        self._receiver: EnvelopeReceiver[ReportBody] = EnvelopeReceiver(
            self.domain, hub, senders=(), decode_body=decode_report_body, retained_rounds=1 << 16
        )
        self.replace_set(oracles, threshold)
        self._open: dict[int, _Open] = {}
        # finished queries with this node's own report (if any), to judge late reports
        self._finished: collections.OrderedDict[int, SignedReport | None] = (
            collections.OrderedDict()
        )
        self._buffered: collections.OrderedDict[tuple[int, bytes], Envelope] = (
            collections.OrderedDict()
        )
        self.refusals: collections.Counter[str] = collections.Counter()
        """Reports refused, by reason: ``malformed``, ``unregistered``, ``signature``,
        ``replay``, ``stale``, ``disagree``, ``overflow`` (buffer full)."""
        self.reports_sent = 0
        self.reports_accepted = 0

    # -- the committee ------------------------------------------------------------------
    def replace_set(self, oracles: Sequence[str], threshold: int) -> None:
        """Follow the hub's oracle set (at start and on ``OracleSetReplaced``)."""
        if not 0 < threshold <= len(oracles):
            raise InvalidInput(f"threshold {threshold} does not fit {len(oracles)} oracles")
        self.oracles = tuple(oracles)
        self.threshold = threshold
        self._receiver.senders = frozenset(o for o in oracles if o != self.me)

    @property
    def registered(self) -> bool:
        """Whether this node is in the current set (else it observes and reports nothing)."""
        return self.me in self.oracles

    def designated(self, query_id: int) -> str:
        """The member that sends a query's transactions first."""
        return self.oracles[query_id % len(self.oracles)]

    def rank(self, query_id: int) -> int:
        """This member's distance after the designated one (0: it is the designated)."""
        return takeover_rank(self.oracles, self.designated(query_id), self.me)

    @property
    def open_queries(self) -> list[Query]:
        """Queries this node is working on."""
        return [state.query for state in self._open.values()]

    # -- inputs -------------------------------------------------------------------------
    def query_seen(self, query: Query) -> list[Action]:
        """A query (or a new attempt of it) is on-chain: observe its source."""
        if query.query_id in self._finished or not self.registered:
            return []
        state = self._open.get(query.query_id)
        if state is not None and state.query.attempt >= query.attempt:
            return []
        self._open[query.query_id] = _Open(query)
        actions: list[Action] = [Fetch(query)]
        for key, waiting in list(self._buffered.items()):
            if key[0] != query.query_id or _attempt_of(waiting) > query.attempt:
                continue  # another query, or an attempt this node has not seen yet
            envelope = self._buffered.pop(key)
            with contextlib.suppress(InvalidInput, ReplayedMessage):  # refusals are counted
                actions += self._take(envelope)
        return actions

    def observed(self, query_id: int, attempt: int, observation: Observation) -> list[Action]:
        """This node read the source of an attempt: sign, send, and see if t agree."""
        state = self._open.get(query_id)
        if state is None or state.query.attempt != attempt or state.own is not None:
            return []
        report = HubReport(
            query_id, observation.digest, observation.value, observation.observed_at,
            state.query.source,
        )  # fmt: skip
        state.own = report.sign(self.key, self.chain_id, self.hub)
        body = ReportBody.of(state.own, attempt=attempt)
        envelope = self.envelopes.sign(query_id, REPORT, body.encode())
        others = tuple(o for o in self.oracles if o != self.me)
        self.reports_sent += 1
        actions: list[Action] = [Send(others, envelope)] if others else []
        self._count_disagreement(state)
        return actions + self._check(state)

    def receive(self, payload: bytes | Envelope) -> list[Action]:
        """Another member's report; raises (and counts) when refused."""
        try:
            envelope = decode_envelope(payload) if isinstance(payload, bytes) else payload
        except InvalidInput:
            self.refusals["malformed"] += 1
            raise
        if envelope.sender not in self.oracles:
            self.refusals["unregistered"] += 1
            raise InvalidSignature(f"{envelope.sender} is not a registered oracle of this hub")
        state = self._open.get(envelope.round)
        if envelope.round in self._finished:
            self._judge_late(envelope)
            return []
        if state is None or _attempt_of(envelope) > state.query.attempt:
            self._buffer(envelope)
            return []
        return self._take(envelope)

    def finished(self, query_id: int) -> None:
        """The hub answered or timed out the query: forget it (but for our own report)."""
        state = self._open.pop(query_id, None)
        self._finished[query_id] = state.own if state is not None else None
        if len(self._finished) > self.max_buffered:
            self._finished.popitem(last=False)
        for key in [k for k in self._buffered if k[0] == query_id]:
            del self._buffered[key]

    def tick(self, now: float) -> list[Action]:
        """Expire every attempt past its deadline (once per attempt)."""
        actions: list[Action] = []
        for state in self._open.values():
            q = state.query
            if not state.expired and now >= q.deadline + self.expire_grace:
                state.expired = True
                actions.append(
                    Submit(submission_round(q.query_id, q.attempt), Expiry(q.query_id, q.attempt))
                )
        return actions

    # -- internals ----------------------------------------------------------------------
    def _buffer(self, envelope: Envelope) -> None:
        key = (envelope.round, envelope.signature.to_bytes())
        if key in self._buffered:
            return
        if len(self._buffered) >= self.max_buffered:
            self._buffered.popitem(last=False)
            self.refusals["overflow"] += 1
        self._buffered[key] = envelope

    def _take(self, envelope: Envelope) -> list[Action]:
        try:
            received = self._receiver.accept(envelope)
        except InvalidSignature:
            self.refusals["signature"] += 1
            raise
        except ReplayedMessage:
            self.refusals["replay"] += 1
            raise
        except InvalidInput:
            self.refusals["malformed"] += 1
            raise
        state = self._open[envelope.round]
        body = received.body
        if body.attempt < state.query.attempt:
            self.refusals["stale"] += 1
            return []
        signed = body.signed(state.query.query_id, state.query.source, received.sender)
        try:
            signed.verify(self.chain_id, self.hub)
        except InvalidSignature:
            self.refusals["signature"] += 1
            raise
        self.reports_accepted += 1
        state.reports[received.sender] = signed
        self._count_disagreement(state)
        return self._check(state)

    def _check(self, state: _Open) -> list[Action]:
        own = state.own
        if own is None or state.submitted:
            return []
        agreeing = [
            signed
            for _, signed in sorted(state.reports.items(), key=lambda item: int(item[0], 16))
            if _agrees(signed, own)
        ]
        if 1 + len(agreeing) < self.threshold:
            return []
        state.submitted = True
        chosen = [own, *agreeing[: self.threshold - 1]]
        q = state.query
        return [Submit(submission_round(q.query_id, q.attempt), Fulfillment.of(chosen))]

    def _count_disagreement(self, state: _Open) -> None:
        if state.own is None:
            return  # judged once this node has its own observation
        for signer, signed in state.reports.items():
            if signer not in state.disagreeing and not _agrees(signed, state.own):
                state.disagreeing.add(signer)
                self.refusals["disagree"] += 1

    def _judge_late(self, envelope: Envelope) -> None:
        """A report for a query already over: counted when it contradicts our own."""
        own = self._finished.get(envelope.round)
        if own is None:
            return
        with contextlib.suppress(InvalidInput, ReplayedMessage):
            received = self._receiver.accept(envelope)
            signed = received.body.signed(envelope.round, own.report.source, received.sender)
            signed.verify(self.chain_id, self.hub)
            if not _agrees(signed, own):
                self.refusals["disagree"] += 1


def _agrees(a: SignedReport, b: SignedReport) -> bool:
    return (a.report.response_digest, a.report.value) == (b.report.response_digest, b.report.value)


def _attempt_of(envelope: Envelope) -> int:
    try:
        return decode_report_body(envelope).attempt
    except InvalidInput:
        return 0
