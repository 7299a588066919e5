"""``pervasive broker run`` and ``pervasive shadow run|get`` as the processes an operator starts.

Both run as real subprocesses of the ``pervasive`` command; a device talks to them over
TLS with its own certificate; Ctrl-C (SIGINT) stops them cleanly, and the shadow
survives the restart of its service in ``<home>/shadow.sqlite``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pervasive.messaging import ClientCredentials, ClientOptions, MqttClient, await_admission
from pervasive.pki import CertificateAuthority

pytestmark = [pytest.mark.slow, pytest.mark.mosquitto]

ENV = {**os.environ, "PERVASIVE_PASSWORD": "pw"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start(home: Path, *args: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "pervasive", "--home", str(home), *args]
    return subprocess.Popen(
        command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def wait_for_line(process: subprocess.Popen[str], needle: str) -> str:
    assert process.stdout is not None
    seen = []
    for line in process.stdout:
        seen.append(line)
        if needle in line:
            return line
    raise AssertionError(f"{needle!r} never printed; output: {''.join(seen)}")


def interrupt(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGINT)
    try:
        out, _ = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        out, _ = process.communicate()
        raise AssertionError(f"Ctrl-C did not stop {process.args}; output: {out}") from None
    assert process.returncode == 0, out
    return out


def device_credentials(home: Path) -> ClientCredentials:
    """The device's certificate, as ``pervasive device register`` would issue it."""
    ca = CertificateAuthority.open(home / "pki", "pw")
    try:
        return ca.client_credentials("thermo-1", home / "mqtt")
    finally:
        ca.close()


async def update_and_read(
    credentials: ClientCredentials, port: int, desired: dict[str, object], token: str
) -> dict[str, object]:
    """Update and return the reply carrying ``token``, as AWS IoT clients correlate replies.

    Replies are at least once: a service restarted after committing a reply it had not
    yet published sends it again, so an earlier request's reply may come first.
    """
    prefix = "$aws/things/thermo-1/shadow"
    async with MqttClient(ClientOptions("127.0.0.1", port, credentials)) as device:
        await device.subscribe(f"{prefix}/update/accepted")
        body = {"state": {"desired": desired}, "clientToken": token}
        await device.publish(f"{prefix}/update", json.dumps(body).encode(), qos=1)
        async with asyncio.timeout(15):
            async for message in device.messages():
                reply: dict[str, object] = json.loads(message.payload)
                if reply.get("clientToken") == token:
                    return reply
    raise AssertionError("no reply")


def test_broker_and_shadow_service_serve_a_device_and_keep_its_shadow(tmp_path: Path) -> None:
    home, port = tmp_path / "home", free_port()
    broker = start(home, "broker", "run", "--port", str(port))
    try:
        assert f":{port}" in wait_for_line(broker, "listening on")
        device = device_credentials(home)  # registered while the broker runs
        asyncio.run(await_admission(home, "thermo-1"))
        shadow = start(home, "shadow", "run", "--port", str(port))
        try:
            wait_for_line(shadow, "shadow service on")
            reply = asyncio.run(update_and_read(device, port, {"setpoint": 21}, "t-1"))
        except BaseException:
            shadow.kill()
            shadow.communicate()
            raise
        assert reply["clientToken"] == "t-1" and reply["version"] == 1
        assert "1 requests accepted" in interrupt(shadow)

        shown = subprocess.run(
            [sys.executable, "-m", "pervasive", "--home", str(home), "shadow", "get", "thermo-1"],
            env=ENV, capture_output=True, text=True, check=True,
        )  # fmt: skip
        document = json.loads(shown.stdout)
        assert document["state"] == {"desired": {"setpoint": 21}}
        assert document["delta"] == {"setpoint": 21} and document["version"] == 1

        restarted = start(home, "shadow", "run", "--port", str(port))
        wait_for_line(restarted, "shadow service on")
        assert asyncio.run(update_and_read(device, port, {"setpoint": 22}, "t-2"))["version"] == 2
        interrupt(restarted)
    finally:
        out = interrupt(broker) if broker.poll() is None else ""
    assert "broker stopped" in out and "Traceback" not in out
    assert "terminating" in (home / "mosquitto" / "mosquitto.log").read_text()


def test_shadow_get_of_an_unknown_thing_says_what_to_do(tmp_path: Path) -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "pervasive", "--home", str(tmp_path), "shadow", "get", "nobody"],
        env=ENV, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert shown.returncode != 0
    assert "no shadow 'nobody'" in shown.stdout + shown.stderr
