"""``Platform``: parts built from settings, started in order, stopped cleanly."""

from __future__ import annotations

import asyncio
import json
import socket
from dataclasses import replace
from pathlib import Path

import pytest

from pervasive import Platform
from pervasive.config import MqttSettings, NodeSettings, Settings, ShadowSettings
from pervasive.errors import ConfigError, InvalidInput, KeystoreError
from pervasive.messaging import MqttClient, admitted_file, find_mosquitto

PASSWORD = "test password"


@pytest.fixture
def settings(tmp_settings: Settings) -> Settings:
    return replace(tmp_settings, broker="embedded", password=PASSWORD)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def connectable(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize(
    "broker",
    [
        "embedded",
        pytest.param(
            "mosquitto",
            marks=[
                pytest.mark.mosquitto,
                pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto is not installed"),
            ],
        ),
    ],
)
async def test_a_device_reaches_the_shadow_service_the_platform_runs(
    settings: Settings, broker: str
) -> None:
    settings = replace(settings, broker=broker)  # type: ignore[arg-type]
    async with Platform(settings, shared=True) as platform:
        await platform.start("ledger", "broker", "shadow")
        ledger = await platform.ledger()
        assert await ledger.balance(ledger.dev_signer(0).address) > 0
        options = platform.client_options("lock-7")
        await (await platform.broker()).settle()
        async with MqttClient(options) as device:
            await device.subscribe("$aws/things/lock-7/shadow/update/accepted")
            update = {"state": {"reported": {"door": "closed"}}}
            await device.publish("$aws/things/lock-7/shadow/update", json.dumps(update).encode())
            async with asyncio.timeout(10):
                reply = await anext(device.messages())
        assert json.loads(reply.payload)["state"]["reported"] == {"door": "closed"}
        port = (await platform.broker()).port
        assert admitted_file(settings.home).exists()
    assert not connectable(port), "the broker stops with the platform"
    assert not admitted_file(settings.home).exists()


async def test_parts_are_built_once_and_lazily(settings: Settings) -> None:
    async with Platform(settings) as platform:
        assert not (settings.home / "pki").exists(), "nothing is built before it is used"
        brokers = await asyncio.gather(platform.broker(), platform.broker())
        assert brokers[0] is brokers[1]
        assert platform.authority is platform.authority
        assert not admitted_file(settings.home).exists(), "only a shared broker lists admissions"


async def test_a_failing_start_stops_what_it_started(settings: Settings) -> None:
    platform = Platform(replace(settings, mqtt_port=free_port()))
    with pytest.raises(ConfigError, match="no platform part 'notary'"):
        await platform.start("broker", "notary")  # type: ignore[arg-type]
    assert not connectable(platform.settings.mqtt_port)
    with pytest.raises(InvalidInput, match="stopped; build a new one"):
        await platform.broker()
    async with Platform(platform.settings) as again:  # the port and the files are free
        assert (await again.broker()).port == platform.settings.mqtt_port


async def test_a_wrong_ca_password_is_a_user_error(settings: Settings) -> None:
    async with Platform(settings) as first:
        _ = first.authority
    async with Platform(settings, password=lambda: "not it") as second:
        with pytest.raises(KeystoreError, match="wrong password"):
            await second.start("broker")


async def test_the_password_comes_from_settings_or_asks_once(tmp_settings: Settings) -> None:
    asked: list[int] = []

    def prompt() -> str:
        asked.append(1)
        return PASSWORD

    async with Platform(tmp_settings, password=prompt) as platform:
        _ = platform.authority, platform.authority
    assert asked == [1]
    async with Platform(tmp_settings) as platform:
        with pytest.raises(ConfigError, match="needs a password: set PERVASIVE_PASSWORD"):
            _ = platform.authority


def test_options_follow_the_settings_sections(settings: Settings, tmp_path: Path) -> None:
    settings = replace(
        settings,
        mqtt_port=18883,
        node=NodeSettings(gap_timeout=1.5),
        mqtt=MqttSettings(keepalive=90, max_inflight=32),
        shadow=ShadowSettings(burst=3),
    )
    platform = Platform(settings)
    options = platform.client_options("svc:node.n1", outbox=tmp_path / "outbox.sqlite")
    assert (options.port, options.keepalive, options.max_inflight) == (18883, 90, 32)
    assert options.outbox == tmp_path / "outbox.sqlite"
    assert options.credentials.cert_file.is_file()
    assert platform.node_options(takeover_after=3.0).gap_timeout == 1.5
    assert platform.node_options(takeover_after=3.0).takeover_after == 3.0
    assert platform.shadow_limits().burst == 3
    platform.authority.close()


def test_clients_find_the_broker_of_a_running_stack(settings: Settings) -> None:
    import os

    from pervasive.platform import Endpoint, RunRecord, run_file, write_run_record

    platform = Platform(settings)
    with pytest.raises(ConfigError, match="no broker port for lock-7: start `pervasive up`"):
        platform.client_options("lock-7")
    broker = Endpoint("broker", "mosquitto", "mqtts://127.0.0.1:18884", "127.0.0.1", 18884)
    write_run_record(run_file(settings.home), RunRecord(os.getpid(), "", 0.0, (broker,)))
    assert platform.client_options("lock-7").port == 18884
    platform.authority.close()
