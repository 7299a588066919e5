"""A real anvil node, started and stopped by the platform.

The binary comes from the npm package ``@foundry-rs/anvil`` (installed into the
repository's ``node_modules`` by ``./dev setup``). Chain state is written to the data
directory every second and on exit, and loaded on start, so a restarted node keeps
its chain.
"""

from __future__ import annotations

import asyncio
import os
import platform
import shutil
import signal
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from pervasive.chain.hardfork import HARDFORK
from pervasive.errors import ChainUnavailable

__all__ = ["ANVIL_MNEMONIC", "AnvilNode", "find_anvil"]

ANVIL_MNEMONIC = "test test test test test test test test test test test junk"
"""anvil's default development mnemonic: its accounts are funded at genesis."""

_PLATFORM_PACKAGES = {
    ("Linux", "x86_64"): "anvil-linux-amd64",
    ("Linux", "aarch64"): "anvil-linux-arm64",
    ("Darwin", "arm64"): "anvil-darwin-arm64",
    ("Darwin", "x86_64"): "anvil-darwin-amd64",
}


def find_anvil(explicit: Path | None = None, *, start: Path | None = None) -> Path:
    """Locate the anvil binary: ``explicit``, then ``node_modules`` above ``start``, then PATH.

    We run the platform binary itself, not npm's ``bin.mjs`` wrapper, so that stopping
    the process stops the node.
    """
    if explicit is not None:
        if explicit.is_file():
            return explicit
        raise ChainUnavailable(f"anvil not found at {explicit}; fix --anvil-path")
    package = _PLATFORM_PACKAGES.get((platform.system(), platform.machine()))
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if package:
            candidate = folder / "node_modules" / "@foundry-rs" / package / "bin" / "anvil"
            if candidate.is_file():
                return candidate
    on_path = shutil.which("anvil")
    if on_path:
        return Path(on_path)
    raise ChainUnavailable(
        "the anvil node is not installed: run `./dev setup` (npm install @foundry-rs/anvil) "
        "or set PERVASIVE_ANVIL_PATH"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class AnvilNode:
    """One anvil process. ``await node.start()``; ``await node.stop()`` (state is saved).

    Example::

        node = AnvilNode(binary=find_anvil(), state_file=home / "chain" / "anvil.json")
        await node.start()
        print(node.url)
    """

    binary: Path
    state_file: Path | None = None
    port: int = 0
    block_time: float | None = None
    chain_id: int = 31337
    log_file: Path | None = None
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        """The node's HTTP JSON-RPC endpoint."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._process is not None and self._process.poll() is None

    def _command(self) -> list[str]:
        command = [
            str(self.binary),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--chain-id", str(self.chain_id),
            "--mnemonic", ANVIL_MNEMONIC,
            "--accounts", "10",
            # pinned: anvil's default moves ahead of the fork we compile for
            "--hardfork", HARDFORK,
        ]  # fmt: skip
        if self.block_time:
            command += ["--block-time", str(self.block_time)]
        if self.state_file is not None:
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            command += ["--state", str(self.state_file), "--state-interval", "1"]
        return command

    async def start(self, *, timeout: float = 30.0) -> None:
        """Start the node and wait until it answers JSON-RPC."""
        if self.running:
            return
        if self.port == 0:
            self.port = _free_port()
        log = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115
        try:
            self._process = subprocess.Popen(
                self._command(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        finally:
            if self.log_file:
                log.close()  # type: ignore[union-attr]
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            if self._process.poll() is not None:
                raise ChainUnavailable(
                    f"anvil exited with code {self._process.returncode} at start; "
                    f"see {self.log_file or 'its output'}"
                )
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            await writer.wait_closed()
            return
        await self.stop()
        raise ChainUnavailable(f"anvil did not answer on port {self.port} within {timeout}s")

    async def stop(self, *, timeout: float = 10.0) -> None:
        """Stop the node gracefully (SIGTERM: anvil saves its state), then force if needed."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.to_thread(process.wait), timeout)
        except TimeoutError:
            process.kill()
            await asyncio.to_thread(process.wait)

    def kill(self) -> None:
        """Kill the node at once, as a crash would (fault tests)."""
        if self._process is not None and self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()
        self._process = None
