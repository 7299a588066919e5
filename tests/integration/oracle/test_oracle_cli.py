"""``pervasive oracle init`` and ``status`` on the embedded chain, as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CLI = Path(__file__).resolve().parents[2] / "faults" / "oracle" / "oracle_cli.py"


def _pervasive(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PERVASIVE_PASSWORD": "oracle cli test"}
    return subprocess.run(
        [sys.executable, str(CLI), "--home", str(home), "oracle", *args],
        env=env, capture_output=True, text=True, timeout=120, check=False, cwd=home.parent,
    )  # fmt: skip


def test_init_creates_the_accounts_and_the_hub_and_status_shows_them(tmp_path: Path) -> None:
    home = tmp_path / "home"
    made = _pervasive(home, "init", "--oracles", "3", "--threshold", "2", "--timeout", "20")
    assert made.returncode == 0, made.stdout + made.stderr
    assert "t = 2 of 3" in made.stdout and made.stdout.count("svc:oracle.") == 3
    assert sorted(p.stem for p in (home / "keystore").glob("oracle-*.json")) == [
        "oracle-1", "oracle-2", "oracle-3",
    ]  # fmt: skip
    shown = _pervasive(home, "status")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "t = 2 of 3, 20 s per attempt" in " ".join(shown.stdout.split())
    refused = _pervasive(home, "init", "--oracles", "2", "--threshold", "3")
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1 and "--threshold" in refused.stderr
