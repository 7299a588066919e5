"""Helpers of the messaging tests: a platform CA and a real broker (amqtt or mosquitto).

Imported by name (``from messaging_platform import ...``): every test folder has a
``conftest.py``, so ``from conftest import`` would pick whichever was loaded first.

- ``platform``: CA + running broker, once per broker kind; mosquitto runs are marked
  ``mosquitto`` and skipped, with the reason, only when the binary is absent.
- ``mosquitto_platform``: the same, mosquitto only.
``await platform.options("lock-7")`` registers the identity on first use and returns
:class:`ClientOptions` for it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from pervasive import Platform as PervasivePlatform
from pervasive.config import Settings
from pervasive.messaging import (
    ClientCredentials,
    ClientOptions,
    EmbeddedBroker,
    MosquittoBroker,
    find_mosquitto,
)
from pervasive.messaging.topics import is_service_identity
from pervasive.pki import CertificateAuthority

NO_MOSQUITTO = "mosquitto is not installed (apt-get install -y mosquitto mosquitto-clients)"
needs_mosquitto = [
    pytest.mark.mosquitto,
    pytest.mark.skipif(find_mosquitto() is None, reason=NO_MOSQUITTO),
]


@dataclass
class Platform:
    ca: CertificateAuthority
    broker: MosquittoBroker | EmbeddedBroker
    root: Path
    kind: str
    issued: dict[str, ClientCredentials] = field(default_factory=dict)

    def credentials(self, identity: str) -> ClientCredentials:
        if identity not in self.issued:
            issued = (
                self.ca.issue_service(identity)
                if is_service_identity(identity)
                else self.ca.issue_device(identity)
            )
            folder = self.root / "clients" / identity.replace(":", "_")
            self.issued[identity] = self.ca.write_credentials(issued, folder)
        return self.issued[identity]

    async def options(self, identity: str, **changes: Any) -> ClientOptions:
        """Options for ``identity``, issued on first use; returns once the broker knows it.

        A new certificate changes the broker's ACL, which mosquitto applies on a
        reload in the background: connecting before it is applied would race it.
        """
        base = ClientOptions(
            "127.0.0.1", self.broker.port, self.credentials(identity), ack_timeout=5.0
        )
        await self.broker.settle()
        return replace(base, **changes)


async def _platform(kind: str, root: Path) -> AsyncIterator[Platform]:
    settings = Settings(home=root, broker=kind, password="test password")  # type: ignore[arg-type]
    async with PervasivePlatform(settings) as platform:
        broker = await platform.broker()
        yield Platform(platform.authority, broker, root, kind)
