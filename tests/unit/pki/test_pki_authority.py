"""The certificate authority: issue, verify, revoke, rotate, CRL, persistence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pervasive.errors import ConfigError, InvalidInput, KeystoreError, NotFound, UserError
from pervasive.messaging.tls import load_revoked_serials
from pervasive.pki import (
    CertificateAuthority,
    CertificateExpired,
    CertificateKind,
    CertificateRejected,
    CertificateRevoked,
    CertificateStatus,
    UnknownIssuer,
    WrongUsage,
)


@pytest.fixture
def ca(tmp_path: Path) -> CertificateAuthority:
    return CertificateAuthority.open(tmp_path / "pki", "correct horse")


def test_device_certificate_names_the_device_with_client_auth(ca: CertificateAuthority) -> None:
    issued = ca.issue_device("lock-7", validity=timedelta(days=90))
    cert = x509.load_pem_x509_certificate(issued.certificate_pem)

    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "lock-7"
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert timedelta(days=90) <= lifetime <= timedelta(days=90, minutes=10)
    cert.verify_directly_issued_by(ca.certificate)
    assert issued.private_key_pem is not None
    assert "private_key_pem" not in repr(issued)


def test_verify_accepts_an_issued_certificate(ca: CertificateAuthority) -> None:
    issued = ca.issue_device("lock-7")
    record = ca.verify(issued.certificate_pem, kind=CertificateKind.DEVICE)
    assert record.common_name == "lock-7"
    assert record.serial == issued.record.serial


def test_revoked_certificate_is_rejected_and_listed_in_the_crl(ca: CertificateAuthority) -> None:
    issued = ca.issue_device("lock-7")
    other = ca.issue_device("lock-8")
    ca.revoke(issued.record.serial, x509.ReasonFlags.key_compromise)

    with pytest.raises(CertificateRevoked, match="revoked"):
        ca.verify(issued.certificate_pem)
    ca.verify(other.certificate_pem)
    crl = x509.load_pem_x509_crl(ca.crl_file.read_bytes())
    assert crl.is_signature_valid(ca.certificate.public_key())  # type: ignore[arg-type]
    entry = crl.get_revoked_certificate_by_serial_number(issued.record.serial)
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == (
        x509.ReasonFlags.key_compromise
    )
    assert crl.get_revoked_certificate_by_serial_number(other.record.serial) is None
    assert load_revoked_serials(ca.crl_file, ca.ca_file) == {issued.record.serial}
    assert ca.active_identities() == ["lock-8"]


def test_crl_numbers_grow(ca: CertificateAuthority) -> None:
    numbers = []
    for _ in range(3):
        crl = x509.load_pem_x509_crl(ca.crl_pem())
        numbers.append(crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)
    assert numbers == sorted(numbers)
    assert len(set(numbers)) == 3


def test_rotate_issues_a_new_certificate_and_revokes_the_old(ca: CertificateAuthority) -> None:
    old = ca.issue_device("lock-7", validity=timedelta(days=30))
    new = ca.rotate("lock-7")

    assert new.common_name == "lock-7"
    assert new.record.serial != old.record.serial
    assert new.record.not_after - new.record.not_before == timedelta(days=30, minutes=5)
    with pytest.raises(CertificateRevoked):
        ca.verify(old.certificate_pem)
    assert ca.verify(new.certificate_pem).serial == new.record.serial
    old_record = ca.get(old.record.serial)
    assert old_record.replaced_by == new.record.serial
    assert old_record.revocation_reason is x509.ReasonFlags.superseded
    assert ca.active_identities() == ["lock-7"]


def test_a_device_holds_one_active_certificate(ca: CertificateAuthority) -> None:
    ca.issue_device("lock-7")
    with pytest.raises(InvalidInput, match="rotate"):
        ca.issue_device("lock-7")


def test_expired_and_not_yet_valid_certificates_are_rejected(ca: CertificateAuthority) -> None:
    issued = ca.issue_device("lock-7", validity=timedelta(days=1))
    later = datetime.now(UTC) + timedelta(days=2)
    with pytest.raises(CertificateExpired, match="expired"):
        ca.verify(issued.certificate_pem, at=later)
    earlier = datetime.now(UTC) - timedelta(days=1)
    with pytest.raises(CertificateExpired, match="valid only from"):
        ca.verify(issued.certificate_pem, at=earlier)
    assert issued.record.status(later) is CertificateStatus.EXPIRED


def test_certificate_of_another_ca_is_unknown(ca: CertificateAuthority, tmp_path: Path) -> None:
    stranger = CertificateAuthority.open(tmp_path / "other", "pw")
    foreign = stranger.issue_device("lock-7")
    with pytest.raises(UnknownIssuer, match="not issued by this platform"):
        ca.verify(foreign.certificate_pem)


def test_garbage_is_rejected_with_a_user_error(ca: CertificateAuthority) -> None:
    with pytest.raises(CertificateRejected) as raised:
        ca.verify(b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    assert isinstance(raised.value, UserError)


def test_server_certificate_is_not_a_client_identity(ca: CertificateAuthority) -> None:
    server = ca.issue_server(("127.0.0.1", "localhost"))
    cert = x509.load_pem_x509_certificate(server.certificate_pem)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    with pytest.raises(WrongUsage):
        ca.verify(server.certificate_pem, kind=CertificateKind.DEVICE)
    assert server.common_name not in ca.active_identities()


def test_service_identities(ca: CertificateAuthority) -> None:
    issued = ca.issue_service("svc:shadow")
    assert ca.verify(issued.certificate_pem).kind is CertificateKind.SERVICE
    with pytest.raises(InvalidInput):
        ca.issue_service("shadow")
    with pytest.raises(InvalidInput):
        ca.issue_service("svc:Bad Role")


@pytest.mark.parametrize("device_id", ["", "a/b", "a+b", "#", "$aws", "a b", "x" * 129])
def test_invalid_device_ids_are_refused(ca: CertificateAuthority, device_id: str) -> None:
    with pytest.raises(InvalidInput):
        ca.issue_device(device_id)


def test_key_is_encrypted_at_rest_and_needs_the_password(tmp_path: Path) -> None:
    ca = CertificateAuthority.open(tmp_path / "pki", "s3cret")
    issued = ca.issue_device("lock-7")
    ca.close()
    key_text = (tmp_path / "pki" / "ca.key.pem").read_bytes()
    assert key_text.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert (tmp_path / "pki" / "ca.key.pem").stat().st_mode & 0o077 == 0

    with pytest.raises(KeystoreError, match="wrong password"):
        CertificateAuthority.open(tmp_path / "pki", "guess")
    with pytest.raises(ConfigError, match="password"):
        CertificateAuthority.open(tmp_path / "pki", None)

    reopened = CertificateAuthority.open(tmp_path / "pki", "s3cret")
    assert reopened.verify(issued.certificate_pem).common_name == "lock-7"
    assert [r.common_name for r in reopened.certificates()] == ["lock-7"]


def test_revoke_identity_and_unknown_serials(ca: CertificateAuthority) -> None:
    ca.issue_device("lock-7")
    records = ca.revoke_identity("lock-7")
    assert all(r.revoked_at is not None for r in records)
    assert ca.active_identities() == []
    with pytest.raises(NotFound):
        ca.revoke(12345)
    with pytest.raises(NotFound):
        ca.rotate("lock-7")


def test_credentials_are_written_for_the_device(ca: CertificateAuthority, tmp_path: Path) -> None:
    creds = ca.write_credentials(ca.issue_device("lock-7"), tmp_path / "lock-7")
    assert creds.identity() == "lock-7"
    assert creds.key_file.stat().st_mode & 0o077 == 0
    context = creds.ssl_context()
    assert context.verify_mode.name == "CERT_REQUIRED"


def test_device_may_keep_its_own_key(ca: CertificateAuthority, tmp_path: Path) -> None:
    device_key = ec.generate_private_key(ec.SECP256R1())
    issued = ca.issue_device("lock-7", public_key=device_key.public_key())
    cert = x509.load_pem_x509_certificate(issued.certificate_pem)
    assert cert.public_key() == device_key.public_key()
    assert issued.private_key_pem is None
    with pytest.raises(InvalidInput, match="generated by the device"):
        ca.write_credentials(issued, tmp_path / "lock-7")


def test_listeners_hear_every_change(ca: CertificateAuthority) -> None:
    calls: list[list[str]] = []
    ca.add_listener(lambda: calls.append(ca.active_identities()))
    issued = ca.issue_device("lock-7")
    ca.rotate("lock-7")
    ca.revoke_identity("lock-7")
    assert calls == [["lock-7"], ["lock-7"], []]
    assert issued.record.status(datetime.now(UTC)) is CertificateStatus.ACTIVE  # a snapshot


def test_broker_credentials_are_reused_until_renewed(ca: CertificateAuthority) -> None:
    first = ca.broker_credentials()
    pem = first.cert_file.read_bytes()
    assert ca.broker_credentials().cert_file.read_bytes() == pem
    assert ca.broker_credentials(renew=True).cert_file.read_bytes() != pem
