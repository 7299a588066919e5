"""``pervasive demo logistics``: the command end to end on the embedded chain and broker.

The command exits 1 unless sendMoney paid once and the supplier was paid once; the test
also reads the tables a user sees and the files written to ``--out``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pervasive.cli import app

pytestmark = pytest.mark.slow


def test_the_demo_prints_its_tables_and_writes_the_timeline_and_the_stream(
    tmp_path: Path, artifacts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    home, out = tmp_path / "home", tmp_path / "out"
    shutil.copytree(artifacts, home / "artifacts")
    runner = CliRunner(env={"COLUMNS": "220", "PERVASIVE_PASSWORD": "pw"})
    result = runner.invoke(app, ["--home", str(home), "demo", "logistics", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "sendMoney paid the carrier 1 time(s)" in result.output
    assert "the supplier was paid 1 time(s)" in result.output
    for title in ("Steps", "Payments", "Oracle round trip", "CloudEvents by type", "Gas"):
        assert title in result.output
    assert "2 signatures of 3 registered oracles" in result.output or (
        "3 signatures of 3 registered oracles" in result.output
    )
    assert (out / "timeline.png").read_bytes().startswith(b"\x89PNG")
    stream = [json.loads(line) for line in (out / "cloudevents.jsonl").read_text().splitlines()]
    assert [e["type"].rsplit(".", 1)[1] for e in stream][-2:] == [
        "delivery-confirmed",
        "payment-released",
    ]
    # run again in the same data directory: the CA and the devices' certificates are reused
    again = runner.invoke(app, ["--home", str(home), "demo", "logistics", "--out", str(out)])
    assert again.exit_code == 0, again.output


def test_with_web_the_dashboard_streams_every_step_and_ctrl_c_stops_it(
    tmp_path: Path, artifacts: Path
) -> None:
    """``--web``: the case study's CloudEvents reach the dashboard's stream as they happen."""
    home = tmp_path / "home"
    shutil.copytree(artifacts, home / "artifacts")
    env = {**os.environ, "PERVASIVE_PASSWORD": "pw", "PERVASIVE_WEB_PORT": "0", "COLUMNS": "200"}
    command = [sys.executable, "-m", "pervasive", "--home", str(home), "demo", "logistics", "--web"]
    process = subprocess.Popen(
        command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        assert process.stdout is not None
        url, output = None, []
        for line in process.stdout:
            output.append(line)
            found = re.search(r"live dashboard (http://127\.0\.0\.1:\d+)/dashboard", line)
            url = url or (found.group(1) if found else None)
            if "still serving the dashboard" in line:
                break
        assert url is not None, "".join(output)
        with urllib.request.urlopen(f"{url}/events/stream?after=0", timeout=3) as stream:
            events: list[dict[str, object]] = []
            while len(events) < 8:
                line = stream.readline().decode()
                if line.startswith("data:"):
                    events.append(json.loads(line.removeprefix("data:")))
        kinds = [str(e["type"]).rsplit(".", 1)[1] for e in events]
        assert kinds[-2:] == ["delivery-confirmed", "payment-released"]
        assert len({str(e["id"]) for e in events}) == 8
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
