"""User mistakes at the command line end in one line and exit 1, never a traceback (issue 11.10).

Each case is driven through typer's CliRunner on the embedded chain, against real
files (garbage bytes in a database, a truncated key file), a real plain HTTP server
(python's ``http.server``, which answers a POST with 501) and a real TCP listener that
never answers.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import HTTPServer, SimpleHTTPRequestHandler
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from pervasive.cli import app
from pervasive.cli.app import EXIT_INTERNAL, ReportingGroup

PASSWORD = "correct horse battery"
GARBAGE = bytes(range(256)) * 16  # 4 KiB that no SQLite header starts with

Invoke = Callable[..., Result]


def _runner(password: str | None = PASSWORD) -> CliRunner:
    # a silent endpoint is given up after rpc_timeout seconds (10 by default)
    env = {"COLUMNS": "200", "PERVASIVE_PASSWORD": password, "PERVASIVE_RPC_TIMEOUT": "2"}
    return CliRunner(env=env)


@pytest.fixture
def cli(home: Path) -> Invoke:
    runner = _runner()

    def invoke(*args: str, home_dir: Path = home, runner: CliRunner = runner) -> Result:
        return runner.invoke(app, ["--home", str(home_dir), *args])

    return invoke


def refused(result: Result, *words: str) -> str:
    """The one line of a refusal, after checking it is one: exit 1, no traceback."""
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code not in (0, EXIT_INTERNAL), result.output
    assert "Traceback" not in result.output and "bug in pervasive" not in result.output
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: "), lines[0]
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def test_home_that_is_a_regular_file(cli: Invoke, tmp_path: Path) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a data directory")
    refused(cli("chain", "info", home_dir=a_file), str(a_file), "is a file", "--home")
    refused(cli("account", "create", "alice", home_dir=a_file), "is a file")
    assert a_file.read_text() == "not a data directory"


def test_a_file_where_the_data_directory_needs_a_folder(cli: Invoke, home: Path) -> None:
    (home / "chain").write_text("in the way")
    line = refused(cli("chain", "info"), str(home / "chain"), "--home")
    assert "File exists" in line


def test_refusals_are_counted_by_kind(cli: Invoke, home: Path, tmp_path: Path) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a data directory")
    (home / "deployments.sqlite").write_bytes(GARBAGE)
    counted = ReportingGroup.refusals
    before = counted.copy()
    refused(cli("chain", "info", home_dir=a_file))
    refused(cli("chain", "info", home_dir=tmp_path / "typo"))
    refused(cli("chain", "info"))
    assert counted - before == {"ConfigError": 2, "UnreadableDatabase": 1}


def test_missing_home_is_refused_by_reading_commands_and_created_by_writing_ones(
    cli: Invoke, tmp_path: Path
) -> None:
    missing = tmp_path / "typo"
    for command in (("chain", "info"), ("account", "list"), ("registry", "user", "list")):
        refused(cli(*command, home_dir=missing), f"no data directory at {missing}", "--home")
    assert not missing.exists()
    created = cli("account", "create", "alice", home_dir=missing)
    assert created.exit_code == 0, created.output
    assert (missing / "keystore" / "alice.json").is_file()


def test_rpc_url_that_is_no_url(cli: Invoke) -> None:
    line = refused(cli("--backend", "rpc", "--rpc-url", "notaurl", "chain", "info"))
    assert "'notaurl' is not an http:// or https:// URL" in line


@pytest.fixture
def plain_http_server() -> Iterator[str]:
    """python's http.server: GET serves files, POST (JSON-RPC) is answered 501."""
    server = HTTPServer(("127.0.0.1", 0), SimpleHTTPRequestHandler)
    SimpleHTTPRequestHandler.log_message = lambda *args: None  # type: ignore[method-assign]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_rpc_url_of_a_plain_http_server(cli: Invoke, plain_http_server: str) -> None:
    result = cli("--backend", "rpc", "--rpc-url", plain_http_server, "chain", "info")
    line = refused(result, plain_http_server, "501", "is no Ethereum JSON-RPC endpoint")
    assert "--rpc-url" in line


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """A TCP listener that accepts every connection and never sends a byte."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()
    for connection in accepted:
        connection.close()


def test_endpoint_that_never_answers_is_given_up_with_a_reason(
    cli: Invoke, silent_endpoint: str
) -> None:
    result = cli("--backend", "rpc", "--rpc-url", silent_endpoint, "chain", "info")
    line = refused(result, silent_endpoint, "sent no answer within")
    assert re.search(r"within 2(\.0)? s", line), line


@pytest.mark.parametrize(
    ("relative", "command"),
    [
        ("chain/embedded.sqlite", ("chain", "info")),
        ("deployments.sqlite", ("chain", "info")),
        ("shadow.sqlite", ("shadow", "get", "thing-1")),
    ],
)
def test_corrupt_database_names_the_file(
    cli: Invoke, home: Path, relative: str, command: tuple[str, ...]
) -> None:
    first = cli("chain", "info")  # creates the chain and the deployment book
    assert first.exit_code == 0, first.output
    target = home / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(target.name + "-*"):  # WAL and shared-memory files
        stale.unlink()
    target.write_bytes(GARBAGE)
    refused(cli(*command), str(target), "move it away", "backup")
    assert target.read_bytes() == GARBAGE  # nothing was written to it


def test_corrupt_key_file_is_not_called_a_wrong_password(cli: Invoke, home: Path) -> None:
    assert cli("account", "create", "alice").exit_code == 0
    key_file = home / "keystore" / "alice.json"
    whole = key_file.read_bytes()
    wrong = _runner("not the password")
    line = refused(cli("notary", "key", "--account", "alice", runner=wrong), "wrong password")
    assert "corrupt" not in line

    key_file.write_bytes(whole[: len(whole) // 2])  # truncated, as by a full disk
    line = refused(cli("notary", "key", "--account", "alice"), str(key_file), "corrupt")
    assert "wrong password?" not in line
    key_file.write_bytes(b'{"address": "00", "version": 3}')  # JSON, but no keystore
    refused(cli("notary", "key", "--account", "alice"), str(key_file), "corrupt")


def test_account_list_shows_a_corrupt_key_file_beside_the_good_ones(
    cli: Invoke, home: Path
) -> None:
    assert cli("account", "create", "alice").exit_code == 0
    assert cli("account", "create", "bob").exit_code == 0
    (home / "keystore" / "alice.json").write_bytes(GARBAGE)
    listed = cli("account", "list")
    assert listed.exit_code == 0, listed.output
    flat = "".join(listed.output.split())  # rich wraps long cells
    assert "alice" in flat and "unreadable" in flat and "corrupt" in flat
    assert "bob" in flat and "0x" in flat


def test_no_password_and_no_terminal_says_how_to_give_one(cli: Invoke, home: Path) -> None:
    result = cli("account", "create", "alice", runner=_runner(password=None))
    line = refused(result, "password", "PERVASIVE_PASSWORD")
    assert "Aborted" not in result.output
    assert "no terminal" in line
    assert not (home / "keystore" / "alice.json").exists()


def test_node_run_on_an_address_that_is_no_agreement(cli: Invoke, tmp_path: Path) -> None:
    added = cli(
        "--backend", "embedded", "registry", "node", "add", "node-1",
        "--endpoint", "mqtts://n1.example:8883", "--dev-account", "2",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    info = cli("chain", "info")
    registry = re.search(r"registry\W+(0x[0-9a-fA-F]{40})", info.output)
    assert registry is not None, info.output
    for address in (registry.group(1), "0x" + "12" * 20):  # a contract, an empty account
        result = cli(
            "node", "run", "--agreement", address, "--dev-account", "2",
            "--credentials", str(tmp_path), "--mqtt-port", "1883",
        )  # fmt: skip
        line = refused(result, "is not an agreement contract", "--agreement")
        assert "reverted" not in line
