"""The intermediate-node protocol end to end over an in-memory network (paper 002, section 3)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from offchain_harness import (
    NODE_KEYS,
    REGISTRY,
    TOTAL,
    Network,
    build_network,
    make_spec,
    trace,
    windows_for,
)

from pervasive.committee import Envelope, Send, Submit
from pervasive.crypto import PrivateKey, keccak256, sign_typed_data
from pervasive.domain import QoS, SignedUpdate, SigningMode, Update
from pervasive.errors import InvalidInput, InvalidSignature, ReplayedMessage
from pervasive.offchain import (
    Agreed,
    Dispute,
    DisputeKind,
    FunctionMismatch,
    MessageKind,
    NodeProtocol,
    Phase,
    ProofsBody,
    Reveal,
    RevealBody,
    SignedProof,
    WindowBuilder,
    decode_body,
    verify_update,
)
from pervasive.offchain.window_data import WindowData

WRONG = REGISTRY.register("wrong", lambda w: "not the total", source="def wrong(w): ...")
NULL = REGISTRY.register("null", lambda w: None, source="def null(w): return None")


def run_windows(net: Network, windows: list, *, settle: bool = True) -> None:
    for w in windows:
        for address in net.nodes:
            net.start(address, w)
        net.run()
    if settle:
        for _ in range(4):
            net.tick(10.0)


def submits(net: Network) -> list[Submit[SignedUpdate]]:
    """Every Submit of every node (ring, leader: each node holds the update; fast: the leader)."""
    return [a for a in net.all_of(Submit) if isinstance(a, Submit)]


def updates_by_window(net: Network) -> dict[int, SignedUpdate]:
    """The one update of each window; every node that submits it submits the same one."""
    out: dict[int, SignedUpdate] = {}
    for address in net.nodes:
        mine = [a.transaction for a in net.of(address, Submit) if isinstance(a, Submit)]
        assert len({u.t for u in mine}) == len(mine), "a node submitted a window twice"
        for update in mine:
            assert out.setdefault(update.t, update) == update
    return out


def envelope(key: PrivateKey, spec, t: int, kind: MessageKind, body: bytes, nonce: int) -> bytes:
    return Envelope.create(
        key, spec.domain_separator, session=spec.address, round=t, kind=kind, nonce=nonce,
        body=body,
    ).encode()  # fmt: skip


MODES = [SigningMode.RING, SigningMode.LEADER, SigningMode.FAST]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("nodes", [2, 3])
def test_honest_nodes_agree_and_exactly_one_update_per_window(
    mode: SigningMode, nodes: int
) -> None:
    spec = make_spec(nodes, mode=mode)
    net = build_network(spec)
    windows = windows_for(spec, 3)
    run_windows(net, windows)
    assert net.all_of(Dispute) == []
    for address in net.nodes:
        agreed = net.of(address, Agreed)
        assert [a.t for a in agreed] == [0, 1, 2]
        assert [a.result for a in agreed] == [TOTAL(w) for w in windows]
        assert all(net.nodes[address].phase(t) is Phase.AGREED for t in range(3))
    updates = updates_by_window(net)
    assert sorted(updates) == [0, 1, 2]
    if mode is SigningMode.FAST:  # the leader of t+1 alone collects the signatures
        assert len(submits(net)) == 3
    else:  # every node holds the whole update: a stand-in can take over
        assert len(submits(net)) == 3 * nodes
    for update in updates.values():
        checked = verify_update(spec, update)
        assert checked.result == TOTAL(windows[checked.t])
        assert checked.window_hash == windows[checked.t].hash


@pytest.mark.parametrize(
    ("mode", "per_window"),
    [
        # the protocol's messages plus n(n-1) update signatures, in the envelope too
        (SigningMode.RING, lambda n: n * (3 * n - 2) + n * (n - 1)),
        (SigningMode.LEADER, lambda n: 4 * (n - 1) + n * (n - 1) + n * (n - 1)),
    ],
)
@pytest.mark.parametrize("nodes", [2, 3, 4])
def test_message_counts(mode: SigningMode, per_window, nodes: int) -> None:
    spec = make_spec(nodes, mode=mode)
    net = build_network(spec)
    run_windows(net, windows_for(spec, 2), settle=False)
    sent = sum(n.stats.deliveries for n in net.nodes.values())
    assert sent == 2 * per_window(nodes)
    assert net.delivered == sent


def test_fast_protocol_piggybacks_the_update_signatures() -> None:
    """Fig. 2B: the leader protocol's messages, minus the n(n-1) update signatures."""
    leader_spec, fast_spec = (
        make_spec(3, mode=SigningMode.LEADER),
        make_spec(3, mode=SigningMode.FAST),
    )
    leader_net, fast_net = build_network(leader_spec), build_network(fast_spec)
    run_windows(leader_net, windows_for(leader_spec, 4), settle=False)
    run_windows(fast_net, windows_for(fast_spec, 4), settle=False)
    # windows 0..2 were piggybacked on rounds 1..3; window 3's P_3 waits for round 4
    assert sorted(updates_by_window(fast_net)) == [0, 1, 2]
    count = lambda net: sum(n.stats.deliveries for n in net.nodes.values())  # noqa: E731
    assert count(fast_net) == count(leader_net) - 4 * 3 * 2
    kinds = {send.envelope.kind for _, send in fast_net.sent}
    assert MessageKind.UPDATE_SIGNATURE not in kinds
    fast_net.tick(10.0)  # the last window's P_3 goes alone after the timeout
    assert sorted(updates_by_window(fast_net)) == [0, 1, 2, 3]
    # one update path: both protocols send the same contract update
    leader_update, fast_update = updates_by_window(leader_net)[0], updates_by_window(fast_net)[0]
    assert len(leader_update.encode()) == len(fast_update.encode())
    assert len(fast_update.signatures) == 3


def test_rotating_leader_fast_protocol() -> None:
    spec = make_spec(3, mode=SigningMode.FAST, static_leader=None)
    net = build_network(spec)
    run_windows(net, windows_for(spec, 4))
    updates = submits(net)
    assert sorted(u.round for u in updates) == [0, 1, 2, 3]
    assert net.all_of(Dispute) == []
    for u in updates:
        sender = next(a for a, acts in net.outcomes.items() if u in acts)
        assert sender == spec.leader_for(u.round + 1)


@pytest.mark.parametrize("mode", MODES)
def test_wrong_result_opens_result_dispute(mode: SigningMode) -> None:
    spec = make_spec(3, mode=mode)
    wrong_spec_fn = {2: WRONG.__class__(TOTAL.name, TOTAL.source_hash, WRONG.function)}
    net = build_network(spec, wrong_spec_fn)
    run_windows(net, windows_for(spec, 1))
    disputes = net.all_of(Dispute)
    assert disputes and all(d.t == 0 for d in disputes)
    honest = [d for a in list(net.nodes)[:2] for d in net.of(a, Dispute)]
    assert {d.kind for d in honest} == {DisputeKind.RESULT_MISMATCH}
    assert submits(net) == [] and net.all_of(Agreed) == []


def test_null_result_agrees_and_writes_nothing() -> None:
    spec = make_spec(2, function=NULL)
    net = build_network(spec, {0: NULL, 1: NULL})
    run_windows(net, windows_for(spec, 2))
    assert [a.result for a in net.all_of(Agreed)] == [None] * 4
    assert submits(net) == []


@pytest.mark.parametrize("mode", MODES)
def test_node_that_missed_a_message_causes_window_hash_dispute(mode: SigningMode) -> None:
    spec = make_spec(2, mode=mode)
    net = build_network(spec)
    messages = trace(0, 3)
    full = WindowBuilder(spec.window)
    partial = WindowBuilder(spec.window)
    [w_full] = [w for m in messages for w in full.add(m)]
    partial.add(messages[0])
    partial.add(messages[2])
    [w_partial] = partial.mark_missing(spec.window.sensors[0], [1])  # gap reported
    a, b = list(net.nodes)
    net.start(a, w_full)
    net.start(b, w_partial)
    net.run()
    for address in (a, b):
        [dispute] = net.of(address, Dispute)
        assert dispute.kind is DisputeKind.WINDOW_HASH_MISMATCH
    assert submits(net) == []


def _lazy_copy_network(mode: SigningMode) -> tuple[Network, str, str]:
    """Node 1 is lazy: it sends node 0's proof of computation as its own."""
    spec = make_spec(2, mode=mode)
    net = build_network(spec)
    honest, lazy = list(net.nodes)
    original_drop = net.drop

    def intercept(sender: str, recipient: str, send: Send) -> bool:
        return sender == lazy or original_drop(sender, recipient, send)

    net.drop = intercept
    return net, honest, lazy


def test_lazy_node_copying_commitment_cannot_reveal() -> None:
    """Property P2: the commitment binds ID_i, so a copied proof cannot be opened by the copier.

    The lazy node (key 1) takes the honest node's proof of computation as its own, signs
    everything it is asked to, waits for the honest reveal, then replays the honest
    result and secret under its own name.
    """
    spec = make_spec(2, mode=SigningMode.RING)
    lazy_key, domain = NODE_KEYS[1], spec.domain_separator
    honest = NodeProtocol(NODE_KEYS[0], spec, TOTAL)
    [w] = windows_for(spec, 1)
    nonces = iter(range(1, 100))

    def lazy_says(kind: MessageKind, body: bytes) -> list:
        return honest.receive(envelope(lazy_key, spec, 0, kind, body, next(nonces)), 0.0)

    def lazy_signs(proof: SignedProof) -> SignedProof:
        return proof.with_signature(
            lazy_key.address, sign_typed_data(lazy_key, proof.proof.typed_hash(domain))
        )

    def proofs_of(send: Send) -> tuple[SignedProof, ...]:
        body = decode_body(send.envelope)
        assert isinstance(body, ProofsBody)
        return body.proofs

    [ring] = [a for a in honest.start_window(w, 0.0) if isinstance(a, Send)]
    [honest_proof] = proofs_of(ring)
    copied = lazy_signs(SignedProof(lazy_key.address, honest_proof.proof, {}))
    out = lazy_says(MessageKind.PROOF_RING, ProofsBody((copied,)).encode())  # honest signs it
    [signed_copy] = [a for a in out if isinstance(a, Send)]
    [copied_full] = proofs_of(signed_copy)
    out = lazy_says(MessageKind.PROOF_RING, ProofsBody((lazy_signs(honest_proof),)).encode())
    out += lazy_says(MessageKind.PROOF_COMPLETE, ProofsBody((copied_full,)).encode())
    [reveal_send] = [
        a for a in out if isinstance(a, Send) and a.envelope.kind == MessageKind.REVEAL
    ]

    honest_reveal = decode_body(reveal_send.envelope)
    assert isinstance(honest_reveal, RevealBody)
    stolen = Reveal(spec.address, 0, honest_reveal.reveal.result, honest_reveal.reveal.secret)
    final = lazy_says(
        MessageKind.REVEAL,
        RevealBody(stolen, sign_typed_data(lazy_key, stolen.typed_hash(domain))).encode(),
    )
    [dispute] = [a for a in final if isinstance(a, Dispute)]
    assert dispute.kind is DisputeKind.BAD_REVEAL
    assert dispute.evidence.accused == lazy_key.address
    assert not any(isinstance(a, Agreed | Submit) for a in final)
    assert not stolen.matches(copied_full.proof, lazy_key.address)


@pytest.mark.parametrize("mode", MODES)
def test_honest_node_never_reveals_before_lazy_node_commits(mode: SigningMode) -> None:
    """P2, the other half: results are revealed only after every node is committed."""
    net, honest, lazy = _lazy_copy_network(mode)
    [w] = windows_for(net.nodes[honest].agreement, 1)
    net.start(honest, w)  # the lazy node never computes, only listens
    net.run()
    for _ in range(5):
        net.tick(10.0)
    kinds = {send.envelope.kind for sender, send in net.sent if sender == honest}
    assert kinds and MessageKind.REVEAL not in kinds
    assert "REVEAL" not in net.nodes[honest].stats.sent
    [dispute] = net.of(honest, Dispute)
    assert dispute.kind is DisputeKind.TIMEOUT
    assert dispute.evidence.accused == lazy
    assert net.nodes[honest].stats.retries == 2


def test_lost_message_is_retried_and_window_still_agreed() -> None:
    spec = make_spec(3, mode=SigningMode.RING)
    net = build_network(spec)
    dropped: list[Send] = []

    def drop_first_reveal(sender: str, recipient: str, send: Send) -> bool:
        if send.envelope.kind == MessageKind.REVEAL and not dropped:
            dropped.append(send)
            return True
        return False

    net.drop = drop_first_reveal
    run_windows(net, windows_for(spec, 1))
    assert dropped
    assert len(net.all_of(Agreed)) == 3
    assert sorted(updates_by_window(net)) == [0]
    assert net.all_of(Dispute) == []


def test_replayed_protocol_message_is_rejected_and_counted() -> None:
    spec = make_spec(2)
    a_key, b_key = NODE_KEYS[0], NODE_KEYS[1]
    a = NodeProtocol(a_key, spec, TOTAL)
    b = NodeProtocol(b_key, spec, TOTAL)
    [w] = windows_for(spec, 1)
    b.start_window(w, 0.0)
    [send] = [x for x in a.start_window(w, 0.0) if isinstance(x, Send)]
    payload = send.envelope.encode()
    b.receive(payload, 0.0)
    with pytest.raises(ReplayedMessage):
        b.receive(payload, 0.0)
    assert b.stats.rejected["replay"] == 1


def test_forged_and_foreign_protocol_messages_are_rejected() -> None:
    spec = make_spec(2)
    b = NodeProtocol(NODE_KEYS[1], spec, TOTAL)
    outsider = PrivateKey(b"\x77" * 32)
    foreign = envelope(outsider, spec, 0, MessageKind.REVEAL, b"", 1)
    with pytest.raises(InvalidSignature):
        b.receive(foreign, 0.0)
    genuine = Envelope.create(
        NODE_KEYS[0], spec.domain_separator, session=spec.address, round=0,
        kind=MessageKind.REVEAL, nonce=1, body=b"x",
    )  # fmt: skip
    tampered = Envelope(
        genuine.session,
        genuine.round,
        genuine.kind,
        genuine.sender,
        genuine.nonce,
        b"y",
        genuine.signature,
    )
    with pytest.raises(InvalidSignature):
        b.receive(tampered.encode(), 0.0)
    with pytest.raises(InvalidInput):
        b.receive(b"\x00" * 10, 0.0)
    assert b.stats.rejected["signature"] == 2 and b.stats.rejected["malformed"] == 1


def test_node_refuses_function_with_other_source() -> None:
    spec = make_spec(2)
    with pytest.raises(FunctionMismatch):
        NodeProtocol(NODE_KEYS[0], spec, WRONG)


def test_onchain_qos_update_carries_window_data() -> None:
    spec = make_spec(2, qos=QoS.ONCHAIN_PROOF, mode=SigningMode.RING)
    net = build_network(spec)
    windows = windows_for(spec, 1)
    run_windows(net, windows)
    [update] = updates_by_window(net).values()
    assert verify_update(spec, update).window_data == update.data
    assert WindowData.decode(update.data).hash == windows[0].hash


@settings(max_examples=12, deadline=None)
@given(mode=st.sampled_from(MODES), nodes=st.integers(2, 3), seed=st.integers(0, 2**32))
def test_any_delivery_order_reaches_agreement(mode: SigningMode, nodes: int, seed: int) -> None:
    rng = random.Random(seed)
    spec = make_spec(nodes, mode=mode)
    net = build_network(spec)
    for w in windows_for(spec, 2):
        order = list(net.nodes)
        rng.shuffle(order)
        for address in order:
            net.start(address, w)
    net.run(rng=rng)
    for _ in range(4):
        net.tick(10.0)
    assert net.all_of(Dispute) == []
    assert len(net.all_of(Agreed)) == 2 * nodes
    assert sorted(updates_by_window(net)) == [0, 1]


def test_fast_compact_update_is_the_contract_update_over_the_window_data() -> None:
    spec = make_spec(3, mode=SigningMode.FAST, qos=QoS.ONCHAIN_PROOF)
    net = build_network(spec)
    windows = windows_for(spec, 3)
    run_windows(net, windows, settle=False)
    net.tick(10.0)  # the last window's P_2 goes alone
    agreed = {a.t: a for a in net.of(spec.nodes[1], Agreed) if isinstance(a, Agreed)}
    updates = updates_by_window(net)
    assert sorted(updates) == [0, 1, 2]
    for t, signed in updates.items():
        checked = verify_update(spec, signed)
        assert checked.result == TOTAL(windows[t])
        assert signed.update.proofs_hash == agreed[t].proofs_hash
        assert signed.update.data_hash == keccak256(signed.data)
        assert WindowData.decode(signed.data).hash == windows[t].hash


def test_follower_refuses_a_compact_update_that_binds_other_proofs() -> None:
    spec = make_spec(3, mode=SigningMode.FAST)
    net = build_network(spec)
    run_windows(net, windows_for(spec, 1), settle=False)  # window 0 agreed, P_0 pending
    leader = net.nodes[spec.leader_for(1)]
    follower = next(n for a, n in net.nodes.items() if a != leader.address)
    [agreed] = [a for a in net.of(follower.address, Agreed) if isinstance(a, Agreed)]
    assert agreed.result is not None
    forged = Update(spec.address, 0, agreed.result, agreed.window_hash, bytes(32))
    signature = forged.sign(leader.key, spec.chain_id)
    body = ProofsBody((), forged, {leader.address: signature}).encode()
    payload = envelope(leader.key, spec, 0, MessageKind.LEADER_BUNDLE, body, 999)
    actions = follower.receive(payload, net.now)
    assert [a.kind for a in actions if isinstance(a, Dispute)] == [DisputeKind.COMPACT_MISMATCH]
    assert not [a for a in actions if isinstance(a, Send)], "no signature on a forged P_0"
