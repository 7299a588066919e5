"""``pervasive gateway role|roles|run`` in a data directory, the gateway in its own process.

The CLI's gateway runs as a separate process (as ``pervasive gateway run`` does for an
operator); this test process plays the operator's other shell: it grants roles and
revokes a device's certificate, and the running gateway follows both at once.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import typer
from typer.testing import CliRunner

from pervasive.cli import gateway
from pervasive.cli.app import ReportingGroup, root
from pervasive.pki import CertificateAuthority

PASSWORD = "correct horse battery"
# the root command with the gateway group, as cli/app.py composes it
_SCRIPT = """
import typer
from pervasive.cli import gateway
from pervasive.cli.app import ReportingGroup, root
cli = typer.Typer(cls=ReportingGroup)
cli.callback()(root)
cli.add_typer(gateway.app, name="gateway")
cli()
"""


def command() -> typer.Typer:
    cli = typer.Typer(cls=ReportingGroup)
    cli.callback()(root)
    cli.add_typer(gateway.app, name="gateway")
    return cli


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def invoke(home: Path, *args: str) -> tuple[int, str]:
    runner = CliRunner(env={"COLUMNS": "200", "PERVASIVE_PASSWORD": PASSWORD})
    result = runner.invoke(command(), ["--home", str(home), *args])
    return result.exit_code, result.output


def test_roles_are_granted_listed_and_withdrawn(home: Path) -> None:
    assert invoke(home, "gateway", "role", "door-1", "warehouse") == (
        0,
        "door-1 is a warehouse at the gateway\n",
    )
    invoke(home, "gateway", "role", "svc:dashboard", "reader")
    code, table = invoke(home, "gateway", "roles")
    assert code == 0
    assert re.search(r"door-1\s+│\s+warehouse", table) and re.search(
        r"svc:dashboard\s+│\s+reader", table
    )
    assert invoke(home, "gateway", "role", "door-1", "none")[0] == 0
    assert "door-1" not in invoke(home, "gateway", "roles")[1]
    code, error = invoke(home, "gateway", "role", "door-1", "admin")
    assert code == 1 and "unknown gateway role 'admin'" in error and "Traceback" not in error


@pytest.fixture
def running(home: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    env = {**os.environ, "PERVASIVE_PASSWORD": PASSWORD, "COLUMNS": "250"}
    args = ["--home", str(home), "--backend", "embedded", "gateway", "run", "--port", "0"]
    child = subprocess.Popen(
        [sys.executable, "-c", _SCRIPT, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        match = re.search(r"listening on (https://\S+)", line)
        assert match, line + child.stdout.read()
        yield child, match.group(1)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_a_running_gateway_follows_roles_and_revocations_of_other_processes(
    home: Path, running: tuple[subprocess.Popen[str], str]
) -> None:
    child, url = running
    ca = CertificateAuthority.open(home / "pki", PASSWORD)
    credentials = ca.client_credentials("door-1", home / "devices")
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})
    # per request: a session-wide verify loses to REQUESTS_CA_BUNDLE in the environment
    tls = {
        "cert": (str(credentials.cert_file), str(credentials.key_file)),
        "verify": str(credentials.ca_file),
        "timeout": 10,
    }
    with requests.Session() as http:
        refused = http.post(url, data=body, **tls)  # type: ignore[arg-type]
        assert refused.status_code == 403 and "holds no role" in refused.json()["error"]["message"]
        assert invoke(home, "gateway", "role", "door-1", "reader")[0] == 0
        served = http.post(url, data=body, **tls)  # type: ignore[arg-type]
        assert served.status_code == 200 and served.json()["result"].startswith("0x")
        ca.revoke_identity("door-1")  # this process, not the gateway's: seen via the CRL
        revoked = http.post(url, data=body, **tls)  # type: ignore[arg-type]
        assert revoked.status_code == 403 and "revoked" in revoked.json()["error"]["message"]
    ca.close()
    child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 30
    output, _ = child.communicate(timeout=max(1.0, deadline - time.monotonic()))
    assert child.returncode == 0, output
    assert "gateway stopped: 1 calls served" in output
    assert "no_role: 1" in output and "revoked: 1" in output
