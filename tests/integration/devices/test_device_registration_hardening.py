"""Issue 11 item 3: ``device register`` checks the id first, and is atomic.

A bad id is refused before anything is written (the old code wrote a key file outside
the data directory first). A registration that the chain interrupts leaves no
certificate behind, and the same command then resumes: against a real anvil node
reached through a relay the test breaks, once before anything is sent and once right
after the sensor's transaction reached the node but its answer was lost.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from pervasive.chain import AnvilNode, Keystore, Signer, anvil_dev_keys, find_anvil
from pervasive.cli import device as device_cli
from pervasive.cli.app import app
from pervasive.devices import DeviceFolder
from pervasive.pki import CertificateAuthority

PASSWORD = "pw"


def invoke(home: Path, *args: str) -> Result:
    return CliRunner().invoke(
        app, ["--home", str(home), *args], env={"PERVASIVE_PASSWORD": PASSWORD, "COLUMNS": "400"}
    )


@pytest.mark.parametrize(
    "device_id",
    ["../../../x/evil", "{absolute}", "a.b", "..", "svc:shadow", "lock 7", "x" * 129, ""],
)
def test_a_bad_device_id_is_refused_before_anything_is_written(
    tmp_path: Path, device_id: str
) -> None:
    home = tmp_path / "a" / "b" / "home"
    device_id = device_id.format(absolute=tmp_path / "elsewhere" / "evil")
    before = device_cli.refusals["device_id"]

    result = invoke(home, "device", "register", device_id, "--dev-account", "1")

    assert list(tmp_path.rglob("*")) == []  # no key file, no CA, not even the data directory
    assert result.exit_code == 1, result.output
    assert result.output.startswith("error: device id ") and result.output.count("\n") == 1
    assert "is invalid: use 1-128 letters, digits, '_' or '-'" in result.output
    assert device_cli.refusals["device_id"] == before + 1


def test_a_bad_sensor_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    home = tmp_path / "home"
    before = device_cli.refusals["sensor"]
    result = invoke(home, "device", "register", "lock-1", "--sensor", "../key")
    assert result.exit_code == 1 and "sensor name '../key' is invalid" in result.output
    assert device_cli.refusals["sensor"] == before + 1
    assert list(tmp_path.rglob("*")) == []


class _Handler(BaseHTTPRequestHandler):
    server: Relay

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = urllib.request.Request(
            self.server.upstream, body, {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = response.read()
        if self.server.cut_after_send and b"eth_sendRawTransaction" in body:
            self.server.sent.append(json.loads(answer))
            self.server.break_off()  # the node has the transaction; its answer is lost
            self.close_connection = True
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: object) -> None:
        pass


class Relay(ThreadingHTTPServer):
    """Forwards JSON-RPC to anvil; with ``cut_after_send`` it forwards the next
    transaction, drops the answer and stops listening (the node is then unreachable)."""

    daemon_threads = True

    def __init__(self, port: int, upstream: str, *, cut_after_send: bool = False) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.upstream = upstream
        self.cut_after_send = cut_after_send
        self.sent: list[object] = []
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()

    def break_off(self) -> None:
        self.socket.close()  # new connections are refused from now on

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class World:
    """A data directory on the rpc backend, pointed at a relay port; anvil behind it."""

    node: AnvilNode
    home: Path
    port: int

    def register(self, device_id: str) -> Result:
        return invoke(
            self.home, "--backend", "rpc", "--rpc-url", f"http://127.0.0.1:{self.port}",
            "device", "register", device_id, "--account", "owner",
        )  # fmt: skip

    def active(self, device_id: str) -> bool:
        ca = CertificateAuthority.open(self.home / "pki", PASSWORD)
        try:
            return device_id in ca.active_identities()
        finally:
            ca.close()


@pytest.fixture
def world(tmp_path: Path, artifacts: Path) -> Iterator[World]:
    node = AnvilNode(binary=find_anvil())
    asyncio.run(node.start())
    home = tmp_path / "home"
    (home / "artifacts").mkdir(parents=True)
    for artifact in artifacts.iterdir():
        (home / "artifacts" / artifact.name).write_bytes(artifact.read_bytes())
    keystore = Keystore(home / "keystore", kdf_iterations=2**4)
    keystore.store("owner", Signer.from_key(anvil_dev_keys()[1]), PASSWORD)
    try:
        yield World(node, home, _free_port())
    finally:
        asyncio.run(node.stop())


@pytest.mark.anvil
@pytest.mark.slow
def test_an_unreachable_chain_issues_nothing_and_the_retry_registers(world: World) -> None:
    before = device_cli.refusals["chain"]
    failed = world.register("lock-1")  # nothing listens on the relay port yet
    assert failed.exit_code == 1, failed.output
    assert not world.active("lock-1")  # the old code left an admitted certificate here
    assert not (world.home / "devices" / "lock-1").exists()
    assert failed.output.startswith("error: lock-1 is not registered, no certificate was issued")
    assert "run the same command again" in failed.output and failed.output.count("\n") == 1
    assert device_cli.refusals["chain"] == before + 1

    relay = Relay(world.port, world.node.url)
    try:
        done = world.register("lock-1")
    finally:
        relay.stop()
    assert done.exit_code == 0, done.output
    assert "registered device lock-1: certificate " in done.output
    assert world.active("lock-1")
    assert DeviceFolder(world.home / "devices" / "lock-1").credentials().key_file.is_file()


@pytest.mark.anvil
@pytest.mark.slow
def test_a_chain_lost_after_the_transaction_resumes_without_a_second_declaration(
    world: World,
) -> None:
    relay = Relay(world.port, world.node.url)  # deploys the registry through a good relay
    try:
        assert world.register("lock-0").exit_code == 0
    finally:
        relay.stop()

    relay = Relay(world.port, world.node.url, cut_after_send=True)
    try:
        failed = world.register("lock-1")
    finally:
        relay.stop()
    assert failed.exit_code == 1, failed.output
    assert len(relay.sent) == 1  # the declaration reached the node
    assert not world.active("lock-1")
    assert failed.output.startswith("error: lock-1 is not registered, no certificate was issued")
    folder = DeviceFolder(world.home / "devices" / "lock-1", password=PASSWORD)
    key = folder.signing_key("location", create=False)  # kept, sealed, for the retry

    relay = Relay(world.port, world.node.url)
    try:
        done = world.register("lock-1")
        listed = invoke(
            world.home, "--backend", "rpc", "--rpc-url", f"http://127.0.0.1:{world.port}",
            "registry", "sensor", "list",
        )  # fmt: skip
    finally:
        relay.stop()
    assert done.exit_code == 0, done.output
    assert "(already on-chain)" in done.output and f"signs as {key.address}" in done.output
    assert world.active("lock-1") and folder.credentials().cert_file.is_file()
    assert listed.output.count("lock-1.location") == 1
