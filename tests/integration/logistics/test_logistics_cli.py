"""``pervasive demo logistics``: the command end to end on the embedded chain and broker.

The command exits 1 unless sendMoney paid once and the supplier was paid once; the test
also reads the tables a user sees and the files written to ``--out``.
"""

from __future__ import annotations

import json
import shutil
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
