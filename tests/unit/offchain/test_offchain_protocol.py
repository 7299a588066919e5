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

from pervasive.crypto import PrivateKey, sign_typed_data
from pervasive.errors import InvalidInput, InvalidSignature, ReplayedMessage
from pervasive.offchain import (
    Agreed,
    CompactUpdateCall,
    Dispute,
    DisputeKind,
    FullUpdateCall,
    FunctionMismatch,
    IntermediateNode,
    MessageKind,
    Phase,
    ProtocolMessage,
    QoS,
    Send,
    SigningMode,
    SubmitUpdate,
    WindowBuilder,
)
from pervasive.offchain.messages import (
    Reveal,
    SignedProof,
    decode_proofs_body,
    decode_reveal_body,
    encode_proofs_body,
    encode_reveal_body,
)
from pervasive.offchain.verification import verify_compact_update, verify_full_update

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


def submits(net: Network) -> list[SubmitUpdate]:
    return [a for a in net.all_of(SubmitUpdate) if isinstance(a, SubmitUpdate)]


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
    updates = submits(net)
    assert sorted(u.call.t for u in updates) == [0, 1, 2]
    verify = verify_compact_update if mode is SigningMode.FAST else verify_full_update
    for update in updates:
        checked = verify(spec, update.call.calldata())
        assert checked.result == TOTAL(windows[checked.t])
        assert checked.window_hash == windows[checked.t].hash


@pytest.mark.parametrize(
    ("mode", "per_window"),
    [
        (SigningMode.RING, lambda n: n * (3 * n - 2)),
        (SigningMode.LEADER, lambda n: 4 * (n - 1) + n * (n - 1)),
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


def test_fast_protocol_piggybacks_without_extra_messages_and_shrinks_calldata() -> None:
    leader_spec, fast_spec = (
        make_spec(3, mode=SigningMode.LEADER),
        make_spec(3, mode=SigningMode.FAST),
    )
    leader_net, fast_net = build_network(leader_spec), build_network(fast_spec)
    run_windows(leader_net, windows_for(leader_spec, 4), settle=False)
    run_windows(fast_net, windows_for(fast_spec, 4), settle=False)
    # windows 0..2 were piggybacked on rounds 1..3: same message count as the leader protocol
    assert sorted(u.call.t for u in submits(fast_net)) == [0, 1, 2]
    count = lambda net: sum(n.stats.deliveries for n in net.nodes.values())  # noqa: E731
    assert count(fast_net) == count(leader_net)
    fast_net.tick(10.0)  # the last window's P_3 goes alone after the timeout
    assert sorted(u.call.t for u in submits(fast_net)) == [0, 1, 2, 3]
    full = max(len(u.call.calldata()) for u in submits(leader_net))
    compact = max(len(u.call.calldata()) for u in submits(fast_net))
    assert isinstance(submits(fast_net)[0].call, CompactUpdateCall)
    assert compact * 3 < full


def test_rotating_leader_fast_protocol() -> None:
    spec = make_spec(3, mode=SigningMode.FAST, static_leader=None)
    net = build_network(spec)
    run_windows(net, windows_for(spec, 4))
    updates = submits(net)
    assert sorted(u.call.t for u in updates) == [0, 1, 2, 3]
    assert net.all_of(Dispute) == []
    for u in updates:
        sender = next(a for a, acts in net.outcomes.items() if u in acts)
        assert sender == spec.leader_for(u.call.t + 1)


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
    honest = IntermediateNode(NODE_KEYS[0], spec, TOTAL)
    [w] = windows_for(spec, 1)
    nonces = iter(range(1, 100))

    def lazy_says(kind: MessageKind, body: bytes) -> list:
        message = ProtocolMessage.create(
            lazy_key,
            domain,
            agreement=spec.address,
            window=0,
            kind=kind,
            nonce=next(nonces),
            body=body,
        )
        return honest.receive(message.encode(), 0.0)

    def lazy_signs(proof: SignedProof) -> SignedProof:
        return proof.with_signature(
            lazy_key.address, sign_typed_data(lazy_key, proof.proof.typed_hash(domain))
        )

    [ring] = [a for a in honest.start_window(w, 0.0) if isinstance(a, Send)]
    [honest_proof], _, _ = decode_proofs_body(ring.message.body, spec.address, 0)
    copied = lazy_signs(SignedProof(lazy_key.address, honest_proof.proof, {}))
    out = lazy_says(MessageKind.PROOF_RING, encode_proofs_body((copied,)))  # honest signs it
    [signed_copy] = [a for a in out if isinstance(a, Send)]
    [copied_full], _, _ = decode_proofs_body(signed_copy.message.body, spec.address, 0)
    out = lazy_says(MessageKind.PROOF_RING, encode_proofs_body((lazy_signs(honest_proof),)))
    out += lazy_says(MessageKind.PROOF_COMPLETE, encode_proofs_body((copied_full,)))
    [reveal_send] = [a for a in out if isinstance(a, Send) and a.message.kind is MessageKind.REVEAL]

    honest_reveal, _ = decode_reveal_body(reveal_send.message.body, spec.address, 0)
    stolen = Reveal(spec.address, 0, honest_reveal.result, honest_reveal.secret)
    final = lazy_says(
        MessageKind.REVEAL,
        encode_reveal_body(stolen, sign_typed_data(lazy_key, stolen.typed_hash(domain))),
    )
    [dispute] = [a for a in final if isinstance(a, Dispute)]
    assert dispute.kind is DisputeKind.BAD_REVEAL
    assert dispute.evidence.accused == lazy_key.address
    assert not any(isinstance(a, Agreed | SubmitUpdate) for a in final)
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
    kinds = {send.message.kind for sender, send in net.sent if sender == honest}
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
        if send.message.kind is MessageKind.REVEAL and not dropped:
            dropped.append(send)
            return True
        return False

    net.drop = drop_first_reveal
    run_windows(net, windows_for(spec, 1))
    assert dropped
    assert len(net.all_of(Agreed)) == 3
    assert len(submits(net)) == 1
    assert net.all_of(Dispute) == []


def test_replayed_protocol_message_is_rejected_and_counted() -> None:
    spec = make_spec(2)
    a_key, b_key = NODE_KEYS[0], NODE_KEYS[1]
    a = IntermediateNode(a_key, spec, TOTAL)
    b = IntermediateNode(b_key, spec, TOTAL)
    [w] = windows_for(spec, 1)
    b.start_window(w, 0.0)
    [send] = [x for x in a.start_window(w, 0.0) if isinstance(x, Send)]
    payload = send.message.encode()
    b.receive(payload, 0.0)
    with pytest.raises(ReplayedMessage):
        b.receive(payload, 0.0)
    assert b.stats.rejected["replay"] == 1


def test_forged_and_foreign_protocol_messages_are_rejected() -> None:
    spec = make_spec(2)
    b = IntermediateNode(NODE_KEYS[1], spec, TOTAL)
    domain = spec.domain_separator
    outsider = PrivateKey(b"\x77" * 32)
    foreign = ProtocolMessage.create(
        outsider,
        domain,
        agreement=spec.address,
        window=0,
        kind=MessageKind.REVEAL,
        nonce=1,
        body=b"",
    )
    with pytest.raises(InvalidSignature):
        b.receive(foreign.encode(), 0.0)
    genuine = ProtocolMessage.create(
        NODE_KEYS[0],
        domain,
        agreement=spec.address,
        window=0,
        kind=MessageKind.REVEAL,
        nonce=1,
        body=b"x",
    )
    tampered = ProtocolMessage(
        genuine.agreement,
        genuine.window,
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
        IntermediateNode(NODE_KEYS[0], spec, WRONG)


def test_onchain_qos_update_carries_window_data() -> None:
    spec = make_spec(2, qos=QoS.ONCHAIN_PROOF, mode=SigningMode.RING)
    net = build_network(spec)
    windows = windows_for(spec, 1)
    run_windows(net, windows)
    [update] = submits(net)
    assert isinstance(update.call, FullUpdateCall)
    assert verify_full_update(spec, update.call.calldata()).window_data == windows[0].encode()


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
    assert sorted(u.call.t for u in submits(net)) == [0, 1]


def test_fast_compact_update_is_the_contract_update_over_the_window_data() -> None:
    from pervasive.crypto import keccak256
    from pervasive.offchain import QoS
    from pervasive.offchain.window_data import WindowData

    spec = make_spec(3, mode=SigningMode.FAST, qos=QoS.ONCHAIN_PROOF)
    net = build_network(spec)
    windows = windows_for(spec, 3)
    run_windows(net, windows, settle=False)
    net.tick(10.0)  # the last window's P_2 goes alone
    agreed = {a.t: a for a in net.of(spec.nodes[1], Agreed) if isinstance(a, Agreed)}
    updates = submits(net)
    assert sorted(u.call.t for u in updates) == [0, 1, 2]
    for update in updates:
        call = update.call
        assert isinstance(call, CompactUpdateCall)
        checked = verify_compact_update(spec, call.calldata())
        assert checked.result == TOTAL(windows[call.t])
        assert call.update.proofs_hash == agreed[call.t].proofs_hash
        assert call.update.data_hash == keccak256(call.window_data)
        assert WindowData.decode(call.window_data).hash == windows[call.t].hash


def test_follower_refuses_a_compact_update_that_binds_other_proofs() -> None:
    from pervasive.offchain import CompactUpdate, DisputeKind
    from pervasive.offchain.messages import encode_proofs_body

    spec = make_spec(3, mode=SigningMode.FAST)
    net = build_network(spec)
    run_windows(net, windows_for(spec, 1), settle=False)  # window 0 agreed, P_0 pending
    leader = net.nodes[spec.leader_for(1)]
    follower = next(n for a, n in net.nodes.items() if a != leader.address)
    [agreed] = [a for a in net.of(follower.address, Agreed) if isinstance(a, Agreed)]
    assert agreed.result is not None
    forged = CompactUpdate(spec.address, 0, agreed.result, agreed.window_hash, bytes(32))
    signature = sign_typed_data(leader.key, forged.typed_hash(spec.domain_separator))
    message = ProtocolMessage.create(
        leader.key,
        spec.domain_separator,
        agreement=spec.address,
        window=0,
        kind=MessageKind.LEADER_BUNDLE,
        nonce=999,
        body=encode_proofs_body((), forged, {leader.address: signature}),
    )
    actions = follower.receive(message.encode(), net.now)
    assert [a.kind for a in actions if isinstance(a, Dispute)] == [DisputeKind.COMPACT_MISMATCH]
    assert not [a for a in actions if isinstance(a, Send)], "no signature on a forged P_0"
