"""``pervasive service deploy|upgrade|show|list|run`` through typer's CliRunner (embedded chain).

Each invocation opens the data directory's chain and closes it, as separate processes
would. Bad specs end in one red line and exit code 1, never a traceback.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
import typer
from click.testing import Result
from typer.testing import CliRunner

from pervasive.chain import open_ledger
from pervasive.cli import service
from pervasive.cli.app import EXIT_USER, ReportingGroup, root
from pervasive.cli.app import app as pervasive_app
from pervasive.config import Settings
from pervasive.contracts import Contract
from pervasive.service.deployment import ServiceBook

SAMPLES = Path(__file__).parents[2] / "unit" / "service" / "samples"
Invoke = Callable[..., Result]


def _root() -> typer.Typer:
    """The real ``pervasive`` app when it mounts ``service``, else one mounting it the same way."""
    if any(group.name == "service" for group in pervasive_app.registered_groups):
        return pervasive_app
    mounted = typer.Typer(cls=ReportingGroup, no_args_is_help=True, pretty_exceptions_enable=False)
    mounted.callback()(root)
    mounted.add_typer(service.app, name="service")
    return mounted


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, artifacts: Path) -> Path:
    """A fresh data directory with the artifact cache filled; cwd away from any pervasive.toml."""
    monkeypatch.chdir(tmp_path)
    shutil.copytree(artifacts, tmp_path / "home" / "artifacts")
    return tmp_path / "home"


@pytest.fixture
def specs(tmp_path: Path) -> Path:
    return Path(shutil.copytree(SAMPLES, tmp_path / "specs"))


@pytest.fixture
def cli(home: Path) -> Invoke:
    runner = CliRunner(env={"COLUMNS": "250", "PERVASIVE_PASSWORD": "correct horse battery"})
    root = _root()

    def invoke(*args: str) -> Result:
        return runner.invoke(root, ["--home", str(home), "--backend", "embedded", *args])

    return invoke


def test_help_has_examples() -> None:
    result = CliRunner(env={"COLUMNS": "200"}).invoke(_root(), ["service", "--help"])
    assert result.exit_code == 0
    for word in ("deploy", "upgrade", "show", "list", "run", "shipping.toml --record cost"):
        assert word in result.output


async def _quote(home: Path, address: str, abi: tuple[dict[str, object], ...]) -> None:
    ledger = await open_ledger(Settings(home=home))
    try:
        signer = ledger.dev_signer(0)
        await Contract(ledger, address, abi).transact(
            signer, "quote", "ship-1", 1250, ledger.dev_signer(4).address
        )
    finally:
        await ledger.close()


def _chain_ids(home: Path) -> list[int]:
    with sqlite3.connect(home / "services.sqlite") as db:
        return [row[0] for row in db.execute("SELECT DISTINCT chain_id FROM services")]


def test_deploy_upgrade_show_list(cli: Invoke, home: Path, specs: Path) -> None:
    deployed = cli("service", "deploy", str(specs / "shipping.toml"))
    assert deployed.exit_code == 0, deployed.output
    assert "deployed: shipping-test v1 on chain" in deployed.output
    assert "database 0x" in deployed.output
    again = cli("service", "deploy", str(specs / "shipping.toml"))
    assert again.exit_code == 0 and "already deployed, reused" in again.output

    book = ServiceBook.open(home / "services.sqlite")
    [v1] = [book.get(chain_id, "shipping-test") for chain_id in _chain_ids(home)]
    book.close()
    assert v1 is not None
    asyncio.run(_quote(home, v1.address, v1.abi))  # the service's operator quotes

    upgraded = cli("service", "upgrade", str(specs / "shipping_v2.toml"))
    assert upgraded.exit_code == 0, upgraded.output
    assert "upgraded v1 -> shipping-test v2" in upgraded.output
    assert f"database {v1.database} (same database, writer moved)" in upgraded.output

    shown = cli(
        "service", "show", str(specs / "shipping_v2.toml"), "--record", "cost", "--id", "ship-1"
    )
    assert shown.exit_code == 0, shown.output
    assert "cost[ship-1] = 1250 (uint256)" in shown.output
    assert "2 (current)" in shown.output and v1.address in shown.output
    carrier = cli(
        "service", "show", str(specs / "shipping.toml"), "--record", "delivered", "--id", "ship-1"
    )
    assert "delivered[ship-1] = False (bool)" in carrier.output

    listed = cli("service", "list")
    assert listed.exit_code == 0 and "shipping-test" in listed.output
    assert v1.database is not None and v1.database in listed.output


@pytest.mark.parametrize(
    ("edit", "args", "message"),
    [
        (
            ('confirm_delivery"\nargs', 'confirm_deliver"\nargs'),
            ("deploy",),
            "mqtt[0].function: 'confirm_deliver' is not a function of shipping_v1.vy; "
            "functions: confirm_delivery, cost",
        ),
        (
            ("sensors/delivery", "sensor/delivery"),
            ("deploy",),
            "mqtt[0].topic: 'pervasive/devices/+/sensor/delivery' is no device sensor topic",
        ),
        (("version = 1", "version = 1\nowner = 2"), ("deploy",), "unknown field 'owner'"),
        (None, ("upgrade",), "shipping-test is not deployed on chain"),
        (
            None,
            ("show", "--record", "price", "--id", "s"),
            "record 'price' is not declared in [database]; records: cost, carrier, delivered",
        ),
        (None, ("run",), "shipping-test is not deployed on chain"),
    ],
)
def test_bad_specs_and_states_are_one_line(
    cli: Invoke, specs: Path, edit: tuple[str, str] | None, args: tuple[str, ...], message: str
) -> None:
    spec = specs / "shipping.toml"
    if edit is not None:
        spec.write_text(spec.read_text().replace(*edit, 1))
    result = cli("service", args[0], str(spec), *args[1:])
    assert result.exit_code == EXIT_USER, result.output
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert result.output.startswith("error: ") and result.output.count("error:") == 1


def test_a_missing_spec_file_is_one_line(cli: Invoke, tmp_path: Path) -> None:
    result = cli("service", "deploy", str(tmp_path / "nowhere.toml"))
    assert result.exit_code == EXIT_USER
    assert "nowhere.toml: no such spec file" in result.output
