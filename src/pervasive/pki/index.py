"""The CA's index of issued certificates, in SQLite.

Every certificate the CA signs is recorded before it is handed out, so the index
is the source of truth for "who holds a certificate" (the broker ACL) and "what is
revoked" (the CRL). Times are stored as UTC epoch seconds.

Example::

    index = CertificateIndex(open_database(path, schema=SCHEMA))
    index.add(record); index.by_serial(record.serial)
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime

from cryptography import x509

from pervasive.errors import NotFound
from pervasive.pki.records import CertificateKind, CertificateRecord, Revocation
from pervasive.store import transaction

__all__ = ["SCHEMA", "CertificateIndex"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS certificates (
    serial TEXT PRIMARY KEY,
    common_name TEXT NOT NULL,
    kind TEXT NOT NULL,
    not_before INTEGER NOT NULL,
    not_after INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    certificate_pem TEXT NOT NULL,
    revoked_at INTEGER,
    revocation_reason TEXT,
    replaced_by TEXT
);
CREATE INDEX IF NOT EXISTS certificates_by_name ON certificates (common_name);
CREATE TABLE IF NOT EXISTS crl_numbers (
    number INTEGER PRIMARY KEY AUTOINCREMENT,
    issued_at INTEGER
);
"""

_COLUMNS = (
    "serial, common_name, kind, not_before, not_after, fingerprint, certificate_pem, "
    "revoked_at, revocation_reason, replaced_by"
)


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _moment(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _record(row: tuple[object, ...]) -> CertificateRecord:
    serial, cn, kind, nb, na, fingerprint, pem, revoked_at, reason, replaced_by = row
    return CertificateRecord(
        serial=int(str(serial), 16),
        common_name=str(cn),
        kind=CertificateKind(kind),
        not_before=_moment(int(str(nb))),
        not_after=_moment(int(str(na))),
        fingerprint=str(fingerprint),
        certificate_pem=str(pem).encode(),
        revoked_at=None if revoked_at is None else _moment(int(str(revoked_at))),
        revocation_reason=None if reason is None else x509.ReasonFlags(reason),
        replaced_by=None if replaced_by is None else int(str(replaced_by), 16),
    )


class CertificateIndex:
    """Issued certificates by serial and by common name."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection

    def add(self, record: CertificateRecord) -> None:
        """Record a newly issued certificate.

        Example: ``index.add(issued.record)``.
        """
        self._db.execute(
            f"INSERT INTO certificates ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL)",  # noqa: S608
            (
                record.serial_hex,
                record.common_name,
                record.kind.value,
                _epoch(record.not_before),
                _epoch(record.not_after),
                record.fingerprint,
                record.certificate_pem.decode(),
            ),
        )

    def by_serial(self, serial: int) -> CertificateRecord:
        """The record of ``serial``; ``NotFound`` when the CA never issued it.

        Example: ``index.by_serial(0x1F2E).common_name``.
        """
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM certificates WHERE serial = ?",  # noqa: S608
            (format(serial, "x"),),
        ).fetchone()
        if row is None:
            raise NotFound(f"no certificate with serial {serial:x} was issued by this CA")
        return _record(row)

    def by_name(self, common_name: str) -> list[CertificateRecord]:
        """Every certificate ever issued to ``common_name``, oldest first.

        Example: ``[r.serial for r in index.by_name("lock-7")]``.
        """
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM certificates WHERE common_name = ? "  # noqa: S608
            "ORDER BY not_before, rowid",
            (common_name,),
        ).fetchall()
        return [_record(row) for row in rows]

    def all(self) -> list[CertificateRecord]:
        """Every issued certificate, in issue order.

        Example: ``len(index.all())``.
        """
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM certificates ORDER BY rowid"  # noqa: S608
        ).fetchall()
        return [_record(row) for row in rows]

    def mark_revoked(
        self,
        serial: int,
        at: datetime,
        reason: x509.ReasonFlags,
        replaced_by: int | None = None,
    ) -> bool:
        """Mark ``serial`` revoked; False when it already was (the first revocation stands).

        Example: ``index.mark_revoked(serial, now, x509.ReasonFlags.key_compromise)``.
        """
        cursor = self._db.execute(
            "UPDATE certificates SET revoked_at = ?, revocation_reason = ?, replaced_by = ? "
            "WHERE serial = ? AND revoked_at IS NULL",
            (
                _epoch(at),
                reason.value,
                None if replaced_by is None else format(replaced_by, "x"),
                format(serial, "x"),
            ),
        )
        return cursor.rowcount == 1

    def revocations(self) -> list[Revocation]:
        """Every revoked certificate, for the CRL.

        Example: ``[r.serial for r in index.revocations()]``.
        """
        rows = self._db.execute(
            "SELECT serial, revoked_at, revocation_reason FROM certificates "
            "WHERE revoked_at IS NOT NULL ORDER BY revoked_at, rowid"
        ).fetchall()
        return [
            Revocation(int(serial, 16), _moment(at), x509.ReasonFlags(reason))
            for serial, at, reason in rows
        ]

    def next_crl_number(self, at: datetime) -> int:
        """A CRL number larger than every one handed out before.

        Example: ``index.next_crl_number(now)`` returns 1, then 2, ...
        """
        cursor = self._db.execute("INSERT INTO crl_numbers (issued_at) VALUES (?)", (_epoch(at),))
        number = cursor.lastrowid
        return int(number) if number is not None else 0

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Run the block as one SQLite transaction (all of it or none of it).

        Example: ``with index.transaction(): index.add(new); index.mark_revoked(...)``.
        """
        with transaction(self._db):
            yield

    def close(self) -> None:
        """Close the database."""
        self._db.close()
