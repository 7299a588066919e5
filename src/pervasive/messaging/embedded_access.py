"""Who may connect to the embedded broker, and as what: certificate identities and the policy.

The MQTT client id IS the certificate's identity (its CN), as on mosquitto
(``use_identity_as_username`` + ``use_username_as_clientid``). :func:`connect_refusal`
judges a CONNECT from the TLS peer certificate and the client id it names, before the
broker looks up any session: a certificate revoked or not registered is refused with
CONNACK "not authorized", another client id with "identifier rejected", and the session
of that client id is not touched either way.

:class:`AccessState` is what the amqtt plugins consult: the revoked serials, the active
identities and, per client id, the certificate of its current connection, so a session
whose certificate was revoked loses access (and, at :meth:`EmbeddedBroker.refresh`, its
connection) at once.

Example::

    state = AccessState(credentials, ca.active_identities)
    state.reload()
    refusal = connect_refusal(state, peer_der, "lock-7")  # None: admitted
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from amqtt.contexts import Action
from amqtt.mqtt.connack import IDENTIFIER_REJECTED, NOT_AUTHORIZED
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from cryptography import x509

from pervasive.messaging.access import may_publish, may_receive, may_subscribe
from pervasive.messaging.tls import BrokerCredentials, certificate_identity, load_revoked_serials

__all__ = [
    "AccessPolicyPlugin",
    "AccessState",
    "CertificateAuthPlugin",
    "ConnectRefusal",
    "connect_refusal",
]

_log = logging.getLogger(__name__)


class ConnectRefusal(enum.Enum):
    """Why a CONNECT is refused: the value is the key counted in ``broker.refusals``."""

    NOT_AUTHORIZED = "not authorized"
    """No certificate, or one revoked or of an identity that holds no active certificate."""
    CLIENT_ID_MISMATCH = "client id mismatch"
    """The client id is not the certificate's identity."""

    @property
    def return_code(self) -> int:
        """The CONNACK return code that tells the client."""
        return int(NOT_AUTHORIZED if self is ConnectRefusal.NOT_AUTHORIZED else IDENTIFIER_REJECTED)


@dataclass(frozen=True)
class _Peer:
    identity: str
    serial: int


class AccessState:
    """What the plugins consult: revoked serials, active identities, session owners."""

    def __init__(
        self, credentials: BrokerCredentials, identities: Callable[[], Iterable[str]]
    ) -> None:
        self._credentials = credentials
        self._identities = identities
        self.revoked: frozenset[int] = frozenset()
        self.active: frozenset[str] = frozenset()
        self.sessions: dict[str, tuple[str, int]] = {}
        """client id -> (identity, certificate serial) of its current connection."""

    def reload(self) -> None:
        """Read the CRL and the active identities again."""
        self.revoked = load_revoked_serials(self._credentials.crl_file, self._credentials.ca_file)
        self.active = frozenset(self._identities())

    def admits(self, identity: str, serial: int) -> bool:
        """True when ``serial`` is not revoked and ``identity`` holds an active certificate."""
        return serial not in self.revoked and identity in self.active

    def identity_of(self, session: Any) -> str | None:
        """The identity a session may act as right now, or None."""
        owner = self.sessions.get(session.client_id)
        if owner is None or session.username != owner[0]:
            return None
        identity, serial = owner
        return identity if self.admits(identity, serial) else None


def _peer(ssl_object: Any) -> _Peer | None:
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    if not der:
        return None
    return _Peer(certificate_identity(der), x509.load_der_x509_certificate(der).serial_number)


def connect_refusal(state: AccessState, ssl_object: Any, client_id: str) -> ConnectRefusal | None:
    """Why a CONNECT naming ``client_id`` over this TLS connection is refused, or None.

    Example: ``connect_refusal(state, writer.get_ssl_info(), "lock-7")``.
    """
    peer = _peer(ssl_object)
    if peer is None or not state.admits(peer.identity, peer.serial):
        return ConnectRefusal.NOT_AUTHORIZED
    if client_id != peer.identity:
        return ConnectRefusal.CLIENT_ID_MISMATCH
    return None


class CertificateAuthPlugin(BaseAuthPlugin):  # type: ignore[misc]
    """amqtt auth plugin: records the certificate of an admitted connection.

    The broker refused everything else before amqtt saw the CONNECT
    (:func:`connect_refusal`); the check is repeated here against the current CRL.
    """

    @dataclass
    class Config:
        state: Any = None

    async def authenticate(self, *, session: Any) -> bool | None:
        """True when the session's certificate is admitted as its client id."""
        state: AccessState = self.config.state
        peer = _peer(session.ssl_object)
        if peer is None or connect_refusal(state, session.ssl_object, session.client_id):
            _log.info("refused %r as client id %r", peer, session.client_id)
            return False
        session.username = peer.identity
        state.sessions[session.client_id] = (peer.identity, peer.serial)
        return True


class AccessPolicyPlugin(BaseTopicPlugin):  # type: ignore[misc]
    """amqtt topic plugin: the access policy of :mod:`pervasive.messaging.access`."""

    @dataclass
    class Config:
        state: Any = None

    async def topic_filtering(
        self, *, session: Any = None, topic: str | None = None, action: Action | None = None
    ) -> bool | None:
        """May this session publish, subscribe to or receive ``topic``."""
        state: AccessState = self.config.state
        identity = state.identity_of(session) if session is not None else None
        if identity is None or not topic:
            return False
        if action == Action.PUBLISH:
            return may_publish(identity, topic)
        if action == Action.SUBSCRIBE:
            return may_subscribe(identity, topic)
        return may_receive(identity, topic)
