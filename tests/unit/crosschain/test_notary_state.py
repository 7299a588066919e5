"""A member's durable state: the share sealed at rest, challenges decided once, contracts kept."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from pervasive.crosschain.challenge import Challenge, ChallengeKind, Outcome, Verdict
from pervasive.crosschain.committee_spec import CommitteeContracts
from pervasive.crosschain.dkg_bodies import DkgResult
from pervasive.crosschain.notary_state import ChallengeRecord, NotaryState
from pervasive.crypto import PrivateKey
from pervasive.errors import InvalidInput

SESSION = "0x" + "ab" * 20
KEY = PrivateKey(b"\x11" * 32)
# a recognisable share: its 32 bytes must not appear anywhere in the database files
SHARE = int.from_bytes(b"SHARE-SECRET-" + bytes(range(19)), "big")
RESULT = DkgResult(
    group_key=b"\x97" * 96,
    threshold=3,
    index=2,
    share=SHARE,
    public_shares={1: b"\x01" * 96, 2: b"\x02" * 96, 4: b"\x04" * 96},
    qualified=(1, 2, 4),
)
CONTRACTS = CommitteeContracts("0x" + "Aa" * 20, "0x" + "Bb" * 20, "0x" + "Cc" * 20, from_block=7)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "notary.sqlite"


def challenge(n: int, kind: ChallengeKind = ChallengeKind.UNDELIVERED) -> Challenge:
    return Challenge(kind, bytes([n]) * 32, bytes([n + 100]) * 32)


def test_the_share_round_trips_with_the_members_key(path: Path) -> None:
    NotaryState(path, SESSION, KEY).save_key(RESULT, "bafy-transcript")
    record = NotaryState(path, SESSION, PrivateKey(b"\x11" * 32)).key()  # after a restart
    assert record is not None
    assert record.result == RESULT
    assert record.result.share == SHARE
    assert record.transcript == "bafy-transcript"


def test_the_share_is_stored_sealed(path: Path) -> None:
    state = NotaryState(path, SESSION, KEY)
    state.save_key(RESULT, "bafy-transcript")
    state._db.execute("PRAGMA wal_checkpoint(FULL)")
    raw = SHARE.to_bytes(32, "big")
    files = [p for p in path.parent.iterdir() if p.name.startswith(path.name)]
    on_disk = b"".join(p.read_bytes() for p in files)
    assert b"bafy-transcript" in on_disk  # the check can see what is stored in clear
    assert raw not in on_disk
    assert raw[:13] not in on_disk


def test_another_key_cannot_open_the_share(path: Path) -> None:
    NotaryState(path, SESSION, KEY).save_key(RESULT, "cid")
    with pytest.raises(InvalidInput):
        NotaryState(path, SESSION, PrivateKey(b"\x12" * 32)).key()


def test_sealed_to_one_session_the_share_does_not_open_in_another(path: Path) -> None:
    NotaryState(path, SESSION, KEY).save_key(RESULT, "cid")
    db = sqlite3.connect(path)
    db.execute("UPDATE crosschain_keys SET session = ?", ("0x" + "cd" * 20,))
    db.commit()
    with pytest.raises(InvalidInput):
        NotaryState(path, "0x" + "cd" * 20, KEY).key()


def test_no_key_before_the_key_generation_and_sessions_are_apart(path: Path) -> None:
    assert NotaryState(path, SESSION, KEY).key() is None
    NotaryState(path, SESSION, KEY).save_key(RESULT, "cid")
    assert NotaryState(path, "0x" + "cd" * 20, KEY).key() is None


def test_contracts_are_saved_and_read(path: Path) -> None:
    state = NotaryState(path, SESSION, KEY)
    assert state.contracts() is None
    state.save_contracts(CONTRACTS)
    assert NotaryState(path, SESSION, KEY).contracts() == CONTRACTS
    moved = CommitteeContracts(CONTRACTS.notary, CONTRACTS.oracle, CONTRACTS.user_contract, 9)
    state.save_contracts(moved)
    assert state.contracts() == moved


def test_a_challenge_is_added_once(path: Path) -> None:
    state = NotaryState(path, SESSION, KEY)
    assert state.add_challenge(challenge(1)) is True
    assert state.add_challenge(challenge(1)) is False
    assert NotaryState(path, SESSION, KEY).add_challenge(challenge(1)) is False
    assert state.challenges() == [ChallengeRecord(challenge(1), None)]
    # the other kind about the same payment is another challenge
    assert state.add_challenge(Challenge(ChallengeKind.UNPAID, bytes([1]) * 32, b"raw")) is True


def test_a_verdict_is_recorded_and_read_back(path: Path) -> None:
    state = NotaryState(path, SESSION, KEY)
    state.add_challenge(challenge(1))
    verdict = Verdict(
        challenge(1), Outcome.PENALIZE, "late", cheater="0x" + "b0" * 20,
        victim="0x" + "c0" * 20, amount=2**255 + 1, ready_at=12.5,
    )  # fmt: skip
    state.record_verdict(verdict)
    assert NotaryState(path, SESSION, KEY).challenge(challenge(1).id) == ChallengeRecord(
        challenge(1), verdict
    )
    assert state.challenge(challenge(2).id) is None


def test_open_challenges_are_the_undecided_and_waiting_ones(path: Path) -> None:
    state = NotaryState(path, SESSION, KEY)
    for n in range(1, 5):
        state.add_challenge(challenge(n))
    state.record_verdict(Verdict(challenge(2), Outcome.WAIT, "not yet", ready_at=99.0))
    state.record_verdict(Verdict(challenge(3), Outcome.REFUSE, "paid"))
    state.record_verdict(Verdict(challenge(4), Outcome.PENALIZE, "late", amount=1))
    assert [r.challenge for r in state.open_challenges()] == [challenge(1), challenge(2)]
    assert [r.challenge for r in state.challenges()] == [challenge(n) for n in range(1, 5)]
    # a waiting challenge decided later leaves the open list
    state.record_verdict(Verdict(challenge(2), Outcome.PENALIZE, "late", amount=1))
    assert [r.challenge for r in state.open_challenges()] == [challenge(1)]
    # another session's challenges are not this one's
    assert NotaryState(path, "0x" + "cd" * 20, KEY).open_challenges() == []


def test_a_shared_connection_is_used_as_is() -> None:
    db = sqlite3.connect(":memory:")
    NotaryState(db, SESSION, KEY).save_key(RESULT, "cid")
    record = NotaryState(db, SESSION, KEY).key()
    assert record is not None
    assert record.result.share == SHARE
