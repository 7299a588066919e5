"""The notary committee deciding challenges on real chains (paper 003, section V-C).

An ``undelivered`` challenge (C paid on B_u, P never posted on B_d) is refused while P's
deadline runs (WAIT), then punished exactly once however often and wherever it is
submitted again; the members' HTTP and MQTT inputs refuse and count what is malformed,
forged or replayed.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import pytest
from crosschain_harness import (
    WINDOW,
    deposits,
    status,
    submit,
    undelivered_challenge,
    wait_outcome,
    wait_settled,
)

from pervasive.apps.dataexchange.world import ExchangeWorld
from pervasive.committee import EnvelopeSigner, decode_envelope
from pervasive.crosschain.challenge import Challenge, ChallengeKind
from pervasive.crosschain.notary import NOTARY_PREFIX, NotaryService
from pervasive.crosschain.penalties import SERVING_ROUND, ChallengeBody, ServingKind
from pervasive.crypto import PrivateKey
from pervasive.messaging import MqttClient

pytestmark = [
    pytest.mark.anvil,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.xdist_group("notary-challenges"),
]


async def test_undelivered_waits_for_the_deadline_then_penalizes_p_exactly_once(
    evm_world: ExchangeWorld,
) -> None:
    w = evm_world
    challenge, required = await undelivered_challenge(w)
    c_deposit, p_deposit = await deposits(w)
    c_balance = await w.user_ledger.balance(w.consumer_signer.address)
    code, body = await submit(w, 1, challenge)
    assert (code, body["new"]) == (202, True)
    assert body["challenge_id"] == "0x" + challenge.id.hex()
    # P's deadline (T after the pay's block) has not passed: nothing moves yet
    waiting = await wait_outcome(w, 1, challenge, "wait", timeout=5)
    assert waiting["reason"] == "the provider's deadline has not passed"
    assert waiting["settled"] is False
    assert await deposits(w) == (c_deposit, p_deposit)
    await wait_settled(w, challenge, timeout=WINDOW + 30)
    assert await deposits(w) == (c_deposit, p_deposit - required)
    assert await w.user_ledger.balance(w.consumer_signer.address) == c_balance + required
    # the same challenge again, at the same member and at another: known, nothing moves twice
    for member in (1, 4):
        code, body = await submit(w, member, challenge)
        assert (code, body["new"]) == (202, False)
    await asyncio.sleep(1.5)  # time for a (wrong) second penalty to be signed and sent
    assert await deposits(w) == (c_deposit, p_deposit - required)
    assert await w.user_ledger.balance(w.consumer_signer.address) == c_balance + required
    assert sum(m.stats.penalties_sent for m in w.committee.members) == 1
    code, final = await status(w, 2, "0x" + challenge.id.hex())
    assert code == 200 and final["outcome"] == "penalize" and final["settled"] is True
    assert "never" in final["reason"]


PID, TX = "0x" + "11" * 32, "0x" + "22" * 32
MALFORMED: list[tuple[str, Any]] = [
    ("not json", b"{kind: undelivered"),
    ("a list", [1, 2]),
    ("null", b"null"),
    ("empty object", {}),
    ("unknown kind", {"kind": "stolen", "payment_id": PID, "evidence": "0x11"}),
    ("short payment id", {"kind": "undelivered", "payment_id": "0x11", "evidence": TX}),
    ("payment id not hex", {"kind": "undelivered", "payment_id": "0x" + "zz" * 32, "evidence": TX}),
    ("payment id a number", {"kind": "undelivered", "payment_id": 7, "evidence": TX}),
    ("evidence not a tx hash", {"kind": "undelivered", "payment_id": PID, "evidence": "0x22"}),
    ("unpaid without evidence", {"kind": "unpaid", "payment_id": PID, "evidence": "0x"}),
    ("deeply nested", b"[" * 4_000),
    ("not utf-8", b"\xff\xfe{}"),
]


async def test_malformed_challenges_are_refused_with_a_reason_and_counted(
    evm_world: ExchangeWorld,
) -> None:
    w = evm_world
    member = w.committee.members[2]
    assert member.server is not None
    before = member.server.rejections["bad_challenge"]
    known = member.stats.challenges
    for name, body in MALFORMED:
        code, answer = await submit(w, 3, body)
        assert code == 400, name
        assert answer["ok"] is False and answer["reason"] == "bad_challenge", name
        assert answer["error"], name
    assert member.server.rejections["bad_challenge"] == before + len(MALFORMED)
    assert member.stats.challenges == known  # none of them was taken
    # unknown and malformed ids
    unknown = "0x" + secrets.token_bytes(32).hex()
    for raw in (unknown, "0x1234", "not-hex", ""):
        code, answer = await status(w, 3, raw)
        assert code == 404 and answer["reason"] == "unknown_challenge", raw
    # a deposit check for an account that never deposited
    stranger = PrivateKey(secrets.token_bytes(32)).address
    url = f"{w.committee.urls[2]}/check"
    query = {"consumer": stranger, "provider": w.provider.address, "amount": "1000"}
    async with w.session.get(url, params=query) as reply:
        assert reply.status == 400
        answer = await reply.json(content_type=None)
    assert answer["ok"] is False and answer["reason"] == "unknown_consumer"
    async with w.session.get(f"{w.committee.urls[2]}/metrics") as reply:
        metrics = await reply.text()
    assert 'reason="unknown_consumer"' in metrics


def _inbox(member: NotaryService) -> str:
    return f"{NOTARY_PREFIX}/{member.session.lower()}/{member.address.lower()}"


async def test_forged_and_replayed_envelopes_are_refused_and_counted(
    evm_world: ExchangeWorld,
) -> None:
    w = evm_world
    m1 = w.committee.members[0]
    probe = MqttClient(w.platform.client_options("svc:notary.probe"))
    await probe.connect()
    try:
        await probe.subscribe(_inbox(m1))
        # a challenge naming no payment (refused by every member: nothing to sign)
        bogus = Challenge(
            ChallengeKind.UNDELIVERED, secrets.token_bytes(32), secrets.token_bytes(32)
        )
        code, _ = await submit(w, 2, bogus)
        assert code == 202
        captured: bytes | None = None
        async with asyncio.timeout(10):
            async for message in probe.messages():
                if message.topic == _inbox(m1):
                    envelope = decode_envelope(message.payload)
                    if envelope.kind == ServingKind.CHALLENGE:
                        captured = message.payload
                        break
        assert captured is not None
        await wait_outcome(w, 1, bogus, "refuse")
        rejected = dict(m1._receiver.rejected)
        challenges = m1.stats.challenges
        # 1) the genuine relay published again: a replay
        await probe.publish(_inbox(m1), captured)
        # 2) a well-formed challenge envelope signed by a key outside the committee
        forged = Challenge(
            ChallengeKind.UNDELIVERED, secrets.token_bytes(32), secrets.token_bytes(32)
        )
        outsider = EnvelopeSigner(
            PrivateKey(secrets.token_bytes(32)), m1._dkg.domain, m1.session, epoch=1
        )
        envelope = outsider.sign(
            SERVING_ROUND, ServingKind.CHALLENGE, ChallengeBody(forged).encode()
        )
        await probe.publish(_inbox(m1), envelope.encode())
        await probe.flush(timeout=10)
        async with asyncio.timeout(10):
            while (
                m1._receiver.rejected["signature"] < rejected.get("signature", 0) + 1
                or m1._receiver.rejected["replay"] < rejected.get("replay", 0) + 1
            ):
                await asyncio.sleep(0.05)
    finally:
        await probe.close()
    assert m1._receiver.rejected["replay"] == rejected.get("replay", 0) + 1
    assert m1._receiver.rejected["signature"] == rejected.get("signature", 0) + 1
    assert m1.stats.challenges == challenges
    assert m1.state.challenge(forged.id) is None
    code, _ = await status(w, 1, "0x" + forged.id.hex())
    assert code == 404
