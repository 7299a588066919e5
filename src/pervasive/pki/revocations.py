"""Revocation checked on every request: the CA's revoked serials as a set kept current.

Paper 004 section 4.5: a compromised device certificate is revoked, and from then on
the device must not reach the platform, not even over a TLS connection it opened
before. A server that checks each request (the devices' JSON-RPC gateway) cannot parse
the CRL every time; :class:`RevokedSerials` answers ``serial in revoked`` with a set
lookup and one ``stat`` of the CRL file. It reloads the set from the CA's index when
this process's CA changes (a listener) and when the CRL file was replaced, which is how
a revocation by another process of the same data directory (``pervasive device
revoke`` in another shell) shows: the CA rewrites ``crl.pem`` after every revocation.

A server that decides itself when to look at the file (the gateway: once per
millisecond at most, never per request) calls :meth:`RevokedSerials.refresh` then and
looks serials up in :attr:`RevokedSerials.serials`, a plain set.

Example::

    revoked = RevokedSerials(ca)
    if peer.serial in revoked: refuse()
    revoked.close()
"""

from __future__ import annotations

import os
import time

from pervasive.pki.authority import CertificateAuthority

__all__ = ["RevokedSerials"]

_Stamp = tuple[int, int, int] | None


def _stamp(path: str) -> _Stamp:
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return None
    # the CA replaces the file (a new inode) on every write: mtime alone may not move
    return (status.st_ino, status.st_mtime_ns, status.st_size)


class RevokedSerials:
    """The serials ``authority`` has revoked, current at every lookup.

    A revocation through ``authority`` (this process) counts at once. One by another
    process counts at the first lookup after the CRL file changed, or, with
    ``recheck`` seconds, at most that long after (one ``stat`` per ``recheck`` instead of
    one per lookup: the gateway's hot path).

    Example::

        revoked = RevokedSerials(ca)
        ca.revoke(issued.record.serial)
        assert issued.record.serial in revoked
    """

    def __init__(self, authority: CertificateAuthority, *, recheck: float = 0.0) -> None:
        self._authority = authority
        self._crl = os.fspath(authority.crl_file)  # stat() of a str: no calls into pathlib
        self._recheck = recheck
        """Seconds between looks at the CRL file (0: at every lookup)."""
        self._next_look = 0.0
        self._stamp = _stamp(self._crl)
        self.serials: frozenset[int] = authority.revoked_serials()
        """The revoked serials as last read, without a look at the file (a set lookup):
        current for this process's revocations, and for other processes' as of the last
        :meth:`refresh` or ``in``."""
        self.reloads = 0
        """How often the set was read again (for tests and dashboards)."""
        authority.add_listener(self.reload)

    def __contains__(self, serial: object) -> bool:
        now = time.monotonic()
        if now >= self._next_look:
            self._next_look = now + self._recheck
            self.refresh()
        return serial in self.serials

    def __len__(self) -> int:
        return len(self.serials)

    def refresh(self) -> None:
        """Look at the CRL file now (one ``stat``); read the set again if it was replaced.

        Example: ``revoked.refresh(); peer.serial in revoked.serials``.
        """
        stamp = _stamp(self._crl)
        if stamp != self._stamp:
            self._stamp = stamp
            self.reload()

    def reload(self) -> None:
        """Read the revoked serials from the CA's index again (the CA's listener).

        Example: ``ca.add_listener(revoked.reload)`` (the constructor does it).
        """
        self.serials = self._authority.revoked_serials()
        self.reloads += 1

    def close(self) -> None:
        """Stop following this process's CA.

        Example: ``revoked.close()``.
        """
        self._authority.remove_listener(self.reload)
