"""Settings: defaults, ``pervasive.toml``, ``PERVASIVE_*`` variables and flags (README).

Precedence, lowest to highest: built-in defaults, the file, the environment, flags.
The file is ``./pervasive.toml`` when present, else ``<data directory>/pervasive.toml``.
Every test runs in an empty working directory with no ``PERVASIVE_*`` variable set.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pervasive.cli import app
from pervasive.cli.session import CliState
from pervasive.config import Settings, load_settings
from pervasive.errors import ConfigError, UserError


@pytest.fixture(autouse=True)
def clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory and an environment without ``PERVASIVE_*``."""
    for name in list(os.environ):
        if name.startswith("PERVASIVE_"):
            monkeypatch.delenv(name)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def write_toml(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pervasive.toml"
    path.write_text(text)
    return path


def test_defaults_without_file_environment_or_flags() -> None:
    settings = load_settings()
    assert settings == Settings()
    assert settings.home == settings.data_dir == Path(".pervasive")
    assert settings.backend == "embedded" and settings.rpc_url is None
    assert settings.broker == "auto" and settings.mqtt_port == 0


def test_path_is_inside_the_data_directory_and_creates_its_parents(tmp_path: Path) -> None:
    settings = load_settings({"home": tmp_path / "data"})
    target = settings.path("pki", "ca.cert.pem")
    assert target == tmp_path / "data" / "pki" / "ca.cert.pem"
    assert target.parent.is_dir() and not target.exists()


def test_file_in_the_working_directory_is_read(clean: Path) -> None:
    write_toml(clean, 'backend = "anvil"\nblock_time = 0.5\nmqtt_port = 8883\n')
    settings = load_settings()
    assert (settings.backend, settings.block_time, settings.mqtt_port) == ("anvil", 0.5, 8883)


def test_file_may_hold_its_settings_in_a_pervasive_table(clean: Path) -> None:
    write_toml(clean, '[pervasive]\nbackend = "anvil"\nconfirmations = 2\n')
    settings = load_settings()
    assert (settings.backend, settings.confirmations) == ("anvil", 2)


def test_file_in_the_default_data_directory_is_read(clean: Path) -> None:
    write_toml(clean / ".pervasive", 'backend = "anvil"\n')
    assert load_settings().backend == "anvil"


def test_pervasive_home_moves_the_data_directory_and_its_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "srv" / "pervasive"
    write_toml(home, "anvil_port = 9545\n")
    monkeypatch.setenv("PERVASIVE_HOME", str(home))
    settings = load_settings()
    assert settings.home == settings.data_dir == home
    assert settings.anvil_port == 9545
    assert settings.path("keystore", "a.json").parent == home / "keystore"


def test_pervasive_home_expands_the_user_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("PERVASIVE_HOME", "~/pervasive-data")
    assert load_settings().home == tmp_path / "pervasive-data"


def test_home_flag_finds_the_file_in_that_data_directory(tmp_path: Path) -> None:
    home = tmp_path / "flagged"
    write_toml(home, 'backend = "anvil"\n')
    settings = load_settings({"home": home})
    assert settings.home == home and settings.backend == "anvil"


def test_working_directory_file_wins_over_the_data_directory_file(clean: Path) -> None:
    write_toml(clean, 'backend = "anvil"\n')
    write_toml(clean / ".pervasive", 'backend = "rpc"\nrpc_url = "http://x:8545"\nanvil_port = 1\n')
    settings = load_settings()
    # only one file is read: the data directory's is ignored altogether, not merged
    assert settings.backend == "anvil" and settings.rpc_url is None
    assert settings.anvil_port == 0


def test_environment_overrides_the_file(clean: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_toml(clean, 'backend = "anvil"\nblock_time = 2.0\nconfirmations = 3\n')
    monkeypatch.setenv("PERVASIVE_BACKEND", "rpc")
    monkeypatch.setenv("PERVASIVE_RPC_URL", "http://besu:8545")
    monkeypatch.setenv("PERVASIVE_BLOCK_TIME", "0.25")
    settings = load_settings()
    assert settings.backend == "rpc" and settings.rpc_url == "http://besu:8545"
    assert settings.block_time == 0.25
    assert settings.confirmations == 3  # unset in the environment: the file's value stays


def test_flags_override_the_environment_and_the_file(
    clean: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_toml(clean, 'backend = "anvil"\nblock_time = 2.0\ngas_margin = 1.5\n')
    monkeypatch.setenv("PERVASIVE_BACKEND", "rpc")
    monkeypatch.setenv("PERVASIVE_RPC_URL", "http://besu:8545")
    monkeypatch.setenv("PERVASIVE_BLOCK_TIME", "0.25")
    settings = load_settings({"backend": "embedded", "block_time": 1, "rpc_url": None})
    assert settings.backend == "embedded" and settings.block_time == 1.0
    assert settings.rpc_url == "http://besu:8545"  # a None flag is ignored, not a reset
    assert settings.gas_margin == 1.5


def test_explicit_environ_replaces_the_process_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PERVASIVE_BACKEND", "anvil")
    assert load_settings(environ={}).backend == "embedded"
    assert load_settings(environ={"PERVASIVE_BACKEND": "anvil"}).backend == "anvil"
    assert load_settings(environ={"BACKEND": "anvil", "pervasive_backend": "anvil"}) == Settings()


def test_explicit_config_file_is_used_instead_of_the_working_directory(
    clean: Path, tmp_path: Path
) -> None:
    write_toml(clean, 'backend = "anvil"\n')
    chosen = write_toml(tmp_path / "etc", "confirmations = 4\n")
    settings = load_settings(config_file=chosen)
    assert settings.backend == "embedded" and settings.confirmations == 4


def test_missing_explicit_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(config_file=tmp_path / "nowhere.toml")


@pytest.mark.parametrize("source", ["flags", "environment", "file"])
def test_rpc_backend_without_an_endpoint_is_a_config_error(
    source: str, clean: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flags = {}
    if source == "flags":
        flags = {"backend": "rpc"}
    elif source == "environment":
        monkeypatch.setenv("PERVASIVE_BACKEND", "rpc")
    else:
        write_toml(clean, 'backend = "rpc"\n')
    with pytest.raises(ConfigError, match="backend 'rpc' needs an endpoint") as raised:
        load_settings(flags)
    assert "--rpc-url" in str(raised.value) and "PERVASIVE_RPC_URL" in str(raised.value)
    assert isinstance(raised.value, UserError)


def test_rpc_backend_with_an_endpoint_from_any_source(
    clean: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_toml(clean, 'backend = "rpc"\n')
    monkeypatch.setenv("PERVASIVE_RPC_URL", "http://geth:8545")
    assert load_settings().rpc_url == "http://geth:8545"
    # "none" in the environment clears an optional setting, so the check fires again
    monkeypatch.setenv("PERVASIVE_RPC_URL", "none")
    with pytest.raises(ConfigError, match="needs an endpoint"):
        load_settings()


def test_unknown_backend_names_the_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERVASIVE_BACKEND", "ganache")
    with pytest.raises(ConfigError, match="'ganache'; choose one of: embedded, anvil, rpc"):
        load_settings()


def test_badly_typed_values_are_config_errors(clean: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERVASIVE_MQTT_PORT", "eighty")
    with pytest.raises(ConfigError, match="'mqtt_port' = 'eighty' is not a valid int"):
        load_settings()
    monkeypatch.delenv("PERVASIVE_MQTT_PORT")
    write_toml(clean, 'gas_margin = "lots"\n')
    with pytest.raises(ConfigError, match="'gas_margin' = 'lots' is not a valid float"):
        load_settings()


def test_unknown_settings_are_config_errors(clean: Path) -> None:
    with pytest.raises(ConfigError, match="unknown setting\\(s\\): colour"):
        load_settings({"colour": "blue"})
    write_toml(clean, 'backend = "anvil"\nbakend = "rpc"\n')
    with pytest.raises(ConfigError, match="unknown setting\\(s\\) in config file: bakend"):
        load_settings()


def test_invalid_toml_names_the_file(clean: Path) -> None:
    path = write_toml(clean, "backend = \n")
    with pytest.raises(ConfigError, match="is not valid TOML") as raised:
        load_settings()
    assert str(path.name) in str(raised.value)


def test_cli_state_passes_its_flags_and_config_file_through(
    clean: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chosen = write_toml(tmp_path / "etc", 'backend = "anvil"\nconfirmations = 5\n')
    monkeypatch.setenv("PERVASIVE_CONFIRMATIONS", "6")
    state = CliState(flags={"home": tmp_path / "h", "backend": None}, config_file=chosen)
    settings = state.settings
    assert settings.home == tmp_path / "h"
    assert (settings.backend, settings.confirmations) == ("anvil", 6)
    assert state.settings is settings  # loaded once per invocation


def test_cli_flags_override_a_broken_file_setting(clean: Path) -> None:
    """``pervasive.toml`` says rpc without an endpoint; ``--backend`` on the command line wins."""
    write_toml(clean, 'backend = "rpc"\n')
    runner = CliRunner(env={"COLUMNS": "200"})
    refused = runner.invoke(app, ["account", "list"])
    assert refused.exit_code == 1
    assert "error: backend 'rpc' needs an endpoint" in refused.output
    assert "Traceback" not in refused.output
    home = clean / "data"
    home.mkdir()  # account list only reads: a missing data directory is refused
    listed = runner.invoke(app, ["--home", str(home), "--backend", "embedded", "account", "list"])
    assert listed.exit_code == 0, listed.output
    # rich wraps a table's title to the table's width: compare without the line breaks
    flat = "".join(listed.output.split())
    assert "Accountsin" in flat and str(home / "keystore") in flat
    assert home.is_dir()  # the flag's data directory, not ./.pervasive
    assert not (clean / ".pervasive").exists()
