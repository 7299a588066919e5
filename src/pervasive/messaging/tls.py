"""TLS material as the messaging layer sees it: file paths, SSL contexts, CRL reading.

The certificate authority (:mod:`pervasive.pki`, a higher layer) writes the files;
this module only reads them, so messaging never depends on the CA.

Example::

    creds = ClientCredentials(ca_file=ca, cert_file=cert, key_file=key)
    context = creds.ssl_context()     # verifies the broker, presents the device cert
    creds.identity()                  # 'lock-7' (the certificate CN)
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pervasive.errors import ConfigError
from pervasive.messaging.errors import BrokerUnavailable

__all__ = [
    "BrokerCredentials",
    "ClientCredentials",
    "certificate_identity",
    "load_revoked_serials",
]


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} at {path}: {exc.strerror}") from exc


def certificate_identity(certificate: bytes) -> str:
    """The subject CN of a PEM or DER certificate: the MQTT identity it carries.

    Example: ``certificate_identity(Path("cert.pem").read_bytes())`` returns ``'lock-7'``.
    """
    if certificate.lstrip().startswith(b"-----BEGIN"):
        parsed = x509.load_pem_x509_certificate(certificate)
    else:
        parsed = x509.load_der_x509_certificate(certificate)
    names = parsed.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names:
        return ""
    value = names[0].value
    return value if isinstance(value, str) else value.decode()


@dataclass(frozen=True)
class ClientCredentials:
    """A client's TLS files: the platform CA, its certificate and its private key."""

    ca_file: Path
    """The CA certificate that signed the broker's server certificate."""
    cert_file: Path
    """This client's certificate (CN = device id or ``svc:<role>``)."""
    key_file: Path
    """This client's private key, unencrypted PEM, readable only by its owner."""

    def identity(self) -> str:
        """The CN of the certificate, which the broker uses as the MQTT username.

        Example: ``creds.identity()`` returns ``'lock-7'``.
        """
        return certificate_identity(_read(self.cert_file, "client certificate"))

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that checks the broker against the CA and host name.

        Example: ``await Link.open("127.0.0.1", port, creds.ssl_context(), ...)``.
        """
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.ca_file))
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        # Under TLS 1.3 the server judges the client certificate after the client's
        # handshake is done, and a refusal reaches the client only as a closed connection; under
        # 1.2 it fails the handshake itself, with the reason (revoked, unknown CA).
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(str(self.cert_file), str(self.key_file))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"cannot load the client certificate {self.cert_file} "
                f"with key {self.key_file}: {exc}"
            ) from exc
        return context


@dataclass(frozen=True)
class BrokerCredentials:
    """The broker's TLS files: CA, server certificate and key, and the CA's CRL."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    crl_file: Path
    """Rewritten by the CA on every revocation; brokers reload it on refresh."""

    def server_ssl_context(self) -> ssl.SSLContext:
        """A server context that requires a client certificate signed by the CA.

        Revocation is checked by the broker after the handshake against
        :func:`load_revoked_serials`, so that a new CRL takes effect without
        rebuilding the listening socket.

        Example: ``asyncio.start_server(handler, host, port, ssl=creds.server_ssl_context())``.
        """
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(self.ca_file))
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.verify_mode = ssl.CERT_REQUIRED
        try:
            context.load_cert_chain(str(self.cert_file), str(self.key_file))
        except (OSError, ssl.SSLError) as exc:
            raise BrokerUnavailable(
                f"cannot load the broker certificate {self.cert_file}: {exc}"
            ) from exc
        return context


def load_revoked_serials(crl_file: Path, ca_file: Path) -> frozenset[int]:
    """The serials a CRL revokes, after checking the CRL is signed by the CA.

    A CRL that is unreadable or not signed by the CA raises ``ConfigError``: a broker
    must not run on a revocation list it cannot trust.

    Example: ``0x1F2E in load_revoked_serials(creds.crl_file, creds.ca_file)``.
    """
    crl = x509.load_pem_x509_crl(_read(crl_file, "certificate revocation list"))
    ca = x509.load_pem_x509_certificate(_read(ca_file, "CA certificate"))
    public_key = ca.public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or not crl.is_signature_valid(
        public_key
    ):
        raise ConfigError(f"the CRL {crl_file} is not signed by the CA in {ca_file}")
    return frozenset(revoked.serial_number for revoked in crl)
