"""deploy/nginx/paper.conf, paper 004's reverse proxy (4.6, 5.5.2), run by Debian's nginx.

nginx asks for the basic-auth password, refuses GET and proxy_passes the device's
JSON-RPC to anvil. It forwards every method: a device that knows the password may
also rewrite balances (``anvil_setBalance``), which is why hardened.conf exists.

Example: ``pytest tests/integration/nginx/test_nginx_paper.py -q``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from web3 import HTTPProvider, Web3

from nginx_proxy import Nginx, free_port, paper_config
from pervasive.chain import Ledger

pytestmark = [
    pytest.mark.nginx,
    pytest.mark.anvil,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.xdist_group("nginx-paper"),
]

USER, PASSWORD = "door-1", "correct horse battery staple"
CHAIN_ID = {"jsonrpc": "2.0", "id": 7, "method": "eth_chainId", "params": []}


@pytest.fixture(scope="module")
def proxy(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    folder: Path = tmp_path_factory.mktemp("nginx-paper")
    config = paper_config(folder, upstream=upstream, port=free_port(), users={USER: PASSWORD})
    with Nginx.start(config) as running:
        yield running


@pytest.mark.parametrize("auth", [None, (USER, "wrong"), ("door-2", PASSWORD)])
async def test_no_or_wrong_credentials_get_401(proxy: Nginx, auth: tuple[str, str] | None) -> None:
    answer = requests.post(proxy.url, json=CHAIN_ID, auth=auth, timeout=10)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == 'Basic realm="pervasive JSON-RPC"'


async def test_the_right_password_reaches_the_node(proxy: Nginx, node: Ledger) -> None:
    answer = requests.post(proxy.url, json=CHAIN_ID, auth=(USER, PASSWORD), timeout=10)
    assert answer.status_code == 200
    assert answer.json() == {"jsonrpc": "2.0", "id": 7, "result": hex(node.chain_id)}


@pytest.mark.parametrize("auth", [None, (USER, PASSWORD)])
async def test_get_is_refused(proxy: Nginx, auth: tuple[str, str] | None) -> None:
    # limit_except POST denies before the password is asked
    assert requests.get(proxy.url, auth=auth, timeout=10).status_code == 403


async def test_web3_works_through_it(proxy: Nginx, node: Ledger) -> None:
    web3 = Web3(HTTPProvider(proxy.url, request_kwargs={"auth": (USER, PASSWORD), "timeout": 10}))
    assert web3.eth.chain_id == node.chain_id
    assert web3.eth.block_number == await node.block_number()


async def test_it_forwards_every_method_to_whoever_has_the_password(proxy: Nginx) -> None:
    # the weakness hardened.conf removes: one shared password opens the node's whole API
    web3 = Web3(HTTPProvider(proxy.url, request_kwargs={"auth": (USER, PASSWORD), "timeout": 10}))
    target = "0x" + "42" * 20
    web3.provider.make_request("anvil_setBalance", [target, hex(10**21)])  # type: ignore[arg-type]
    assert web3.eth.get_balance(Web3.to_checksum_address(target)) == 10**21
