"""The role book: which identity holds which gateway role, in one small JSON file.

The file lives in the data directory (``<home>/gateway/roles.json``) so the operator's
``pervasive gateway role lock-7 warehouse`` in one shell reaches a gateway running in
another: the gateway looks at the file's stamp (inode, mtime, size) on every lookup
and reads it again when it was replaced. Writes are atomic (a temporary file renamed
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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pervasive.errors import ConfigError, InvalidInput
from pervasive.gateway.policy import Role
from pervasive.messaging.topics import validate_identity

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


def _stamp(path: Path) -> _Stamp:
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return None
    return (status.st_ino, status.st_mtime_ns, status.st_size)


class RoleBook:
    """Identities and their roles, backed by a JSON file; open one with :meth:`open`."""

    def __init__(self, path: Path, *, recheck: float = 0.0) -> None:
        self.path = path
        self.recheck = recheck
        """Seconds between looks at the file (0: at every lookup); the gateway sets it."""
        self._next_look = 0.0
        self._stamp: _Stamp = None
        self._roles: dict[str, Role] = {}
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
            if _stamp(self.path) != self._stamp:
                self._load()
        return self._roles.get(identity)

    def roles(self) -> dict[str, Role]:
        """Every identity holding a role, by identity.

        Example: ``for identity, role in book.roles().items(): ...``.
        """
        if _stamp(self.path) != self._stamp:
            self._load()
        return dict(sorted(self._roles.items()))

    def assign(self, identity: str, role: Role | str | None) -> None:
        """Give ``identity`` the ``role`` (replacing any other); ``None`` takes its role away.

        Example: ``book.assign("lock-7", "warehouse")``.
        """
        validate_identity(identity)
        chosen = None if role is None else parse_role(role)
        with self._locked():
            self._load()
            roles = dict(self._roles)
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
            self._stamp, self._roles = None, {}
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
        self._stamp, self._roles = stamp, roles

    def _write(self, roles: dict[str, Role]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".partial")
        document = {"roles": {identity: role.value for identity, role in sorted(roles.items())}}
        partial.write_text(json.dumps(document, indent=2) + "\n")
        os.replace(partial, self.path)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
