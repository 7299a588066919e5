"""``pervasive code put|get|verify`` through typer's CliRunner (no chain needed)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from pervasive.cli import app
from pervasive.offchain import source_hash
from pervasive.storage import ContentStore, cid_for_digest, cid_of

Invoke = Callable[..., Result]

SOURCE = "def rental(w):   \n    return b'42'\n"


@pytest.fixture
def code_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh data directory (cwd moved away from any ./pervasive.toml)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path / "home"


@pytest.fixture
def cli(code_home: Path) -> Invoke:
    runner = CliRunner(env={"COLUMNS": "200"})

    def invoke(*args: str) -> Result:
        return runner.invoke(app, ["--home", str(code_home), *args])

    return invoke


def test_help_has_examples() -> None:
    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["code", "--help"])
    assert result.exit_code == 0, result.output
    for word in ("put", "get", "verify", "pervasive code put"):
        assert word in result.output
    put_help = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["code", "put", "--help"])
    assert "--function-source" in put_help.output and "Example" in put_help.output


def test_put_get_verify_round_trip(cli: Invoke, tmp_path: Path) -> None:
    data = bytes(range(256)) * 4  # binary content survives stdout and -o
    (tmp_path / "blob.bin").write_bytes(data)
    put = cli("code", "put", str(tmp_path / "blob.bin"))
    assert put.exit_code == 0, put.output
    cid = str(cid_of(data))
    assert cid in put.output and "0x" + cid_of(data).digest.hex() in put.output

    again = cli("code", "put", str(tmp_path / "blob.bin"))
    assert again.exit_code == 0 and cid in again.output

    printed = cli("code", "get", cid)
    assert printed.exit_code == 0, printed.output
    assert printed.stdout_bytes == data

    out = tmp_path / "copy.bin"
    written = cli("code", "get", cid, "-o", str(out))
    assert written.exit_code == 0, written.output
    assert out.read_bytes() == data

    verified = cli("code", "verify", cid)
    assert verified.exit_code == 0, verified.output
    assert "intact" in verified.output


def test_function_source_is_addressed_by_the_agreement_hash(
    cli: Invoke, code_home: Path, tmp_path: Path
) -> None:
    (tmp_path / "rental.py").write_text(SOURCE)
    put = cli("code", "put", str(tmp_path / "rental.py"), "--function-source")
    assert put.exit_code == 0, put.output
    function_hash = source_hash(SOURCE)
    assert str(cid_for_digest(function_hash)) in put.output
    fetched = cli("code", "get", "0x" + function_hash.hex())
    assert fetched.exit_code == 0, fetched.output
    assert fetched.stdout == "def rental(w):\n    return b'42'"
    assert ContentStore(code_home / "content").has(cid_for_digest(function_hash))


def test_a_tampered_file_fails_verification(cli: Invoke, code_home: Path, tmp_path: Path) -> None:
    (tmp_path / "f.py").write_text(SOURCE)
    assert cli("code", "put", str(tmp_path / "f.py")).exit_code == 0
    cid = cid_of(SOURCE.encode())
    ContentStore(code_home / "content").path_of(cid).write_text("import os; os.system('x')")
    verified = cli("code", "verify", str(cid))
    assert verified.exit_code == 1
    assert "changed or damaged" in verified.output
    assert cli("code", "get", str(cid)).exit_code == 1


def test_missing_and_malformed_addresses_are_user_errors(cli: Invoke) -> None:
    missing = cli("code", "get", str(cid_of(b"never stored")))
    assert missing.exit_code == 1 and "no content" in missing.output
    for bad in ("not-a-cid", "0x1234", "0xzz"):
        result = cli("code", "verify", bad)
        assert result.exit_code == 1, (bad, result.output)
        assert "error:" in result.output
