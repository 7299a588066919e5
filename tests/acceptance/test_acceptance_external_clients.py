"""Clients nobody here wrote, against our broker and shadow service.

- ``mosquitto_pub`` / ``mosquitto_sub`` with device certificates: allowed topics work,
  another device's topics are denied, a revoked certificate is refused in the TLS
  handshake (the broker's alert is "certificate revoked") and nothing it sends arrives.
- The AWS IoT Device SDK v2 for Python (``awsiotsdk``) shadow client connects with
  mutual TLS, updates ``desired``, receives the delta, reports, and gets the document.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import uuid
from typing import Any

import pytest

from device_platform import DevicePlatform, receive
from pervasive.messaging import MqttClient
from pervasive.shadow import ShadowService, ShadowStore

pytestmark = [
    pytest.mark.mosquitto,
    pytest.mark.skipif(shutil.which("mosquitto_pub") is None, reason="mosquitto-clients missing"),
]


def tls_args(platform: DevicePlatform, device: str, role: str) -> list[str]:
    folder = platform.folder(device).path
    return [
        "-h", "127.0.0.1", "-p", str(platform.broker.port), "-i", f"{device}-{role}", "-q", "1",
        "--cafile", str(folder / "ca.pem"), "--cert", str(folder / "cert.pem"),
        "--key", str(folder / "key.pem"),
    ]  # fmt: skip


def sub(platform: DevicePlatform, device: str, topic: str, count: int) -> subprocess.Popen[str]:
    command = ["mosquitto_sub", *tls_args(platform, device, "sub"), "-t", topic, "-C", str(count),
               "-W", "5", "-v"]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def pub(
    platform: DevicePlatform, device: str, topic: str, message: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    command = ["mosquitto_pub", *tls_args(platform, device, "pub"), "-t", topic, "-m", message,
               *extra]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)


async def test_mosquitto_clients_allowed_denied_and_revoked(
    device_platform: DevicePlatform,
) -> None:
    own = "pervasive/devices/lock-1/telemetry"
    lock_2 = "pervasive/devices/lock-2/telemetry"
    await device_platform.provision("lock-1", "lock-2")
    # the client id is the certificate's identity whatever -i says: one connection per
    # device, so the listener is a service and each device runs one client at a time
    async with MqttClient(await device_platform.service_options("svc:monitor")) as listener:
        await listener.subscribe("pervasive/devices/lock-1/#")
        # lock-2 writing into lock-1's topic is dropped by the broker's ACL ...
        assert pub(device_platform, "lock-2", own, "intruder").returncode == 0
        snoop = sub(device_platform, "lock-2", "pervasive/devices/lock-1/#", 1)
        await asyncio.sleep(0.5)
        # ... lock-1 writing into its own topic is delivered
        assert pub(device_platform, "lock-1", own, "21.5").returncode == 0
        (only,) = await receive(listener, 1)
        assert (only.topic, only.payload) == (own, b"21.5")

    out, _err = await asyncio.to_thread(snoop.communicate, timeout=10)
    assert snoop.returncode != 0 and out == ""  # lock-2 never sees lock-1's telemetry

    async with MqttClient(await device_platform.service_options("svc:monitor")) as monitor:
        await monitor.subscribe("pervasive/devices/#")
        # before revocation lock-2's certificate works: its own topic reaches a listener
        sent = pub(device_platform, "lock-2", lock_2, "locked")
        assert sent.returncode == 0 and sent.stderr == ""
        assert [(m.topic, m.payload) for m in await receive(monitor, 1)] == [(lock_2, b"locked")]

        device_platform.ca.revoke_identity("lock-2")
        await device_platform.broker.settle()  # mosquitto reloaded the CRL and the ACL
        # Every attempt with the revoked certificate fails in the TLS handshake. Under TLS
        # 1.3 the client sends CONNECT before it reads the server's verdict, so it ends
        # either with the alert (exit 7, "connection was lost"; -d prints OpenSSL's reason)
        # or on the closed socket (exit 1, "Protocol error"; exit 14 when the reset
        # reaches it as a system-call error), never connected.
        alerts = []
        for attempt in range(20):
            refused = pub(device_platform, "lock-2", lock_2, f"after-{attempt}", "-d")
            assert "CONNACK" not in refused.stdout, refused.stdout  # MQTT never started
            assert (refused.returncode, refused.stderr) in {
                (7, "Error: The connection was lost.\n"),
                (1, "Error: Protocol error\n"),
                (14, "Error: Protocol error\n"),
            }, (refused.returncode, refused.stdout, refused.stderr)
            if "OpenSSL Error" in refused.stdout:
                alerts.append(refused.stdout.split("OpenSSL Error[0]: ")[1].strip())
        assert alerts, "mosquitto_pub never read the broker's TLS alert in 20 attempts"
        assert set(alerts) == {"error:0A000414:SSL routines::sslv3 alert certificate revoked"}
        log = device_platform.broker.log_file.read_text()
        assert log.count("certificate verify failed") >= 20  # the broker's side of it

        # lock-1 is untouched; nothing of lock-2 arrived after its revocation
        assert pub(device_platform, "lock-1", own, "22.0").returncode == 0
        assert [(m.topic, m.payload) for m in await receive(monitor, 1)] == [(own, b"22.0")]
        with pytest.raises(TimeoutError):
            await receive(monitor, 1, timeout=0.3)


async def test_aws_iot_device_sdk_shadow_round_trip(device_platform: DevicePlatform) -> None:
    awscrt_mqtt = pytest.importorskip("awscrt.mqtt")
    from awsiot import iotshadow, mqtt_connection_builder

    thing = "aws-lock-1"
    folder = (await device_platform.provision(thing))[0].path
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    def deliver(kind: str) -> Any:
        return lambda response: loop.call_soon_threadsafe(inbox.put_nowait, (kind, response))

    async def next_of(kind: str) -> Any:
        async with asyncio.timeout(10):
            while True:
                got, response = await inbox.get()
                if got == kind:
                    return response

    store = ShadowStore.open(device_platform.root / "shadow.sqlite")
    async with MqttClient(await device_platform.service_options("svc:shadow")) as connection:
        service = ShadowService(connection, store)
        task = asyncio.create_task(service.run())
        await asyncio.sleep(0.3)
        mqtt_connection = mqtt_connection_builder.mtls_from_path(
            endpoint="127.0.0.1",
            port=device_platform.broker.port,
            cert_filepath=str(folder / "cert.pem"),
            pri_key_filepath=str(folder / "key.pem"),
            ca_filepath=str(folder / "ca.pem"),
            client_id=thing,
            clean_session=True,
            keep_alive_secs=30,
            enable_metrics_collection=False,
        )
        await asyncio.wrap_future(mqtt_connection.connect())
        try:
            shadow = iotshadow.IotShadowClient(mqtt_connection)
            qos = awscrt_mqtt.QoS.AT_LEAST_ONCE
            for subscribe, request, kind in (
                (shadow.subscribe_to_update_shadow_accepted,
                 iotshadow.UpdateShadowSubscriptionRequest(thing_name=thing), "accepted"),
                (shadow.subscribe_to_shadow_delta_updated_events,
                 iotshadow.ShadowDeltaUpdatedSubscriptionRequest(thing_name=thing), "delta"),
                (shadow.subscribe_to_get_shadow_accepted,
                 iotshadow.GetShadowSubscriptionRequest(thing_name=thing), "get"),
            ):  # fmt: skip
                future, _ = subscribe(request, qos, deliver(kind))
                await asyncio.wrap_future(future)

            token = uuid.uuid4().hex
            await asyncio.wrap_future(shadow.publish_update_shadow(
                iotshadow.UpdateShadowRequest(
                    thing_name=thing, client_token=token,
                    state=iotshadow.ShadowState(desired={"door": "open", "light": {"level": 3}}),
                ), qos))  # fmt: skip
            accepted = await next_of("accepted")
            assert accepted.client_token == token and accepted.version == 1
            delta = await next_of("delta")
            assert delta.state == {"door": "open", "light": {"level": 3}}

            await asyncio.wrap_future(shadow.publish_update_shadow(
                iotshadow.UpdateShadowRequest(
                    thing_name=thing, client_token=uuid.uuid4().hex,
                    state=iotshadow.ShadowState(reported={"door": "open", "light": {"level": 3}}),
                ), qos))  # fmt: skip
            reported = await next_of("accepted")
            assert reported.version == 2

            get = iotshadow.GetShadowRequest(thing_name=thing, client_token="get-1")
            await asyncio.wrap_future(shadow.publish_get_shadow(get, qos))
            document = await next_of("get")
            assert document.client_token == "get-1" and document.version == 2
            assert document.state.desired == document.state.reported == {
                "door": "open", "light": {"level": 3},
            }  # fmt: skip
            assert document.state.delta is None
        finally:
            await asyncio.wrap_future(mqtt_connection.disconnect())
            task.cancel()
    assert service.rejections == {}
    assert json.loads(json.dumps(service.accepted)) is not None
