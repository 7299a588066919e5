"""The Eclipse mosquitto broker, configured and supervised by the platform.

:class:`MosquittoBroker` writes ``mosquitto.conf`` and ``acl`` into its folder of
the data directory and runs the Debian ``mosquitto`` binary on one TLS listener:

* ``require_certificate true`` and the platform CA as ``cafile``: no certificate, no
  connection; ``crlfile`` makes revoked certificates fail the TLS handshake;
* ``use_identity_as_username true`` and ``use_username_as_clientid true``: the
  certificate CN is the MQTT identity the ACL (rendered by
  :mod:`pervasive.messaging.access`) is written for, and it is also the client id,
  whatever id the client sent: a certificate of ``lock-7`` can neither close nor take
  over the session of ``lock-8`` or ``svc:shadow``;
* persistence in the folder, so sessions and queued QoS 1 messages survive a restart;
* the ``[mqtt]`` limits (:class:`~pervasive.config.MqttSettings`): ``max_packet_size``
  (a larger packet disconnects its sender), ``max_queued_messages`` and
  ``max_queued_bytes`` per client (newer QoS 1 messages are dropped beyond), and
  ``autosave_interval``. mosquitto 2.0 has no CONNECT timeout: a connection that
  never sends CONNECT is closed by its keepalive check after 90 to 95 s
  (``keepalive`` 60 s x 1.5, checked every 5 s; ``connect_timeout`` does not apply).

:meth:`MosquittoBroker.refresh` rewrites the ACL from the current identities and
sends SIGHUP; mosquitto then rereads the ACL and the CRL (checked with 2.0.11).
Reloads are confirmed from mosquitto's log and :meth:`MosquittoBroker.settle`
waits for them. A reload does not close the live sessions of a revoked certificate,
so with ``admin`` credentials (:data:`BROKER_ADMIN_IDENTITY`) the broker also loads
mosquitto's dynamic-security plugin, only to close sessions: for every identity that
left the active set it sends the plugin ``createClient`` then ``deleteClient`` of that
username, and deleting a client disconnects its sessions at once. The plugin has no
clients, roles or groups otherwise and defers every ACL decision to the ``acl_file``;
certificate clients never reach its password check.

:meth:`MosquittoBroker.supervise` raises, in one line, when mosquitto exits on its
own; :attr:`MosquittoBroker.refusals` counts what its log records as refused
(:mod:`pervasive.messaging.mosquitto_log`).

Example::

    broker = MosquittoBroker(settings.path("mosquitto"), ca.broker_credentials(),
                             ca.active_identities, limits=settings.mqtt,
                             admin=ca.client_credentials(BROKER_ADMIN_IDENTITY, home / "mqtt"))
    async with broker:
        ca.add_listener(broker.refresh)
        print(broker.port)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType

from pervasive.config import MqttSettings
from pervasive.messaging.access import render_mosquitto_acl
from pervasive.messaging.client import ClientOptions, MqttClient
from pervasive.messaging.errors import BrokerUnavailable, ConnectionRefused
from pervasive.messaging.mosquitto_log import count_refusals, exit_reason
from pervasive.messaging.tls import BrokerCredentials, ClientCredentials
from pervasive.store.files import write_public

__all__ = [
    "BROKER_ADMIN_IDENTITY",
    "DYNAMIC_SECURITY_PLUGIN",
    "MAX_INFLIGHT",
    "MosquittoBroker",
    "find_dynamic_security",
    "find_mosquitto",
    "free_port",
]

_log = logging.getLogger(__name__)
_INSTALL_HINT = "install it with `apt-get install -y mosquitto mosquitto-clients`"
_START_TIMEOUT = 10.0
MAX_INFLIGHT = 1000
"""``max_inflight_messages`` of the generated configuration."""
BROKER_ADMIN_IDENTITY = "svc:broker"
"""The identity whose certificate lets the broker close revoked sessions (role ``broker``)."""
DYNAMIC_SECURITY_PLUGIN = Path("/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so")
"""Where Debian's ``mosquitto`` package installs the dynamic-security plugin."""
_CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
_EMPTY_DYNSEC = {
    "defaultACLAccess": {
        "publishClientSend": False,
        "publishClientReceive": False,
        "subscribe": False,
        "unsubscribe": False,
    },
    "clients": [],
    "groups": [],
    "roles": [],
}


def find_mosquitto(explicit: Path | None = None) -> Path | None:
    """The mosquitto binary: ``explicit``, then PATH, then ``/usr/sbin``; None when absent.

    Example: ``find_mosquitto()`` returns ``Path('/usr/sbin/mosquitto')`` on Debian.
    """
    if explicit is not None:
        return explicit if explicit.is_file() else None
    found = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")
    return Path(found) if found else None


def find_dynamic_security() -> Path | None:
    """mosquitto's dynamic-security plugin, or None when it is not installed.

    Example: ``find_dynamic_security()`` returns :data:`DYNAMIC_SECURITY_PLUGIN` on Debian.
    """
    candidates = [
        DYNAMIC_SECURITY_PLUGIN,
        *Path("/usr/lib").glob("*/mosquitto_dynamic_security.so"),
    ]
    return next((path for path in candidates if path.is_file()), None)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now.

    Example: ``free_port()`` returns e.g. ``41873``.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class MosquittoBroker:
    """A mosquitto process with a TLS listener, certificate identities and an ACL."""

    def __init__(
        self,
        directory: Path,
        credentials: BrokerCredentials,
        identities: Callable[[], Iterable[str]],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        binary: Path | None = None,
        limits: MqttSettings | None = None,
        admin: ClientCredentials | None = None,
    ) -> None:
        self.directory = directory
        self.credentials = credentials
        self.host = host
        self.limits = limits or MqttSettings()
        """The ``[mqtt]`` settings the configuration's limits are rendered from."""
        self.admin = admin
        """Credentials of :data:`BROKER_ADMIN_IDENTITY`; without them revoked sessions
        stay connected (with no grants) until they reconnect."""
        self._admin_identity = admin.identity() if admin is not None else None
        self._requested_port = port
        self._port = port
        self._identities = identities
        self._binary = binary
        self._process: subprocess.Popen[bytes] | None = None
        self._reloader: asyncio.Task[None] | None = None
        self._generation = 0
        """Counts refreshes; ``_applied`` is the last one mosquitto confirmed."""
        self._applied = 0
        self._admitted: frozenset[str] = frozenset()
        """The identities of the ACL last written."""
        self._to_close: set[str] = set()
        """Identities that left the ACL and whose sessions are still to be closed."""
        self._revoked: frozenset[str] = frozenset()
        """Identities that left the active set while this broker ran: denied every topic."""
        self._acl_text = ""
        self._crl_mtime = 0
        self._log_start = 0
        self._log_read = 0
        self._refusals: Counter[str] = Counter()
        self.closed_sessions: Counter[str] = Counter()
        """Sessions closed because their identity was revoked, by identity."""

    @property
    def port(self) -> int:
        """The TLS listener's port (chosen on first start when 0 was asked)."""
        if self._port == 0:
            raise BrokerUnavailable("the broker has not been started yet")
        return self._port

    @property
    def running(self) -> bool:
        """True while the mosquitto process is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The mosquitto process's id while it runs (for run files and status checks)."""
        return self._process.pid if self.running and self._process is not None else None

    @property
    def config_file(self) -> Path:
        """The generated ``mosquitto.conf``."""
        return self.directory / "mosquitto.conf"

    @property
    def acl_file(self) -> Path:
        """The generated ACL file."""
        return self.directory / "acl"

    @property
    def log_file(self) -> Path:
        """mosquitto's log (stderr)."""
        return self.directory / "mosquitto.log"

    @property
    def dynamic_security_file(self) -> Path:
        """The dynamic-security plugin's state (empty: it only closes sessions)."""
        return self.directory / "dynamic-security.json"

    @property
    def refusals(self) -> Counter[str]:
        """What mosquitto refused since this broker started, by reason (read from its log).

        Reasons: ``oversize packet``, ``queue full`` (once per episode of dropping for
        one client), ``revoked`` (a live session closed), ``tls refused``.

        Example: ``broker.refusals["oversize packet"]``.
        """
        if self.log_file.exists():
            with self.log_file.open("rb") as log:
                log.seek(self._log_read)
                text = log.read().decode(errors="replace")
            complete = text.rfind("\n") + 1  # a line being written is counted next time
            self._refusals.update(count_refusals(text[:complete]))
            self._log_read += len(text[:complete].encode())
        return Counter(self._refusals)

    def render_config(self) -> str:
        """The text of ``mosquitto.conf`` for this broker.

        Example: ``"require_certificate true" in broker.render_config()``.
        """
        user = pwd.getpwuid(os.getuid()).pw_name
        persistence = self.directory / "persistence"
        limits = self.limits
        plugin = find_dynamic_security() if self.admin is not None else None
        return "\n".join(
            [
                "# generated by pervasive.messaging; edits are overwritten",
                "per_listener_settings false",
                "allow_anonymous false",
                f"acl_file {self.acl_file}",
                *(
                    [
                        # loaded only to close revoked sessions (deleteClient); it has
                        # no clients and defers every ACL decision to the acl_file
                        f"plugin {plugin}",
                        f"plugin_opt_config_file {self.dynamic_security_file}",
                    ]
                    if plugin is not None
                    else []
                ),
                # stay the invoking user: mosquitto would switch to 'mosquitto' when root
                # and then could not read the data directory
                f"user {user}",
                "persistence true",
                f"persistence_location {persistence}/",
                f"autosave_interval {limits.autosave_interval}",
                # a packet larger than this disconnects its sender ([mqtt] max_message_bytes)
                f"max_packet_size {limits.max_message_bytes}",
                f"max_queued_messages {limits.max_queued_messages}",
                f"max_queued_bytes {limits.max_queued_bytes}",
                # QoS 1 messages in flight to each client before a PUBACK comes back
                # (default 20): a busy subscriber would otherwise wait a round trip
                # every 20 messages
                f"max_inflight_messages {MAX_INFLIGHT}",
                # small MQTT packets must not wait for Nagle's algorithm (~40 ms each)
                "set_tcp_nodelay true",
                "log_dest stderr",
                "log_type error",
                "log_type warning",
                "log_type notice",
                "log_type information",
                "log_timestamp_format %Y-%m-%dT%H:%M:%S",
                "",
                f"listener {self.port} {self.host}",
                f"cafile {self.credentials.ca_file}",
                f"certfile {self.credentials.cert_file}",
                f"keyfile {self.credentials.key_file}",
                f"crlfile {self.credentials.crl_file}",
                "tls_version tlsv1.2",
                "require_certificate true",
                "use_identity_as_username true",
                # the client id is the certificate's identity, whatever the client sent
                "use_username_as_clientid true",
                "",
            ]
        )

    def _write_files(self) -> bool:
        """Write configuration, ACL and plugin state; True when mosquitto must reload."""
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "persistence").mkdir(exist_ok=True)
        identities = set(self._identities())
        if self._admin_identity is not None:
            identities.add(self._admin_identity)
        current = frozenset(identities)
        self._to_close |= self._admitted - current
        self._to_close -= current  # issued again (rotated) before it was closed
        self._revoked = (self._revoked | (self._admitted - current)) - current
        self._admitted = current
        acl = render_mosquitto_acl(current, denied=self._revoked)
        crl = _mtime_ns(self.credentials.crl_file)
        # a device registered needs no reload (its grants are ACL patterns), and every
        # reload costs offline certificate clients their `user` grants until they
        # reconnect (mosquitto 2.0), so mosquitto reloads only when ACL or CRL changed
        changed = acl != self._acl_text or crl != self._crl_mtime
        self._acl_text, self._crl_mtime = acl, crl
        write_public(self.acl_file, acl)
        if not self.dynamic_security_file.exists():
            write_public(self.dynamic_security_file, json.dumps(_EMPTY_DYNSEC))
        write_public(self.config_file, self.render_config())
        return changed

    async def start(self) -> None:
        """Write the configuration and start mosquitto; return once it answers as our broker.

        Ready means a TLS handshake in which the listener presents a certificate of
        the platform CA: another process on the port is not mistaken for mosquitto.
        A mosquitto that exits while starting raises :class:`BrokerUnavailable` with
        the reason from its log, in one line.

        Example: ``await broker.start()``.
        """
        if self.running:
            return
        binary = find_mosquitto(self._binary)
        if binary is None:
            raise BrokerUnavailable(f"the mosquitto binary was not found; {_INSTALL_HINT}")
        if self._port == 0:
            self._port = free_port(self.host)
        self._write_files()
        self._to_close.clear()  # a new process has no sessions yet that were revoked
        offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        self._log_start = self._log_read = offset
        self._refusals.clear()
        log = self.log_file.open("ab")
        try:
            self._process = subprocess.Popen(
                [str(binary), "-c", str(self.config_file)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        finally:
            log.close()
        await self._wait_until_ready()
        # mosquitto listens before it installs its signal handlers; a SIGHUP (a refresh)
        # sent in between would kill it, so start returns once it logs that it runs
        try:
            await self._await_log(" running", offset, waiting_for="start")
        except BrokerUnavailable:
            await self.stop()
            raise

    def _probe_context(self) -> ssl.SSLContext:
        if self.admin is not None:
            return self.admin.ssl_context()
        context = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cafile=str(self.credentials.ca_file)
        )
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        return context

    async def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT
        context = self._probe_context()
        last = "nothing answered"
        while time.monotonic() < deadline:
            if not self.running:
                raise self._start_failure()
            try:
                async with asyncio.timeout(1.0):
                    last = await self._handshake(context)
            except TimeoutError:
                last = "a TLS handshake got no answer within 1 s"
            if not last:
                return
            await asyncio.sleep(0.02)
        if not self.running:
            raise self._start_failure()
        await self.stop()
        raise BrokerUnavailable(
            f"mosquitto did not answer as our broker on {self.host}:{self._port} within "
            f"{_START_TIMEOUT:g}s ({last}); is another process on that port?"
        )

    async def _handshake(self, context: ssl.SSLContext) -> str:
        """A TLS handshake with the listener: '' when it presents our CA's certificate."""
        try:
            _reader, writer = await asyncio.open_connection(
                self.host, self._port, ssl=context, server_hostname=self.host
            )
        except ssl.SSLCertVerificationError as exc:
            return f"the listener's certificate is not our CA's: {exc.verify_message}"
        except ssl.SSLError as exc:
            if "ALERT" in str(exc.reason):
                # mosquitto refused our client certificate (none offered, or revoked): under
                # TLS 1.2 its alert comes after this side verified its certificate
                return ""
            return f"TLS handshake failed: {exc.reason or exc}"
        except OSError as exc:
            return f"cannot connect: {exc.strerror or exc}"
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()
        return ""

    def _start_failure(self) -> BrokerUnavailable:
        reason = exit_reason(self._log_since(self._log_start)) or "no reason in its log"
        if "Address already in use" in reason:
            return BrokerUnavailable(
                f"mosquitto cannot listen on {self.host}:{self._port}: the port is already in "
                "use; stop what runs there or choose another port (--port, PERVASIVE_MQTT_PORT)"
            )
        return BrokerUnavailable(
            f"mosquitto exited while starting: {reason} (its log: {self.log_file})"
        )

    def _log_since(self, offset: int) -> str:
        try:
            with self.log_file.open("rb") as log:
                log.seek(offset)
                return log.read().decode(errors="replace")
        except OSError:
            return ""

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    async def supervise(self, *, interval: float = 0.1) -> None:
        """Return never while mosquitto runs; raise when it exits without :meth:`stop`.

        Polls the child every ``interval`` seconds, so a dead child is reaped at once
        (no zombie). The :class:`BrokerUnavailable` says, in one line, how it ended
        (exit code or signal) and the last error from its log. ``broker run`` exits
        non-zero on it; it does not restart mosquitto (a service manager may).

        Example: ``await broker.supervise()  # raises when mosquitto is killed``.
        """
        while True:
            process = self._process
            if process is None:
                raise BrokerUnavailable("mosquitto is not running; start the broker first")
            code = process.poll()
            if code is not None:
                self._process = None
                how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
                reason = exit_reason(self._log_since(self._log_start))
                raise BrokerUnavailable(
                    f"mosquitto (pid {process.pid}) stopped unexpectedly with {how}"
                    + (f": {reason}" if reason else "")
                    + f"; see {self.log_file}"
                )
            await asyncio.sleep(interval)

    def refresh(self) -> None:
        """Rewrite the ACL from the current identities and make mosquitto reload ACL and CRL.

        Identities that left the active set (revoked) have their live sessions closed
        once the reload is in effect (with ``admin`` credentials). Returns at once; the
        reload completes in the background (about 0.1 s, one turn of mosquitto's main
        loop). ``await broker.settle()`` waits for it. Safe to call while stopped: the
        files are used at the next start.

        Example: ``ca.add_listener(broker.refresh)``.
        """
        if self._port == 0:
            return
        if not self._write_files() and not self._to_close:
            return
        self._generation += 1
        if not self.running:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop (a CLI command): reload without confirmation
            if self._process is not None:
                self._process.send_signal(signal.SIGHUP)
            return
        if self._reloader is None or self._reloader.done():
            self._reloader = loop.create_task(self._reload())

    async def settle(self) -> None:
        """Wait until mosquitto applied every :meth:`refresh` so far.

        Example: ``ca.revoke(serial); await broker.settle()``.
        """
        if self._reloader is not None:
            await self._reloader

    async def _reload(self) -> None:
        # mosquitto drops a SIGHUP that arrives while it is reloading, so reloads are
        # sent one at a time, each confirmed before the next
        while self._applied < self._generation and self._process is not None:
            target = self._generation
            offset = self.log_file.stat().st_size
            self._process.send_signal(signal.SIGHUP)
            offset = await self._await_log("Reloading config.", offset, waiting_for="reload")
            # mosquitto accepts connections only between reloads: once it logs this one,
            # the reload that started before it is complete
            _reader, writer = await asyncio.open_connection(self.host, self._port)
            local_port = writer.get_extra_info("sockname")[1]
            try:
                await self._await_log(
                    f"New connection from {self.host}:{local_port} ", offset, waiting_for="reload"
                )
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
            # the CRL now refuses a revoked certificate's reconnect: close its sessions
            await self._close_revoked_sessions()
            self._applied = target

    async def _close_revoked_sessions(self) -> None:
        if self.admin is None or not self._to_close:
            return
        identities = sorted(self._to_close)
        commands = [
            {"command": command, "username": identity}
            for identity in identities
            for command in ("createClient", "deleteClient")
        ]
        options = ClientOptions(self.host, self._port, self.admin, ack_timeout=_START_TIMEOUT)
        try:
            async with MqttClient(options) as client:
                # the plugin acts before mosquitto sends the PUBACK
                await client.publish(_CONTROL_TOPIC, json.dumps({"commands": commands}).encode())
        except (BrokerUnavailable, ConnectionRefused) as exc:
            # kept in _to_close: the next refresh tries again; the CRL already refuses
            # their reconnects and the ACL grants them nothing
            _log.warning("could not close the sessions of %s: %s", ", ".join(identities), exc)
            return
        self._to_close.difference_update(identities)
        self.closed_sessions.update(identities)

    async def _await_log(self, marker: str, offset: int, *, waiting_for: str) -> int:
        """Wait for ``marker`` in the log after byte ``offset``; return where it ended."""
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            with self.log_file.open("rb") as log:
                log.seek(offset)
                text = log.read().decode(errors="replace")
            found = text.find(marker)
            if found >= 0:
                return offset + len(text[: found + len(marker)].encode())
            if not self.running:
                break
            await asyncio.sleep(0.01)
        raise BrokerUnavailable(
            f"mosquitto did not confirm its {waiting_for}; its log:\n{self._log_tail()}"
        )

    async def stop(self, *, timeout: float = 5.0) -> None:
        """Stop mosquitto (SIGTERM, so it saves its persistence file; SIGKILL after ``timeout``).

        Example: ``await broker.stop()``.
        """
        if self._reloader is not None:
            self._reloader.cancel()
            with contextlib.suppress(asyncio.CancelledError, BrokerUnavailable, OSError):
                await self._reloader
            self._reloader = None
        self._applied = self._generation  # the next start reads the current files
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            await asyncio.to_thread(process.wait, timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait)

    async def __aenter__(self) -> MosquittoBroker:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()


def _mtime_ns(path: Path) -> int:
    return path.stat().st_mtime_ns if path.exists() else 0
