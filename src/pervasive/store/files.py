"""Files of the data directory written whole: atomic writes, owner-only modes.

Every file a reader may open while it is rewritten (a certificate, the CRL, the broker's
ACL, the run file, a key) is written to a temporary file beside it and renamed over the
target, so a reader sees the old file or the new one, never half of one. A private key
(the CA's, a TLS key, an account's, a sensor's) is written mode 0600 and made durable;
the folder of a device's or service's credentials is 0700. Public files keep the umask's
mode.

Example::

    private_folder(home / "devices" / "lock-7")               # created 0700
    write_private(home / "devices" / "lock-7" / "key.pem", pem)
    write_public(home / "pki" / "crl.pem", crl)
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

__all__ = ["private_folder", "temporary_path", "write_private", "write_public"]


def temporary_path(path: Path) -> Path:
    """A temporary name beside ``path`` no other process uses.

    Several processes of one data directory (oracle nodes, notary members) open the CA
    at once and rewrite the CRL: with one shared ``.tmp`` name, one's ``os.replace``
    found the file already moved by another.

    Example: ``temporary_path(Path("crl.pem")).name.endswith(".tmp")`` is ``True``.
    """
    return path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def private_folder(path: Path) -> Path:
    """Create ``path`` (and its parents) and make it 0700: only the owner lists or enters it.

    Example: ``private_folder(home / "devices" / "lock-7" / "sensors")``.
    """
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if stat.S_IMODE(path.stat().st_mode) != 0o700:
        path.chmod(0o700)
    return path


def write_private(path: Path, data: bytes, *, keep_existing: bool = False) -> None:
    """Write ``data`` readable by the owner only (0600), atomically and durably.

    ``keep_existing``: a file already at ``path`` (another process's key written
    meanwhile) is left as it is instead of replaced: the first writer wins.

    Example: ``write_private(folder / "key.pem", issued.private_key_pem)``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_path(path)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if keep_existing:
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)
        else:
            temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


def write_public(path: Path, data: bytes | str) -> None:
    """Write ``data`` (text as UTF-8) atomically with the umask's mode.

    Example: ``write_public(folder / "cert.pem", issued.certificate_pem)``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_path(path)
    try:
        temporary.write_bytes(data.encode() if isinstance(data, str) else data)
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)
