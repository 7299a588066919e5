"""``pervasive demo smartlock``: the main demo, end to end on the embedded chain.

Small month (2 locks, 6 rentals each) so it runs in seconds; the command itself checks
the recorded ``T_m`` against the simulation's ground truth and exits 1 on a mismatch.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pervasive.cli import app

pytestmark = pytest.mark.slow


def test_the_demo_records_the_true_rental_time_and_pays_the_premium(home: Path) -> None:
    chart = home / "chart.png"
    result = CliRunner(env={"COLUMNS": "200", "PERVASIVE_PASSWORD": "pw"}).invoke(
        app,
        ["--home", str(home), "demo", "smartlock", "--locks", "2", "--rentals", "6",
         "--tokens", "3", "--chart", str(chart)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "recorded T_m matches the simulated rentals" in result.output
    assert "premium paid" in result.output and "DIVERSITY update (measured)" in result.output
    assert chart.read_bytes().startswith(b"\x89PNG")
