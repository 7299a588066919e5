"""``pervasive up`` and ``pervasive status`` as an operator runs them: real processes.

``up`` runs as a subprocess in a fresh data directory; the test waits until ``status``
reports it running, reaches the broker it printed with a device certificate of its CA
(a shadow round trip through the shadow service ``up`` runs), interrupts it with
SIGINT and checks it exits cleanly and ``status`` then says stopped.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from pervasive.messaging import MqttClient, await_admission
from pervasive.pki import CertificateAuthority
from pervasive.platform import run_file
from pervasive.platform.run_file import port_open

pytestmark = [pytest.mark.slow]

ENV = {**os.environ, "PERVASIVE_PASSWORD": "pw", "PERVASIVE_WEB_PORT": "0"}


def pervasive(home: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "pervasive", "--home", str(home), *args]


def status(home: Path) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(pervasive(home, "status", "--json"), env=ENV, capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip
    return done.returncode, json.loads(done.stdout)


def wait_running(home: Path, process: subprocess.Popen[str], timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"up exited early ({process.returncode}): {process.stdout}")
        code, document = status(home)
        if code == 0:
            assert document["state"] == "running"
            return document
        time.sleep(0.5)
    raise AssertionError("pervasive up did not report running in time")


async def shadow_round_trip(home: Path, port: int) -> dict[str, Any]:
    ca = CertificateAuthority.open(home / "pki", "pw")  # a second process of the same CA
    try:
        options_credentials = ca.client_credentials("thermo-1", home / "devices")
    finally:
        ca.close()
    await await_admission(home, "thermo-1")  # up's broker admits it at its next look
    from pervasive.messaging import ClientOptions

    async with MqttClient(ClientOptions("127.0.0.1", port, options_credentials)) as device:
        await device.subscribe("$aws/things/thermo-1/shadow/update/accepted")
        body = {"state": {"reported": {"celsius": 21}}}
        await device.publish("$aws/things/thermo-1/shadow/update", json.dumps(body).encode())
        async with asyncio.timeout(15):
            reply = await anext(device.messages())
    result: dict[str, Any] = json.loads(reply.payload)
    return result


@pytest.mark.parametrize("backend", ["embedded", pytest.param("anvil", marks=pytest.mark.anvil)])
def test_up_runs_the_stack_until_interrupted(tmp_path: Path, backend: str) -> None:
    home = tmp_path / "home"
    code, document = status(home)
    assert (code, document["state"]) == (3, "stopped")

    command = pervasive(home, "--backend", backend, "up")
    process = subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        document = wait_running(home, process)
        endpoints = {e["name"]: e for e in document["record"]["endpoints"]}
        assert set(endpoints) == {"chain", "ca", "broker", "shadow", "gateway", "web"}
        web = endpoints["web"]["address"]
        with urllib.request.urlopen(f"{web}/dashboard/state.json", timeout=10) as answer:
            assert answer.status == 200 and "devices" in json.loads(answer.read())
        # another command of the same directory reaches the chain `up` holds
        info = subprocess.run(pervasive(home, "--backend", backend, "chain", "info"), env=ENV,
                              capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
        assert info.returncode == 0, info.stdout + info.stderr
        if backend == "anvil":  # a node other commands reach over JSON-RPC
            assert endpoints["chain"]["address"].startswith("http://127.0.0.1:")
            assert document["endpoints"][0] == {
                "name": "chain", "running": True, "process_alive": True, "port_open": True
            }  # fmt: skip
        broker = endpoints["broker"]
        credentials = document["record"]["credentials"]
        assert Path(credentials["CA certificate"]).is_file()

        # the printed credentials open a TLS session on the printed port
        shadow_files = Path(credentials["svc:shadow (cert.pem, key.pem, ca.pem)"])
        context = ssl.create_default_context(cafile=credentials["CA certificate"])
        context.load_cert_chain(shadow_files / "cert.pem", shadow_files / "key.pem")
        import socket

        with (
            socket.create_connection((broker["host"], broker["port"]), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            assert tls.version() is not None

        reply = asyncio.run(shadow_round_trip(home, broker["port"]))
        assert reply["state"]["reported"] == {"celsius": 21}
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert "stack stopped" in output
    assert "mqtts://127.0.0.1:" in output  # the table printed the endpoints
    assert not run_file(home).exists()
    for endpoint in endpoints.values():  # every child (mosquitto, anvil) stopped with it
        if endpoint["port"] is not None:
            assert not port_open(endpoint["host"], endpoint["port"], timeout=0.5), endpoint
    code, document = status(home)
    assert (code, document["state"]) == (3, "stopped")


@pytest.mark.mosquitto
def test_up_ends_in_one_line_when_its_mosquitto_dies(tmp_path: Path) -> None:
    home = tmp_path / "home"
    command = pervasive(home, "up")
    env = {**ENV, "PERVASIVE_BROKER": "mosquitto"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        document = wait_running(home, process)
        (broker,) = [e for e in document["record"]["endpoints"] if e["name"] == "broker"]
        assert broker["kind"] == "mosquitto" and broker["pid"] != process.pid
        os.kill(broker["pid"], signal.SIGKILL)
        try:
            _, err = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            raise AssertionError("up kept running after its mosquitto was killed") from None
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 1, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "mosquitto" in lines[0] and "SIGKILL" in lines[0], err
    assert not run_file(home).exists()  # the stack stopped and removed its run file
