"""CSRF protection: every POST carries its session's token, as a form field or a header.

The token is random per session (:class:`~pervasive.web.sessions.Session`), put in
every form as a hidden ``csrf_token`` field and in every page's
``<meta name="csrf-token">`` for ``fetch`` (header ``X-CSRF-Token``). A POST whose
token is missing or not the session's is refused (403) before anything else
happens. Together with SameSite=Lax cookies this stops another site from posting
in a signed-in user's name; sign-in itself is protected too (login CSRF).

Example::

    form = await checked_form(request)      # WebRequestRefused unless the token matches
    price = form.get("price")
"""

from __future__ import annotations

import hmac

from starlette.datastructures import FormData
from starlette.requests import Request

from pervasive.web.refusals import WebRequestRefused
from pervasive.web.sessions import Session

__all__ = ["CSRF_FIELD", "CSRF_HEADER", "check_token", "checked_form", "session_of"]

CSRF_FIELD = "csrf_token"
"""The hidden form field holding the token."""
CSRF_HEADER = "x-csrf-token"
"""The request header holding the token (``fetch`` calls)."""

_MAX_FORM_FIELDS = 32
_MAX_FIELD_BYTES = 64 * 1024


def session_of(request: Request) -> Session:
    """The request's session (set by :class:`~pervasive.web.sessions.SessionMiddleware`)."""
    session: Session = request.state.session
    return session


def check_token(session: Session, given: str | None) -> None:
    """Refuse (403, reason ``csrf``) unless ``given`` is ``session``'s token.

    Example: ``check_token(session_of(request), request.headers.get(CSRF_HEADER))``.
    """
    if not given or not hmac.compare_digest(given.encode(), session.csrf_token.encode()):
        raise WebRequestRefused(
            403,
            "csrf",
            "This form was not sent from a page of this site or it has expired "
            "(for example after a sign-in or a restart): go back, reload the page and try again.",
        )


async def checked_form(request: Request) -> FormData:
    """The POSTed form after its CSRF token (field or header) is checked.

    Example: ``form = await checked_form(request)``.
    """
    form = await request.form(
        max_files=0, max_fields=_MAX_FORM_FIELDS, max_part_size=_MAX_FIELD_BYTES
    )
    token = form.get(CSRF_FIELD)
    if not isinstance(token, str):
        token = request.headers.get(CSRF_HEADER)
    check_token(session_of(request), token)
    return form
