"""The stock mosquitto_pub / mosquitto_sub clients with device certificates.

What an operator or a device firmware without our SDK sees: a certificate from
the platform CA is all it needs for its own topics, and nothing more.
"""

from __future__ import annotations

import asyncio
import shutil

import pytest
from messaging_platform import Platform

from pervasive.messaging import ClientCredentials

pytestmark = [
    pytest.mark.mosquitto,
    pytest.mark.skipif(
        shutil.which("mosquitto_pub") is None,
        reason="mosquitto-clients is not installed (apt-get install -y mosquitto-clients)",
    ),
]


def _tls(platform: Platform, creds: ClientCredentials) -> list[str]:
    return [
        "-h", "127.0.0.1", "-p", str(platform.broker.port),
        "--cafile", str(creds.ca_file),
        "--cert", str(creds.cert_file), "--key", str(creds.key_file),
    ]  # fmt: skip


async def _run(*args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await process.communicate()
    return process.returncode or 0, output.decode()


async def _subscribe(platform: Platform, identity: str, *topics: str) -> asyncio.subprocess.Process:
    creds = platform.credentials(identity)
    await platform.broker.settle()  # a new identity's ACL is applied in the background
    filters = [arg for topic in topics for arg in ("-t", topic)]
    process = await asyncio.create_subprocess_exec(
        # line-buffered, so the SUBACK line reaches us before anyone publishes
        "stdbuf", "-oL", "mosquitto_sub", *_tls(platform, creds), *filters,
        "-v", "-C", "1", "-W", "10", "-q", "1", "-d",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert process.stdout is not None
    async with asyncio.timeout(10):
        while b"received SUBACK" not in await process.stdout.readline():  # one SUBACK for all
            pass
    return process


async def _publish(platform: Platform, identity: str, topic: str, message: str) -> tuple[int, str]:
    creds = platform.credentials(identity)
    await platform.broker.settle()
    return await _run(
        "mosquitto_pub", *_tls(platform, creds), "-t", topic, "-m", message, "-q", "1"
    )


async def _last_line(process: asyncio.subprocess.Process) -> str:
    assert process.stdout is not None
    output = (await process.stdout.read()).decode()
    await process.wait()
    received = [line for line in output.splitlines() if line.startswith("pervasive/")]
    return received[-1] if received else ""


async def test_cli_device_publishes_on_its_own_topic(mosquitto_platform: Platform) -> None:
    watcher = await _subscribe(mosquitto_platform, "svc:monitor", "pervasive/#")
    code, output = await _publish(
        mosquitto_platform, "lock-7", "pervasive/devices/lock-7/telemetry", "21.5"
    )
    assert code == 0, output
    assert await _last_line(watcher) == "pervasive/devices/lock-7/telemetry 21.5"


async def test_cli_publish_on_another_devices_topic_is_dropped(
    mosquitto_platform: Platform,
) -> None:
    watcher = await _subscribe(mosquitto_platform, "svc:monitor", "pervasive/#")
    await _publish(mosquitto_platform, "lock-7", "pervasive/devices/lock-8/command", "open")
    await _publish(mosquitto_platform, "lock-7", "pervasive/devices/lock-7/telemetry", "sentinel")
    assert await _last_line(watcher) == "pervasive/devices/lock-7/telemetry sentinel"


async def test_cli_subscription_to_another_device_receives_nothing(
    mosquitto_platform: Platform,
) -> None:
    spy = await _subscribe(
        mosquitto_platform, "lock-7", "pervasive/devices/lock-8/#", "pervasive/devices/lock-7/#"
    )
    await _publish(mosquitto_platform, "lock-8", "pervasive/devices/lock-8/secret", "pin")
    # another lock-7 connection would take over the spy's session (client id = identity)
    await _publish(mosquitto_platform, "svc:service", "pervasive/devices/lock-7/echo", "sentinel")
    assert await _last_line(spy) == "pervasive/devices/lock-7/echo sentinel"


async def test_cli_revoked_certificate_cannot_connect(mosquitto_platform: Platform) -> None:
    creds = mosquitto_platform.credentials("lock-7")
    code, output = await _publish(mosquitto_platform, "lock-7", "pervasive/devices/lock-7/t", "x")
    assert code == 0, output
    mosquitto_platform.ca.revoke_identity("lock-7")
    await mosquitto_platform.broker.settle()
    code, output = await _run(
        "mosquitto_pub", *_tls(mosquitto_platform, creds), "-t", "pervasive/devices/lock-7/t",
        "-m", "x",
    )  # fmt: skip
    assert code != 0
    assert "lost" in output.lower() or "error" in output.lower()
