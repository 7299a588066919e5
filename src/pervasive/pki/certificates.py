"""X.509 building blocks, no I/O: the CA certificate, leaf certificates and the CRL.

Paper 004 section 4.5: "certificates are embedded inside IoT devices ... it is advisable
to use a unique certificate for each device; if a certificate gets compromised we
could revoke" it. Each device gets its own EC P-256 key and a certificate whose
subject CN is the device id with the ``clientAuth`` extended key usage; the broker
reads the CN as the MQTT identity. Revocations are published as a CRL signed by the CA.

Example::

    key = new_private_key()
    ca = build_ca_certificate(key, "pervasive CA", now, timedelta(days=3650))
    cert = build_leaf_certificate(ca, key, "lock-7", new_private_key().public_key(),
                                  kind=CertificateKind.DEVICE, now=now,
                                  validity=timedelta(days=365))
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pervasive.errors import InternalError
from pervasive.pki.records import CertificateKind, Revocation

__all__ = [
    "BACKDATE",
    "build_ca_certificate",
    "build_crl",
    "build_leaf_certificate",
    "certificate_pem",
    "common_name",
    "new_private_key",
    "private_key_pem",
]

_ORGANIZATION = "pervasive"
BACKDATE = timedelta(minutes=5)
"""Leaf certificates start a little in the past to tolerate clock skew between hosts."""


def new_private_key() -> ec.EllipticCurvePrivateKey:
    """A fresh EC P-256 private key.

    Example: ``new_private_key().curve.name == "secp256r1"``.
    """
    return ec.generate_private_key(ec.SECP256R1())


def private_key_pem(key: ec.EllipticCurvePrivateKey, password: bytes | None = None) -> bytes:
    """PKCS#8 PEM of ``key``, encrypted when ``password`` is given.

    Example: ``private_key_pem(key, b"secret").startswith(b"-----BEGIN ENCRYPTED")``.
    """
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def certificate_pem(certificate: x509.Certificate) -> bytes:
    """PEM text of ``certificate``.

    Example: ``certificate_pem(cert).startswith(b"-----BEGIN CERTIFICATE-----")``.
    """
    return certificate.public_bytes(serialization.Encoding.PEM)


def common_name(certificate: x509.Certificate) -> str:
    """The subject CN of ``certificate`` ('' when it has none).

    Example: ``common_name(device_cert) == "lock-7"``.
    """
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names:
        return ""
    value = names[0].value
    return value if isinstance(value, str) else value.decode()


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def build_ca_certificate(
    key: ec.EllipticCurvePrivateKey, name: str, now: datetime, validity: timedelta
) -> x509.Certificate:
    """A self-signed CA certificate that may sign leaf certificates and CRLs only.

    Example: ``build_ca_certificate(key, "pervasive CA", now, timedelta(days=3650))``.
    """
    subject = _name(name)
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )


def build_leaf_certificate(
    ca_certificate: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    cn: str,
    public_key: ec.EllipticCurvePublicKey,
    *,
    kind: CertificateKind,
    now: datetime,
    validity: timedelta,
    hosts: Sequence[str] = (),
) -> x509.Certificate:
    """A certificate for a device or service (``clientAuth``) or a broker (``serverAuth``).

    ``hosts`` (server certificates only) become subject alternative names: IP
    addresses as ``IPAddress`` entries, anything else as ``DNSName``.

    Example: ``build_leaf_certificate(ca, ca_key, "svc:shadow", pub,
    kind=CertificateKind.SERVICE, now=now, validity=timedelta(days=90))``.
    """
    usage = (
        ExtendedKeyUsageOID.SERVER_AUTH
        if kind is CertificateKind.SERVER
        else ExtendedKeyUsageOID.CLIENT_AUTH
    )
    ca_public = _ec_public_key(ca_certificate)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca_certificate.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_public), critical=False
        )
    )
    if hosts:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(list(_general_names(hosts))), critical=False
        )
    return builder.sign(ca_key, hashes.SHA256())


def _ec_public_key(certificate: x509.Certificate) -> ec.EllipticCurvePublicKey:
    public = certificate.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey):
        raise InternalError("the platform CA key is not an EC key")
    return public


def _general_names(hosts: Iterable[str]) -> Iterable[x509.GeneralName]:
    for host in hosts:
        try:
            yield x509.IPAddress(ipaddress.ip_address(host))
        except ValueError:
            yield x509.DNSName(host)


def build_crl(
    ca_certificate: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    revocations: Iterable[Revocation],
    *,
    now: datetime,
    validity: timedelta,
    number: int,
) -> x509.CertificateRevocationList:
    """A CRL listing ``revocations``, valid from ``now`` for ``validity``.

    ``number`` must grow with every CRL the CA publishes (RFC 5280 section 5.2.3).

    Example: ``build_crl(ca, ca_key, [], now=now, validity=timedelta(days=30), number=1)``.
    """
    ca_public = _ec_public_key(ca_certificate)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_certificate.subject)
        .last_update(now - BACKDATE)
        .next_update(now + validity)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_public), critical=False
        )
    )
    for revocation in revocations:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(revocation.serial)
            .revocation_date(revocation.revoked_at)
            .add_extension(x509.CRLReason(revocation.reason), critical=False)
            .build()
        )
    return builder.sign(ca_key, hashes.SHA256())
