"""``<home>/run.json``: written and read back, checked for liveness, stale when its pid is gone."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pervasive.cli import app
from pervasive.errors import ConfigError
from pervasive.platform import Endpoint, RunRecord, check, read_run_record, run_file
from pervasive.platform.run_file import write_run_record


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def record(pid: int, port: int) -> RunRecord:
    broker = Endpoint("broker", "embedded", f"mqtts://127.0.0.1:{port}", "127.0.0.1", port, pid)
    chain = Endpoint("chain", "embedded", "in-process", detail="chain id 1")
    return RunRecord(pid, "/tmp/home", 1.0, (chain, broker), {"CA certificate": "/x/ca.pem"})


def test_record_round_trips_through_the_file(tmp_path: Path) -> None:
    path = run_file(tmp_path)
    assert read_run_record(path) is None
    write_run_record(path, record(1, 1883))
    assert read_run_record(path) == record(1, 1883)


def test_a_foreign_file_says_what_to_do(tmp_path: Path) -> None:
    run_file(tmp_path).write_text('{"pid": 1}')
    with pytest.raises(ConfigError, match=r"not one `pervasive up` wrote.*remove it"):
        read_run_record(run_file(tmp_path))


def test_live_process_with_a_listening_port_runs() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        health = check(record(os.getpid(), server.getsockname()[1]))
    assert [h.running for h in health] == [True, True]
    assert health[0].port_open is None  # the in-process chain has no port


def test_closed_port_or_dead_process_does_not_run() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    (chain, broker) = check(record(os.getpid(), closed), timeout=0.2)
    assert chain.running and not broker.running
    assert not any(h.process_alive for h in check(record(dead_pid(), closed), timeout=0.2))


def test_status_without_a_stack_says_stopped(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["--home", str(tmp_path), "status"])
    assert result.exit_code == 3
    assert "stopped: nothing runs from" in result.output


def test_status_with_a_stale_run_file_says_the_stack_is_gone(tmp_path: Path) -> None:
    write_run_record(run_file(tmp_path), record(dead_pid(), 1))
    result = CliRunner().invoke(app, ["--home", str(tmp_path), "status"])
    assert result.exit_code == 3
    assert "is gone" in result.output and "stale run file" in result.output


def test_the_package_surface_is_what_all_says() -> None:
    import pervasive

    assert set(pervasive.__all__) == {
        "InternalError", "PervasiveError", "Platform", "Settings", "UserError",
        "__version__", "load_settings",
    }  # fmt: skip
    assert all(hasattr(pervasive, name) for name in pervasive.__all__)


def test_operations_page_documents_every_setting() -> None:
    from pervasive.config import Settings, settings_table

    page = (Path(__file__).parents[3] / "docs" / "operations.md").read_text()
    missing = [name for name, _, _ in settings_table(Settings()) if f"`{name}`" not in page]
    assert not missing, f"docs/operations.md lacks {missing}"
