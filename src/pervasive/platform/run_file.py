"""The run file of ``pervasive up``: what runs from a data directory, and is it alive.

``pervasive up`` writes ``<home>/run.json`` once every part listens and removes it when
it stops; ``pervasive status`` (or a test, or the dashboard) reads it and checks each
endpoint: its process is alive and its port accepts a TCP connection. A run file whose
process is gone (the stack was killed with SIGKILL) is *stale*: nothing runs.

Example::

    record = read_run_record(run_file(home))
    if record is not None:
        for health in check(record):
            print(health.endpoint.name, health.running)
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pervasive.errors import ConfigError
from pervasive.store.files import write_public

__all__ = [
    "Endpoint",
    "EndpointHealth",
    "RunRecord",
    "check",
    "pid_alive",
    "port_open",
    "read_run_record",
    "run_file",
    "write_run_record",
]


@dataclass(frozen=True)
class Endpoint:
    """One part of a running stack and how to reach it."""

    name: str
    """``chain``, ``broker``, ``ca`` or ``shadow``."""
    kind: str
    """What implements it: ``anvil``, ``embedded``, ``mosquitto``, ``x509``, ``mqtt``..."""
    address: str
    """Where clients reach it (``mqtts://127.0.0.1:8883``, ``http://127.0.0.1:8545``), or
    a description for parts without a socket (``in-process``)."""
    host: str | None = None
    port: int | None = None
    pid: int | None = None
    """The process serving it (a child such as mosquitto, or the stack itself)."""
    detail: str = ""
    """What a user needs besides the address (identity, state file, how to connect)."""


@dataclass(frozen=True)
class RunRecord:
    """The content of ``<home>/run.json``."""

    pid: int
    """The ``pervasive up`` process."""
    home: str
    started_at: float
    endpoints: tuple[Endpoint, ...]
    credentials: dict[str, str] = field(default_factory=dict)
    """Name -> path of the files clients need (CA certificate, CRL, service identities)."""

    def to_json(self) -> str:
        """The record as JSON text (what :func:`write_run_record` writes)."""
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> RunRecord:
        """Parse :meth:`to_json`'s output; raises :class:`ConfigError` on anything else."""
        try:
            raw = json.loads(text)
            endpoints = tuple(Endpoint(**e) for e in raw.pop("endpoints"))
            return cls(endpoints=endpoints, **raw)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ConfigError(
                f"the run file is not one `pervasive up` wrote ({exc}); remove it"
            ) from exc


@dataclass(frozen=True)
class EndpointHealth:
    """An endpoint and what a look at it found."""

    endpoint: Endpoint
    process_alive: bool
    port_open: bool | None
    """``None`` when the endpoint has no port to try."""

    @property
    def running(self) -> bool:
        """Its process is alive and, if it has a port, the port accepts connections."""
        return self.process_alive and self.port_open is not False


def run_file(home: Path) -> Path:
    """Where ``pervasive up`` run from ``home`` keeps its :class:`RunRecord`."""
    return home / "run.json"


def write_run_record(path: Path, record: RunRecord) -> None:
    """Write ``record`` atomically (a reader never sees half a file)."""
    write_public(path, record.to_json())


def read_run_record(path: Path) -> RunRecord | None:
    """The record at ``path``, or ``None`` when nothing was started from there."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except UnicodeDecodeError:
        raise ConfigError(
            f"{path} is not a run file `pervasive up` wrote (not text): remove it (the next "
            "`pervasive up` writes it again)"
        ) from None
    return RunRecord.from_json(text)


def pid_alive(pid: int) -> bool:
    """True while process ``pid`` exists (zombies included; signal 0 probes only)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def port_open(host: str, port: int, *, timeout: float = 1.0) -> bool:
    """True when ``host:port`` accepts a TCP connection within ``timeout`` seconds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def check(record: RunRecord, *, timeout: float = 1.0) -> list[EndpointHealth]:
    """Look at every endpoint of ``record``: process alive, port connectable.

    Example: ``all(h.running for h in check(record))``.
    """
    stack_alive = pid_alive(record.pid)
    found = []
    for endpoint in record.endpoints:
        alive = stack_alive and (endpoint.pid is None or pid_alive(endpoint.pid))
        reachable = None
        if endpoint.host is not None and endpoint.port is not None:
            reachable = port_open(endpoint.host, endpoint.port, timeout=timeout)
        found.append(EndpointHealth(endpoint, alive, reachable))
    return found
