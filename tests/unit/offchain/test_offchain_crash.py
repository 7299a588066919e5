"""A node rebuilt from its SQLite journal after a crash never commits twice."""

from __future__ import annotations

from pathlib import Path

from offchain_harness import NODE_KEYS, TOTAL, Network, make_spec, windows_for

from pervasive.committee import Send, Submit
from pervasive.domain import SigningMode
from pervasive.offchain import (
    Agreed,
    Dispute,
    MessageKind,
    NodeProtocol,
    Phase,
    ProofsBody,
    SQLiteRoundJournal,
    decode_body,
)


def _node(index: int, spec, db: Path, **kwargs) -> NodeProtocol:
    key = NODE_KEYS[index]
    journal = SQLiteRoundJournal(db / f"node{index}.sqlite", spec.address, key.address)
    return NodeProtocol(key, spec, TOTAL, journal, **kwargs)


def test_restart_after_agreement_does_not_submit_again(tmp_path: Path) -> None:
    spec = make_spec(2, mode=SigningMode.RING)
    a, b = _node(0, spec, tmp_path), _node(1, spec, tmp_path)
    net = Network({a.address: a, b.address: b})
    [w] = windows_for(spec, 1)
    net.start(a.address, w)
    net.start(b.address, w)
    net.run()
    assert len(net.of(a.address, Submit)) == 1  # a holds the whole update of window 0

    restarted = _node(0, spec, tmp_path)  # crash: a new process on the same journal
    assert restarted.phase(0) is Phase.AGREED
    assert restarted.start_window(w, 100.0) == []
    from_b = [send for sender, send in net.sent if sender == b.address]
    assert from_b
    replayed = []
    for send in from_b:  # the broker redelivers everything b ever sent
        replayed += restarted.receive(send.envelope.encode(), 100.0)
    assert not any(isinstance(x, Submit | Agreed) for x in replayed)
    assert restarted.tick(1000.0) == []


def test_restart_mid_round_reuses_the_same_commitment(tmp_path: Path) -> None:
    spec = make_spec(2, mode=SigningMode.RING)
    a, b = _node(0, spec, tmp_path), _node(1, spec, tmp_path)
    [w] = windows_for(spec, 1)
    first = [x for x in a.start_window(w, 0.0) if isinstance(x, Send)]
    b.start_window(w, 0.0)
    for send in first:  # a's proof reaches b, then a crashes
        b.receive(send.envelope.encode(), 0.0)

    restarted = _node(0, spec, tmp_path)
    again = [x for x in restarted.start_window(w, 1.0) if isinstance(x, Send)]

    def proof_of(send: Send) -> object:
        body = decode_body(send.envelope)
        assert isinstance(body, ProofsBody)
        return body.proofs[0].proof

    assert proof_of(again[0]) == proof_of(first[0])  # same secret, same commitment
    assert again[0].envelope.nonce != first[0].envelope.nonce  # a new epoch: not a replay

    net = Network({restarted.address: restarted, b.address: b})
    net.absorb(restarted.address, again)
    net.run()
    for _ in range(4):
        net.tick(10.0)
    assert net.all_of(Dispute) == []
    assert len(net.all_of(Agreed)) == 2
    assert len(net.of(restarted.address, Submit)) == len(net.of(b.address, Submit)) == 1


def test_fast_leader_restart_resends_pending_compact_update(tmp_path: Path) -> None:
    spec = make_spec(2, mode=SigningMode.FAST)
    a, b = _node(0, spec, tmp_path), _node(1, spec, tmp_path)
    net = Network({a.address: a, b.address: b})
    [w] = windows_for(spec, 1)
    net.start(a.address, w)
    net.start(b.address, w)
    net.run()
    assert len(net.all_of(Agreed)) == 2 and net.all_of(Submit) == []  # P_0 waits for round 1

    restarted = _node(0, spec, tmp_path)  # the leader crashes before collecting P_0
    net.nodes[a.address] = restarted
    net.absorb(a.address, restarted.tick(0.0))
    net.run()
    [update] = net.all_of(Submit)
    assert update.round == 0
    net.absorb(a.address, restarted.tick(100.0))
    net.run()
    assert len(net.all_of(Submit)) == 1


def test_ring_node_restarted_before_it_held_every_update_signature_completes(
    tmp_path: Path,
) -> None:
    """The designated node agreed and sent its signature, then died before the others' came."""
    spec = make_spec(3, mode=SigningMode.RING)
    nodes = [_node(i, spec, tmp_path) for i in range(3)]
    a = nodes[0]
    assert spec.submitter_for(0) == a.address
    net = Network({n.address: n for n in nodes})
    net.drop = lambda sender, recipient, send: (
        recipient == a.address and send.envelope.kind == MessageKind.UPDATE_SIGNATURE
    )
    [w] = windows_for(spec, 1)
    for node in nodes:
        net.start(node.address, w)
    net.run()
    assert net.of(a.address, Submit) == []  # a lacks the others' signatures
    assert all(len(net.of(n.address, Submit)) == 1 for n in nodes[1:])

    restarted = _node(0, spec, tmp_path)
    net.nodes[a.address] = restarted
    net.drop = lambda sender, recipient, send: False
    net.absorb(a.address, restarted.tick(1.0))  # it signs again and asks
    net.run()
    [submit] = net.of(a.address, Submit)
    assert submit.round == 0 and len(submit.transaction.signatures) == 3
    assert submit.transaction == net.of(nodes[1].address, Submit)[0].transaction
    assert restarted.tick(2.0) == []  # resumed once
    assert all(len(net.of(n.address, Submit)) == 1 for n in nodes[1:])
