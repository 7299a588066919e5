"""The ``pervasive`` command line, driven through typer's CliRunner on the embedded chain.

Each invocation is a separate process in real life: it opens the ledger from the data
directory and closes it, so a second invocation sees what the first one wrote.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from pervasive.cli import app
from pervasive.cli.app import EXIT_INTERNAL, ReportingGroup
from pervasive.crypto import PrivateKey
from pervasive.errors import InternalError

SENSOR_KEY = PrivateKey(b"\x07" * 32).public_key.to_bytes().hex()
DEV_KEY_1 = "0x" + "00" * 31 + "02"  # the embedded chain's funded development account 1
DEV_KEY_2 = "0x" + "00" * 31 + "03"  # ... and account 2


@pytest.fixture
def cli(home: Path):  # type: ignore[no-untyped-def]
    runner = CliRunner(env={"COLUMNS": "200", "PERVASIVE_PASSWORD": "correct horse battery"})

    def invoke(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]
        return runner.invoke(
            app, ["--home", str(home), "--backend", "embedded", *args], input=input
        )

    return invoke


def test_help_explains_the_commands() -> None:
    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["--help"])
    assert result.exit_code == 0
    for word in (
        "account",
        "chain",
        "registry",
        "demo",
        "--home",
        "--backend",
        "--rpc-url",
        "--block-time",
        "--config",
    ):
        assert word in result.output
    sensor_help = CliRunner(env={"COLUMNS": "200"}).invoke(
        app, ["registry", "sensor", "add", "--help"]
    )
    assert sensor_help.exit_code == 0
    assert "int64" in sensor_help.output and "--public-key" in sensor_help.output


def test_add_list_show_round_trip_across_invocations(cli) -> None:  # type: ignore[no-untyped-def]
    added = cli("registry", "user", "add", "alice")
    assert added.exit_code == 0, added.output
    assert "registered user alice" in added.output and "gas" in added.output
    cli_sensor = cli(
        "registry", "sensor", "add", "temp-1", "--type", "temperature", "--public-key", SENSOR_KEY,
        "--field", "celsius:int64", "--field", "humidity:uint64", "--dev-account", "1",
    )  # fmt: skip
    assert cli_sensor.exit_code == 0, cli_sensor.output
    node = cli(
        "registry",
        "node",
        "add",
        "node-1",
        "--endpoint",
        "mqtts://n1.example:8883",
        "--dev-account",
        "2",
    )
    assert node.exit_code == 0, node.output

    listed = cli("registry", "user", "list")
    assert listed.exit_code == 0 and "alice" in listed.output
    shown = cli("registry", "sensor", "show", "temp-1")
    assert shown.exit_code == 0
    assert "celsius" in shown.output and "int64" in shown.output and SENSOR_KEY in shown.output
    assert "node-1" in cli("registry", "node", "list").output

    gone = cli("registry", "sensor", "deactivate", "temp-1", "--dev-account", "1")
    assert gone.exit_code == 0, gone.output
    assert "deactivated" in cli("registry", "sensor", "show", "temp-1").output


def table_row(output: str, entity_id: str) -> list[str]:
    """The cells of the table row whose first cell is ``entity_id``."""
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.strip(" │┃").split("│")]
        if cells and cells[0] == entity_id:
            return cells
    raise AssertionError(f"no row {entity_id!r} in:\n{output}")


def detail_rows(output: str) -> dict[str, str]:
    """The property -> value rows of a ``show`` table."""
    rows = {}
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.strip(" │").split("│")]
        if len(cells) == 2:
            rows[cells[0]] = cells[1]
    return rows


def test_node_show_and_deactivate_round_trip(cli) -> None:  # type: ignore[no-untyped-def]
    signer = PrivateKey(bytes.fromhex(DEV_KEY_2[2:]))
    node = cli(
        "registry", "node", "add", "node-1", "--endpoint", "mqtts://n1.example:8883",
        "--dev-account", "2",
    )  # fmt: skip
    assert node.exit_code == 0, node.output
    assert "registered node node-1 (mqtts://n1.example:8883): block" in node.output

    shown = cli("registry", "node", "show", "node-1")
    assert shown.exit_code == 0, shown.output
    assert "Intermediate node node-1" in shown.output
    rows = detail_rows(shown.output)
    assert rows["id"] == "node-1"
    assert rows["endpoint"] == "mqtts://n1.example:8883"
    assert rows["account"] == rows["owner"] == signer.address
    assert rows["public key"] == signer.public_key.to_bytes().hex()
    assert rows["status"] == "active"
    assert table_row(cli("registry", "node", "list").output, "node-1")[-1] == "yes"

    stolen = cli("registry", "node", "deactivate", "node-1", "--dev-account", "3")
    assert stolen.exit_code == 1
    assert "only the node's owner may deactivate it" in stolen.output
    assert detail_rows(cli("registry", "node", "show", "node-1").output)["status"] == "active"

    gone = cli("registry", "node", "deactivate", "node-1", "--dev-account", "2")
    assert gone.exit_code == 0, gone.output
    assert "deactivated node node-1: block" in gone.output and "gas" in gone.output
    assert detail_rows(cli("registry", "node", "show", "node-1").output)["status"] == (
        "deactivated"
    )
    listed = cli("registry", "node", "list")
    assert listed.exit_code == 0
    assert table_row(listed.output, "node-1")[-1] == "no"  # deactivated nodes stay listed

    again = cli("registry", "node", "deactivate", "node-1", "--dev-account", "2")
    assert again.exit_code == 1 and "node is deactivated" in again.output
    missing = cli("registry", "node", "show", "node-9")
    assert missing.exit_code == 1 and "Traceback" not in missing.output


def test_sensor_deactivate_shows_in_the_list(cli) -> None:  # type: ignore[no-untyped-def]
    added = cli(
        "registry", "sensor", "add", "lock-1", "--type", "lock", "--public-key", SENSOR_KEY,
        "--field", "locked:bool", "--dev-account", "1",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert table_row(cli("registry", "sensor", "list").output, "lock-1")[-1] == "yes"
    stolen = cli("registry", "sensor", "deactivate", "lock-1", "--dev-account", "2")
    assert stolen.exit_code == 1
    assert "only the sensor's owner may deactivate it" in stolen.output

    gone = cli("registry", "sensor", "deactivate", "lock-1", "--dev-account", "1")
    assert gone.exit_code == 0, gone.output
    assert "deactivated sensor lock-1: block" in gone.output
    assert detail_rows(cli("registry", "sensor", "show", "lock-1").output)["status"] == (
        "deactivated"
    )
    assert table_row(cli("registry", "sensor", "list").output, "lock-1")[-1] == "no"


def test_bad_input_is_one_red_line_and_exit_code_1(cli) -> None:  # type: ignore[no-untyped-def]
    bad_key = cli("registry", "sensor", "add", "s1", "--type", "temperature", "--public-key", "zz")
    assert bad_key.exit_code == 1
    assert bad_key.output.strip() == "error: public key 'zz' is not hexadecimal"
    bad_type = cli(
        "registry", "sensor", "add", "s1", "--type", "temperature", "--public-key", SENSOR_KEY,
        "--field", "celsius:float",
    )  # fmt: skip
    assert bad_type.exit_code == 1
    assert "unknown field type 'float'; choose one of: bool" in bad_type.output
    assert "Traceback" not in bad_type.output


def test_duplicates_wrong_owners_and_missing_entries_are_user_errors(cli) -> None:  # type: ignore[no-untyped-def]
    missing = cli("registry", "user", "show", "nobody")
    assert missing.exit_code == 1 and "no registry contract is deployed" in missing.output
    assert cli("registry", "user", "add", "alice").exit_code == 0
    again = cli("registry", "user", "add", "alice", "--dev-account", "3")
    assert again.exit_code == 1 and "'alice' is already registered" in again.output
    stolen = cli("registry", "user", "deactivate", "alice", "--dev-account", "4")
    assert stolen.exit_code == 1
    assert "only the user's owner may deactivate it" in stolen.output
    assert cli("registry", "user", "show", "nobody").exit_code == 1


def test_keystore_accounts_sign_registrations(cli) -> None:  # type: ignore[no-untyped-def]
    imported = cli("account", "import", "bob", input=DEV_KEY_1 + "\n")
    assert imported.exit_code == 0, imported.output
    bob = PrivateKey(bytes.fromhex(DEV_KEY_1[2:])).address
    assert bob in imported.output and DEV_KEY_1[2:] not in imported.output
    assert bob in cli("account", "list").output
    added = cli("registry", "user", "add", "bob", "--account", "bob")
    assert added.exit_code == 0, added.output
    assert bob in cli("registry", "user", "show", "bob").output
    twice = cli("account", "import", "bob", input=DEV_KEY_1 + "\n")
    assert twice.exit_code == 1 and "already exists" in twice.output


def test_the_demo_runs_twice_on_the_same_data_directory(cli) -> None:  # type: ignore[no-untyped-def]
    first = cli("demo", "registry")
    assert first.exit_code == 0, first.output
    assert "6 registered now, 0 already present" in first.output
    for word in (
        "insurer",
        "rental-provider",
        "temp-1",
        "lock-1",
        "rental_seconds:uint64",
        "node-provider",
    ):
        assert word in first.output
    second = cli("demo", "registry")
    assert second.exit_code == 0, second.output
    assert "0 registered now, 6 already present" in second.output
    info = cli("chain", "info")
    assert info.exit_code == 0 and "embedded" in info.output and "registry" in info.output


def test_internal_errors_exit_70_with_traceback_and_an_issue_link() -> None:
    broken = typer.Typer(cls=ReportingGroup)

    @broken.command()
    def explode() -> None:
        raise InternalError("the window index went backwards")

    @broken.command()
    def other() -> None:
        """A second command so that typer keeps the group."""

    result = CliRunner().invoke(broken, ["explode"])
    assert result.exit_code == EXIT_INTERNAL
    assert "Traceback" in result.output and "please file an issue" in result.output
