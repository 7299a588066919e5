"""A node rebuilt from its SQLite journal after a crash never commits twice."""

from __future__ import annotations

from pathlib import Path

from offchain_harness import NODE_KEYS, TOTAL, Network, make_spec, windows_for

from pervasive.offchain import (
    Agreed,
    Dispute,
    IntermediateNode,
    Phase,
    Send,
    SigningMode,
    SQLiteRoundJournal,
    SubmitUpdate,
)
from pervasive.offchain.messages import decode_proofs_body


def _node(index: int, spec, db: Path, **kwargs) -> IntermediateNode:
    key = NODE_KEYS[index]
    journal = SQLiteRoundJournal(db / f"node{index}.sqlite", spec.address, key.address)
    return IntermediateNode(key, spec, TOTAL, journal, **kwargs)


def test_restart_after_agreement_does_not_submit_again(tmp_path: Path) -> None:
    spec = make_spec(2, mode=SigningMode.RING)
    a, b = _node(0, spec, tmp_path), _node(1, spec, tmp_path)
    net = Network({a.address: a, b.address: b})
    [w] = windows_for(spec, 1)
    net.start(a.address, w)
    net.start(b.address, w)
    net.run()
    assert len(net.of(a.address, SubmitUpdate)) == 1  # a is the submitter of window 0

    restarted = _node(0, spec, tmp_path)  # crash: a new process on the same journal
    assert restarted.phase(0) is Phase.AGREED
    assert restarted.start_window(w, 100.0) == []
    from_b = [send for sender, send in net.sent if sender == b.address]
    assert from_b
    replayed = []
    for send in from_b:  # the broker redelivers everything b ever sent
        replayed += restarted.receive(send.message.encode(), 100.0)
    assert not any(isinstance(x, SubmitUpdate | Agreed) for x in replayed)
    assert restarted.tick(1000.0) == []


def test_restart_mid_round_reuses_the_same_commitment(tmp_path: Path) -> None:
    spec = make_spec(2, mode=SigningMode.RING)
    a, b = _node(0, spec, tmp_path), _node(1, spec, tmp_path)
    [w] = windows_for(spec, 1)
    first = [x for x in a.start_window(w, 0.0) if isinstance(x, Send)]
    b.start_window(w, 0.0)
    for send in first:  # a's proof reaches b, then a crashes
        b.receive(send.message.encode(), 0.0)

    restarted = _node(0, spec, tmp_path)
    again = [x for x in restarted.start_window(w, 1.0) if isinstance(x, Send)]
    proof_of = lambda s: decode_proofs_body(s.message.body, spec.address, 0)[0][0].proof  # noqa: E731
    assert proof_of(again[0]) == proof_of(first[0])  # same secret, same commitment
    assert again[0].message.nonce != first[0].message.nonce  # a new epoch: not a replay

    net = Network({restarted.address: restarted, b.address: b})
    net.absorb(restarted.address, again)
    net.run()
    for _ in range(4):
        net.tick(10.0)
    assert net.all_of(Dispute) == []
    assert len(net.all_of(Agreed)) == 2
    assert len(net.all_of(SubmitUpdate)) == 1


def test_fast_leader_restart_resends_pending_compact_update(tmp_path: Path) -> None:
    spec = make_spec(2, mode=SigningMode.FAST)
    a, b = _node(0, spec, tmp_path), _node(1, spec, tmp_path)
    net = Network({a.address: a, b.address: b})
    [w] = windows_for(spec, 1)
    net.start(a.address, w)
    net.start(b.address, w)
    net.run()
    assert len(net.all_of(Agreed)) == 2 and net.all_of(SubmitUpdate) == []  # P_0 waits for round 1

    restarted = _node(0, spec, tmp_path)  # the leader crashes before collecting P_0
    net.nodes[a.address] = restarted
    net.absorb(a.address, restarted.tick(0.0))
    net.run()
    [update] = net.all_of(SubmitUpdate)
    assert update.call.t == 0
    net.absorb(a.address, restarted.tick(100.0))
    net.run()
    assert len(net.all_of(SubmitUpdate)) == 1
