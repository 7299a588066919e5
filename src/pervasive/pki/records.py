"""Typed records of the certificate authority: what was issued, to whom, and its status.

Example::

    record.common_name, record.kind, record.status(now)   # 'lock-7', DEVICE, ACTIVE
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509

__all__ = [
    "CertificateKind",
    "CertificateRecord",
    "CertificateStatus",
    "IssuedCertificate",
    "Revocation",
]


class CertificateKind(enum.Enum):
    """What a certificate identifies."""

    DEVICE = "device"
    """A thing; CN = device id; may use only its own topics."""
    SERVICE = "service"
    """A platform service; CN = ``svc:<role>``; grants by role."""
    SERVER = "server"
    """The broker's TLS server certificate."""


class CertificateStatus(enum.Enum):
    """Where a certificate stands at a given moment."""

    ACTIVE = "active"
    REVOKED = "revoked"
    EXPIRED = "expired"
    NOT_YET_VALID = "not yet valid"


@dataclass(frozen=True)
class Revocation:
    """One entry of the CRL."""

    serial: int
    revoked_at: datetime
    reason: x509.ReasonFlags = x509.ReasonFlags.unspecified


@dataclass(frozen=True)
class CertificateRecord:
    """One issued certificate as the CA's index knows it."""

    serial: int
    common_name: str
    kind: CertificateKind
    not_before: datetime
    not_after: datetime
    fingerprint: str
    """SHA-256 of the DER encoding, lowercase hex."""
    certificate_pem: bytes = field(repr=False)
    revoked_at: datetime | None = None
    revocation_reason: x509.ReasonFlags | None = None
    replaced_by: int | None = None
    """Serial of the certificate that superseded this one in a rotation."""

    def status(self, at: datetime) -> CertificateStatus:
        """The status at moment ``at`` (revocation wins over expiry).

        Example: ``record.status(datetime.now(UTC)) is CertificateStatus.ACTIVE``.
        """
        if self.revoked_at is not None and self.revoked_at <= at:
            return CertificateStatus.REVOKED
        if at < self.not_before:
            return CertificateStatus.NOT_YET_VALID
        if at > self.not_after:
            return CertificateStatus.EXPIRED
        return CertificateStatus.ACTIVE

    @property
    def serial_hex(self) -> str:
        """The serial as lowercase hex, the form ``openssl`` and mosquitto print."""
        return format(self.serial, "x")


@dataclass(frozen=True)
class IssuedCertificate:
    """A freshly issued certificate and, when the CA generated it, its private key.

    The key is shown to no one: it is excluded from ``repr`` and never logged.
    Write it to the device with :meth:`CertificateAuthority.write_credentials`.
    """

    record: CertificateRecord
    private_key_pem: bytes | None = field(default=None, repr=False)

    @property
    def common_name(self) -> str:
        """The certificate's CN (device id or service identity)."""
        return self.record.common_name

    @property
    def certificate_pem(self) -> bytes:
        """The certificate, PEM."""
        return self.record.certificate_pem
