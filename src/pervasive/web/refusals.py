"""What the web app refuses, and why: one exception carrying the page's status and reason.

A handler that cannot serve a request raises :class:`WebRequestRefused` with the HTTP
status, a short ``reason`` (the key counted in the app's refusal counter, read by tests
and the dashboard) and a message for the person at the browser: what went wrong and
what to do. The app's error handler renders it (an HTML page, or JSON for ``fetch``)
and counts it; nobody sees a traceback.

Example::

    raise WebRequestRefused(409, "already_sold", "This item was sold to someone else.")
"""

from __future__ import annotations

from pervasive.errors import UserError

__all__ = ["WebRequestRefused"]


class WebRequestRefused(UserError):
    """A request the web app refuses: HTTP ``status``, counter ``reason``, user message."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
