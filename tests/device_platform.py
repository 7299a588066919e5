"""A platform CA and a real mosquitto broker, and devices provisioned on it.

Shared by the device, trigger, acceptance and fault tests (each folder's
``conftest.py`` re-exports the ``device_platform`` fixture). Imported by name: pytest
puts ``tests/`` on ``sys.path`` for ``tests/conftest.py``.

``await device_platform.provision("lock-7")`` issues device certificates and returns
once the broker applied their ACL; ``folder("lock-7")`` returns the
:class:`~pervasive.devices.DeviceFolder` (issuing it if needed, without waiting);
``await service_options("svc:service")`` gives client options for a platform service.

A new identity reaches mosquitto's ACL through a reload in the background: a client
that connects before it is applied is admitted by its certificate but its publishes
are dropped, so tests provision before they connect.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pervasive import Platform
from pervasive.config import Settings
from pervasive.devices import DeviceFolder
from pervasive.messaging import (
    ClientOptions,
    MosquittoBroker,
    MqttClient,
    MqttMessage,
    find_mosquitto,
)
from pervasive.pki import CertificateAuthority


async def receive(client: MqttClient, count: int, timeout: float = 10.0) -> list[MqttMessage]:
    """The next ``count`` messages of ``client`` (TimeoutError if they do not come)."""
    received: list[MqttMessage] = []
    stream = client.messages()
    async with asyncio.timeout(timeout):
        while len(received) < count:
            received.append(await anext(stream))
    return received


@dataclass
class DevicePlatform:
    ca: CertificateAuthority
    broker: MosquittoBroker
    root: Path
    folders: dict[str, DeviceFolder] = field(default_factory=dict)

    def folder(self, device_id: str) -> DeviceFolder:
        if device_id not in self.folders:
            path = self.root / "devices" / device_id
            self.ca.write_credentials(self.ca.issue_device(device_id), path)
            self.folders[device_id] = DeviceFolder(path)
        return self.folders[device_id]

    async def provision(self, *device_ids: str) -> list[DeviceFolder]:
        folders = [self.folder(device_id) for device_id in device_ids]
        await self.broker.settle()
        return folders

    async def service_options(
        self, identity: str = "svc:service", **extra: object
    ) -> ClientOptions:
        path = self.root / "services" / identity.replace(":", "_")
        if not (path / "cert.pem").exists():
            self.ca.write_credentials(self.ca.issue_service(identity), path)
        await self.broker.settle()
        return ClientOptions(
            "127.0.0.1",
            self.broker.port,
            DeviceFolder(path).credentials(),
            **extra,  # type: ignore[arg-type]
        )


@pytest.fixture
async def device_platform(tmp_path: Path) -> AsyncIterator[DevicePlatform]:
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed (apt-get install -y mosquitto mosquitto-clients)")
    settings = Settings(home=tmp_path, broker="mosquitto", password="test password")
    async with Platform(settings) as platform:
        broker = await platform.broker()
        assert isinstance(broker, MosquittoBroker)
        yield DevicePlatform(platform.authority, broker, tmp_path)
