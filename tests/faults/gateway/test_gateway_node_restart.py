"""The node behind the gateway dies and comes back: errors meanwhile, then service again.

A real anvil on a fixed port is stopped (SIGTERM) and killed (SIGKILL) under a running
gateway; devices keep their TLS connections to the gateway throughout. While the node
is away every call gets a JSON-RPC error naming the node (HTTP 502, counted), never a
hang or a traceback; once it is back the same connections are served again.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from pervasive.chain import AnvilNode, Ledger, find_anvil, open_ledger
from pervasive.config import GatewaySettings, Settings
from pervasive.errors import ChainUnavailable
from pervasive.gateway import Gateway, Role, RoleBook, open_gateway_ledger, roles_file
from pervasive.messaging.tls import ClientCredentials
from pervasive.pki import CertificateAuthority

pytestmark = [pytest.mark.anvil]


@dataclass
class Stack:
    node: AnvilNode
    ledger: Ledger
    gateway: Gateway
    device: ClientCredentials
    settings: Settings


@pytest_asyncio.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    node = AnvilNode(binary=find_anvil())
    await node.start()
    settings = Settings(home=tmp_path / "home", backend="rpc", rpc_url=node.url)
    ledger = await open_ledger(settings)
    ca = CertificateAuthority.open(settings.home / "pki", "pw")
    roles = RoleBook.open(roles_file(settings.home))
    roles.assign("door-1", Role.READER)
    device = ca.client_credentials("door-1", settings.home / "devices")
    gateway = await Gateway.start(ledger, ca, GatewaySettings(), roles=roles)
    try:
        yield Stack(node, ledger, gateway, device, settings)
    finally:
        await gateway.close()
        await ledger.close()
        ca.close()
        await node.stop()


async def ask(client: aiohttp.ClientSession, url: str, batch: bool = False) -> tuple[int, object]:
    call = {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}
    body = [call, {**call, "id": 2, "method": "eth_chainId"}] if batch else call
    async with client.post(url, data=json.dumps(body).encode()) as answer:
        return answer.status, json.loads(await answer.read())


@pytest.mark.parametrize("how", ["stop", "kill"])
async def test_errors_while_the_node_is_away_then_recovery(stack: Stack, how: str) -> None:
    connector = aiohttp.TCPConnector(ssl=stack.device.ssl_context(), limit=1)
    async with aiohttp.ClientSession(connector=connector) as client:
        status, answer = await ask(client, stack.gateway.url)
        assert status == 200 and "result" in answer  # type: ignore[operator]

        if how == "kill":
            stack.node.kill()
        else:
            await stack.node.stop()
        for batch in (False, True, False):
            status, answer = await asyncio.wait_for(ask(client, stack.gateway.url, batch), 10)
            assert status == 502
            answers = answer if isinstance(answer, list) else [answer]
            for item in answers:
                assert item["error"]["code"] == -32000
                assert f"the node at {stack.node.url}" in item["error"]["message"]
                assert "cannot be reached" in item["error"]["message"]
        assert stack.gateway.counters["node_unreachable"] >= 4

        await stack.node.start()  # same port
        status, answer = await ask(client, stack.gateway.url)
        assert status == 200 and int(answer["result"], 16) >= 0  # type: ignore[index]
        status, answer = await ask(client, stack.gateway.url, batch=True)
        assert status == 200 and [a["id"] for a in answer] == [1, 2]  # type: ignore[union-attr]


async def test_a_device_ledger_sees_the_node_unavailable_then_works_again(stack: Stack) -> None:
    device = await open_gateway_ledger(stack.gateway.url, stack.device, stack.settings)
    try:
        assert await device.block_number() >= 0
        stack.node.kill()
        with pytest.raises(ChainUnavailable, match="cannot be reached"):
            await asyncio.wait_for(device.block_number(), 20)
        await stack.node.start()
        assert await device.block_number() >= 0
    finally:
        await device.close()
