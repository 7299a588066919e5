"""The broker admission handshake between processes that share one data directory.

A broker grants an identity its topics only once the identity's certificate is in its
ACL; until then mosquitto acknowledges and drops what the identity publishes, and the
embedded broker refuses it. A certificate issued by another process (``pervasive
device register`` in a second shell) reaches the ACL at the broker's next look. So the
process that runs the broker keeps a list of the identities its ACL grants right now in
``<home>/broker/admitted.json`` (:func:`admission_watch`), and a client that was just
issued a certificate waits until its identity is on that list (:func:`await_admission`)
before it connects.

Example::

    # the process running the broker
    async with admission_watch(broker, ca.active_identities, ca.crl_file, admitted_file(home)):
        ...
    # another process, after issuing "lock-7" a certificate
    await await_admission(home, "lock-7")
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pervasive.errors import ConfigError
from pervasive.store.files import write_public

__all__ = [
    "WATCH_SECONDS",
    "AdmissionState",
    "AdmissionWatch",
    "admission_state",
    "admission_watch",
    "admitted_file",
    "await_admission",
    "write_admitted",
]

WATCH_SECONDS = 0.25
"""How often the broker's process looks for certificates issued or revoked elsewhere."""


class _Refreshable(Protocol):
    def refresh(self) -> None: ...

    async def settle(self) -> None: ...


@dataclass(frozen=True)
class AdmissionState:
    """What a broker's ACL and CRL depend on: the active identities and the CRL's mtime."""

    identities: tuple[str, ...]
    crl_mtime_ns: int


def admission_state(identities: Iterable[str], crl_file: Path) -> AdmissionState:
    """The current :class:`AdmissionState` (identities sorted; 0 when there is no CRL).

    Example: ``admission_state(ca.active_identities(), ca.crl_file)``.
    """
    mtime = crl_file.stat().st_mtime_ns if crl_file.exists() else 0
    return AdmissionState(tuple(sorted(identities)), mtime)


def admitted_file(home: Path) -> Path:
    """Where the process running the broker from ``home`` lists the admitted identities.

    Example: ``admitted_file(Path(".pervasive"))  # .pervasive/broker/admitted.json``.
    """
    return home / "broker" / "admitted.json"


def write_admitted(path: Path, identities: Iterable[str]) -> None:
    """Replace the list at ``path`` atomically (a reader never sees half a file).

    Example: ``write_admitted(admitted_file(home), ["svc:shadow", "lock-7"])``.
    """
    write_public(path, json.dumps(list(identities)))


class AdmissionWatch:
    """The handle of a running :func:`admission_watch`."""

    def __init__(
        self, broker: _Refreshable, identities: Callable[[], Iterable[str]], crl_file: Path
    ) -> None:
        self._broker = broker
        self._identities = identities
        self._crl_file = crl_file
        self._refreshed: AdmissionState | None = None

    def state(self) -> AdmissionState:
        """The CA's current :class:`AdmissionState`."""
        return admission_state(self._identities(), self._crl_file)

    def refresh(self) -> None:
        """Refresh the broker for a change made in this process (use it as the CA listener).

        The broker gets the change at once, and the watch's next look, seeing that
        state already applied, only rewrites the list instead of refreshing again.

        Example: ``ca.add_listener(watch.refresh)``.
        """
        self._broker.refresh()
        self._refreshed = self.state()

    async def follow(self, seen: AdmissionState, path: Path, interval: float) -> None:
        """Every ``interval`` seconds: refresh on a change from ``seen``, settle, rewrite."""
        while True:
            await asyncio.sleep(interval)
            current = self.state()
            if current != seen:
                if current != self._refreshed:
                    self._broker.refresh()  # a change made by another process
                await self._broker.settle()
                write_admitted(path, current.identities)
                seen = current


@asynccontextmanager
async def admission_watch(
    broker: _Refreshable,
    identities: Callable[[], Iterable[str]],
    crl_file: Path,
    path: Path,
    *,
    interval: float = WATCH_SECONDS,
) -> AsyncIterator[AdmissionWatch]:
    """Keep ``broker`` and the list at ``path`` in step with the CA while the block runs.

    Writes the list before the block starts, then every ``interval`` seconds looks
    whether a certificate was issued or revoked (by this process or another): if so it
    refreshes the broker (unless :meth:`AdmissionWatch.refresh` already did), waits
    until the change is in effect, and rewrites the list. The list is removed when the
    block ends, so nobody waits on a stopped broker.

    Example::

        async with broker, admission_watch(broker, ca.active_identities, ca.crl_file,
                                           admitted_file(home)) as watch:
            ca.add_listener(watch.refresh)
            await serve_forever()
    """
    watch = AdmissionWatch(broker, identities, crl_file)
    seen = watch.state()
    write_admitted(path, seen.identities)
    task = asyncio.create_task(watch.follow(seen, path, interval), name=f"admission watch {path}")
    try:
        yield watch
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        path.unlink(missing_ok=True)


async def await_admission(
    home: Path, identity: str, *, timeout: float = 15.0, poll: float = WATCH_SECONDS / 5
) -> None:
    """Wait until the broker run from ``home`` grants ``identity`` its topics.

    Returns at once when no broker runs from ``home`` (one elsewhere is out of our
    sight). Raises :class:`~pervasive.errors.ConfigError` at ``timeout``.

    Example: ``await await_admission(settings.home, "svc:shadow")``.
    """
    path = admitted_file(home)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while path.exists():
        try:
            if identity in json.loads(path.read_text()):
                return
        except (OSError, ValueError):
            pass  # replaced or removed under our feet: look again
        if loop.time() > deadline:
            raise ConfigError(
                f"the broker run from {home} has not admitted {identity!r} after {timeout:g}s; "
                "is its certificate revoked (`pervasive device list`)?"
            )
        await asyncio.sleep(poll)
