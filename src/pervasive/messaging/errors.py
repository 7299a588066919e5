"""Errors of the messaging layer, each a :class:`~pervasive.errors.UserError`.

```
UserError
├── BrokerUnavailable     the broker cannot be started or reached
├── ConnectionRefused     the broker refused us: certificate unknown, revoked or expired
└── TopicDenied (PermissionError)   the access policy forbids this publish or subscribe
```
"""

from __future__ import annotations

from pervasive.errors import UserError

__all__ = ["BrokerUnavailable", "ConnectionRefused", "TopicDenied"]


class BrokerUnavailable(UserError):
    """The MQTT broker could not be started, or is not reachable right now."""


class ConnectionRefused(UserError):
    """The broker refused the connection (TLS handshake or CONNACK).

    Usually the client certificate is not signed by the platform CA, was revoked,
    or has expired: issue a new one with ``pervasive device cert <id> --rotate``.
    """


class TopicDenied(UserError, PermissionError):
    """The identity may not publish on, or subscribe to, this topic."""

    def __init__(self, identity: str, topic: str, action: str) -> None:
        self.identity = identity
        self.topic = topic
        self.action = action
        super().__init__(
            f"{identity!r} may not {action} {topic!r}: devices may use only "
            "pervasive/devices/<own id>/# and $aws/things/<own id>/shadow/#"
        )
