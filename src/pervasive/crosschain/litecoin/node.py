"""A real litecoind in regtest, started and stopped by pervasive (paper 003's data chain B_d).

Each :class:`LitecoinNode` owns a data directory, free RPC and P2P ports and fresh RPC
credentials: the password lives only in memory; the node's ``litecoin.conf`` holds an
``rpcauth`` line (salt and HMAC-SHA256, as Litecoin's ``share/rpcauth/rpcauth.py``
writes it), so neither the config file nor a log reveals it. ``start`` waits until RPC
answers and loads (or creates) the node's wallet; ``mine`` makes blocks to that wallet;
``fund`` mines past coinbase maturity (100 blocks) so the wallet can pay.

Example::

    node = LitecoinNode(datadir=tmp_path / "ltc")
    await node.start()
    await node.fund()                 # 101 blocks: 50 LTC spendable
    txid = await node.rpc.call("sendtoaddress", address, 1.0, wallet=node.wallet)
    await node.mine(1)
    await node.stop()
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import shutil
import signal
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from pervasive.crosschain.errors import LitecoinUnavailable
from pervasive.crosschain.litecoin.rpc import LitecoinRpc, LitecoinRpcError
from pervasive.errors import InvalidInput

__all__ = ["COINBASE_MATURITY", "LitecoinNode", "find_litecoind"]

COINBASE_MATURITY = 100
"""Blocks a coinbase output must wait before it can be spent (Litecoin's consensus rule)."""

_WARMING_UP = -28


def find_litecoind(explicit: Path | None = None) -> Path:
    """Locate the ``litecoind`` binary: ``explicit``, then ``PATH``.

    Example::

        binary = find_litecoind()      # /usr/bin/litecoind on Debian
    """
    if explicit is not None:
        if explicit.is_file():
            return explicit
        raise LitecoinUnavailable(f"litecoind not found at {explicit}; fix the path")
    found = shutil.which("litecoind")
    if found is None:
        raise LitecoinUnavailable(
            "litecoind is not installed: `apt-get install litecoind` (Debian bookworm) "
            "or put it on PATH"
        )
    return Path(found)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rpcauth(user: str, password: str) -> str:
    salt = secrets.token_hex(16)
    digest = hmac.new(salt.encode(), password.encode(), hashlib.sha256).hexdigest()
    return f"{user}:{salt}${digest}"


@dataclass
class LitecoinNode:
    """One regtest litecoind process with its own wallet.

    Example::

        node = LitecoinNode(datadir=home / "litecoin")
        await node.start()
        print(await node.rpc.call("getblockcount"))
    """

    datadir: Path
    binary: Path | None = None
    rpc_port: int = 0
    p2p_port: int = 0
    wallet: str = "pervasive"
    rpc_user: str = "pervasive"
    rpc_password: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _rpc: LitecoinRpc | None = field(default=None, init=False, repr=False)
    _address: str | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        """The node's JSON-RPC endpoint."""
        return f"http://127.0.0.1:{self.rpc_port}"

    @property
    def p2p_address(self) -> str:
        """``host:port`` another node can ``addnode``."""
        return f"127.0.0.1:{self.p2p_port}"

    @property
    def rpc(self) -> LitecoinRpc:
        """The RPC client of the running node."""
        if self._rpc is None:
            raise LitecoinUnavailable("the litecoin node is not started; await node.start()")
        return self._rpc

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._process is not None and self._process.poll() is None

    def _write_config(self) -> None:
        self.datadir.mkdir(parents=True, exist_ok=True)
        # Options under [regtest] because litecoind ignores network-specific ones elsewhere.
        lines = [
            "regtest=1",
            "server=1",
            "[regtest]",
            f"rpcport={self.rpc_port}",
            f"port={self.p2p_port}",
            "rpcbind=127.0.0.1",
            "rpcallowip=127.0.0.1",
            "bind=127.0.0.1",
            f"rpcauth={_rpcauth(self.rpc_user, self.rpc_password)}",
            "txindex=1",  # prove_inclusion looks a transaction's block up by id
            "fallbackfee=0.0002",
            "dbcache=4",
            "dnsseed=0",
            "discover=0",
            "upnp=0",
            "listenonion=0",
            "printtoconsole=0",
        ]
        (self.datadir / "litecoin.conf").write_text("\n".join(lines) + "\n")

    async def start(self, *, timeout: float = 30.0) -> None:
        """Start litecoind, wait until RPC answers, and load or create the wallet."""
        if self.running:
            return
        binary = find_litecoind(self.binary)
        self.rpc_port = self.rpc_port or _free_port()
        self.p2p_port = self.p2p_port or _free_port()
        self._write_config()
        # A file, not a pipe: an unread pipe would block the node once it filled up.
        with open(self.datadir / "stderr.log", "ab") as stderr:
            process = subprocess.Popen(
                [str(binary), f"-datadir={self.datadir}"],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,
            )
        self._process = process
        self._rpc = rpc = LitecoinRpc(self.url, self.rpc_user, self.rpc_password)
        try:
            await self._wait_for_rpc(process, rpc, timeout)
            await self._open_wallet()
        except BaseException:
            # Not through RPC: the node may not answer it, and must not outlive us.
            process.terminate()
            await asyncio.to_thread(process.wait)
            await self._forget()
            raise

    async def _wait_for_rpc(
        self, process: subprocess.Popen[bytes], rpc: LitecoinRpc, timeout: float
    ) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            if process.poll() is not None:
                code = process.returncode
                stderr = (self.datadir / "stderr.log").read_text(errors="replace")
                raise LitecoinUnavailable(
                    f"litecoind exited with code {code} at start: "
                    f"{stderr.strip()[:200] or 'see debug.log'} (datadir {self.datadir})"
                )
            try:
                await rpc.call("getblockcount")
                break
            except LitecoinUnavailable:
                pass
            except LitecoinRpcError as error:
                if error.code != _WARMING_UP:
                    raise
            if asyncio.get_running_loop().time() > deadline:
                raise LitecoinUnavailable(
                    f"litecoind did not answer on port {self.rpc_port} within {timeout}s"
                )
            await asyncio.sleep(0.05)

    async def _open_wallet(self) -> None:
        if self.wallet in await self.rpc.call("listwallets"):
            return
        try:
            await self.rpc.call("loadwallet", self.wallet)
        except LitecoinRpcError:
            await self.rpc.call("createwallet", self.wallet)

    async def address(self) -> str:
        """An address of the node's wallet (the same one each call: mining pays to it)."""
        if self._address is None:
            self._address = str(await self.rpc.call("getnewaddress", wallet=self.wallet))
        return self._address

    async def mine(self, blocks: int = 1) -> list[str]:
        """Mine ``blocks`` blocks paying the wallet; returns their hashes.

        Example::

            [block_hash] = await node.mine(1)
        """
        if blocks < 1:
            raise InvalidInput(f"cannot mine {blocks} blocks; ask for at least 1")
        hashes = await self.rpc.call("generatetoaddress", blocks, await self.address())
        return [str(block_hash) for block_hash in hashes]

    async def fund(self) -> None:
        """Mine until the wallet has a mature coinbase to spend (no-op once it has)."""
        balance = await self.rpc.call("getbalance", wallet=self.wallet)
        if balance <= 0:
            await self.mine(COINBASE_MATURITY + 1)

    async def connect(self, other: LitecoinNode) -> None:
        """Open a P2P connection to ``other`` and wait until both see it."""
        await self.rpc.call("addnode", other.p2p_address, "onetry")
        for _ in range(100):
            if await self.rpc.call("getconnectioncount") > 0:
                return
            await asyncio.sleep(0.05)
        raise LitecoinUnavailable(f"could not connect to the litecoin node at {other.p2p_address}")

    async def stop(self, *, timeout: float = 15.0) -> None:
        """Stop litecoind through RPC (it flushes its wallet and chain), then force if needed."""
        process = self._process
        if process is not None and process.poll() is None:
            try:
                await self.rpc.call("stop")
            except (LitecoinUnavailable, LitecoinRpcError):
                process.send_signal(signal.SIGTERM)
            if self._rpc is not None:
                # litecoind's shutdown waits for open keep-alive connections to go
                await self._rpc.close()
                self._rpc = None
            try:
                await asyncio.wait_for(asyncio.to_thread(process.wait), timeout)
            except TimeoutError:
                process.kill()
                await asyncio.to_thread(process.wait)
        await self._forget()

    async def _forget(self) -> None:
        self._process = None
        self._address = None
        if self._rpc is not None:
            await self._rpc.close()
            self._rpc = None
