"""Revocation as the gateway checks it per request: this process's CA and another's."""

from __future__ import annotations

from pathlib import Path

from pervasive.pki import CertificateAuthority, RevokedSerials


def test_a_revocation_in_this_process_is_seen_at_once(tmp_path: Path) -> None:
    ca = CertificateAuthority.open(tmp_path / "pki", "pw")
    issued = ca.issue_device("door-1")
    revoked = RevokedSerials(ca)
    assert issued.record.serial not in revoked
    ca.revoke(issued.record.serial)
    assert issued.record.serial in revoked
    revoked.close()
    ca.close()


def test_a_revocation_by_another_process_is_seen_through_the_crl_file(tmp_path: Path) -> None:
    gateway_ca = CertificateAuthority.open(tmp_path / "pki", "pw")
    issued = gateway_ca.issue_device("door-1")
    revoked = RevokedSerials(gateway_ca)
    before = revoked.reloads
    assert issued.record.serial not in revoked
    assert revoked.reloads == before  # nothing changed: no reload per lookup
    other = CertificateAuthority.open(tmp_path / "pki", "pw")  # `pervasive device revoke`
    other.revoke(issued.record.serial)
    assert issued.record.serial in revoked
    assert len(revoked) == 1
    revoked.close()
    other.close()
    gateway_ca.close()


def test_the_set_follows_another_process_at_refresh(tmp_path: Path) -> None:
    gateway_ca = CertificateAuthority.open(tmp_path / "pki", "pw")
    issued = gateway_ca.issue_device("door-1")
    revoked = RevokedSerials(gateway_ca, recheck=3600)
    other = CertificateAuthority.open(tmp_path / "pki", "pw")
    other.revoke(issued.record.serial)
    assert issued.record.serial not in revoked.serials  # not looked at the file yet
    revoked.refresh()
    assert issued.record.serial in revoked.serials
    reloads = revoked.reloads
    revoked.refresh()
    assert revoked.reloads == reloads  # the file did not change: nothing read again
    revoked.close()
    other.close()
    gateway_ca.close()


def test_server_credentials_cover_the_requested_hosts(tmp_path: Path) -> None:
    ca = CertificateAuthority.open(tmp_path / "pki", "pw")
    first = ca.server_credentials("gateway", ("127.0.0.1", "localhost"))
    assert first.cert_file == tmp_path / "pki" / "gateway" / "server.cert.pem"
    same = first.cert_file.read_bytes()
    ca.server_credentials("gateway", ("localhost",))
    assert first.cert_file.read_bytes() == same  # still covered: not reissued
    ca.server_credentials("gateway", ("10.0.0.7",))
    assert first.cert_file.read_bytes() != same  # a new host: reissued
    names = [r.common_name for r in ca.certificates()]
    assert names == ["gateway:127.0.0.1", "gateway:10.0.0.7"]
    ca.close()
