"""Verify a presented certificate against the CA: chain, validity window, revocation.

This is the check of paper 004 section 4.5 ("AWS IoT validates that certificate with
the help of the associated public key"), done by the platform for callers that see
a certificate outside the broker's TLS handshake (the gateway, an HTTP device API).
Checks run in this order and the first failure raises:

1. the issuer is this CA and the CA's key signed it (``UnknownIssuer``);
2. the CA issued it: its serial is in the index (``UnknownIssuer``);
3. the moment lies within notBefore..notAfter (``CertificateExpired``);
4. it is not revoked (``CertificateRevoked``);
5. its extended key usage fits the expected kind (``WrongUsage``).

Example::

    record = verify_certificate(pem, ca_certificate, index, at=now)
"""

from __future__ import annotations

from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from pervasive.errors import NotFound
from pervasive.pki.errors import (
    CertificateExpired,
    CertificateRevoked,
    UnknownIssuer,
    WrongUsage,
)
from pervasive.pki.index import CertificateIndex
from pervasive.pki.records import CertificateKind, CertificateRecord, CertificateStatus

__all__ = ["parse_certificate", "verify_certificate"]


def parse_certificate(certificate: bytes) -> x509.Certificate:
    """Parse a PEM or DER certificate; ``UnknownIssuer`` when it is not one.

    Example: ``parse_certificate(Path("cert.pem").read_bytes()).serial_number``.
    """
    try:
        if certificate.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(certificate)
        return x509.load_der_x509_certificate(certificate)
    except ValueError as exc:
        raise UnknownIssuer(f"not a readable X.509 certificate: {exc}") from exc


def verify_certificate(
    certificate: bytes,
    ca_certificate: x509.Certificate,
    index: CertificateIndex,
    *,
    at: datetime,
    kind: CertificateKind | None = None,
) -> CertificateRecord:
    """Run the five checks of this module; return the index record on success.

    ``kind`` (optional) demands a device, service or server certificate.

    Example: ``verify_certificate(pem, ca.certificate, index, at=now).common_name``.
    """
    parsed = parse_certificate(certificate)
    try:
        parsed.verify_directly_issued_by(ca_certificate)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise UnknownIssuer(
            "the certificate was not issued by this platform's CA; "
            "register the device with `pervasive pki issue`"
        ) from exc
    try:
        record = index.by_serial(parsed.serial_number)
    except NotFound as exc:
        raise UnknownIssuer(
            f"serial {parsed.serial_number:x} is signed by the CA but not in its index"
        ) from exc
    if record.certificate_pem.strip() != _pem(parsed).strip():
        raise UnknownIssuer(f"serial {record.serial_hex} does not match the certificate issued")
    status = record.status(at)
    if status is CertificateStatus.REVOKED:
        raise CertificateRevoked(
            f"certificate {record.serial_hex} of {record.common_name!r} was revoked "
            f"({record.revocation_reason.value if record.revocation_reason else 'unspecified'}); "
            "rotate to get a new one"
        )
    if status is CertificateStatus.EXPIRED:
        raise CertificateExpired(
            f"certificate {record.serial_hex} of {record.common_name!r} expired at "
            f"{record.not_after.isoformat()}; rotate it"
        )
    if status is CertificateStatus.NOT_YET_VALID:
        raise CertificateExpired(
            f"certificate {record.serial_hex} of {record.common_name!r} is valid only from "
            f"{record.not_before.isoformat()}; check the clock"
        )
    if kind is not None and record.kind is not kind:
        raise WrongUsage(
            f"{record.common_name!r} holds a {record.kind.value} certificate, not {kind.value}"
        )
    _check_usage(parsed, record)
    return record


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(Encoding.PEM)


def _check_usage(certificate: x509.Certificate, record: CertificateRecord) -> None:
    wanted = (
        ExtendedKeyUsageOID.SERVER_AUTH
        if record.kind is CertificateKind.SERVER
        else ExtendedKeyUsageOID.CLIENT_AUTH
    )
    try:
        usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound as exc:
        raise WrongUsage("the certificate has no extended key usage") from exc
    if wanted not in usage:
        raise WrongUsage(f"the certificate lacks the {wanted._name} extended key usage")
