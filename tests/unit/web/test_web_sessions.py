"""Server-side sessions: signed ids, idle expiry that drops the key, rotation at sign-in."""

from __future__ import annotations

from pervasive.chain import Signer
from pervasive.web.sessions import SessionStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_session_comes_back_with_its_signed_cookie_only() -> None:
    store = SessionStore(60, clock=Clock())
    session, expired = store.load(None)
    assert not expired
    cookie = store.cookie_value(session)
    assert store.load(cookie)[0] is session
    forged = session.id + "." + "A" * 27
    assert store.load(forged)[0] is not session  # an unsigned or re-signed id is a new session
    assert store.load(session.id)[0] is not session
    assert session.id in cookie and cookie != session.id


def test_sign_in_rotates_the_id_and_token_and_sign_out_drops_the_key() -> None:
    store = SessionStore(60, clock=Clock())
    anonymous, _ = store.load(None)
    anonymous.flash("kept across sign-in")
    signer = Signer.generate()
    signed = store.sign_in(anonymous, "alice", signer)
    assert signed.id != anonymous.id and signed.csrf_token != anonymous.csrf_token
    assert store.load(store.cookie_value(anonymous))[0] is not signed  # the old id is dead
    assert signed.signer is signer and signed.address == signer.address
    assert signed.take_flashes() == [("info", "kept across sign-in")]
    fresh = store.sign_out(signed)
    assert signed.signer is None and fresh.signer is None and fresh.account is None
    assert store.load(store.cookie_value(signed))[0] is not signed


def test_an_idle_session_ends_and_its_key_is_dropped() -> None:
    clock = Clock()
    store = SessionStore(60, clock=clock)
    session = store.sign_in(store.load(None)[0], "alice", Signer.generate())
    cookie = store.cookie_value(session)
    clock.now += 59
    assert store.load(cookie) == (session, False)  # used: the idle time starts again
    clock.now += 61
    replacement, expired = store.load(cookie)
    assert expired and replacement is not session
    assert session.signer is None  # the unlocked key is gone from memory


def test_sweep_drops_idle_sessions_and_the_limit_evicts_the_least_recent() -> None:
    clock = Clock()
    store = SessionStore(60, limit=3, clock=clock)
    first = store.load(None)[0]
    for _ in range(3):
        store.load(None)
    assert len(store) == 3
    assert store.load(store.cookie_value(first))[0] is not first  # evicted
    clock.now += 120
    assert store.sweep() == 3
    assert len(store) == 0


def test_signer_never_shows_in_a_session_repr() -> None:
    store = SessionStore(60, clock=Clock())
    signer = Signer.generate()
    session = store.sign_in(store.load(None)[0], "alice", signer)
    assert signer.private_key.hex() not in repr(session)
