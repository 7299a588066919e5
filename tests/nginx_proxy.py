"""Render the nginx templates of ``deploy/nginx/`` and run Debian's nginx on them.

Used by ``tests/integration/nginx/`` and ``bench/gateway_throughput.py`` (which imports
this file by path). The templates hold ``${NAME}`` placeholders, as ``envsubst`` fills
them for an operator; :func:`render` fills them the same way, refuses a missing value
or a placeholder left over, and leaves nginx's own ``$name`` variables alone. Each
nginx runs in the foreground under its own ``-p`` prefix (logs, pid, temporary files).

Example::

    folder = tmp_path / "paper"
    config = paper_config(folder, upstream="127.0.0.1:8545", port=free_port(),
                          users={"door-1": "s3cret"})
    with Nginx.start(config) as proxy:
        print(proxy.url)        # http://127.0.0.1:<port>
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pervasive.pki import CertificateAuthority

__all__ = [
    "DEPLOY",
    "NGINX",
    "NO_NGINX",
    "Nginx",
    "free_port",
    "hardened_config",
    "htpasswd_line",
    "paper_config",
    "render",
    "server_files",
]

DEPLOY = Path(__file__).parents[1] / "deploy" / "nginx"
NGINX = Path("/usr/sbin/nginx")
NO_NGINX = (
    "Debian's nginx is not installed (/usr/sbin/nginx): "
    "apt-get install nginx libnginx-mod-http-js (./dev setup does)"
)
_PLACEHOLDER = re.compile(r"\$\{([A-Z_]+)\}")
_ALLOW = re.compile(r'js_var \$jsonrpc_allow "[^"]*";')
_REFUSAL = re.compile(r"status=(\d+) .*refusal=(\S*)$")


def render(template: str, values: Mapping[str, str]) -> str:
    """Fill the ``${NAME}`` placeholders of ``template`` as ``envsubst`` would.

    Example: ``render("listen ${LISTEN};", {"LISTEN": "8080"})`` gives ``"listen 8080;"``.
    """
    wanted = set(_PLACEHOLDER.findall(template))
    missing = sorted(wanted - set(values))
    if missing:
        raise ValueError(f"no value for the placeholders {', '.join(missing)}")
    unused = sorted(set(values) - wanted)
    if unused:
        raise ValueError(f"the template has no placeholder {', '.join(unused)}")
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], template)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now.

    Example: ``free_port()`` gives e.g. ``41873``.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def htpasswd_line(user: str, password: str) -> str:
    """One ``auth_basic_user_file`` line: ``user:<SHA-512 crypt hash>`` (``openssl passwd -6``).

    Example: ``htpasswd_line("door-1", "s3cret")`` gives ``"door-1:$6$..."``.
    """
    hashed = subprocess.run(
        ["openssl", "passwd", "-6", "-stdin"],
        input=password,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return f"{user}:{hashed}"


def server_files(authority: CertificateAuthority) -> tuple[Path, Path]:
    """nginx's server certificate and key for 127.0.0.1, issued by the platform CA once.

    They live in ``<pki>/nginx/`` (``CertificateAuthority.server_credentials``).

    Example: ``cert, key = server_files(ca)``.
    """
    credentials = authority.server_credentials("nginx", ("127.0.0.1", "localhost"))
    return credentials.cert_file, credentials.key_file


def _prepare(folder: Path) -> None:
    for name in ("logs", "temp"):
        (folder / name).mkdir(parents=True, exist_ok=True)


def paper_config(
    folder: Path,
    *,
    upstream: str,
    port: int,
    users: Mapping[str, str],
    workers: int = 1,
) -> Path:
    """``paper.conf`` rendered into ``folder`` with an htpasswd file of ``users``.

    Example: ``paper_config(tmp_path, upstream="127.0.0.1:8545", port=8080, users={"a": "b"})``.
    """
    _prepare(folder)
    htpasswd = folder / "htpasswd"
    htpasswd.write_text("".join(htpasswd_line(u, p) + "\n" for u, p in users.items()))
    values = {
        "WORKERS": str(workers),
        "LISTEN": f"127.0.0.1:{port}",
        "UPSTREAM": upstream,
        "HTPASSWD": str(htpasswd),
    }
    config = folder / "paper.conf"
    config.write_text(render((DEPLOY / "paper.conf").read_text(), values))
    return config


def hardened_config(
    folder: Path,
    *,
    upstream: str,
    port: int,
    authority: CertificateAuthority,
    rate: str = "200r/s",
    burst: int = 400,
    workers: int = 1,
    allow: str | None = None,
) -> Path:
    """``hardened.conf`` and ``jsonrpc_allow.js`` rendered into ``folder``.

    The client CA and CRL are the platform CA's own files (``authority.ca_file``,
    ``authority.crl_file``), so a revocation shows after :meth:`Nginx.reload`.
    ``allow`` replaces the shipped method allow-list (``js_var $jsonrpc_allow``).

    Example: ``hardened_config(tmp_path, upstream=ledger.url[7:], port=8443, authority=ca)``.
    """
    _prepare(folder)
    cert, key = server_files(authority)
    shutil.copy(DEPLOY / "jsonrpc_allow.js", folder / "jsonrpc_allow.js")
    values = {
        "WORKERS": str(workers),
        "LISTEN": f"127.0.0.1:{port}",
        "UPSTREAM": upstream,
        "SERVER_CERT": str(cert),
        "SERVER_KEY": str(key),
        "CLIENT_CA": str(authority.ca_file),
        "CRL": str(authority.crl_file),
        "RATE": rate,
        "BURST": str(burst),
    }
    text = render((DEPLOY / "hardened.conf").read_text(), values)
    if allow is not None:
        text, count = _ALLOW.subn(f'js_var $jsonrpc_allow "{allow}";', text)
        assert count == 1, "hardened.conf has no js_var $jsonrpc_allow line"
    config = folder / "hardened.conf"
    config.write_text(text)
    return config


@dataclass
class Nginx:
    """One nginx master in the foreground, its prefix the folder of its configuration."""

    config: Path
    port: int
    scheme: str
    process: subprocess.Popen[bytes] = field(repr=False)

    @property
    def prefix(self) -> Path:
        """The ``-p`` prefix: logs/ and temp/ live here."""
        return self.config.parent

    @property
    def url(self) -> str:
        """Where clients POST JSON-RPC, e.g. ``https://127.0.0.1:8443/``."""
        return f"{self.scheme}://127.0.0.1:{self.port}/"

    @classmethod
    @contextmanager
    def start(cls, config: Path, *, timeout: float = 10.0) -> Iterator[Nginx]:
        """Run nginx on ``config`` until the block ends (then stop it, fast).

        Example: ``with Nginx.start(config) as proxy: ...``.
        """
        if not NGINX.exists():
            raise FileNotFoundError(NO_NGINX)
        text = config.read_text()
        match = re.search(r"^\s*listen 127\.0\.0\.1:(\d+)( ssl)?;", text, re.MULTILINE)
        if match is None:
            raise ValueError(f"{config} does not listen on 127.0.0.1:<port>")
        user = pwd.getpwuid(os.getuid()).pw_name
        with open(config.parent / "logs" / "stderr.log", "ab") as stderr:
            process = subprocess.Popen(
                [str(NGINX), "-p", f"{config.parent}/", "-c", str(config),
                 "-e", "logs/error.log", "-g", f"daemon off; user {user};"],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )  # fmt: skip
        proxy = cls(config, int(match.group(1)), "https" if match.group(2) else "http", process)
        try:
            proxy._wait_listening(timeout)
            yield proxy
        finally:
            proxy.stop()

    def _wait_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited at start: {self.errors()}")
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.02)
        raise TimeoutError(f"nginx did not listen on {self.port} within {timeout} s")

    def reload(self) -> None:
        """Re-read the configuration, certificates and CRL (``nginx -s reload``: SIGHUP).

        New workers take over at once; old ones finish their open requests. Callers
        that must see the new state poll for it.

        Example: ``ca.revoke(serial); proxy.reload()``.
        """
        self.process.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        """Stop nginx (SIGTERM: fast shutdown) and wait for it."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def errors(self) -> str:
        """The error log (and what nginx wrote before it opened it)."""
        logs = [self.prefix / "logs" / name for name in ("stderr.log", "error.log")]
        return "".join(log.read_text(errors="replace") for log in logs if log.exists())

    def refusals_reach(self, reason: str, count: int, *, timeout: float = 5.0) -> int:
        """Wait until ``reason`` was counted ``count`` times and return the count then.

        nginx logs a request after its answer left, so a client may read the log first.

        Example: ``assert proxy.refusals_reach("parse_error", before + 1) == before + 1``.
        """
        deadline = time.monotonic() + timeout
        while (seen := self.refusals()[reason]) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return seen

    def refusals(self) -> Counter[str]:
        """Refused requests so far by reason, from ``logs/refusals.log`` (hardened setup).

        The reason is what the allow-list or the error pages set (``method_not_allowed``,
        ``no_certificate``, ...), else ``status <code>``.

        Example: ``proxy.refusals()["method_not_allowed"]``.
        """
        log = self.prefix / "logs" / "refusals.log"
        counts: Counter[str] = Counter()
        if not log.exists():
            return counts
        for line in log.read_text().splitlines():
            match = _REFUSAL.search(line)
            if match is not None:
                counts[match.group(2) or f"status {match.group(1)}"] += 1
        return counts
