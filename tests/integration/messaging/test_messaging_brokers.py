"""Identity and access on a real broker: the same suite for mosquitto and embedded amqtt."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from messaging_platform import Platform

from device_platform import receive
from pervasive.messaging import (
    BrokerUnavailable,
    ConnectionRefused,
    MqttClient,
    MqttConnection,
    TopicDenied,
    device_topic,
    device_topic_filter,
    shadow_topic,
)
from pervasive.pki import CertificateAuthority, CertificateExpired


async def test_devices_and_services_talk_on_allowed_topics(platform: Platform) -> None:
    outbox = platform.root / "lock-7.outbox.sqlite"
    async with (
        MqttClient(await platform.options("lock-7", outbox=outbox)) as device,
        MqttClient(await platform.options("svc:monitor")) as monitor,
        MqttClient(await platform.options("svc:shadow")) as shadow,
    ):
        port_view: MqttConnection = device
        assert port_view.client_id == "lock-7"
        await monitor.subscribe("pervasive/#")
        await device.subscribe(shadow_topic("lock-7", "update", "delta"))
        await shadow.subscribe("$aws/things/+/shadow/update")

        await device.publish(device_topic("lock-7", "telemetry"), b'{"t": 21.5}')
        await device.publish(shadow_topic("lock-7", "update"), b'{"state":{"reported":{}}}')
        await device.flush(timeout=5)
        assert device.pending == 0
        (telemetry,) = await receive(monitor, 1)
        assert (telemetry.topic, telemetry.payload) == (
            "pervasive/devices/lock-7/telemetry",
            b'{"t": 21.5}',
        )
        (update,) = await receive(shadow, 1)
        assert update.topic == "$aws/things/lock-7/shadow/update"

        await shadow.publish(
            shadow_topic("lock-7", "update", "delta"), b'{"state":{"door":"open"}}'
        )
        (delta,) = await receive(device, 1)
        assert delta.payload == b'{"state":{"door":"open"}}'


async def test_broker_drops_a_publish_on_another_devices_topic(platform: Platform) -> None:
    async with (
        MqttClient(await platform.options("lock-7", check_access=False)) as intruder,
        MqttClient(await platform.options("svc:monitor")) as monitor,
    ):
        await monitor.subscribe("pervasive/#")
        await intruder.publish(device_topic("lock-8", "command"), b"open", qos=1)
        await intruder.publish(device_topic("lock-7", "telemetry"), b"sentinel", qos=1)
        (first,) = await receive(monitor, 1)
        assert first.topic == "pervasive/devices/lock-7/telemetry"
        with pytest.raises(TimeoutError):
            await receive(monitor, 1, timeout=0.3)


async def test_broker_withholds_another_devices_messages(platform: Platform) -> None:
    async with (
        MqttClient(await platform.options("lock-7", check_access=False)) as intruder,
        MqttClient(await platform.options("lock-8")) as victim,
    ):
        try:
            await intruder.subscribe("pervasive/devices/lock-8/#")
        except TopicDenied:
            assert platform.kind == "embedded"  # amqtt answers SUBACK 0x80; mosquitto grants
        await intruder.subscribe(device_topic_filter("lock-7"))
        await victim.publish(device_topic("lock-8", "secret"), b"pin=1234")
        await intruder.publish(device_topic("lock-7", "sentinel"), b"")
        (only,) = await receive(intruder, 1)
        assert only.topic == "pervasive/devices/lock-7/sentinel"
        with pytest.raises(TimeoutError):
            await receive(intruder, 1, timeout=0.3)


async def test_client_refuses_forbidden_topics_before_sending(platform: Platform) -> None:
    outbox = platform.root / "o.sqlite"
    async with MqttClient(await platform.options("lock-7", outbox=outbox)) as device:
        with pytest.raises(TopicDenied, match="may not publish"):
            await device.publish(device_topic("lock-8", "telemetry"), b"x")
        with pytest.raises(TopicDenied, match="may not subscribe"):
            await device.subscribe("$aws/things/+/shadow/#")
        assert device.pending == 0


async def test_revoked_certificate_is_refused_at_connect(platform: Platform) -> None:
    options = await platform.options("lock-9")
    async with MqttClient(options):
        pass
    (record,) = [r for r in platform.ca.certificates() if r.common_name == "lock-9"]
    platform.ca.revoke(record.serial)
    await platform.broker.settle()
    with pytest.raises(ConnectionRefused, match="refused"):
        await MqttClient(options).connect()


async def test_back_to_back_revocations_all_take_effect(platform: Platform) -> None:
    devices = [f"lock-{index}" for index in range(4)]
    options = [await platform.options(device) for device in devices]
    for device in devices:  # four refreshes in a row: none may be lost
        platform.ca.revoke_identity(device)
    await platform.broker.settle()
    for option in options:
        with pytest.raises(ConnectionRefused):
            await MqttClient(option).connect()


async def test_expired_certificate_is_refused_at_connect(platform: Platform) -> None:
    """A certificate of the platform CA that expired yesterday is refused in the handshake.

    The identity also holds a current certificate, so it is in the ACL and on no CRL:
    only the validity dates can refuse the expired one.
    """
    issued_at = datetime.now(UTC) - timedelta(days=2)
    past = CertificateAuthority.open(
        platform.ca.directory, "test password", clock=lambda: issued_at
    )  # the same CA key and index, with a clock two days behind
    try:
        issued = past.issue_device("lock-7", validity=timedelta(days=1))
        expired = past.write_credentials(issued, platform.root / "expired")
    finally:
        past.close()
    platform.ca.write_crl()  # opening rewrote the CRL with the old clock's dates
    certificate = x509.load_pem_x509_certificate(expired.cert_file.read_bytes())
    certificate.verify_directly_issued_by(platform.ca.certificate)
    assert certificate.not_valid_after_utc < datetime.now(UTC) - timedelta(hours=23)
    with pytest.raises(CertificateExpired, match="expired"):
        platform.ca.verify(expired.cert_file.read_bytes())

    current = await platform.options("lock-7")  # a fresh certificate: lock-7 is admitted
    assert "lock-7" in platform.ca.active_identities()
    async with MqttClient(current) as device:
        await device.publish(device_topic("lock-7", "telemetry"), b"current certificate")
    with pytest.raises(ConnectionRefused, match="refused the TLS handshake") as refused:
        await MqttClient(replace(current, credentials=expired)).connect()
    if platform.kind == "mosquitto":  # OpenSSL's alert names the reason; amqtt just resets
        assert "CERTIFICATE_EXPIRED" in str(refused.value)


async def test_certificate_of_an_unknown_ca_is_refused(platform: Platform) -> None:
    platform.credentials("lock-7")  # the name is registered, but not with this key
    stranger = CertificateAuthority.open(platform.root / "stranger", "pw")
    forged = stranger.write_credentials(stranger.issue_device("lock-7"), platform.root / "forged")
    trusting = forged.__class__(
        platform.issued["lock-7"].ca_file, forged.cert_file, forged.key_file
    )
    options = await platform.options("lock-7")
    with pytest.raises(ConnectionRefused):
        await MqttClient(options.__class__(options.host, options.port, trusting)).connect()


async def test_rotation_replaces_the_certificate(platform: Platform) -> None:
    old = await platform.options("lock-7")
    fresh = platform.ca.rotate("lock-7")
    await platform.broker.settle()
    new_creds = platform.ca.write_credentials(fresh, platform.root / "rotated")
    with pytest.raises(ConnectionRefused):
        await MqttClient(old).connect()
    async with MqttClient(await platform.options("lock-7", credentials=new_creds)) as device:
        await device.publish(device_topic("lock-7", "telemetry"), b"after rotation")


async def test_a_retired_device_loses_access_while_connected(platform: Platform) -> None:
    async with (
        MqttClient(await platform.options("lock-7")) as retired,
        MqttClient(await platform.options("lock-8")) as other,
        MqttClient(await platform.options("svc:monitor")) as monitor,
    ):
        await monitor.subscribe("pervasive/#")
        platform.ca.revoke_identity("lock-7")
        await platform.broker.settle()
        # both brokers close a revoked identity's live session: the publish may find it gone
        with contextlib.suppress(BrokerUnavailable):
            await retired.publish(device_topic("lock-7", "telemetry"), b"after retirement", qos=0)
        await other.publish(device_topic("lock-8", "telemetry"), b"sentinel")
        (only,) = await receive(monitor, 1)
        assert only.payload == b"sentinel"


async def test_outbox_keeps_messages_published_while_the_broker_is_down(
    platform: Platform,
) -> None:
    outbox = platform.root / "lock-7.outbox.sqlite"
    topic = device_topic("lock-7", "telemetry")
    async with MqttClient(await platform.options("svc:monitor", reconnect_max=0.2)) as monitor:
        await monitor.subscribe("pervasive/#")
        device = MqttClient(await platform.options("lock-7", outbox=outbox))
        await device.connect()
        await platform.broker.stop()
        for index in range(20):
            await device.publish(topic, str(index).encode())
        assert device.pending == 20
        await device.close()  # the device process ends with 20 unsent messages

        await platform.broker.start()
        async with asyncio.timeout(5):
            while not monitor.connected:
                await asyncio.sleep(0.02)
        async with MqttClient(await platform.options("lock-7", outbox=outbox)) as restarted:
            await restarted.flush(timeout=5)
        received = await receive(monitor, 20)
        assert [int(m.payload) for m in received] == list(range(20))


async def test_a_windowed_outbox_loses_nothing_across_a_mosquitto_restart(
    mosquitto_platform: Platform,
) -> None:
    """64 publishes in flight at once; the broker dies mid-stream and comes back."""
    platform = mosquitto_platform
    outbox = platform.root / "lock-9.outbox.sqlite"
    topic = device_topic("lock-9", "telemetry")
    monitor_options = await platform.options("svc:monitor", reconnect_max=0.2,
                                       outbox=platform.root / "monitor.sqlite")  # fmt: skip
    async with MqttClient(monitor_options) as monitor:  # durable: the broker queues for it
        await monitor.subscribe("pervasive/#")
        device_options = await platform.options("lock-9", outbox=outbox, max_inflight=64,
                                          reconnect_max=0.2)  # fmt: skip
        async with MqttClient(device_options) as device:
            await device.publish_many([(topic, str(i).encode()) for i in range(400)])
            await asyncio.sleep(0.05)
            await platform.broker.stop()
            await device.publish_many([(topic, str(i).encode()) for i in range(400, 600)])
            await platform.broker.start()
            await device.flush(timeout=20)
        received = await receive(monitor, 600, timeout=20)
        while True:  # redeliveries of the window in flight at the crash may follow
            try:
                received += await receive(monitor, 1, timeout=0.5)
            except TimeoutError:
                break
    values = [int(m.payload) for m in received]
    assert sorted(set(values)) == list(range(600))  # nothing lost
    assert list(dict.fromkeys(values)) == list(range(600))  # first arrivals in order
