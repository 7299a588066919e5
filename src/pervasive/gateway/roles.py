"""The role book: which identity holds which gateway role, in one small JSON file.

The file lives in the data directory (``<home>/gateway/roles.json``) so the operator's
``pervasive gateway role lock-7 warehouse`` in one shell reaches a gateway running in
another: :meth:`RoleBook.role_of` looks at the file's stamp (inode, mtime, size)
and reads it again when it was replaced. The gateway looks at it itself, at most once
per millisecond (:meth:`RoleBook.refresh`), and between looks reads
:attr:`RoleBook.assigned`, a plain dictionary. Writes are atomic (a temporary file renamed
over the old one) and serialised by a lock file, so two writers never lose each
other's change and a reader never sees half a file. An identity without an entry has
no role and the gateway refuses it.

File format::

    {"roles": {"lock-7": "warehouse", "svc:dashboard": "reader"}}

Example::

    book = RoleBook.open(roles_file(settings.home))
    book.assign("lock-7", Role.WAREHOUSE)
    book.role_of("lock-7")           # Role.WAREHOUSE
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from pervasive.errors import ConfigError, InvalidInput
from pervasive.gateway.policy import Role
from pervasive.messaging.topics import validate_identity
from pervasive.store.files import write_public

__all__ = ["RoleBook", "parse_role", "roles_file"]

_Stamp = tuple[int, int, int] | None


def roles_file(home: Path) -> Path:
    """Where the role book of the data directory ``home`` lives.

    Example: ``roles_file(Path(".pervasive"))  # .pervasive/gateway/roles.json``.
    """
    return home / "gateway" / "roles.json"


def parse_role(text: str) -> Role:
    """The :class:`Role` named ``text``; :class:`InvalidInput` naming the roles otherwise.

    Example: ``parse_role("warehouse") is Role.WAREHOUSE``.
    """
    try:
        return Role(text.strip().lower())
    except ValueError:
        names = ", ".join(role.value for role in Role)
        raise InvalidInput(f"unknown gateway role {text!r}: choose one of {names}") from None


def _stamp(path: str | Path) -> _Stamp:
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return None
    return (status.st_ino, status.st_mtime_ns, status.st_size)


class RoleBook:
    """Identities and their roles, backed by a JSON file; open one with :meth:`open`."""

    def __init__(self, path: Path, *, recheck: float = 0.0) -> None:
        self.path = path
        self._where = os.fspath(path)  # stat() of a str spares two calls into pathlib
        self.recheck = recheck
        """Seconds between looks at the file (0: at every lookup); the gateway sets it."""
        self._next_look = 0.0
        self._stamp: _Stamp = None
        self.assigned: Mapping[str, Role] = {}
        """The roles by identity as last read, without a look at the file (a dictionary
        lookup): current for changes through this object, for other writers' as of the
        last :meth:`refresh` or :meth:`role_of`. Replaced on every reload, never changed
        in place."""
        self._load()

    @classmethod
    def open(cls, path: Path, *, recheck: float = 0.0) -> RoleBook:
        """The role book in ``path`` (empty until the first :meth:`assign`).

        ``recheck``: seconds between looks at the file for another process's changes
        (0: at every lookup; a gateway passes ``FILE_RECHECK`` to keep ``stat`` off its
        hot path). Changes made through this object count at once either way.

        Example: ``RoleBook.open(roles_file(settings.home), recheck=0.01)``.
        """
        return cls(path, recheck=recheck)

    def role_of(self, identity: str) -> Role | None:
        """The role of ``identity`` as the file says now; ``None`` when it holds none.

        With ``recheck`` the file is looked at once per ``recheck`` seconds at most.

        Example: ``book.role_of("lock-7")``.
        """
        now = time.monotonic()
        if now >= self._next_look:
            self._next_look = now + self.recheck
            self.refresh()
        return self.assigned.get(identity)

    def refresh(self) -> None:
        """Look at the file now (one ``stat``) and read it again if it was replaced.

        Raises :class:`ConfigError` when the file is unreadable; :attr:`assigned` keeps
        the last good roles, and the next call tries again.

        Example: ``book.refresh(); book.assigned.get("lock-7")``.
        """
        if _stamp(self._where) != self._stamp:
            self._load()

    def roles(self) -> dict[str, Role]:
        """Every identity holding a role, by identity.

        Example: ``for identity, role in book.roles().items(): ...``.
        """
        self.refresh()
        return dict(sorted(self.assigned.items()))

    def assign(self, identity: str, role: Role | str | None) -> None:
        """Give ``identity`` the ``role`` (replacing any other); ``None`` takes its role away.

        Example: ``book.assign("lock-7", "warehouse")``.
        """
        validate_identity(identity)
        chosen = None if role is None else parse_role(role)
        with self._locked():
            self._load()
            roles = dict(self.assigned)
            if chosen is None:
                roles.pop(identity, None)
            else:
                roles[identity] = chosen
            self._write(roles)
            self._load()

    # -- file -------------------------------------------------------------------------
    def _load(self) -> None:
        stamp = _stamp(self.path)
        if stamp is None:
            self._stamp, self.assigned = None, {}
            return
        try:
            document = json.loads(self.path.read_bytes())
            entries = document["roles"]
            roles = {str(identity): Role(role) for identity, role in entries.items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(
                f"the gateway role book {self.path} is unreadable ({exc}); fix or delete it "
                "and assign the roles again with `pervasive gateway role`"
            ) from exc
        self._stamp, self.assigned = stamp, roles

    def _write(self, roles: dict[str, Role]) -> None:
        document = {"roles": {identity: role.value for identity, role in sorted(roles.items())}}
        write_public(self.path, json.dumps(document, indent=2) + "\n")

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
