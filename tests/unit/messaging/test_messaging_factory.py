"""Settings.broker picks the broker; nothing is started here."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from pervasive.config import Settings
from pervasive.messaging import (
    BrokerCredentials,
    EmbeddedBroker,
    MosquittoBroker,
    create_broker,
    find_mosquitto,
)


def _credentials(tmp_path: Path) -> BrokerCredentials:
    return BrokerCredentials(*(tmp_path / name for name in ("ca", "cert", "key", "crl")))


def test_embedded_when_asked(tmp_settings: Settings, tmp_path: Path) -> None:
    broker = create_broker(replace(tmp_settings, broker="embedded"), _credentials(tmp_path), list)
    assert isinstance(broker, EmbeddedBroker)


def test_auto_prefers_mosquitto_when_installed(tmp_settings: Settings, tmp_path: Path) -> None:
    settings = replace(tmp_settings, broker="auto", mqtt_port=18883)
    broker = create_broker(settings, _credentials(tmp_path), list)
    expected = MosquittoBroker if find_mosquitto() else EmbeddedBroker
    assert isinstance(broker, expected)
    assert broker.port == 18883


@pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto is not installed")
def test_mosquitto_config_requires_certificates(tmp_settings: Settings, tmp_path: Path) -> None:
    broker = create_broker(
        replace(tmp_settings, broker="mosquitto", mqtt_port=18883), _credentials(tmp_path), list
    )
    assert isinstance(broker, MosquittoBroker)
    config = broker.render_config()
    for line in (
        "allow_anonymous false",
        "require_certificate true",
        "use_identity_as_username true",
        f"crlfile {tmp_path / 'crl'}",
        f"acl_file {tmp_settings.home / 'mosquitto' / 'acl'}",
        "listener 18883 127.0.0.1",
    ):
        assert line in config.splitlines()
