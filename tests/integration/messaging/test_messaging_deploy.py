"""deploy/mosquitto/mosquitto.conf, run for real with its paths moved to a temp folder."""

from __future__ import annotations

import asyncio
import os
import pwd
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from messaging_platform import NO_MOSQUITTO

from device_platform import receive
from pervasive.messaging import (
    BrokerUnavailable,
    ClientCredentials,
    ClientOptions,
    MqttClient,
    TopicDenied,
    find_mosquitto,
)
from pervasive.messaging.access import render_mosquitto_acl
from pervasive.messaging.mosquitto import free_port
from pervasive.pki import CertificateAuthority

pytestmark = [pytest.mark.mosquitto]
DEPLOY = Path(__file__).parents[3] / "deploy" / "mosquitto" / "mosquitto.conf"


@pytest.fixture
def deployed(tmp_path: Path) -> Iterator[tuple[CertificateAuthority, int]]:
    binary = find_mosquitto()
    if binary is None:
        pytest.skip(NO_MOSQUITTO)
    ca = CertificateAuthority.open(tmp_path / "etc" / "pki", "pw")
    ca.broker_credentials()
    for identity in ("lock-7", "svc:monitor"):
        issued = (
            ca.issue_service(identity) if identity.startswith("svc:") else ca.issue_device(identity)
        )
        ca.write_credentials(issued, tmp_path / "clients" / identity.replace(":", "_"))
    (tmp_path / "etc" / "mosquitto").mkdir()
    (tmp_path / "etc" / "mosquitto" / "acl").write_text(
        render_mosquitto_acl(ca.active_identities())
    )
    (tmp_path / "var").mkdir()
    port = free_port()
    config = (
        DEPLOY.read_text()
        .replace("/etc/pervasive/", f"{tmp_path}/etc/")
        .replace("/var/lib/pervasive/mosquitto/", f"{tmp_path}/var/")
        .replace("listener 8883 0.0.0.0", f"listener {port} 127.0.0.1")
        .replace("user mosquitto", f"user {pwd.getpwuid(os.getuid()).pw_name}")
    )
    (tmp_path / "mosquitto.conf").write_text(config)
    process = subprocess.Popen(
        [str(binary), "-c", str(tmp_path / "mosquitto.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield ca, port
    finally:
        process.terminate()
        process.wait(timeout=5)
        ca.close()


async def test_deploy_config_enforces_identities_and_acl(
    deployed: tuple[CertificateAuthority, int], tmp_path: Path
) -> None:
    _ca, port = deployed
    clients = tmp_path / "clients"

    def options(folder: str, *, check_access: bool = True) -> ClientOptions:
        base = clients / folder
        creds = ClientCredentials(base / "ca.pem", base / "cert.pem", base / "key.pem")
        return ClientOptions("127.0.0.1", port, creds, check_access=check_access)

    async with asyncio.timeout(10):
        while True:  # wait for mosquitto to listen
            try:
                monitor = MqttClient(options("svc_monitor"))
                await monitor.connect()
                break
            except BrokerUnavailable:
                await asyncio.sleep(0.05)
    async with monitor, MqttClient(options("lock-7", check_access=False)) as device:
        await monitor.subscribe("pervasive/#")
        await device.publish("pervasive/devices/lock-8/command", b"open")
        await device.publish("pervasive/devices/lock-7/telemetry", b"ok")
        (only,) = await receive(monitor, 1)
        assert (only.topic, only.payload) == ("pervasive/devices/lock-7/telemetry", b"ok")
    async with MqttClient(options("lock-7")) as checked:
        with pytest.raises(TopicDenied):
            await checked.publish("pervasive/devices/lock-8/command", b"open")
