"""Errors of the certificate authority, each a :class:`~pervasive.errors.UserError`.

```
UserError
└── CertificateRejected          a presented certificate is not acceptable
    ├── UnknownIssuer            not signed by this platform's CA (or tampered with)
    ├── CertificateExpired       outside its validity window (expired or not yet valid)
    ├── CertificateRevoked       revoked (compromised, rotated, or the device retired)
    └── WrongUsage               lacks the extended key usage the caller needs
```
"""

from __future__ import annotations

from pervasive.errors import UserError

__all__ = [
    "CertificateExpired",
    "CertificateRejected",
    "CertificateRevoked",
    "UnknownIssuer",
    "WrongUsage",
]


class CertificateRejected(UserError):
    """A certificate failed verification; the message says which check and what to do."""


class UnknownIssuer(CertificateRejected):
    """The certificate was not issued by this platform's CA, or its signature is broken."""


class CertificateExpired(CertificateRejected):
    """The certificate is outside its validity window; rotate it to get a fresh one."""


class CertificateRevoked(CertificateRejected):
    """The certificate was revoked; the device needs a new certificate (rotate)."""


class WrongUsage(CertificateRejected):
    """The certificate is not meant for this use (e.g. a server certificate as a client)."""
