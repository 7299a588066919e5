"""deploy/nginx/hardened.conf run by Debian's nginx in front of anvil.

Mutual TLS with the platform CA and its CRL decides who may talk; the njs allow-list
(jsonrpc_allow.js) decides which JSON-RPC methods reach the node, for single calls and
batches. Every refusal is a JSON-RPC error saying what to do, and is counted by reason
in nginx's refusal log.

Example: ``pytest tests/integration/nginx/test_nginx_hardened.py -q``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from web3 import HTTPProvider, Web3

from nginx_proxy import Nginx, free_port, hardened_config
from pervasive.chain import Ledger
from pervasive.messaging import ClientCredentials
from pervasive.pki import CertificateAuthority

pytestmark = [
    pytest.mark.nginx,
    pytest.mark.anvil,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.xdist_group("nginx-hardened"),
]

RICH = "0x" + "42" * 20


def call(method: str, *params: Any, id: int = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id, "method": method, "params": list(params)}


def tls(creds: ClientCredentials) -> dict[str, Any]:
    """requests' arguments for a device presenting ``creds``."""
    return {
        "verify": str(creds.ca_file),
        "cert": (str(creds.cert_file), str(creds.key_file)),
        "timeout": 10,
    }


@pytest.fixture(scope="module")
def proxy(
    upstream: str, authority: CertificateAuthority, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Nginx]:
    folder: Path = tmp_path_factory.mktemp("nginx-hardened")
    config = hardened_config(folder, upstream=upstream, port=free_port(), authority=authority)
    with Nginx.start(config) as running:
        yield running


def settled(proxy: Nginx, creds: ClientCredentials, status: int) -> requests.Response:
    """Call until the answer has ``status`` (new workers took over after a reload) or 10 s."""
    deadline = time.monotonic() + 10
    while True:
        answer = requests.post(proxy.url, json=call("eth_chainId"), **tls(creds))
        if answer.status_code == status or time.monotonic() > deadline:
            return answer
        time.sleep(0.05)


def refused(proxy: Nginx, body: object, creds: ClientCredentials, status: int) -> Any:
    """POST ``body``; check the status and the JSON content type; return the answer."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    answer = requests.post(
        proxy.url, data=data, headers={"Content-Type": "application/json"}, **tls(creds)
    )
    assert answer.status_code == status, answer.text
    assert answer.headers["Content-Type"] == "application/json"
    return answer.json()


async def test_an_allowed_method_reaches_the_node(
    proxy: Nginx, node: Ledger, door: ClientCredentials
) -> None:
    answer = requests.post(proxy.url, json=call("eth_chainId", id=3), **tls(door))
    assert answer.status_code == 200
    assert answer.json() == {"jsonrpc": "2.0", "id": 3, "result": hex(node.chain_id)}


async def test_an_allowed_batch_reaches_the_node(
    proxy: Nginx, node: Ledger, door: ClientCredentials
) -> None:
    batch = [call("eth_chainId", id=1), call("eth_blockNumber", id=2)]
    answer = requests.post(proxy.url, json=batch, **tls(door))
    assert answer.status_code == 200
    results = {item["id"]: item["result"] for item in answer.json()}
    assert results == {1: hex(node.chain_id), 2: hex(await node.block_number())}


async def test_without_a_client_certificate_nothing_passes(
    proxy: Nginx, door: ClientCredentials
) -> None:
    before = proxy.refusals()["no_certificate"]
    answer = requests.post(
        proxy.url, json=call("eth_chainId"), verify=str(door.ca_file), timeout=10
    )
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == -32001
    assert answer.json()["error"]["message"].startswith("no client certificate:")
    assert proxy.refusals_reach("no_certificate", before + 1) == before + 1


async def test_a_certificate_from_another_ca_is_refused(
    proxy: Nginx, door: ClientCredentials, stranger: ClientCredentials
) -> None:
    before = proxy.refusals()["certificate_refused"]
    foreign = {**tls(stranger), "verify": str(door.ca_file)}
    answer = requests.post(proxy.url, json=call("eth_chainId"), **foreign)
    assert answer.status_code == 403
    assert answer.json()["error"]["message"].startswith("client certificate refused")
    assert proxy.refusals_reach("certificate_refused", before + 1) == before + 1


async def test_a_method_off_the_list_is_a_403_json_rpc_error(
    proxy: Nginx, door: ClientCredentials
) -> None:
    before = proxy.refusals()["method_not_allowed"]
    sending = call("eth_sendTransaction", {"from": RICH, "to": RICH, "value": "0x1"}, id=9)
    answer = refused(proxy, sending, door, 403)
    assert answer["id"] == 9
    assert answer["error"]["code"] == -32003
    assert answer["error"]["message"].startswith("method eth_sendTransaction is not allowed")
    assert proxy.refusals_reach("method_not_allowed", before + 1) == before + 1


async def test_a_batch_holding_a_forbidden_call_is_refused_whole(
    proxy: Nginx, node: Ledger, door: ClientCredentials
) -> None:
    before = proxy.refusals()["method_not_allowed"]
    batch = [call("eth_chainId", id=1), call("anvil_setBalance", RICH, hex(10**21), id=2)]
    answers = {item["id"]: item["error"] for item in refused(proxy, batch, door, 403)}
    assert proxy.refusals_reach("method_not_allowed", before + 1) == before + 1
    assert answers[2]["code"] == -32003
    assert "anvil_setBalance is not allowed" in answers[2]["message"]
    assert answers[1]["message"].startswith("not run:")
    assert await node.balance(Web3.to_checksum_address(RICH)) == 0


@pytest.mark.parametrize(
    ("body", "status", "code", "reason"),
    [
        (b'{"jsonrpc": "2.0", "id": 1, "method": ', 400, -32700, "parse_error"),
        (b"", 400, -32700, "parse_error"),
        (b"[]", 400, -32600, "empty_batch"),
        (b"5", 400, -32600, "invalid_request"),
        (b'{"id": 1, "method": "eth_chainId"}', 400, -32600, "invalid_request"),
        (b'{"jsonrpc": "2.0", "id": 1, "method": 5}', 400, -32600, "invalid_request"),
        (json.dumps([call("eth_chainId", id=i) for i in range(101)]).encode(), 400, -32600,
         "batch_too_large"),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "pad": "'
         + b"x" * 300_000 + b'"}', 413, -32600, "too_large"),
    ],
    ids=["truncated", "empty", "empty-batch", "number", "no-version", "method-not-text",
         "batch-of-101", "over-256-KiB"],
)  # fmt: skip
async def test_bad_input_is_a_json_rpc_error_and_counted(
    proxy: Nginx, door: ClientCredentials, body: bytes, status: int, code: int, reason: str
) -> None:
    before = proxy.refusals()[reason]
    answer = refused(proxy, body, door, status)
    assert answer["error"]["code"] == code
    assert proxy.refusals_reach(reason, before + 1) == before + 1


async def test_get_and_other_paths_are_refused(proxy: Nginx, door: ClientCredentials) -> None:
    assert requests.get(proxy.url, **tls(door)).status_code == 405
    answer = requests.post(proxy.url + "admin", json=call("eth_chainId"), **tls(door))
    assert answer.status_code == 404


async def test_web3_works_through_it(proxy: Nginx, node: Ledger, door: ClientCredentials) -> None:
    # a refusal is final: web3's default retries of HTTP errors would only wait
    web3 = Web3(
        HTTPProvider(proxy.url, request_kwargs=tls(door), exception_retry_configuration=None)
    )
    assert web3.eth.chain_id == node.chain_id
    assert web3.eth.block_number == await node.block_number()
    assert web3.eth.call({"to": Web3.to_checksum_address(RICH), "data": "0x"}) == b""
    # web3.py raises on the 403 before it reads the JSON-RPC error in the body
    with pytest.raises(requests.HTTPError) as refusal:
        web3.eth.get_balance(Web3.to_checksum_address(RICH))
    assert refusal.value.response is not None
    error = refusal.value.response.json()["error"]
    assert error["message"].startswith("method eth_getBalance is not allowed here")


async def test_namespace_wildcards_of_the_allow_list(
    upstream: str,
    authority: CertificateAuthority,
    door: ClientCredentials,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    folder = tmp_path_factory.mktemp("nginx-wildcard")
    config = hardened_config(
        folder, upstream=upstream, port=free_port(), authority=authority, allow="net_*, eth_chainId"
    )
    with Nginx.start(config) as proxy:
        verdicts = {"net_version": 200, "eth_chainId": 200, "eth_chain": 403, "eth_chainIdx": 403,
                    "net": 403, "web3_clientVersion": 403, "net_* eth_chainId": 403}  # fmt: skip
        for method, status in verdicts.items():
            answer = requests.post(proxy.url, json=call(method), **tls(door))
            assert answer.status_code == status, method


async def test_per_certificate_rate_limit(
    upstream: str,
    authority: CertificateAuthority,
    door: ClientCredentials,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    folder = tmp_path_factory.mktemp("nginx-rate")
    other = authority.write_credentials(authority.issue_device("door-2"), folder / "door-2")
    config = hardened_config(
        folder, upstream=upstream, port=free_port(), authority=authority, rate="1r/m", burst=2
    )
    with Nginx.start(config) as proxy, requests.Session() as session:
        answers = [session.post(proxy.url, json=call("eth_chainId"), **tls(door)) for _ in range(5)]
        # the first call and a burst of 2; a token comes back only after a minute
        assert [answer.status_code for answer in answers] == [200, 200, 200, 429, 429]
        assert answers[-1].json()["error"]["code"] == -32005
        assert answers[-1].headers["Retry-After"] == "1"
        assert proxy.refusals_reach("rate_limited", 2) == 2
        # another device's certificate has its own allowance
        assert requests.post(proxy.url, json=call("eth_chainId"), **tls(other)).status_code == 200


async def test_a_revoked_certificate_is_refused_after_a_reload(
    upstream: str, authority: CertificateAuthority, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = tmp_path_factory.mktemp("nginx-revoke")
    issued = authority.issue_device("door-revoked")
    creds = authority.write_credentials(issued, folder / "door-revoked")
    config = hardened_config(folder, upstream=upstream, port=free_port(), authority=authority)
    with Nginx.start(config) as proxy:
        assert requests.post(proxy.url, json=call("eth_chainId"), **tls(creds)).status_code == 200
        authority.revoke(issued.record.serial)
        # nginx read the CRL at start: the revocation counts only once it reloads
        assert requests.post(proxy.url, json=call("eth_chainId"), **tls(creds)).status_code == 200
        proxy.reload()
        answer = settled(proxy, creds, 403)
        assert answer.status_code == 403
        assert answer.json()["error"]["message"].startswith("client certificate refused")
        assert proxy.refusals_reach("certificate_refused", 1) >= 1


async def test_an_expired_crl_locks_every_device_out_until_a_reload(
    upstream: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = tmp_path_factory.mktemp("nginx-crl-expiry")
    authority = CertificateAuthority.open(folder / "pki", "pw", crl_validity=timedelta(seconds=3))
    creds = authority.write_credentials(authority.issue_device("door-1"), folder / "door-1")
    config = hardened_config(folder, upstream=upstream, port=free_port(), authority=authority)
    try:
        authority.write_crl()
        written = time.monotonic()
        with Nginx.start(config) as proxy:
            assert requests.post(proxy.url, json=call("eth_chainId"), **tls(creds)).ok
            time.sleep(max(0.0, written + 3.5 - time.monotonic()))  # past the CRL's next update
            locked = requests.post(proxy.url, json=call("eth_chainId"), **tls(creds))
            assert locked.status_code == 403
            authority.write_crl()
            proxy.reload()
            assert settled(proxy, creds, 200).status_code == 200
    finally:
        authority.close()


async def test_a_node_that_is_down_is_a_502_json_rpc_error(
    authority: CertificateAuthority,
    door: ClientCredentials,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    folder = tmp_path_factory.mktemp("nginx-node-down")
    down = f"127.0.0.1:{free_port()}"  # nothing listens there
    config = hardened_config(folder, upstream=down, port=free_port(), authority=authority)
    with Nginx.start(config) as proxy:
        answer = refused(proxy, call("eth_chainId"), door, 502)
        assert answer["error"]["code"] == -32000
        assert proxy.refusals_reach("node_unavailable", 1) == 1
