"""A notary member's HTTP interface to its deposit check (paper 003 section V-B, Algorithm 2).

The oracle and the consumers ask one member at a time: ``GET /check`` answers
Algorithm 2 from :class:`~pervasive.crosschain.deposit_check.DepositCheck`,
``POST /attest`` reserves the deposit and returns the member's EIP-712
``DepositAttestation`` signature for C_o, ``GET /health`` and ``GET /metrics``
(Prometheus text: requests by route, rejections by reason) watch it.

The server is a minimal HTTP/1.1 on ``asyncio.Protocol`` with the ``httptools``
parser (llhttp): keep-alive, pipelining, limits on header and body size. The paper's
interface peaked at 7,304 requests/s; ``bench/deposit_check.py`` measures this one
beside aiohttp.web (the same handlers), which answered 2.5 to 4 times fewer.
Malformed requests get 400 and a one-line JSON error ``{"ok": false, "reason",
"error"}``, counted by reason.

Example::

    service = CheckService(state, key, chain_id=31337, oracle=oracle_address)
    server = await HttpServer(service.routes()).start("127.0.0.1", 8545)
    # curl '127.0.0.1:8545/check?consumer=0x..&provider=0x..&amount=1000'
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

from pervasive.contracts.deposit_oracle import (
    ATTESTATION_TYPE,
    ORACLE_DOMAIN_NAME,
    ORACLE_DOMAIN_VERSION,
)
from pervasive.crosschain.deposit_check import Attestation, DepositCheck
from pervasive.crypto import PrivateKey, keccak256, unsafe_sign_hash
from pervasive.crypto.typed_data import domain_separator, type_hash
from pervasive.errors import NotFound
from pervasive.http.server import Handler, Request, Response, error_response

__all__ = ["CheckService"]

# 0x and 40 hex digits, not all zero (the zero address is nobody's)
_ADDRESS = re.compile(rb"0x(?!0{40})[0-9a-fA-F]{40}")
_UINT = re.compile(rb"[0-9]{1,78}")


class CheckService:
    """The member's routes over its :class:`DepositCheck` and secp256k1 key.

    Example: ``CheckServer(CheckService(state, key, chain_id=1, oracle=o).routes())``.
    """

    def __init__(self, state: DepositCheck, key: PrivateKey, *, chain_id: int, oracle: str) -> None:
        self.state = state
        self.key = key
        self.chain_id = chain_id
        self.oracle = oracle
        separator = domain_separator(ORACLE_DOMAIN_NAME, ORACLE_DOMAIN_VERSION, chain_id, oracle)
        self._prefix = b"\x19\x01" + separator
        self._type_hash = type_hash(ATTESTATION_TYPE)
        self.rejections: Counter[str] = Counter()
        """Malformed requests and refusals by reason (``/metrics``)."""
        self.answers: Counter[str] = Counter()

    def digest(self, attestation: Attestation) -> bytes:
        """The EIP-712 digest of ``attestation`` for this member's C_o.

        Equal to :func:`pervasive.contracts.deposit_oracle.attestation_digest` (a test
        holds them equal) with the domain hashed once: two keccaks per request, not six.

        Example: ``service.digest(Attestation(c, p, 150, 0, 120)).hex()``.
        """
        words = b"".join(
            (
                self._type_hash,
                bytes(12) + bytes.fromhex(attestation.consumer[2:]),
                bytes(12) + bytes.fromhex(attestation.provider[2:]),
                attestation.required.to_bytes(32, "big"),
                attestation.counter.to_bytes(32, "big"),
                attestation.expiry.to_bytes(32, "big"),
            )
        )
        return keccak256(self._prefix + keccak256(words))

    def routes(self) -> dict[tuple[str, str], Handler]:
        """``(method, path) -> handler``; add to it before building the server."""
        return {
            ("GET", "/check"): self.check,
            ("POST", "/attest"): self.attest,
            ("GET", "/health"): self.health,
            ("GET", "/metrics"): self.metrics,
        }

    def check(self, request: Request) -> Response:
        """``GET /check?consumer=&provider=&amount=`` -> Algorithm 2's answer."""
        params = request.params()
        consumer, provider, amount = (
            params.get(b"consumer"),
            params.get(b"provider"),
            params.get(b"amount"),
        )
        if consumer is None or _ADDRESS.fullmatch(consumer) is None:
            return _bad_address(self.rejections, "consumer")
        if provider is None or _ADDRESS.fullmatch(provider) is None:
            return _bad_address(self.rejections, "provider")
        if amount is None or _UINT.fullmatch(amount) is None:
            return error_response(
                self.rejections, "bad_amount", "amount must be a non-negative integer of wei"
            )
        try:
            result = self.state.check(consumer.decode(), provider.decode(), int(amount))
        except NotFound as exc:
            return error_response(self.rejections, "unknown_consumer", str(exc))
        self.answers["ok" if result.ok else "refused"] += 1
        body = b'{"ok":%s,"balance":%d,"pending":%d,"required":%d}' % (
            b"true" if result.ok else b"false",
            result.balance,
            result.pending,
            result.required,
        )
        return Response(200, body)

    def attest(self, request: Request) -> Response:
        """``POST /attest {"consumer","provider","amount","counter"}`` -> a signature or 409."""
        try:
            document = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            return error_response(self.rejections, "bad_json", "the body must be a JSON object")
        if not isinstance(document, dict):
            return error_response(self.rejections, "bad_json", "the body must be a JSON object")
        fields = _attest_fields(document, self.rejections)
        if isinstance(fields, Response):
            return fields
        consumer, provider, amount, counter = fields
        decision = self.state.attest(consumer, provider, amount, counter)
        if not isinstance(decision, Attestation):
            self.answers["refused"] += 1
            return error_response(self.rejections, decision.reason.value, decision.message, 409)
        # the digest carries the 0x1901 EIP-712 prefix built above: no transaction hash
        signature = unsafe_sign_hash(self.key, self.digest(decision))
        self.answers["attested"] += 1
        answer = {
            "ok": True,
            "required": decision.required,
            "counter": decision.counter,
            "expiry": decision.expiry,
            "signer": self.key.address,
            "signature": "0x" + signature.to_bytes().hex(),
        }
        return Response(200, json.dumps(answer).encode())

    def health(self, request: Request) -> Response:
        """``GET /health`` -> the head block this member follows."""
        return Response(200, b'{"ok":true,"head":%d}' % self.state.head)

    def metrics(self, request: Request) -> Response:
        """``GET /metrics`` -> Prometheus text: answers and rejections by reason."""
        lines = ["# TYPE pervasive_deposit_check_answers_total counter"]
        lines += [
            f'pervasive_deposit_check_answers_total{{kind="{k}"}} {v}'
            for k, v in sorted(self.answers.items())
        ]
        lines.append("# TYPE pervasive_deposit_check_rejections_total counter")
        lines += [
            f'pervasive_deposit_check_rejections_total{{reason="{k}"}} {v}'
            for k, v in sorted(self.rejections.items())
        ]
        return Response(200, ("\n".join(lines) + "\n").encode(), b"text/plain; version=0.0.4")


def _attest_fields(
    document: dict[str, Any], rejections: Counter[str]
) -> tuple[str, str, int, int] | Response:
    consumer, provider = document.get("consumer"), document.get("provider")
    amount, counter = document.get("amount"), document.get("counter")
    if not isinstance(consumer, str) or _ADDRESS.fullmatch(consumer.encode()) is None:
        return _bad_address(rejections, "consumer")
    if not isinstance(provider, str) or _ADDRESS.fullmatch(provider.encode()) is None:
        return _bad_address(rejections, "provider")
    if not _is_uint256(amount) or not _is_uint256(counter):
        return error_response(
            rejections, "bad_amount", "amount and counter must be integers in [0, 2**256)"
        )
    return consumer, provider, int(amount), int(counter)  # type: ignore[arg-type]


def _bad_address(rejections: Counter[str], name: str) -> Response:
    message = f"{name} must be a non-zero 0x address of 40 hex digits"
    return error_response(rejections, "bad_address", message)


def _is_uint256(value: object) -> bool:
    # bool is an int to Python, not to anyone sending JSON
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 256
