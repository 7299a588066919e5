"""``pervasive device register|list|cert|revoke|simulate`` on the embedded chain and the CA."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from typer.testing import CliRunner

from pervasive.cli.app import app
from pervasive.devices import DeviceFolder, ReadingVerifier
from pervasive.devices.simulator import LOCATION_SENSOR, EventKind, SimulationPlan, schedule
from pervasive.messaging import (
    ClientOptions,
    MqttClient,
    MqttMessage,
    await_admission,
    find_mosquitto,
)
from pervasive.pki import CertificateAuthority

ENV = {**os.environ, "PERVASIVE_PASSWORD": "pw"}
needs_mosquitto = [
    pytest.mark.mosquitto,
    pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto is not installed"),
]


def invoke(home: Path, *args: str) -> str:
    result = CliRunner().invoke(
        app, ["--home", str(home), *args], env={"PERVASIVE_PASSWORD": "pw"}, catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.slow
def test_register_rotate_and_revoke_a_device(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    home = tmp_path / "home"
    out = invoke(home, "device", "register", "container-1", "--dev-account", "1")
    assert "container-1.location" in out
    folder = home / "devices" / "container-1"
    assert (folder / "cert.pem").is_file() and (
        folder / "sensors" / "location.key"
    ).stat().st_mode & 0o077 == 0
    assert "container-1.location" in invoke(home, "registry", "sensor", "list")
    old = (folder / "cert.pem").read_bytes()
    invoke(home, "device", "cert", "container-1", "--rotate")
    assert (folder / "cert.pem").read_bytes() != old
    assert "active" in invoke(home, "device", "list")
    out = invoke(home, "device", "revoke", "container-1", "--dev-account", "1")
    assert "deactivated sensors:" in out and "container-1.location" in out
    ca = CertificateAuthority.open(home / "pki", "pw")
    try:
        assert "container-1" not in ca.active_identities()
    finally:
        ca.close()
    row = next(line for line in invoke(home, "registry", "sensor", "list").splitlines()
               if "container-1.location" in line)  # fmt: skip
    assert row.rstrip(" │").endswith("no")  # the "active" column


@pytest.mark.slow
def test_device_cert_shows_the_active_certificate_and_copies_its_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, artifacts: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "400")  # one line per message: paths are not wrapped
    home = tmp_path / "home"
    shutil.copytree(artifacts, home / "artifacts")  # deploying the registry needs no compile
    registered = invoke(home, "device", "register", "lock-3", "--dev-account", "1")
    folder = home / "devices" / "lock-3"
    pem = (folder / "cert.pem").read_bytes()
    certificate = x509.load_pem_x509_certificate(pem)
    serial = f"{certificate.serial_number:x}"
    assert f"certificate {serial} in {folder};" in registered

    shown = invoke(home, "device", "cert", "lock-3").strip()
    fingerprint = hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()
    assert shown.startswith(f"lock-3: serial {serial}, ")
    assert f"valid until {certificate.not_valid_after_utc.isoformat()}" in shown
    assert f"sha256 {fingerprint}" in shown
    assert shown.endswith(f"files in {folder}")
    assert (folder / "cert.pem").read_bytes() == pem  # showing does not rotate

    out = tmp_path / "export"
    copied = invoke(home, "device", "cert", "lock-3", "--out", str(out)).strip()
    assert copied.startswith(f"lock-3: serial {serial}, ")
    assert copied.endswith(f"files in {out}")
    for name in ("cert.pem", "key.pem", "ca.pem"):
        assert (out / name).read_bytes() == (folder / name).read_bytes()
    assert (out / "key.pem").stat().st_mode & 0o077 == 0

    runner = CliRunner(env={"PERVASIVE_PASSWORD": "pw"})
    unknown = runner.invoke(app, ["--home", str(home), "device", "cert", "lock-9"])
    assert unknown.exit_code == 1
    assert "'lock-9' has no unrevoked certificate: register it first" in unknown.output
    invoke(home, "device", "revoke", "lock-3", "--dev-account", "1")
    revoked = runner.invoke(app, ["--home", str(home), "device", "cert", "lock-3"])
    assert revoked.exit_code == 1 and "'lock-3' has no unrevoked certificate" in revoked.output


def expected_readings(devices: int, rate: float, duration: float) -> int:
    """How many readings ``device simulate`` makes with these options (seed 0)."""
    plan = SimulationPlan(devices=devices, rate=rate, duration=duration)
    return sum(event.kind is EventKind.READING for event in schedule(plan))


SUMMARY = re.compile(
    r"^(\d+) signed readings from (\d+) devices in [\d.]+ s \(\d+/s\), "
    r"(\d+) disconnects, (\d+) left in outboxes$"
)


@pytest.mark.slow
@pytest.mark.parametrize(
    "broker", [pytest.param("auto", marks=needs_mosquitto, id="mosquitto"), "embedded"]
)
def test_simulate_two_devices_against_the_broker_it_starts(
    broker: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "400")
    monkeypatch.setenv("PERVASIVE_BROKER", broker)
    home = tmp_path / "home"
    options = ["--devices", "2", "--rate", "5", "--duration", "1"]
    summary = invoke(home, "device", "simulate", *options).strip()

    matched = SUMMARY.match(summary)
    assert matched is not None, summary
    published, devices, disconnects, pending = map(int, matched.groups())
    assert published == expected_readings(2, 5, 1) > 0
    assert (devices, disconnects, pending) == (2, 0, 0)
    # the simulator provisioned both devices with the platform CA
    ca = CertificateAuthority.open(home / "pki", "pw")
    try:
        devices = [i for i in ca.active_identities() if not i.startswith("svc:")]
        assert devices == ["sim-0", "sim-1"]  # beside the broker's own svc:broker
    finally:
        ca.close()
    assert (home / "devices" / "sim-1" / "cert.pem").is_file()
    again = SUMMARY.match(invoke(home, "device", "simulate", *options).strip())
    assert again is not None and again.group(4) == "0"  # the same devices run again


# -- against `pervasive broker run` in another process -----------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def pervasive(home: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "pervasive", "--home", str(home), *args]


async def watch_simulation(
    home: Path, port: int, devices: int
) -> tuple[subprocess.CompletedProcess[str], list[MqttMessage]]:
    """Run ``device simulate --port`` while ``svc:monitor`` collects every reading."""
    ca = CertificateAuthority.open(home / "pki", "pw")
    try:
        monitor = ca.client_credentials("svc:monitor", home / "mqtt")
    finally:
        ca.close()
    await await_admission(home, "svc:monitor")
    command = pervasive(home, "device", "simulate", "--devices", str(devices), "--rate", "5",
                        "--duration", "1", "--port", str(port))  # fmt: skip
    async with MqttClient(ClientOptions("127.0.0.1", port, monitor)) as client:
        await client.subscribe("pervasive/devices/+/sensors/location")
        done = await asyncio.to_thread(
            subprocess.run, command, env=ENV, capture_output=True, text=True, timeout=60
        )
        received: list[MqttMessage] = []
        stream = client.messages()
        with contextlib.suppress(TimeoutError):  # until none came for half a second
            while True:
                async with asyncio.timeout(0.5):
                    received.append(await anext(stream))
    return done, received


@pytest.mark.slow
@pytest.mark.parametrize(
    "broker", [pytest.param("auto", marks=needs_mosquitto, id="mosquitto"), "embedded"]
)
def test_simulate_against_a_running_broker_delivers_every_signed_reading(
    broker: str, tmp_path: Path
) -> None:
    """Devices the simulator provisions reach ``broker run`` only once it admitted them:
    before that, mosquitto acknowledges and drops their readings and the embedded broker
    refuses them."""
    home, port = tmp_path / "home", free_port()
    process = subprocess.Popen(
        pervasive(home, "broker", "run", "--port", str(port)),
        env={**ENV, "PERVASIVE_BROKER": broker},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if "listening on" in line:
                break
        done, received = asyncio.run(watch_simulation(home, port, devices=2))
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
    assert done.returncode == 0, done.stdout + done.stderr
    matched = SUMMARY.match(" ".join(done.stdout.split()))
    assert matched is not None, done.stdout
    published, _, _, pending = map(int, matched.groups())
    assert published == expected_readings(2, 5, 1) > 0 and pending == 0

    verifiers = {}
    for device_id in ("sim-0", "sim-1"):
        key = DeviceFolder(home / "devices" / device_id).signing_key("location", create=False)
        verifiers[device_id] = ReadingVerifier([LOCATION_SENSOR.declaration(key.public_key)])
    sequences: dict[str, list[int]] = {"sim-0": [], "sim-1": []}
    for message in received:
        device_id = message.topic.split("/")[2]
        reading = verifiers[device_id].verify(message.payload)  # signed by that device's key
        assert reading.values[0].startswith("cell-")
        sequences[device_id].append(reading.sequence)
    assert len(received) == published, sequences  # none acknowledged and then dropped
    for numbers in sequences.values():
        assert numbers and len(set(numbers)) == len(numbers)
