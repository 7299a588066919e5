"""A member's deposit-check server over real sockets: what the oracle, a payer and an
attacker sending junk see (paper 003 Algorithm 2 behind HTTP)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest

from pervasive.contracts.deposit_oracle import attestation_digest
from pervasive.crosschain.check_server import CheckService
from pervasive.crosschain.deposit_check import DepositCheck, PendingPay
from pervasive.crypto import PrivateKey, recover_hash
from pervasive.http.server import HttpServer, Request, Response, ServerOptions

CONSUMER = "0x" + "c1" * 20
PROVIDER = "0x" + "ab" * 20
ORACLE = "0x" + "0c" * 20
MEMBER = PrivateKey(bytes([0x42]) * 32)


@dataclass
class Member:
    state: DepositCheck
    service: CheckService
    server: HttpServer
    session: aiohttp.ClientSession

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    async def get(self, path: str) -> tuple[int, dict[str, object]]:
        async with self.session.get(self.url + path) as answer:
            return answer.status, json.loads(await answer.read())

    async def post(self, path: str, body: bytes) -> tuple[int, dict[str, object]]:
        async with self.session.post(self.url + path, data=body) as answer:
            return answer.status, json.loads(await answer.read())

    async def rejections(self) -> dict[str, int]:
        async with self.session.get(self.url + "/metrics") as answer:
            text = (await answer.read()).decode()
        out = {}
        for line in text.splitlines():
            if line.startswith("pervasive_deposit_check_rejections_total"):
                reason = line.split('reason="')[1].split('"')[0]
                out[reason] = int(line.rsplit(" ", 1)[1])
        return out


@pytest.fixture
async def member() -> AsyncIterator[Member]:
    state = DepositCheck(coef_percent=100, validity_blocks=10)
    state.set_deposit(CONSUMER, 1000)
    state.advance_block(5)
    service = CheckService(state, MEMBER, chain_id=31337, oracle=ORACLE)
    options = ServerOptions(max_header_bytes=2048, max_body_bytes=512)
    server = await HttpServer(service.routes(), options, rejections=service.rejections).start()
    async with aiohttp.ClientSession() as session:
        yield Member(state, service, server, session)
    await server.close()


def check_path(consumer: str = CONSUMER, provider: str = PROVIDER, amount: str = "100") -> str:
    return f"/check?consumer={consumer}&provider={provider}&amount={amount}"


def attest_body(amount: object = 100, counter: object = 0, consumer: object = CONSUMER) -> bytes:
    document = {"consumer": consumer, "provider": PROVIDER, "amount": amount, "counter": counter}
    return json.dumps(document).encode()


async def test_check_answers_algorithm_2_with_the_pool_counted(member: Member) -> None:
    member.state.sync_pool([PendingPay("0x" + "11" * 32, CONSUMER, PROVIDER, 0, 300)])
    assert await member.get(check_path(amount="699")) == (
        200,
        {"ok": True, "balance": 1000, "pending": 300, "required": 699},
    )
    status, answer = await member.get(check_path(amount="700"))
    assert (status, answer["ok"]) == (200, False)


async def test_attest_signs_what_the_oracle_checks_and_reserves(member: Member) -> None:
    status, answer = await member.post("/attest", attest_body(amount=400, counter=0))
    assert status == 200
    assert answer["signer"] == MEMBER.address
    assert (answer["required"], answer["counter"], answer["expiry"]) == (400, 0, 15)
    digest = attestation_digest(31337, ORACLE, CONSUMER, PROVIDER, 400, 0, 15)
    assert recover_hash(digest, bytes.fromhex(str(answer["signature"])[2:])) == MEMBER.address
    _, after = await member.get(check_path(amount="600"))
    assert (after["pending"], after["ok"]) == (400, False)
    status, refused = await member.post("/attest", attest_body(amount=600, counter=1))
    assert (status, refused["reason"]) == (409, "insufficient_deposit")


async def test_concurrent_attests_for_one_consumer_cannot_over_commit(member: Member) -> None:
    answers = await asyncio.gather(
        *(member.post("/attest", attest_body(amount=100, counter=k)) for k in range(40))
    )
    granted = [answer for status, answer in answers if status == 200]
    # 9 x 100 < 1000; a tenth would make pending + required equal to the deposit
    assert len(granted) == 9
    assert sum(int(str(a["required"])) for a in granted) == 900
    assert {a["reason"] for s, a in answers if s != 200} == {"insufficient_deposit"}


MALFORMED_CHECKS = [
    ("bad_address", check_path(consumer="0x1234")),
    ("bad_address", check_path(provider="0x" + "00" * 20)),
    ("bad_address", check_path(provider="0x" + "zz" * 20)),
    ("bad_address", "/check?provider=" + PROVIDER + "&amount=1"),
    ("bad_amount", check_path(amount="-5")),
    ("bad_amount", check_path(amount="1.5")),
    ("bad_amount", check_path(amount="1e18")),
    ("bad_amount", check_path(amount="")),
    ("unknown_consumer", check_path(consumer="0x" + "c9" * 20)),
]


@pytest.mark.parametrize(("reason", "path"), MALFORMED_CHECKS)
async def test_a_malformed_check_gets_400_and_is_counted(
    member: Member, reason: str, path: str
) -> None:
    before = (await member.rejections()).get(reason, 0)
    status, answer = await member.get(path)
    assert status == 400
    assert answer["ok"] is False and answer["reason"] == reason
    assert "\n" not in str(answer["error"])
    assert (await member.rejections())[reason] == before + 1


MALFORMED_ATTESTS = [
    ("bad_json", b"{not json"),
    ("bad_json", b"[1, 2]"),
    ("bad_json", b"\xff\xfe"),
    ("bad_address", attest_body(consumer="c1" * 20)),
    ("bad_address", attest_body(consumer=7)),
    ("bad_amount", attest_body(amount=-1)),
    ("bad_amount", attest_body(amount=1.5)),
    ("bad_amount", attest_body(amount="100")),
    ("bad_amount", attest_body(amount=True)),
    ("bad_amount", attest_body(counter=2**256)),
    ("too_large", b'{"pad": "' + b"x" * 600 + b'"}'),
]


@pytest.mark.parametrize(("reason", "body"), MALFORMED_ATTESTS)
async def test_a_malformed_attest_gets_400_and_is_counted(
    member: Member, reason: str, body: bytes
) -> None:
    before = (await member.rejections()).get(reason, 0)
    status, answer = await member.post("/attest", body)
    assert (status, answer["reason"]) == (400, reason)
    assert (await member.rejections())[reason] == before + 1
    assert member.state.exposure(CONSUMER) == 0


async def test_unknown_routes_and_methods(member: Member) -> None:
    assert (await member.get("/nowhere"))[0] == 404
    assert (await member.post("/check", b""))[0] == 405
    assert (await member.get("/health")) == (200, {"ok": True, "head": 5})


async def raw_exchange(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    received = await asyncio.wait_for(reader.read(), timeout=5)  # until the server closes
    writer.close()
    return received


async def test_pipelined_requests_are_answered_in_order_even_around_a_slow_route(
    member: Member,
) -> None:
    async def slow(request: Request) -> Response:
        await asyncio.sleep(0.05)
        return Response(202, b'{"slow":true}')

    member.server.route("POST", "/challenge", slow)
    first = f"GET {check_path(amount='1')} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    middle = b"POST /challenge HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
    last = f"GET {check_path(amount='2')} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    received = await raw_exchange(member.server.port, first + middle + last.encode())
    bodies = [part.split(b"\r\n\r\n", 1)[1] for part in received.split(b"HTTP/1.1 ")[1:]]
    assert [json.loads(b).get("required", "slow") for b in bodies] == [1, "slow", 2]
    assert received.count(b"HTTP/1.1 202") == 1


async def test_oversized_headers_and_garbage_close_the_connection_with_400(member: Member) -> None:
    huge = b"GET /health HTTP/1.1\r\nX-Pad: " + b"a" * 4000 + b"\r\n\r\n"
    answer = await raw_exchange(member.server.port, huge)
    assert answer.startswith(b"HTTP/1.1 400") and b'"too_large"' in answer
    garbage = await raw_exchange(member.server.port, b"\x16\x03\x01 hello TLS\r\n\r\n")
    assert garbage.startswith(b"HTTP/1.1 400") and b'"bad_request"' in garbage
    assert (await member.rejections())["bad_request"] == 1


async def test_a_silent_connection_is_closed_after_the_idle_timeout(member: Member) -> None:
    options = ServerOptions(idle_timeout=0.2)
    server = await HttpServer(member.service.routes(), options).start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await reader.readuntil(b'"head":5}')).startswith(b"HTTP/1.1 200")
        # kept alive, then closed once silent (within the sweep period of timeout / 4)
        assert await asyncio.wait_for(reader.read(), timeout=2) == b""
        writer.close()
    finally:
        await server.close()
