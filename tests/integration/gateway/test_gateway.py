"""The devices' gateway over real TLS in front of both backends (paper 004 section 4.6).

What a warehouse device, a reader, a stranger and a revoked device see through it:
web3.py and aiohttp as clients, real certificates from the platform CA (and a foreign
one), a real sale order bought on the chain.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest
from gateway_world import GatewayWorld, post, rpc, session
from requests import Session
from web3 import HTTPProvider, Web3

from pervasive.chain import RequestRefused
from pervasive.contracts.sale_order import SaleOrder
from pervasive.crypto import keccak256
from pervasive.gateway import Role, open_gateway_ledger
from pervasive.messaging.tls import ClientCredentials
from pervasive.pki import CertificateAuthority

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.xdist_group("gateway"),
]

VERIFY = keccak256(b"verifyOwnership(address)")[:4]


def verify_data(buyer: str) -> str:
    return "0x" + VERIFY.hex() + "00" * 12 + buyer[2:].lower()


def web3_through(world: GatewayWorld, credentials: ClientCredentials, http: Session) -> Web3:
    """web3.py's plain HTTPProvider, as any Ethereum tool would be set up for the gateway."""
    kwargs = {
        "cert": (str(credentials.cert_file), str(credentials.key_file)),
        "verify": str(credentials.ca_file),
        "timeout": 10,
    }
    return Web3(HTTPProvider(world.gateway.url, request_kwargs=kwargs, session=http))


async def test_web3_reads_a_sale_order_through_the_gateway(world: GatewayWorld) -> None:
    order = await world.sold_order()
    with Session() as http:
        w3 = web3_through(world, world.device(Role.WAREHOUSE), http)

        def read() -> tuple[int, int, bytes, bytes]:
            owned = w3.eth.call({"to": order.address, "data": verify_data(world.buyer.address)})
            other = w3.eth.call({"to": order.address, "data": verify_data(world.seller.address)})
            return w3.eth.chain_id, w3.eth.block_number, bytes(owned), bytes(other)

        chain_id, head, owned, other = await asyncio.to_thread(read)
    assert chain_id == world.ledger.chain_id
    assert head == await world.ledger.block_number()
    assert int.from_bytes(owned, "big") == 1 and int.from_bytes(other, "big") == 0


async def test_the_warehouse_device_releases_through_its_gateway_ledger(
    world: GatewayWorld,
) -> None:
    order = await world.sold_order()
    device = await open_gateway_ledger(
        world.gateway.url, world.device(Role.WAREHOUSE), world.settings
    )
    try:
        assert device.kind == "rpc" and device.chain_id == world.ledger.chain_id
        seen = SaleOrder.at(device, order.address, world.warehouse)
        assert await seen.verify_ownership(world.buyer.address) is True
        served = world.gateway.counters["served"]
        receipt = await seen.release(world.buyer.address)  # estimate, fees, nonce, send, receipt
        assert receipt.succeeded
        assert world.gateway.counters["served"] > served
        assert await seen.verify_ownership(world.buyer.address) is False
        assert (await order.item()).released is True
    finally:
        await device.close()


async def test_forbidden_methods_alone_and_in_a_mixed_batch(world: GatewayWorld) -> None:
    async with session(world.device(Role.WAREHOUSE), world.ca.ca_file) as client:
        url = world.gateway.url
        status, answer, _ = await post(client, url, rpc("eth_sendTransaction", {}, call_id=5))
        assert status == 403
        assert answer["id"] == 5 and answer["error"]["code"] == -32003
        assert (
            "eth_sendTransaction is not allowed for the warehouse role"
            in answer["error"]["message"]
        )

        batch = [
            rpc("eth_chainId", call_id="a"),
            rpc("anvil_setBalance", world.buyer.address, "0x1", call_id="b"),
            {"jsonrpc": "2.0", "method": "eth_blockNumber", "params": []},  # notification
            {"jsonrpc": "2.0", "id": "d"},  # no method
            rpc("eth_blockNumber", call_id=7),
        ]
        before = world.ledger.dev_signer(2)
        status, answers, _ = await post(client, url, batch)
    assert status == 200
    assert [a["id"] for a in answers] == ["a", "b", "d", 7]
    assert answers[0]["result"] == hex(world.ledger.chain_id)
    assert answers[1]["error"]["code"] == -32003
    assert answers[2]["error"]["code"] == -32600
    assert int(answers[3]["result"], 16) == await world.ledger.block_number()
    assert await world.ledger.balance(before.address) > 1  # anvil_setBalance never ran


async def test_an_eth_call_to_a_contract_that_is_no_sale_order_is_refused(
    world: GatewayWorld,
) -> None:
    refusals = world.gateway.counters["not_a_sale_order"]
    is_sold = "0x" + keccak256(b"isSold()")[:4].hex()
    async with session(world.device(Role.WAREHOUSE), world.ca.ca_file) as client:
        status, answer, _ = await post(
            client,
            world.gateway.url,
            rpc("eth_call", {"to": world.factory.address, "data": is_sold}),
        )
    assert status == 403 and answer["error"]["code"] == -32003
    assert "not a sale order" in answer["error"]["message"]
    assert world.gateway.counters["not_a_sale_order"] == refusals + 1
    device = await open_gateway_ledger(
        world.gateway.url, world.device(Role.WAREHOUSE), world.settings
    )
    try:
        with pytest.raises(RequestRefused, match="not a sale order") as refused:
            await device.call(world.factory.address, bytes.fromhex(is_sold[2:]))
        assert refused.value.status == 403
    finally:
        await device.close()


async def test_a_certificate_of_another_ca_fails_the_handshake(
    world: GatewayWorld, tmp_path: Path
) -> None:
    foreign = CertificateAuthority.open(tmp_path / "foreign", "other")
    stranger = foreign.client_credentials("door-x", tmp_path / "devices")
    foreign.close()
    # the device trusts our CA (so it reaches the gateway) but presents the foreign cert
    mixed = ClientCredentials(world.ca.ca_file, stranger.cert_file, stranger.key_file)
    async with session(mixed, world.ca.ca_file) as client:
        with pytest.raises(aiohttp.ClientError):
            await post(client, world.gateway.url, rpc("eth_chainId"))


async def test_no_certificate_and_no_role_are_refused_with_reasons(world: GatewayWorld) -> None:
    counters = world.gateway.counters
    before = (counters["no_certificate"], counters["no_role"])
    async with session(None, world.ca.ca_file) as client:
        status, answer, _ = await post(client, world.gateway.url, rpc("eth_chainId"))
    assert status == 403 and answer["error"]["code"] == -32001
    assert "no client certificate" in answer["error"]["message"]

    nobody = world.device(None)
    async with session(nobody, world.ca.ca_file) as client:
        status, answer, _ = await post(client, world.gateway.url, rpc("eth_chainId"))
        assert status == 403 and "holds no role" in answer["error"]["message"]
        world.roles.assign(nobody.identity(), "reader")  # granted meanwhile: the next call passes
        status, answer, _ = await post(client, world.gateway.url, rpc("eth_chainId"))
        assert status == 200 and answer["result"] == hex(world.ledger.chain_id)
    assert (counters["no_certificate"], counters["no_role"]) == (before[0] + 1, before[1] + 1)


async def test_a_device_revoked_on_an_open_connection_is_refused_at_its_next_request(
    world: GatewayWorld,
) -> None:
    credentials = world.device(Role.READER)
    body = json.dumps(rpc("eth_chainId")).encode()
    request = (
        b"POST / HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", world.gateway.port, ssl=credentials.ssl_context()
    )
    try:
        writer.write(request)
        first = await read_response(reader)
        assert first.startswith(b"HTTP/1.1 200")
        serial = world.ca.verify(credentials.cert_file.read_bytes()).serial
        world.ca.revoke(serial)
        writer.write(request)  # same TLS connection, kept alive
        second = await read_response(reader)
    finally:
        writer.close()
    assert second.startswith(b"HTTP/1.1 403")
    assert b"-32001" in second and b"revoked" in second


async def read_response(reader: asyncio.StreamReader) -> bytes:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    return head + await reader.readexactly(length)


async def test_rate_limits_cut_a_batch_then_answer_429(world: GatewayWorld) -> None:
    slow = await world.start_gateway(requests_per_second=0.5, burst=3)
    try:
        async with session(world.device(Role.READER), world.ca.ca_file) as client:
            batch = [rpc("eth_chainId", call_id=n) for n in range(5)]
            status, answers, _ = await post(client, slow.url, batch)
            assert status == 200
            assert [("result" in a, a["id"]) for a in answers] == [
                (True, 0), (True, 1), (True, 2), (False, 3), (False, 4),
            ]  # fmt: skip
            assert answers[3]["error"]["code"] == -32005
            status, answer, headers = await post(client, slow.url, rpc("eth_chainId"))
        assert status == 429 and answer["error"]["code"] == -32005
        assert int(headers["Retry-After"]) >= 1
        assert slow.counters["rate_limited"] == 3 and slow.counters["served"] == 3
    finally:
        await slow.close()


async def test_sizes_beyond_the_settings_are_refused(world: GatewayWorld) -> None:
    small = await world.start_gateway(max_body_bytes=1024, max_batch=2)
    try:
        async with session(world.device(Role.READER), world.ca.ca_file) as client:
            status, answer, _ = await post(client, small.url, [rpc("eth_chainId")] * 3)
            assert status == 400 and "at most 2 calls" in answer["error"]["message"]
            status, answer, _ = await post(client, small.url, b"not json")
            assert status == 400 and answer["error"]["code"] == -32700
        async with session(world.device(Role.READER), world.ca.ca_file) as client:
            padded = rpc("eth_getBalance", "0x" + "ab" * 600)
            status, answer, _ = await post(client, small.url, padded)
            assert status == 413 and answer["error"]["code"] == -32600
        assert (small.counters["batch_too_large"], small.counters["too_large"]) == (1, 1)
    finally:
        await small.close()


async def test_a_reader_reads_balances_but_sends_nothing(world: GatewayWorld) -> None:
    async with session(world.device(Role.READER), world.ca.ca_file) as client:
        url = world.gateway.url
        status, answer, _ = await post(
            client, url, rpc("eth_getBalance", world.buyer.address, "latest")
        )
        assert status == 200
        assert int(answer["result"], 16) == await world.ledger.balance(world.buyer.address)
        status, answer, _ = await post(client, url, rpc("eth_sendRawTransaction", "0x02"))
        assert status == 403 and answer["error"]["code"] == -32003


async def test_json_rpc_clients_see_the_node_unchanged(world: GatewayWorld) -> None:
    """The same request straight to the node and through the gateway: the same answer."""
    order = await world.sold_order()
    call = rpc(
        "eth_call", {"to": order.address, "data": verify_data(world.buyer.address)}, "latest"
    )
    direct = await world.ledger.rpc.relay("eth_call", call["params"])
    async with session(world.device(Role.OPERATOR, "svc"), world.ca.ca_file) as client:
        status, answer, _ = await post(client, world.gateway.url, call)
    assert status == 200 and answer["result"] == direct["result"]
    assert int(answer["result"], 16) == 1
