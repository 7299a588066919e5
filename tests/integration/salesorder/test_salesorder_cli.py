"""``pervasive device warehouse``: help, user mistakes as one line, and the door end to end.

The group is mounted here under a root with the CLI's :class:`ReportingGroup` (the lead
mounts it as ``pervasive device warehouse``); the end-to-end tests run it as its own
process against anvil, mosquitto and the gateway of the test process.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from pervasive.apps.salesorder import render_png
from pervasive.cli import warehouse
from pervasive.cli.app import ReportingGroup
from salesorder_world import (
    DOOR_COMMAND,
    SaleWorld,
    door_environment,
    door_options,
    door_process,
    registered_door,
)

pytestmark = [pytest.mark.xdist_group("sale-cli-world")]


def root() -> typer.Typer:
    app = typer.Typer(cls=ReportingGroup)
    app.add_typer(warehouse.app, name="warehouse")
    return app


def invoke(home: Path, *args: str) -> tuple[int, str]:
    environment = {"PERVASIVE_HOME": str(home), "PERVASIVE_PASSWORD": "test password",
                   "COLUMNS": "300"}  # fmt: skip
    result = CliRunner().invoke(root(), ["warehouse", *args], env=environment)
    return result.exit_code, result.output


def test_each_command_explains_itself(tmp_path: Path) -> None:
    code, text = invoke(tmp_path, "--help")
    assert code == 0 and "verifyOwnership" in text and "register" in text and "scan" in text
    code, text = invoke(tmp_path, "run", "--help")
    assert code == 0 and "--inbox" in text and "--gateway" in text and "--hold" in text
    code, text = invoke(tmp_path, "register", "--help")
    assert code == 0 and "warehouse account" in text and "--fund" in text
    code, text = invoke(tmp_path, "scan", "--help")
    assert code == 0 and "exit (1 if refused)" in text


def test_user_mistakes_end_in_one_line(tmp_path: Path) -> None:
    code, text = invoke(tmp_path, "run", "door-1")
    assert code == 1 and "Traceback" not in text
    assert "no keystore account 'warehouse-door-1'" in text
    assert "pervasive device warehouse register door-1" in text
    code, text = invoke(tmp_path, "scan", "door-1", str(tmp_path / "missing.png"))
    assert code == 2 and "does not exist" in text
    code, text = invoke(tmp_path, "run", "door-1", "--no-stdin")
    assert code == 1 and "give --inbox DIR, or leave stdin on" in text

    code, text = invoke(tmp_path, "register", "door-1", "--fund", "0.5")
    assert code == 0, text
    assert "warehouse account 0x" in text and "gateway role warehouse" in text
    photo = tmp_path / "receipt.png"
    photo.write_bytes(render_png("PVR1:1:..."))
    for options, expected in (
        ((), "no gateway to reach the chain through: give --gateway"),
        (("--gateway", "http://127.0.0.1:1"), "the gateway speaks HTTPS"),
        (("--gateway", "https://127.0.0.1:1"), "127.0.0.1:1"),
    ):
        code, text = invoke(tmp_path, "scan", "door-1", str(photo), *options)
        assert code == 1 and "Traceback" not in text, text
        assert text.startswith("error: ") and expected in text, text


@pytest.mark.anvil
@pytest.mark.mosquitto
@pytest.mark.asyncio(loop_scope="module")
async def test_scan_and_inbox_open_the_door_through_the_gateway(
    gateway_world: SaleWorld, tmp_path: Path
) -> None:
    world = gateway_world
    thing, account = await registered_door(world)
    first = await world.order(account.address, buyer=world.buyer)
    second = await world.order(account.address, buyer=world.buyer)
    photo = tmp_path / "receipt.png"
    photo.write_bytes(world.receipt_png(first.address, world.buyer))

    async def scan() -> tuple[int, str]:
        child = await asyncio.create_subprocess_exec(
            *DOOR_COMMAND, "scan", thing, str(photo), *await door_options(world), "--hold", "0.1",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            env=door_environment(world), cwd=world.root,
        )  # fmt: skip
        output, _ = await child.communicate()
        return child.returncode or 0, output.decode()

    code, text = await scan()
    assert code == 0 and "OPEN" in text, text
    code, text = await scan()
    assert code == 1 and "REFUSED" in text and "already released" in text, text

    inbox = tmp_path / "camera"
    async with door_process(world, thing, "--inbox", str(inbox), "--stdin") as door:
        frame = inbox / ".frame-1.png.partial"  # a camera writes, then renames
        frame.write_bytes(world.receipt_png(second.address, world.buyer))
        frame.rename(inbox / "frame-1.png")
        opened = await door.expect(r"frame-1\.png")
        assert "OPEN" in opened, opened
        (inbox / "frame-2.png").write_bytes(render_png("not a receipt"))
        refused = await door.expect(r"frame-2\.png")
        assert "REFUSED" in refused and "unreadable" in refused, refused
        async with asyncio.timeout(5):
            while not (inbox / "refused" / "frame-2.png").exists():
                await asyncio.sleep(0.05)
    assert (inbox / "done" / "frame-1.png").is_file()
    assert not (inbox / "frame-1.png").exists()
