"""``pervasive broker run`` supervises mosquitto (issue 11, item 9).

- ready means *our* broker answers (a TLS handshake presenting the platform CA's broker
  certificate): with the port taken by another process the command exits 1 with one
  line saying so, and never prints "listening";
- when mosquitto dies (SIGKILL) the command says so in one line and exits 1 at once.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pervasive.messaging import find_mosquitto

pytestmark = [
    pytest.mark.mosquitto,
    pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto is not installed"),
]

ENV = {**os.environ, "PERVASIVE_PASSWORD": "pw", "PERVASIVE_BROKER": "mosquitto"}


def broker_run(home: Path, port: int) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "pervasive", "--home", str(home)]
    return subprocess.Popen(
        [*command, "broker", "run", "--port", str(port)],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.extend(int(child) for child in (task / "children").read_text().split())
    return found


def test_a_port_taken_by_another_process_fails_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()  # accepts TCP connections and never answers a TLS handshake
        port = squatter.getsockname()[1]
        process = broker_run(tmp_path / "home", port)
        try:
            out, err = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
            raise AssertionError(f"broker run kept running on a taken port: {out}") from None
    assert process.returncode == 1, (out, err)
    assert "listening" not in out
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert f"127.0.0.1:{port}" in lines[0] and "already in use" in lines[0]
    assert "Traceback" not in out + err


def test_mosquitto_killed_ends_broker_run_at_once(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = broker_run(tmp_path / "home", port)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "listening" in line, line + (process.stderr.read() if process.stderr else "")
        (mosquitto,) = children(process.pid)
        os.kill(mosquitto, signal.SIGKILL)
        try:
            # it polls its child every 0.1 s; 5 s leaves room for a loaded machine
            out, err = process.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            raise AssertionError("broker run kept running after mosquitto was killed") from None
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 1, (out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "mosquitto" in lines[0] and "SIGKILL" in lines[0]
