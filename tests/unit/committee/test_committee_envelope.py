"""The committee envelope: its EIP-712 digest, its wire form, its admission at receipt."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pervasive.committee import (
    COUNTER_BITS,
    Envelope,
    EnvelopeReceiver,
    EnvelopeSigner,
    MemoryEpochs,
    SQLiteEpochs,
    decode_envelope,
)
from pervasive.committee.envelope import _decode_wire_fast
from pervasive.crypto import PrivateKey, abi_decode, abi_encode, checksum_address, hash_typed_data
from pervasive.domain import agreement_domain
from pervasive.errors import InvalidInput, InvalidSignature, ReplayedMessage

SESSION = "0x00000000000000000000000000000000000A11cE"
CHAIN_ID = 31337
DOMAIN = agreement_domain(CHAIN_ID, SESSION)
MEMBERS = [PrivateKey(bytes([0x11 + i]) * 32) for i in range(3)]
WIRE = ["address", "uint256", "uint8", "address", "uint64", "bytes", "bytes"]


def _document(envelope: Envelope) -> dict[str, Any]:
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Envelope": [
                {"name": "session", "type": "address"},
                {"name": "round", "type": "uint256"},
                {"name": "kind", "type": "uint8"},
                {"name": "sender", "type": "address"},
                {"name": "nonce", "type": "uint64"},
                {"name": "body", "type": "bytes"},
            ],
        },
        "primaryType": "Envelope",
        "domain": {
            "name": "DIVERSITY",
            "version": "1",
            "chainId": CHAIN_ID,
            "verifyingContract": SESSION,
        },
        "message": {
            "session": envelope.session,
            "round": envelope.round,
            "kind": envelope.kind,
            "sender": envelope.sender,
            "nonce": envelope.nonce,
            "body": envelope.body,
        },
    }


def test_envelope_digest_is_the_eip712_digest_of_the_typed_document() -> None:
    envelope = Envelope.create(
        MEMBERS[0], DOMAIN, session=SESSION, round=4, kind=6, nonce=9, body=b"body"
    )
    assert envelope.digest(DOMAIN) == hash_typed_data(_document(envelope)).digest
    assert envelope.verify(DOMAIN) == envelope.digest(DOMAIN)


@settings(max_examples=50, deadline=None)
@given(
    round_=st.integers(0, 2**256 - 1),
    kind=st.integers(0, 255),
    nonce=st.integers(0, 2**64 - 1),
    body=st.binary(max_size=300),
    tamper=st.one_of(st.none(), st.tuples(st.integers(0, 2000), st.integers(1, 255))),
)
def test_the_wire_form_is_the_abi_encoding_and_the_fast_decoder_agrees_with_abi_decode(
    round_: int, kind: int, nonce: int, body: bytes, tamper: tuple[int, int] | None
) -> None:
    envelope = Envelope.create(
        MEMBERS[0], DOMAIN, session=SESSION, round=round_, kind=kind, nonce=nonce, body=body
    )
    fields = [SESSION, round_, kind, envelope.sender, nonce, body]
    wire = envelope.encode()
    assert wire == abi_encode(WIRE, [*fields, envelope.signature.to_bytes()])
    assert decode_envelope(wire) == envelope
    if tamper is None:
        return
    at, flip = tamper
    damaged = bytearray(wire)
    damaged[at % len(wire)] ^= flip
    # the fast path either declines (the reference decoder then decides) or agrees with it
    fast = _decode_wire_fast(bytes(damaged))
    if fast is not None:
        session, r, k, sender, n, b, signature = abi_decode(WIRE, bytes(damaged))
        assert fast == (checksum_address(session), r, k, checksum_address(sender), n, b, signature)


def _receiver(me: int = 1) -> EnvelopeReceiver[bytes]:
    others = [k.address for i, k in enumerate(MEMBERS) if i != me]
    return EnvelopeReceiver(
        DOMAIN, SESSION, senders=others, decode_body=lambda e: e.body, retained_rounds=4
    )


def test_receiver_admits_once_and_counts_every_refusal() -> None:
    receiver = _receiver()
    signer = EnvelopeSigner(MEMBERS[0], DOMAIN, SESSION, epoch=1)
    envelope = signer.sign(0, 1, b"hello")
    received = receiver.accept(envelope.encode())
    assert (received.sender, received.round, received.body) == (MEMBERS[0].address, 0, b"hello")
    with pytest.raises(ReplayedMessage):
        receiver.accept(envelope.encode())
    outsider = EnvelopeSigner(PrivateKey(b"\x77" * 32), DOMAIN, SESSION, epoch=1)
    with pytest.raises(InvalidSignature):
        receiver.accept(outsider.sign(0, 1, b"x"))
    tampered = Envelope(*[getattr(envelope, f) for f in ("session", "round", "kind", "sender",
                        "nonce")], b"other", envelope.signature)  # fmt: skip
    with pytest.raises(InvalidSignature):
        receiver.accept(tampered)
    other_session = Envelope.create(
        MEMBERS[0], DOMAIN, session=MEMBERS[2].address, round=0, kind=1, nonce=5, body=b""
    )
    with pytest.raises(InvalidInput):
        receiver.accept(other_session)
    with pytest.raises(InvalidInput):
        receiver.accept(b"\x00" * 10)
    assert receiver.rejected == {"replay": 1, "signature": 2, "malformed": 2}


def test_receiver_refuses_rounds_older_than_it_remembers() -> None:
    receiver = _receiver()
    signer = EnvelopeSigner(MEMBERS[0], DOMAIN, SESSION, epoch=1)
    receiver.accept(signer.sign(10, 1, b""))
    receiver.accept(signer.sign(6, 1, b""))  # within the 4 retained rounds
    with pytest.raises(ReplayedMessage):
        receiver.accept(signer.sign(5, 1, b""))
    assert receiver.rejected["late"] == 1


def test_a_body_that_does_not_decode_is_malformed() -> None:
    def decode(envelope: Envelope) -> bytes:
        raise InvalidInput("not a body")

    receiver: EnvelopeReceiver[bytes] = EnvelopeReceiver(
        DOMAIN, SESSION, senders=[MEMBERS[0].address], decode_body=decode
    )
    with pytest.raises(InvalidInput):
        receiver.accept(EnvelopeSigner(MEMBERS[0], DOMAIN, SESSION, epoch=1).sign(0, 1, b""))
    assert receiver.rejected["malformed"] == 1


def test_nonces_never_repeat_across_restarts(tmp_path) -> None:
    path = tmp_path / "member.sqlite"
    first = SQLiteEpochs(path).next(SESSION, MEMBERS[0].address)
    second = SQLiteEpochs(path).next(SESSION, MEMBERS[0].address)  # a restarted process
    assert second > first
    assert SQLiteEpochs(path).next(SESSION, MEMBERS[1].address) == 1
    a = EnvelopeSigner(MEMBERS[0], DOMAIN, SESSION, epoch=first)
    b = EnvelopeSigner(MEMBERS[0], DOMAIN, SESSION, epoch=second)
    nonces = [a.sign(0, 1, b"").nonce for _ in range(3)] + [b.sign(0, 1, b"").nonce]
    assert nonces == sorted(set(nonces))
    assert nonces[-1] >> COUNTER_BITS == second
    memory = MemoryEpochs()
    assert [memory.next(SESSION, "m"), memory.next(SESSION, "m")] == [1, 2]
    with pytest.raises(InvalidInput):
        EnvelopeSigner(MEMBERS[0], DOMAIN, SESSION, epoch=1 << (64 - COUNTER_BITS))
