"""``pervasive device register|list|cert|revoke`` on the embedded chain and the platform CA."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pervasive.cli.app import app
from pervasive.pki import CertificateAuthority


def invoke(home: Path, *args: str) -> str:
    result = CliRunner().invoke(
        app, ["--home", str(home), *args], env={"PERVASIVE_PASSWORD": "pw"}, catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.slow
def test_register_rotate_and_revoke_a_device(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    home = tmp_path / "home"
    out = invoke(home, "device", "register", "container-1", "--dev-account", "1")
    assert "container-1.location" in out
    folder = home / "devices" / "container-1"
    assert (folder / "cert.pem").is_file() and (
        folder / "sensors" / "location.key"
    ).stat().st_mode & 0o077 == 0
    assert "container-1.location" in invoke(home, "registry", "sensor", "list")
    old = (folder / "cert.pem").read_bytes()
    invoke(home, "device", "cert", "container-1", "--rotate")
    assert (folder / "cert.pem").read_bytes() != old
    assert "active" in invoke(home, "device", "list")
    out = invoke(home, "device", "revoke", "container-1", "--dev-account", "1")
    assert "deactivated sensors:" in out and "container-1.location" in out
    ca = CertificateAuthority.open(home / "pki", "pw")
    try:
        assert "container-1" not in ca.active_identities()
    finally:
        ca.close()
    row = next(line for line in invoke(home, "registry", "sensor", "list").splitlines()
               if "container-1.location" in line)  # fmt: skip
    assert row.rstrip(" │").endswith("no")  # the "active" column
