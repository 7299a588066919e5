"""The platform certificate authority: issue, revoke, rotate, list and verify.

Paper 004 sections 4.5 and 5.4: a device proves its integrity with an X.509
certificate before it may talk to the platform, one certificate per device, and a
compromised certificate is revoked. The CA lives in one folder of the data
directory::

    <home>/pki/ca.key.pem     CA private key, PKCS#8 encrypted with the platform password
    <home>/pki/ca.cert.pem    CA certificate (distribute it to devices and the broker)
    <home>/pki/crl.pem        current revocation list, rewritten on every revocation
    <home>/pki/index.sqlite   every certificate issued, its status and rotation chain

Listeners (e.g. a broker's ``refresh``) are called after every change, so the
broker's ACL and CRL follow the index.

Example::

    ca = CertificateAuthority.open(settings.path("pki"), password=settings.password)
    issued = ca.issue_device("lock-7")
    creds = ca.write_credentials(issued, settings.path("devices", "lock-7"))
    ca.revoke(issued.record.serial)
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pervasive.domain.identifiers import validate_device_id
from pervasive.errors import ConfigError, InternalError, InvalidInput, KeystoreError, NotFound
from pervasive.messaging.tls import BrokerCredentials, ClientCredentials
from pervasive.messaging.topics import is_service_identity, validate_identity
from pervasive.pki.certificates import (
    BACKDATE,
    build_ca_certificate,
    build_crl,
    build_leaf_certificate,
    certificate_pem,
    new_private_key,
    private_key_pem,
)
from pervasive.pki.index import SCHEMA, CertificateIndex
from pervasive.pki.records import (
    CertificateKind,
    CertificateRecord,
    CertificateStatus,
    IssuedCertificate,
)
from pervasive.pki.verification import verify_certificate
from pervasive.store import open_database
from pervasive.store.files import private_folder, write_private, write_public

__all__ = [
    "BROKER_HOSTS",
    "CA_VALIDITY",
    "CRL_VALIDITY",
    "DEFAULT_VALIDITY",
    "CertificateAuthority",
]

DEFAULT_VALIDITY = timedelta(days=365)
CA_VALIDITY = timedelta(days=3650)
CRL_VALIDITY = timedelta(days=30)
BROKER_HOSTS = ("127.0.0.1", "localhost")


def _subject_hosts(certificate: x509.Certificate) -> set[str]:
    """The host names and addresses a server certificate names (its SANs)."""
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return set()
    return {str(value) for value in names.value.get_values_for_type(x509.DNSName)} | {
        str(value) for value in names.value.get_values_for_type(x509.IPAddress)
    }


class CertificateAuthority:
    """A CA kept in one folder; open it with :meth:`open`."""

    def __init__(
        self,
        directory: Path,
        *,
        ca_key: ec.EllipticCurvePrivateKey,
        ca_certificate: x509.Certificate,
        index: CertificateIndex,
        clock: Callable[[], datetime],
        crl_validity: timedelta,
    ) -> None:
        self.directory = directory
        self._key = ca_key
        self.certificate = ca_certificate
        self._index = index
        self._clock = clock
        self._crl_validity = crl_validity
        self._listeners: list[Callable[[], None]] = []
        self.refusals: Counter[str] = Counter()
        """Refused requests by reason (``device_id``, ``service_id``, ``active``, ...)."""

    @classmethod
    def open(
        cls,
        directory: Path,
        password: str | None,
        *,
        name: str = "pervasive platform CA",
        clock: Callable[[], datetime] | None = None,
        crl_validity: timedelta = CRL_VALIDITY,
    ) -> CertificateAuthority:
        """Open the CA in ``directory``, creating key, certificate and CRL on first use.

        The CA key is encrypted at rest with ``password`` (``PERVASIVE_PASSWORD``).

        Example: ``CertificateAuthority.open(Path(".pervasive/pki"), "s3cret")``.
        """
        if not password:
            raise ConfigError("the CA key needs a password: set PERVASIVE_PASSWORD or --password")
        clock = clock or (lambda: datetime.now(UTC))
        directory.mkdir(parents=True, exist_ok=True)
        key_path, cert_path = directory / "ca.key.pem", directory / "ca.cert.pem"
        if key_path.exists():
            try:
                key = serialization.load_pem_private_key(
                    key_path.read_bytes(), password=password.encode()
                )
            except (ValueError, TypeError) as exc:
                raise KeystoreError(
                    f"cannot decrypt the CA key {key_path}: wrong password or corrupt file"
                ) from exc
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise KeystoreError(f"{key_path} is not an EC private key")
            certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
        else:
            key = new_private_key()
            certificate = build_ca_certificate(key, name, clock(), CA_VALIDITY)
            write_public(cert_path, certificate_pem(certificate))
            write_private(key_path, private_key_pem(key, password.encode()))
        index = CertificateIndex(open_database(directory / "index.sqlite", schema=SCHEMA))
        authority = cls(
            directory,
            ca_key=key,
            ca_certificate=certificate,
            index=index,
            clock=clock,
            crl_validity=crl_validity,
        )
        authority.write_crl()
        return authority

    # -- paths ---------------------------------------------------------------

    @property
    def ca_file(self) -> Path:
        """The CA certificate (PEM) that devices and the broker trust."""
        return self.directory / "ca.cert.pem"

    @property
    def crl_file(self) -> Path:
        """The current CRL (PEM)."""
        return self.directory / "crl.pem"

    # -- issuing -------------------------------------------------------------

    def issue_device(
        self,
        device_id: str,
        *,
        validity: timedelta = DEFAULT_VALIDITY,
        public_key: ec.EllipticCurvePublicKey | None = None,
    ) -> IssuedCertificate:
        """Issue the certificate of device ``device_id`` (CN = device id, ``clientAuth``).

        Without ``public_key`` the CA generates an EC P-256 key pair and returns the
        private key once; with it (the device kept its own key) none is returned.
        A device holds one active certificate: use :meth:`rotate` to replace it.

        Example: ``ca.issue_device("lock-7", validity=timedelta(days=90))``.
        """
        try:
            validate_device_id(device_id)
        except InvalidInput:
            self.refusals["device_id"] += 1
            raise
        return self._issue(device_id, CertificateKind.DEVICE, validity, public_key)

    def issue_service(
        self, identity: str, *, validity: timedelta = DEFAULT_VALIDITY
    ) -> IssuedCertificate:
        """Issue a service identity such as ``svc:shadow`` (grants come from its role).

        Example: ``ca.issue_service("svc:shadow")``.
        """
        try:
            if not is_service_identity(identity):
                raise InvalidInput(f"service identities start with 'svc:', got {identity!r}")
            validate_identity(identity)
        except InvalidInput:
            self.refusals["service_id"] += 1
            raise
        return self._issue(identity, CertificateKind.SERVICE, validity, None)

    def issue_server(
        self,
        hosts: Sequence[str] = BROKER_HOSTS,
        *,
        validity: timedelta = DEFAULT_VALIDITY,
        service: str = "broker",
    ) -> IssuedCertificate:
        """Issue a server certificate (CN ``<service>:<first host>``) for ``hosts`` as SANs.

        ``service`` names the server: ``broker`` (the default) or ``gateway``.

        Example: ``ca.issue_server(("127.0.0.1", "localhost"), service="gateway")``.
        """
        if not hosts:
            raise InvalidInput("a server certificate needs at least one host name or address")
        return self._issue(
            f"{service}:{hosts[0]}", CertificateKind.SERVER, validity, None, hosts=hosts
        )

    def _issue(
        self,
        cn: str,
        kind: CertificateKind,
        validity: timedelta,
        public_key: ec.EllipticCurvePublicKey | None,
        *,
        hosts: Sequence[str] = (),
        replacing: int | None = None,
    ) -> IssuedCertificate:
        if validity <= timedelta(0):
            raise InvalidInput(f"certificate validity must be positive, got {validity}")
        now = self._clock()
        active = [r for r in self._index.by_name(cn) if r.status(now) is CertificateStatus.ACTIVE]
        if kind is not CertificateKind.SERVER and replacing is None and active:
            self.refusals["active"] += 1
            raise InvalidInput(
                f"{cn!r} already holds an active certificate (serial {active[0].serial_hex}); "
                "rotate it instead of issuing a second one"
            )
        private_key = None if public_key is not None else new_private_key()
        subject_key = public_key or private_key.public_key()  # type: ignore[union-attr]
        certificate = build_leaf_certificate(
            self.certificate,
            self._key,
            cn,
            subject_key,
            kind=kind,
            now=now,
            validity=validity,
            hosts=hosts,
        )
        pem = certificate_pem(certificate)
        record = CertificateRecord(
            serial=certificate.serial_number,
            common_name=cn,
            kind=kind,
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
            fingerprint=hashlib.sha256(
                certificate.public_bytes(serialization.Encoding.DER)
            ).hexdigest(),
            certificate_pem=pem,
        )
        with self._index.transaction():
            self._index.add(record)
            if replacing is not None:
                self._index.mark_revoked(
                    replacing, now, x509.ReasonFlags.superseded, replaced_by=record.serial
                )
        if replacing is not None:
            self.write_crl()
        self._notify()
        key_pem = private_key_pem(private_key) if private_key is not None else None
        return IssuedCertificate(record=record, private_key_pem=key_pem)

    # -- revoking and rotating -----------------------------------------------

    def revoke(
        self, serial: int, reason: x509.ReasonFlags = x509.ReasonFlags.unspecified
    ) -> CertificateRecord:
        """Revoke the certificate ``serial`` and publish a new CRL; idempotent.

        Example: ``ca.revoke(issued.record.serial, x509.ReasonFlags.key_compromise)``.
        """
        self._index.by_serial(serial)
        self._index.mark_revoked(serial, self._clock(), reason)
        self.write_crl()
        self._notify()
        return self._index.by_serial(serial)

    def revoke_identity(
        self, common_name: str, reason: x509.ReasonFlags = x509.ReasonFlags.cessation_of_operation
    ) -> list[CertificateRecord]:
        """Revoke every unrevoked certificate of ``common_name`` (a retired device).

        Example: ``ca.revoke_identity("lock-7")``.
        """
        records = self._index.by_name(common_name)
        if not records:
            raise NotFound(f"no certificate was issued to {common_name!r}")
        now = self._clock()
        with self._index.transaction():
            for record in records:
                self._index.mark_revoked(record.serial, now, reason)
        self.write_crl()
        self._notify()
        return self._index.by_name(common_name)

    def rotate(
        self,
        common_name: str,
        *,
        validity: timedelta | None = None,
        public_key: ec.EllipticCurvePublicKey | None = None,
    ) -> IssuedCertificate:
        """Issue a new certificate for ``common_name`` and revoke the current one (superseded).

        Example: ``fresh = ca.rotate("lock-7")``; the old serial is now on the CRL.
        """
        now = self._clock()
        records = [r for r in self._index.by_name(common_name) if r.revoked_at is None]
        if not records:
            raise NotFound(f"{common_name!r} has no unrevoked certificate to rotate")
        current = records[-1]
        if current.kind is CertificateKind.SERVER:
            raise InvalidInput("rotate the broker certificate with broker_credentials(renew=True)")
        # a device that lost several certificates at once keeps only the new one
        with self._index.transaction():
            for stale in records[:-1]:
                self._index.mark_revoked(stale.serial, now, x509.ReasonFlags.superseded)
        # keep the requested lifetime; not_before was backdated for clock skew
        lifetime = validity or current.not_after - current.not_before - BACKDATE
        return self._issue(
            common_name, current.kind, lifetime, public_key, replacing=current.serial
        )

    # -- reading -------------------------------------------------------------

    def certificates(self, *, include_revoked: bool = True) -> list[CertificateRecord]:
        """Every certificate issued, oldest first (optionally only unrevoked ones).

        Example: ``[r.common_name for r in ca.certificates(include_revoked=False)]``.
        """
        records = self._index.all()
        if include_revoked:
            return records
        return [r for r in records if r.revoked_at is None]

    def get(self, serial: int) -> CertificateRecord:
        """The record of ``serial``; ``NotFound`` when unknown.

        Example: ``ca.get(serial).status(now)``.
        """
        return self._index.by_serial(serial)

    def active_identities(self) -> list[str]:
        """CNs of devices and services holding an active certificate (the broker ACL).

        Example: ``"lock-7" in ca.active_identities()``.
        """
        now = self._clock()
        return sorted(
            {
                r.common_name
                for r in self._index.all()
                if r.kind is not CertificateKind.SERVER
                and r.status(now) is CertificateStatus.ACTIVE
            }
        )

    def verify(
        self,
        certificate: bytes,
        *,
        at: datetime | None = None,
        kind: CertificateKind | None = None,
    ) -> CertificateRecord:
        """Verify a presented certificate (PEM or DER): chain, validity window, revocation.

        Returns its index record; raises a :class:`CertificateRejected` subclass that
        says which check failed.

        Example: ``ca.verify(Path("cert.pem").read_bytes()).common_name``.
        """
        return verify_certificate(
            certificate,
            self.certificate,
            self._index,
            at=at if at is not None else self._clock(),
            kind=kind,
        )

    # -- files ---------------------------------------------------------------

    def crl_pem(self) -> bytes:
        """A freshly signed CRL of every revoked certificate (PEM).

        Example: ``x509.load_pem_x509_crl(ca.crl_pem())``.
        """
        now = self._clock()
        crl = build_crl(
            self.certificate,
            self._key,
            self._index.revocations(),
            now=now,
            validity=self._crl_validity,
            number=self._index.next_crl_number(now),
        )
        return crl.public_bytes(serialization.Encoding.PEM)

    def write_crl(self) -> Path:
        """Write the current CRL to :attr:`crl_file` atomically and return its path.

        Example: ``ca.write_crl()``.
        """
        write_public(self.crl_file, self.crl_pem())
        return self.crl_file

    def write_credentials(self, issued: IssuedCertificate, directory: Path) -> ClientCredentials:
        """Write ``cert.pem``, ``key.pem`` (mode 0600) and ``ca.pem`` in ``directory`` (0700).

        The key is written before the certificate, so a ``cert.pem`` that names the
        active certificate means the set is complete (a crash in between leaves the
        old certificate, which :meth:`credentials_complete` reports as stale).

        Example: ``creds = ca.write_credentials(ca.issue_device("lock-7"), Path("lock-7"))``.
        """
        if issued.private_key_pem is None:
            raise InvalidInput(
                f"the key of {issued.common_name!r} was generated by the device; "
                "only its certificate can be written"
            )
        private_folder(directory)
        write_public(directory / "ca.pem", certificate_pem(self.certificate))
        write_private(directory / "key.pem", issued.private_key_pem)
        write_public(directory / "cert.pem", issued.certificate_pem)
        return ClientCredentials(
            ca_file=directory / "ca.pem",
            cert_file=directory / "cert.pem",
            key_file=directory / "key.pem",
        )

    def active_certificate(self, common_name: str) -> CertificateRecord | None:
        """The active certificate of ``common_name`` (newest), or ``None``.

        Example: ``ca.active_certificate("lock-7").serial_hex``.
        """
        now = self._clock()
        active = [
            r for r in self._index.by_name(common_name) if r.status(now) is CertificateStatus.ACTIVE
        ]
        return active[-1] if active else None

    def credentials_complete(self, common_name: str, directory: Path) -> bool:
        """Whether ``directory`` holds ``key.pem``, ``ca.pem`` and the *active* ``cert.pem``.

        A folder left half-written, or holding a revoked or superseded certificate, is not.

        Example: ``ca.credentials_complete("lock-7", home / "devices" / "lock-7")``.
        """
        record = self.active_certificate(common_name)
        cert, key, ca = directory / "cert.pem", directory / "key.pem", directory / "ca.pem"
        if record is None or not (key.is_file() and ca.is_file() and cert.is_file()):
            return False
        return cert.read_bytes() == record.certificate_pem

    def client_credentials(self, identity: str, root: Path) -> ClientCredentials:
        """TLS files for a device or ``svc:`` identity under ``root``, issued once.

        Reuses the files while the identity's certificate is active; issues (and writes)
        a fresh one when they are missing or the certificate was revoked or rotated.

        Example: ``creds = ca.client_credentials("svc:shadow", home / "mqtt")``.
        """
        validate_identity(identity)
        folder = root / identity.replace(":", "_")
        files = (folder / "ca.pem", folder / "cert.pem", folder / "key.pem")
        if all(path.is_file() for path in files) and identity in self.active_identities():
            return ClientCredentials(ca_file=files[0], cert_file=files[1], key_file=files[2])
        issued = (
            self.issue_service(identity)
            if is_service_identity(identity)
            else self.issue_device(identity)
        )
        return self.write_credentials(issued, folder)

    def broker_credentials(
        self, hosts: Sequence[str] = BROKER_HOSTS, *, renew: bool = False
    ) -> BrokerCredentials:
        """The broker's TLS files under ``<pki>/broker/``, issuing a server certificate if needed.

        The certificate is reissued when missing, expiring within a day, or ``renew``.

        Example: ``MosquittoBroker(ca.broker_credentials(), ca.active_identities, ...)``.
        """
        return self.server_credentials("broker", hosts, renew=renew)

    def server_credentials(
        self, service: str, hosts: Sequence[str] = BROKER_HOSTS, *, renew: bool = False
    ) -> BrokerCredentials:
        """A TLS server's files under ``<pki>/<service>/``, issuing its certificate if needed.

        For the broker and the devices' JSON-RPC gateway: the CA, the server certificate
        (SANs ``hosts``) and key, and the CRL. The certificate is reissued when missing,
        expiring within a day, lacking one of ``hosts``, or ``renew``.

        Example: ``ca.server_credentials("gateway").server_ssl_context()``.
        """
        folder = private_folder(self.directory / service)
        cert_path, key_path = folder / "server.cert.pem", folder / "server.key.pem"
        fresh = renew or not cert_path.exists() or not key_path.exists()
        if not fresh:
            current = x509.load_pem_x509_certificate(cert_path.read_bytes())
            fresh = current.not_valid_after_utc - self._clock() < timedelta(days=1)
            fresh = fresh or not {str(host) for host in hosts} <= _subject_hosts(current)
        if fresh:
            issued = self.issue_server(hosts, service=service)
            if issued.private_key_pem is None:
                raise InternalError("a server certificate was issued without its key")
            write_public(cert_path, issued.certificate_pem)
            write_private(key_path, issued.private_key_pem)
        return BrokerCredentials(
            ca_file=self.ca_file, cert_file=cert_path, key_file=key_path, crl_file=self.crl_file
        )

    def revoked_serials(self) -> frozenset[int]:
        """The serials of every revoked certificate, as the index holds them now.

        Example: ``issued.record.serial in ca.revoked_serials()``.
        """
        return frozenset(revocation.serial for revocation in self._index.revocations())

    # -- listeners -----------------------------------------------------------

    def add_listener(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` after every issue, revocation and rotation.

        Example: ``ca.add_listener(broker.refresh)``.
        """
        self._listeners.append(callback)

    def remove_listener(self, callback: Callable[[], None]) -> None:
        """Stop calling ``callback`` (added with :meth:`add_listener`); idempotent.

        Example: ``ca.remove_listener(broker.refresh)``.
        """
        if callback in self._listeners:
            self._listeners.remove(callback)

    def _notify(self) -> None:
        for callback in list(self._listeners):
            callback()

    def close(self) -> None:
        """Close the index database."""
        self._index.close()
