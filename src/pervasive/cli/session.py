"""What every command shares: the global flags, the settings, a ledger session, the signer.

This is the CLI's composition root. The global options become one
:class:`~pervasive.config.Settings` (through :func:`~pervasive.config.load_settings`,
so file < environment < flags); a command's coroutine runs under ``asyncio.run``
(:func:`run`) and opens the ledger and the deployment book through :func:`session`.

The data directory is checked before any command touches it: ``--home`` naming a file
is refused, and so is a missing one for the commands of :data:`READ_ONLY_COMMANDS`
(they only show state, so a missing directory is a mistyped ``--home``, not a fresh
start); every other command creates it.

Example::

    state = state_of(ctx)
    async with session(state) as s:
        print(await s.ledger.block_number())
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.console import Console

from pervasive.config import Settings, load_settings
from pervasive.errors import ConfigError, InvalidInput, KeystoreError
from pervasive.platform import Platform

if TYPE_CHECKING:  # the chain stack loads in about two seconds: only when a command needs it
    from pervasive.chain import Keystore, Ledger, Signer
    from pervasive.contracts import DeploymentBook, Registry
    from pervasive.pki import CertificateAuthority

__all__ = [
    "READ_ONLY_COMMANDS",
    "CliState",
    "Session",
    "demo_platform",
    "run",
    "run_until_stopped",
    "session",
    "state_of",
]

T = TypeVar("T")

READ_ONLY_COMMANDS = frozenset(
    {
        "status",
        "account list",
        "chain info",
        "registry user list",
        "registry user show",
        "registry sensor list",
        "registry sensor show",
        "registry node list",
        "registry node show",
        "device list",
        "notary status",
        "gateway roles",
        "service show",
        "service list",
        "oracle status",
        "shadow get",
    }
)
"""Commands that only show what the data directory holds: refused when it is missing."""


@dataclass
class CliState:
    """The global options of one invocation; settings are loaded on first use."""

    flags: dict[str, Any]
    config_file: Path | None = None
    command: str = ""
    """The sub-command being run, e.g. ``"chain info"`` (set by :func:`state_of`)."""
    _settings: Settings | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        """The settings of this invocation (file, env, flags), its data directory checked."""
        if self._settings is None:
            settings = load_settings(self.flags, config_file=self.config_file)
            _check_home(settings.home, reads_only=self.command in READ_ONLY_COMMANDS)
            self._settings = settings
        return self._settings

    @property
    def console(self) -> Console:
        """Where results are printed."""
        return Console()

    def keystore(self) -> Keystore:
        """The keystore in the data directory."""
        from pervasive.chain import Keystore

        return Keystore(self.settings.path("keystore"))

    def platform(self) -> Platform:
        """A :class:`Platform` of these settings; the CA password is asked when needed.

        Example: ``async with state.platform() as platform: await platform.broker()``.
        """
        return Platform(self.settings, password=self.password)

    def authority(self) -> CertificateAuthority:
        """The platform CA in ``<home>/pki`` (created on first use); the caller closes it."""
        from pervasive.pki import CertificateAuthority

        return CertificateAuthority.open(self.settings.path("pki", "ca.cert.pem").parent,
                                         self.password())  # fmt: skip

    def password(self, *, confirm: bool = False) -> str:
        """The keystore password: ``PERVASIVE_PASSWORD`` (or the config), else a hidden prompt.

        Without a terminal on stdin (a script, a service) there is no prompt: a
        :class:`KeystoreError` says how to give the password (not click's "Aborted.").
        """
        if self.settings.password:
            return self.settings.password
        if sys.stdin is None or not sys.stdin.isatty():
            # a hidden prompt would read a pipe with echo warnings, or end in "Aborted."
            raise KeystoreError(_NO_TERMINAL)
        answer: str = typer.prompt(
            "Keystore password", hide_input=True, confirmation_prompt=confirm
        )
        return answer


_NO_TERMINAL = (
    "this command needs the keystore password and there is no terminal to ask it at: "
    'set PERVASIVE_PASSWORD (or password = "..." in pervasive.toml)'
)


def _check_home(home: Path, *, reads_only: bool) -> None:
    """Refuse a ``--home`` that is a file, or missing for a command that only reads."""
    if home.exists() and not home.is_dir():
        raise ConfigError(
            f"the data directory {home} is a file, not a directory: pass --home with a "
            "directory (or move the file away)"
        )
    if reads_only and not home.exists():
        raise ConfigError(
            f"no data directory at {home}: pass --home with the one your other commands "
            "used, or create it first (`pervasive up`, `pervasive account create`, ...)"
        )


def state_of(ctx: typer.Context) -> CliState:
    """The :class:`CliState` the root callback stored in the click context.

    Records which sub-command runs (``ctx``'s path below the root), which decides
    whether a missing data directory is refused.
    """
    root = ctx.find_root()
    if not isinstance(root.obj, CliState):
        root.obj = CliState(flags={})
    if ctx is not root:
        root.obj.command = " ".join(ctx.command_path.split()[1:])
    return root.obj


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine: the one place the CLI enters asyncio."""
    return asyncio.run(coroutine)


def run_until_stopped(
    coroutine: Coroutine[Any, Any, None],
    *,
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
) -> None:
    """Run a long-lived command until it ends or Ctrl-C / SIGTERM stops it cleanly.

    Either signal cancels the coroutine, so its ``finally`` and ``async with`` blocks
    run (a broker stops its mosquitto child, a store closes) whatever signal
    disposition the process inherited (a background job ignores SIGINT).
    ``loop_factory`` picks the event loop (the gateway's: uvloop where installed).

    Example: ``run_until_stopped(serve(broker))``.
    """

    async def main() -> None:
        task = asyncio.ensure_future(coroutine)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait([task, stopping], return_when=asyncio.FIRST_COMPLETED)
        while not task.done():
            # cancel until it takes: Python 3.11's wait_for (inside the MQTT client's
            # publish) can swallow one cancellation
            task.cancel()
            await asyncio.wait([task], timeout=0.2)
        stopping.cancel()
        if not task.cancelled():
            task.result()

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(main())


@dataclass
class Session:
    """An open platform (its ledger opened) plus the deployment book of the data directory."""

    state: CliState
    platform: Platform
    ledger: Ledger
    book: DeploymentBook

    @property
    def artifacts(self) -> Path:
        """The folder of cached compiled contracts."""
        return self.state.settings.path("artifacts")

    def signer(self, account: str | None, dev_account: int | None) -> Signer:
        """The signer named by ``--account`` (keystore) or ``--dev-account`` (embedded/anvil).

        Without either, development account 0 on the embedded and anvil backends.
        """
        if account is not None and dev_account is not None:
            raise InvalidInput("give either --account or --dev-account, not both")
        if account is not None:
            return self.state.keystore().load(account, self.state.password())
        if dev_account is not None and not 0 <= dev_account < 10:
            raise InvalidInput(f"--dev-account is 0-9, got {dev_account}")
        return self.ledger.dev_signer(dev_account or 0)

    async def registry(self, signer: Signer | None = None) -> Registry:
        """The registry on this chain: deployed by ``signer`` when missing, else found."""
        from pervasive.contracts import Registry

        if signer is None:
            return await Registry.find(self.ledger, self.book, artifacts=self.artifacts)
        return await Registry.open(self.ledger, signer, artifacts=self.artifacts, book=self.book)


@asynccontextmanager
async def session(state: CliState) -> AsyncIterator[Session]:
    """Open a :class:`Platform` with its ledger, and the deployment book; close all afterwards.

    Other parts (the CA, a broker) are built through ``s.platform`` when a command
    needs them, and stop with the session.

    Example::

        async with session(state) as s:
            registry = await s.registry(s.signer(None, 0))
    """
    async with state.platform() as platform:
        ledger = await platform.ledger()
        yield Session(state, platform, ledger, platform.deployments())


def demo_platform(state: CliState, folder: str, password: str) -> tuple[Platform, Path]:
    """The platform a demo runs on: a throw-away chain, its own CA under ``<home>/<folder>``.

    The broker is the embedded one unless ``--broker`` chose (a demo must run on a fresh
    machine); amqtt's connection chatter is silenced. Returns the platform and the folder.

    Example: ``platform, root = demo_platform(state_of(ctx), "logistics", password)``.
    """
    import logging
    from dataclasses import replace

    logging.getLogger("amqtt").setLevel(logging.CRITICAL)
    settings = state.settings
    if settings.broker == "auto":
        settings = replace(settings, broker="embedded")
    root = settings.path(folder)
    return Platform(settings, password=password, persist=False, pki=root / "pki"), root
