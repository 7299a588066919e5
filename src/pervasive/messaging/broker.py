"""Which broker to run: the :class:`Broker` port and the factory that reads ``Settings.broker``.

``auto`` picks mosquitto when its binary is installed and the embedded amqtt broker
otherwise; ``mosquitto`` insists on mosquitto (and says how to install it).

Example::

    broker = create_broker(settings, ca.broker_credentials(), ca.active_identities)
    async with broker:
        ca.add_listener(broker.refresh)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

from pervasive.config import Settings
from pervasive.messaging.embedded import EmbeddedBroker
from pervasive.messaging.errors import BrokerUnavailable
from pervasive.messaging.mosquitto import MosquittoBroker, find_mosquitto
from pervasive.messaging.tls import BrokerCredentials, ClientCredentials

__all__ = ["Broker", "create_broker"]


class Broker(Protocol):
    """An MQTT broker with the platform's TLS identities and access policy."""

    host: str

    @property
    def port(self) -> int:
        """The TLS listener's port."""
        ...

    @property
    def running(self) -> bool:
        """True while the broker accepts connections."""
        ...

    async def start(self) -> None:
        """Start listening."""
        ...

    async def stop(self) -> None:
        """Stop listening and drop every connection."""
        ...

    def refresh(self) -> None:
        """Reload identities (ACL) and the CRL after a registration or revocation."""
        ...

    async def settle(self) -> None:
        """Wait until every :meth:`refresh` so far is in effect."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...


def create_broker(
    settings: Settings,
    credentials: BrokerCredentials,
    identities: Callable[[], Iterable[str]],
    *,
    directory: Path | None = None,
    admin: Callable[[], ClientCredentials] | None = None,
) -> MosquittoBroker | EmbeddedBroker:
    """The broker ``settings.broker`` asks for, on ``settings.mqtt_host:mqtt_port``.

    ``directory`` (mosquitto's configuration, ACL, log and persistence) defaults to
    ``<home>/mosquitto``. ``admin`` issues the certificate of
    :data:`~pervasive.messaging.mosquitto.BROKER_ADMIN_IDENTITY`, with which mosquitto
    closes the live sessions of a revoked identity; it is called only for mosquitto (the
    embedded broker closes them itself).

    Example: ``create_broker(load_settings({"broker": "embedded"}), creds, ca.active_identities)``.
    """
    binary = find_mosquitto()
    if settings.broker == "mosquitto" and binary is None:
        raise BrokerUnavailable(
            "broker 'mosquitto' was asked for but is not installed: "
            "apt-get install -y mosquitto mosquitto-clients, or set PERVASIVE_BROKER=embedded"
        )
    if settings.broker == "embedded" or binary is None:
        return EmbeddedBroker(
            credentials,
            identities,
            host=settings.mqtt_host,
            port=settings.mqtt_port,
            limits=settings.mqtt,
        )
    return MosquittoBroker(
        directory or settings.home / "mosquitto",
        credentials,
        identities,
        host=settings.mqtt_host,
        port=settings.mqtt_port,
        binary=binary,
        limits=settings.mqtt,
        admin=admin() if admin is not None else None,
    )
