"""Server-side sessions: a random id in a signed cookie, everything else in server memory.

The browser holds only ``pervasive_session=<id>.<signature>`` (HttpOnly, SameSite=Lax,
Secure over https). The :class:`Session` behind it lives in this process: the CSRF
token, the flash messages, and after sign-in the account name and its unlocked
:class:`~pervasive.chain.Signer`, which therefore never reaches the browser, a log or
a disk. A session ends on sign-out, after ``settings.web.session_minutes`` idle
minutes, or when the process stops; its signer goes with it. Signing in gives a new
id (no session fixation).

:class:`SessionMiddleware` (pure ASGI) loads the session of every request into
``request.state.session`` and sets the cookie when the id changed.

Example::

    store = SessionStore(idle_seconds=1800)
    session, _ = store.load(None)              # a fresh anonymous session
    session = store.sign_in(session, "alice", signer)
    store.load(store.cookie_value(session))[0].account   # 'alice'
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from itsdangerous import BadSignature
from itsdangerous import Signer as CookieSigner
from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pervasive.chain import Signer

__all__ = ["COOKIE_NAME", "FlashKind", "Session", "SessionMiddleware", "SessionStore"]

COOKIE_NAME = "pervasive_session"
"""The session cookie's name."""

FlashKind = Literal["info", "error"]
"""A flash message is news (``info``) or a refusal (``error``)."""


@dataclass(eq=False)
class Session:
    """One browser's session: CSRF token, flashes and, once signed in, the account's signer."""

    id: str
    csrf_token: str
    last_seen: float
    account: str | None = None
    """The keystore account signed in, if any."""
    signer: Signer | None = field(default=None, repr=False)
    """The account's unlocked key: in this process's memory only."""
    wallet: str | None = None
    """An address this browser proved it holds with a wallet signature (EIP-1193 mode)."""
    flashes: list[tuple[FlashKind, str]] = field(default_factory=list)

    @property
    def address(self) -> str | None:
        """The signed-in account's address, else the proven wallet address, else ``None``."""
        return self.signer.address if self.signer is not None else self.wallet

    @property
    def addresses(self) -> list[str]:
        """Every address this session may act for (the account's and the wallet's)."""
        found = [self.signer.address] if self.signer is not None else []
        if self.wallet is not None and self.wallet not in found:
            found.append(self.wallet)
        return found

    def flash(self, text: str, kind: FlashKind = "info") -> None:
        """Keep a message for the next page this session sees."""
        self.flashes.append((kind, text))

    def take_flashes(self) -> list[tuple[FlashKind, str]]:
        """The pending messages, removed from the session."""
        taken, self.flashes = self.flashes, []
        return taken


class SessionStore:
    """The live sessions of this process, least recently used first.

    ``idle_seconds``: a session unused this long is dropped with its signer. ``limit``
    caps the sessions kept (cookie-less clients make one per request): beyond it the
    least recently used one goes. ``clock`` is ``time.monotonic`` except in tests.
    """

    def __init__(
        self,
        idle_seconds: float,
        *,
        limit: int = 50_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.idle_seconds = idle_seconds
        self._limit = limit
        self._clock = clock
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._cookies = CookieSigner(secrets.token_bytes(32), salt="pervasive.web.session")
        self._swept_at = clock()

    def __len__(self) -> int:
        return len(self._sessions)

    def cookie_value(self, session: Session) -> str:
        """The signed session id the browser keeps."""
        return self._cookies.sign(session.id).decode("ascii")

    def load(self, cookie: str | None) -> tuple[Session, bool]:
        """The session of ``cookie`` (touched), or a new one; ``True`` when it had expired."""
        now = self._clock()
        session_id = self._unsign(cookie)
        session = self._sessions.get(session_id) if session_id else None
        expired = False
        if session is not None and now - session.last_seen > self.idle_seconds:
            expired = session.signer is not None
            self._drop(session)
            session = None
        self._sweep(now)
        if session is None:
            return self._new(now), expired
        session.last_seen = now
        self._sessions.move_to_end(session.id)
        return session, False

    def sign_in(self, session: Session, account: str, signer: Signer) -> Session:
        """A new session (new id, new CSRF token) for ``account``; the old one is dropped."""
        fresh = self._new(self._clock())
        fresh.account, fresh.signer = account, signer
        fresh.wallet = session.wallet
        fresh.flashes = session.take_flashes()
        self._drop(session)
        return fresh

    def sign_out(self, session: Session) -> Session:
        """Drop ``session`` (and its signer); a new anonymous one takes its place."""
        self._drop(session)
        return self._new(self._clock())

    def sweep(self) -> int:
        """Drop every idle session now; returns how many went."""
        return self._sweep(self._clock(), force=True)

    def _sweep(self, now: float, *, force: bool = False) -> int:
        if not force and now - self._swept_at < min(60.0, self.idle_seconds):
            return 0
        self._swept_at = now
        dropped = 0
        while self._sessions:
            oldest = next(iter(self._sessions.values()))
            if now - oldest.last_seen <= self.idle_seconds:
                break
            self._drop(oldest)
            dropped += 1
        return dropped

    def _new(self, now: float) -> Session:
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), now)
        self._sessions[session.id] = session
        while len(self._sessions) > self._limit:
            self._drop(next(iter(self._sessions.values())))
        return session

    def _drop(self, session: Session) -> None:
        self._sessions.pop(session.id, None)
        session.signer = None

    def _unsign(self, cookie: str | None) -> str | None:
        if not cookie:
            return None
        try:
            return self._cookies.unsign(cookie).decode("ascii")
        except (BadSignature, UnicodeDecodeError):
            return None


class SessionMiddleware:
    """Loads ``request.state.session`` for every HTTP request outside ``skip`` prefixes.

    After an idle expiry the new session carries a flash saying so. The cookie is set
    whenever the response's session is not the one the request came with.
    """

    def __init__(self, app: ASGIApp, store: SessionStore, skip: tuple[str, ...] = ()) -> None:
        self.app = app
        self.store = store
        self.skip = skip

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or str(scope["path"]).startswith(self.skip):
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        cookie = connection.cookies.get(COOKIE_NAME)
        session, expired = self.store.load(cookie)
        if expired:
            minutes = self.store.idle_seconds / 60
            session.flash(f"Your session ended after {minutes:g} idle minutes: sign in again.")
        state = scope.setdefault("state", {})
        state["session"] = session
        secure = connection.url.scheme == "https"

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                current: Session = state["session"]
                value = self.store.cookie_value(current)
                if value != cookie:
                    headers = MutableHeaders(scope=message)
                    flags = "; Secure" if secure else ""
                    headers.append(
                        "set-cookie",
                        f"{COOKIE_NAME}={value}; Path=/; HttpOnly; SameSite=Lax{flags}",
                    )
            await send(message)

        await self.app(scope, receive, send_with_cookie)
