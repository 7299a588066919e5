"""Shadow service and device client over a real mosquitto broker, with a real SQLite file.

The messaging port is implemented here with aiomqtt only for this test; the platform's
own client lives in ``pervasive.messaging`` and the lead wires it in.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from pervasive.messaging.port import MqttConnection, MqttMessage
from pervasive.shadow.client import ShadowClient
from pervasive.shadow.document import JsonObject
from pervasive.shadow.protocol import ShadowKey
from pervasive.shadow.service import ShadowService
from pervasive.shadow.store import ShadowStore

pytestmark = [
    pytest.mark.mosquitto,
    pytest.mark.skipif(shutil.which("mosquitto") is None, reason="mosquitto is not installed"),
]


class AiomqttConnection:
    """The messaging port over one aiomqtt session (test-only)."""

    def __init__(self, client: aiomqtt.Client, client_id: str) -> None:
        self._client = client
        self._client_id = client_id

    @property
    def client_id(self) -> str:
        return self._client_id

    async def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> None:
        await self._client.publish(topic, payload, qos=qos, retain=retain)

    async def subscribe(self, topic_filter: str, *, qos: int = 1) -> None:
        await self._client.subscribe(topic_filter, qos=qos)

    async def messages(self) -> AsyncIterator[MqttMessage]:
        async for message in self._client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else b""
            yield MqttMessage(message.topic.value, payload, int(message.qos), message.retain)


@contextlib.asynccontextmanager
async def connect(port: int, client_id: str) -> AsyncIterator[AiomqttConnection]:
    async with aiomqtt.Client("127.0.0.1", port, identifier=client_id) as client:
        connection = AiomqttConnection(client, client_id)
        port_view: MqttConnection = connection  # checked by mypy: it satisfies the port
        assert port_view.client_id == client_id
        yield connection


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = tmp_path / "mosquitto.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    process = subprocess.Popen(
        ["mosquitto", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        for _ in range(100):
            with socket.socket() as attempt:
                if attempt.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


async def stop(task: asyncio.Task[None]) -> None:
    """Cancel until done: Python 3.11's wait_for (inside aiomqtt's publish) can swallow a cancel."""
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=0.2)
    with contextlib.suppress(asyncio.CancelledError):
        task.result()


async def eventually(condition: Any, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def shadow_service(port: int, path: Path, name: str) -> AsyncIterator[ShadowService]:
    store = ShadowStore.open(path)
    async with connect(port, name) as connection:
        service = ShadowService(connection, store)
        await service.start()
        task = asyncio.create_task(_serve(service, connection))
        try:
            yield service
        finally:
            await stop(task)
            store.close()


async def _serve(service: ShadowService, connection: AiomqttConnection) -> None:
    async for message in connection.messages():
        await service.handle(message)


async def test_offline_change_reaches_the_device_once_across_a_service_restart(
    mosquitto: int, tmp_path: Path
) -> None:
    database = tmp_path / "shadow.sqlite"
    commands: list[JsonObject] = []

    async def actuate(delta: JsonObject) -> JsonObject | None:
        commands.append(delta)
        return None

    device = ShadowClient("lock-1", actuate)
    async with (
        shadow_service(mosquitto, database, "shadow-1"),
        connect(mosquitto, "web-app") as app,
    ):
        await app.subscribe("$aws/things/lock-1/shadow/update/accepted")
        body = {"state": {"desired": {"door": "open"}}, "clientToken": "app-1"}
        await app.publish("$aws/things/lock-1/shadow/update", json.dumps(body).encode())
        async for message in app.messages():
            assert json.loads(message.payload)["clientToken"] == "app-1"
            break

    # the service restarts on the same database; the device was offline all along
    async with (
        shadow_service(mosquitto, database, "shadow-2") as service,
        connect(mosquitto, "lock-1") as connection,
    ):
        task = asyncio.create_task(device.serve(connection))
        reader = ShadowStore.open(database)

        def reported() -> JsonObject | None:
            record = reader.load(ShadowKey("lock-1"))
            return None if record is None else record.reported

        try:
            await eventually(lambda: reported() == {"door": "open"})
        finally:
            await stop(task)
            reader.close()
        assert service.rejections == {}
    assert commands == [{"door": "open"}]
    record = ShadowStore.open(database).load(ShadowKey("lock-1"))
    assert record is not None and record.version == 2 and record.delta() == {}
