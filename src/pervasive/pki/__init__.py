"""The platform's X.509 certificate authority: device and service identities.

See README.md in this folder for the control flow.
"""

from pervasive.pki.authority import CertificateAuthority
from pervasive.pki.errors import (
    CertificateExpired,
    CertificateRejected,
    CertificateRevoked,
    UnknownIssuer,
    WrongUsage,
)
from pervasive.pki.records import (
    CertificateKind,
    CertificateRecord,
    CertificateStatus,
    IssuedCertificate,
    Revocation,
)
from pervasive.pki.revocations import RevokedSerials

__all__ = [
    "CertificateAuthority",
    "CertificateExpired",
    "CertificateKind",
    "CertificateRecord",
    "CertificateRejected",
    "CertificateRevoked",
    "CertificateStatus",
    "IssuedCertificate",
    "Revocation",
    "RevokedSerials",
    "UnknownIssuer",
    "WrongUsage",
]
