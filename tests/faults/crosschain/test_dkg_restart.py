"""A notary member that crashes mid key generation restarts from SQLite and finishes.

Each member keeps its DKG state and nonce epochs in its own SQLite file. A crash is the
loss of the ``DkgMember`` object; the restart builds a new one on the same file. What
the broker does meanwhile is the variable: a persistent session holds the messages for
the member until it is back, a clean session loses them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from pathlib import Path

import pytest

from pervasive.committee import Envelope, Send, SQLiteEpochs
from pervasive.crosschain.dkg import DkgMember
from pervasive.crosschain.dkg_bodies import (
    DealBody,
    DkgFinished,
    DkgKind,
    DkgPhase,
    DkgSchedule,
    decode_dkg_body,
)
from pervasive.crosschain.dkg_store import SQLiteDkgStore
from pervasive.crypto import PrivateKey
from pervasive.crypto.bls import bls_public_key
from pervasive.errors import PervasiveError

N, T = 4, 3
SCHEDULE = DkgSchedule.starting(0.0, step=10.0)
KEYS = {i: PrivateKey((0xFA17 + i).to_bytes(32, "big")) for i in range(1, N + 1)}
INDEX_OF = {k.address: i for i, k in KEYS.items()}


class Network:
    """Members on their own SQLite files; one of them can crash and restart."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.members: dict[int, DkgMember | None] = {i: self.boot(i) for i in KEYS}
        self.queue: deque[tuple[int, Envelope]] = deque()
        self.held: deque[tuple[int, Envelope]] = deque()
        self.finished: dict[int, DkgFinished] = {}
        self.sent: dict[int, list[Envelope]] = {i: [] for i in KEYS}
        self.refused: dict[int, list[PervasiveError]] = {i: [] for i in KEYS}

    def boot(self, i: int) -> DkgMember:
        path = self.root / f"member-{i}.sqlite"
        return DkgMember(
            key=KEYS[i], index=i, members={j: k.public_key for j, k in KEYS.items()},
            threshold=T, chain_id=31337, setup_nonce=b"\x5e" * 32, schedule=SCHEDULE,
            store=SQLiteDkgStore(path), epochs=SQLiteEpochs(path),
        )  # fmt: skip

    def member(self, i: int) -> DkgMember:
        member = self.members[i]
        assert member is not None
        return member

    def dispatch(self, i: int, actions: Sequence[object]) -> None:
        for action in actions:
            if isinstance(action, Send):
                self.sent[i].append(action.envelope)
                self.queue.extend((INDEX_OF[a], action.envelope) for a in action.recipients)
            elif isinstance(action, DkgFinished):
                self.finished[i] = action

    def deliver(self, now: float, *, persistent: bool, limit: int | None = None) -> None:
        delivered = 0
        while self.queue and (limit is None or delivered < limit):
            recipient, envelope = self.queue.popleft()
            member = self.members[recipient]
            if member is None:
                if persistent:  # the broker keeps it for the member's session
                    self.held.append((recipient, envelope))
                continue
            delivered += 1
            try:
                self.dispatch(recipient, member.receive(envelope.encode(), now))
            except PervasiveError as exc:
                self.refused[recipient].append(exc)

    def crash(self, i: int) -> None:
        self.members[i] = None

    def restart(self, i: int, now: float) -> list[object]:
        member = self.boot(i)
        self.members[i] = member
        actions: list[object] = list(member.start(now))
        self.dispatch(i, actions)
        self.queue.extend(self.held)
        self.held.clear()
        return actions

    def run_out_the_clock(self, *, persistent: bool) -> None:
        for now in (SCHEDULE.deal_by, SCHEDULE.complain_by, SCHEDULE.justify_by,
                    SCHEDULE.result_by):  # fmt: skip
            for i in KEYS:
                self.dispatch(i, self.member(i).tick(now))
            self.deliver(now, persistent=persistent)


def deals_of(envelopes: list[Envelope]) -> list[Envelope]:
    return [e for e in envelopes if e.kind == DkgKind.DKG_DEAL]


def assert_all_agree(network: Network) -> None:
    results = {i: f.result for i, f in network.finished.items()}
    assert set(results) == set(KEYS)
    assert len({r.group_key for r in results.values()}) == 1
    assert {r.qualified for r in results.values()} == {(1, 2, 3, 4)}
    for r in results.values():  # every share matches the public share the others derived
        assert bls_public_key(r.share) == results[1].public_shares[r.index]


@pytest.mark.parametrize("persistent", [True, False], ids=["broker-holds", "broker-loses"])
def test_a_member_that_crashes_after_dealing_resends_the_same_deal_and_finishes(
    tmp_path: Path, persistent: bool
) -> None:
    network = Network(tmp_path)
    for i in KEYS:
        network.dispatch(i, network.member(i).start(1.0))
    network.deliver(1.0, persistent=persistent, limit=4)  # member 2 has seen part of it
    network.crash(2)
    network.deliver(1.0, persistent=persistent)
    first_deal = deals_of(network.sent[2])[0]

    resent = network.restart(2, 2.0)
    assert next(a.envelope for a in resent if isinstance(a, Send)) == first_deal
    network.deliver(2.0, persistent=persistent)
    network.run_out_the_clock(persistent=persistent)

    assert deals_of(network.sent[2]) == [first_deal, first_deal]  # never a second polynomial
    assert_all_agree(network)
    transcript = network.finished[1].transcript
    first_body = decode_dkg_body(first_deal)
    assert isinstance(first_body, DealBody)
    assert next(d for d in transcript.deals if d.dealer == 2).commitments == first_body.commitments
    # The resent deal is a duplicate delivery to the others, never a conflicting one.
    assert all(network.member(i).rejected["replay"] == 1 for i in (1, 3, 4))
    assert all(network.member(i).rejected["conflict"] == 0 for i in KEYS)
    complaints = {(c, a) for c, a, _ in transcript.complaints}
    # Deals lost while it was down come back to it as justifications.
    assert complaints == (set() if persistent else {(2, 3), (2, 4)})


def test_a_member_that_crashes_after_announcing_its_result_finishes_with_the_same_one(
    tmp_path: Path,
) -> None:
    network = Network(tmp_path)
    for i in KEYS:
        network.dispatch(i, network.member(i).start(1.0))
    while network.member(3).phase is not DkgPhase.AGREEING:
        network.deliver(1.0, persistent=True, limit=1)
    result_sent = [e for e in network.sent[3] if e.kind == DkgKind.DKG_RESULT]
    network.crash(3)
    network.deliver(1.0, persistent=True)

    network.restart(3, 3.0)
    network.deliver(3.0, persistent=True)
    network.run_out_the_clock(persistent=True)

    assert [e for e in network.sent[3] if e.kind == DkgKind.DKG_RESULT] == result_sent * 2
    assert_all_agree(network)
    assert network.member(3).phase is DkgPhase.DONE
    # A member that restarts after the end replays to the same result, sending nothing new.
    before = len(network.sent[3])
    network.crash(3)
    network.restart(3, 50.0)
    assert network.member(3).outcome() == network.finished[3].result
    assert network.sent[3][before:] and all(
        e in network.sent[3][:before] for e in network.sent[3][before:]
    )
