"""The ``[node]``, ``[mqtt]`` and ``[shadow]`` sections: parsing, precedence, validation.

``[node]`` and ``[shadow]`` are the options objects themselves (``NodeSettings`` for the
intermediate node, ``ShadowSettings`` for the shadow service); ``[mqtt]`` holds the tunable
part of ``ClientOptions``, and a mirror test keeps the two from drifting apart.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pervasive.config import (
    SECTIONS,
    MqttSettings,
    NodeSettings,
    Settings,
    ShadowSettings,
    load_settings,
    settings_table,
)
from pervasive.errors import ConfigError
from pervasive.messaging import ClientOptions

NO_ENV: dict[str, str] = {}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pervasive.toml"
    path.write_text(text)
    return path


def defaults(cls: type) -> dict[str, object]:
    return {f.name: f.default for f in dataclasses.fields(cls)}


def test_the_mqtt_section_mirrors_the_client_options() -> None:
    # manual_ack is the consumer's choice (it must acknowledge), not a setting of the deployment
    per_connection = {"host", "port", "credentials", "client_id", "outbox", "manual_ack"}
    mirrored = {k: v for k, v in defaults(ClientOptions).items() if k not in per_connection}
    # what only the broker enforces
    broker_only = {"max_queued_messages", "max_queued_bytes", "connect_timeout"}
    client_side = {k: v for k, v in defaults(MqttSettings).items() if k not in broker_only}
    assert client_side == mirrored


def test_defaults_without_any_source(tmp_path: Path) -> None:
    settings = load_settings(environ=NO_ENV, config_file=write(tmp_path, ""))
    assert settings.node == NodeSettings()
    assert settings.mqtt == MqttSettings()
    assert settings.shadow == ShadowSettings()


def test_file_sections_beside_a_pervasive_table(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[pervasive]\nbackend = "anvil"\n\n[node]\ngap_timeout = 2.5\n\n'
        "[mqtt]\nkeepalive = 60\nmax_inflight = 64\n\n[shadow]\nburst = 5\n",
    )
    settings = load_settings(environ=NO_ENV, config_file=path)
    assert settings.backend == "anvil"
    assert settings.node.gap_timeout == 2.5
    assert (settings.mqtt.keepalive, settings.mqtt.max_inflight) == (60, 64)
    assert settings.shadow.burst == 5


def test_environment_overrides_file_and_flags_override_both(tmp_path: Path) -> None:
    path = write(tmp_path, "[node]\ngap_timeout = 2.5\ntakeover_after = 20\n")
    environ = {"PERVASIVE_NODE_GAP_TIMEOUT": "3", "PERVASIVE_MQTT_CHECK_ACCESS": "false"}
    settings = load_settings({"node.takeover_after": 30}, environ=environ, config_file=path)
    assert settings.node.gap_timeout == 3.0
    assert settings.node.takeover_after == 30.0
    assert settings.mqtt.check_access is False


def test_flags_may_be_given_as_a_nested_section(tmp_path: Path) -> None:
    settings = load_settings(
        {"shadow": {"requests_per_second": 2}}, environ=NO_ENV, config_file=write(tmp_path, "")
    )
    assert settings.shadow.requests_per_second == 2.0


def test_optional_section_values_may_be_unset(tmp_path: Path) -> None:
    path = write(tmp_path, "[node]\ncompact_wait = 0.5\n")
    assert load_settings(environ=NO_ENV, config_file=path).node.compact_wait == 0.5
    settings = load_settings(environ={"PERVASIVE_NODE_COMPACT_WAIT": "none"}, config_file=path)
    assert settings.node.compact_wait is None


def test_unknown_section_setting_names_itself(tmp_path: Path) -> None:
    path = write(tmp_path, "[node]\ngap_timout = 2\n")
    with pytest.raises(ConfigError, match=r"in config file: node\.gap_timout .*pervasive config"):
        load_settings(environ=NO_ENV, config_file=path)
    with pytest.raises(ConfigError, match=r"unknown setting\(s\): mqtt\.port"):
        load_settings({"mqtt.port": 1}, environ=NO_ENV, config_file=write(tmp_path, ""))


def test_a_section_written_as_a_value_says_how_to_write_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'shadow' is a section; write its settings as \["):
        load_settings(environ=NO_ENV, config_file=write(tmp_path, "shadow = 3\n"))


def test_badly_typed_section_value_names_the_setting(tmp_path: Path) -> None:
    path = write(tmp_path, '[mqtt]\nkeepalive = "often"\n')
    with pytest.raises(ConfigError, match=r"'mqtt\.keepalive' = 'often' is not a valid int"):
        load_settings(environ=NO_ENV, config_file=path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[node]\ngap_timeout = 0\n", r"node\.gap_timeout = 0\.0 .* more than 0 seconds"),
        ("[node]\nmax_in_flight = 0\n", r"node\.max_in_flight = 0 .* >= 1"),
        ("[mqtt]\nkeepalive = 70000\n", r"mqtt\.keepalive = 70000 .* 1 to 65535"),
        (
            "[mqtt]\nreconnect_min = 2\nreconnect_max = 1\n",
            r"mqtt\.reconnect_max = 1\.0 .* >= mqtt\.reconnect_min \(2\.0\)",
        ),
        ("[shadow]\nburst = 0\n", r"shadow\.burst = 0 .* >= 1"),
        ("[shadow]\nrequests_per_second = -1\n", r"shadow\.requests_per_second = -1\.0"),
    ],
)
def test_out_of_range_values_say_what_to_fix(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(environ=NO_ENV, config_file=write(tmp_path, text))


@pytest.fixture(scope="module")
def empty_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write(tmp_path_factory.mktemp("config"), "")


@given(st.floats(min_value=0.001, max_value=1e6), st.integers(min_value=1, max_value=65535))
def test_any_valid_value_round_trips_through_the_environment(
    empty_file: Path, seconds: float, count: int
) -> None:
    environ = {
        "PERVASIVE_NODE_GAP_TIMEOUT": repr(seconds),
        "PERVASIVE_MQTT_MAX_INFLIGHT": str(count),
    }
    settings = load_settings(environ=environ, config_file=empty_file)
    assert settings.node.gap_timeout == seconds
    assert settings.mqtt.max_inflight == count


def test_environment_names_of_sections_do_not_collide_with_top_level_ones() -> None:
    top = {f.name.upper() for f in dataclasses.fields(Settings) if f.name not in SECTIONS}
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            assert f"{section}_{f.name}".upper() not in top


def test_table_lists_every_setting_and_hides_the_password() -> None:
    rows = {name: (value, doc) for name, value, doc in settings_table(Settings(password="x"))}
    assert rows["password"][0] == "(set)"
    assert rows["node.gap_timeout"] == ("5.0", rows["node.gap_timeout"][1])
    assert rows["node.gap_timeout"][1].startswith("Seconds a missing sensor message")
    assert rows["rpc_url"][0] == "(unset)"
    assert {name.split(".")[0] for name in rows if "." in name} == set(SECTIONS)


def test_config_command_shows_effective_settings(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from pervasive.cli import app

    write(tmp_path, "[node]\ngap_timeout = 2.5\n")
    runner = CliRunner()
    flags = ["--home", str(tmp_path), "--config", str(tmp_path / "pervasive.toml")]
    shown = runner.invoke(app, [*flags, "config", "--json", "node"], env={"PERVASIVE_PASSWORD": ""})
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["node.gap_timeout"] == "2.5"
    table = runner.invoke(app, [*flags, "config"])
    assert table.exit_code == 0 and "mqtt.keepalive" in table.output
    wrong = runner.invoke(app, [*flags, "config", "notary"])
    assert wrong.exit_code == 1 and "choose top, node, mqtt, shadow, gateway, web" in wrong.output
    broken = runner.invoke(app, [*flags, "config"], env={"PERVASIVE_SHADOW_BURST": "0"})
    assert broken.exit_code == 1 and "shadow.burst = 0 is out of range" in broken.output
