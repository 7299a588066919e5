"""The devices' JSON-RPC gateway: HTTPS with client certificates in front of the node.

Paper 004 sections 4.6 and 5.5.2: devices never reach the node directly; the paper
put nginx with basic authentication in front of geth. Here every request is judged:

1. TLS: the client certificate must come from the platform CA (the handshake fails
   otherwise); its CN is the identity. Per request: not revoked (also while a
   kept-alive connection stays open; :class:`~pervasive.pki.RevokedSerials`), not expired,
   and holding a role in the :class:`~pervasive.gateway.roles.RoleBook`. These are set
   and dictionary lookups: the CRL and role book files are looked at (one ``stat``
   each) at most every :data:`FILE_RECHECK` seconds, at the first request after that
   time, so another process's change counts within a millisecond under load and at
   the next request after a quiet spell; this process's changes count at once.
2. JSON-RPC 2.0 (:mod:`~pervasive.gateway.jsonrpc`): one call or a batch, at most
   ``max_batch`` calls and ``max_body_bytes`` bytes.
3. Rate: a token bucket per identity (:mod:`~pervasive.gateway.limits`); each call counts.
4. Policy (:mod:`~pervasive.gateway.policy`): the role's methods and parameter rules;
   a warehouse device reaches sale orders only, asked once per address through
   ``orders`` (``SaleOrderFactory.is_order``) and remembered (an order stays an order).
5. Forwarding (:mod:`~pervasive.gateway.upstream`): when every call passes, the request
   bytes go to the node unchanged and its answer comes back unchanged (the hot path);
   otherwise the allowed calls go as one batch with fresh ids and each refused call
   gets its JSON-RPC error in place, ids preserved; notifications get no answer.

The hot path, a single call that passes (a warehouse's ``eth_call`` of
``verifyOwnership``), costs one JSON decode (:func:`~pervasive.gateway.jsonrpc.decode`)
and a handful of dictionary lookups: :func:`~pervasive.gateway.jsonrpc.single_call`
reads the call without building objects, the policy's verdict for a known ``to`` is
remembered, the rate limit takes its token last (so a call that falls to the general
path is never counted twice), and the node's answer is written to the device from
the callback that read it (:class:`~pervasive.http.Deferred`). Anything else takes
the general path, which judges call by call and explains every refusal. Run it on
:func:`loop_factory`'s loop (uvloop where installed) for the lowest cost per call.

HTTP statuses (JSON-RPC errors in the body in every case):

====== ===========================================================================
200    every answer that reached the node (a batch: at least one of its calls did)
204    only notifications, nothing to answer
400    not JSON (-32700), not JSON-RPC 2.0, an empty or too large batch (-32600)
403    no certificate, revoked, expired, no role (-32001); call not allowed (-32003)
404    a path other than ``/``; 405 a method other than POST
413    a body larger than ``max_body_bytes`` (-32600; the connection is closed)
429    rate limited (-32005), with ``Retry-After``
502    the node cannot be reached (-32000)
====== ===========================================================================

A batch of which no call reached the node gets the status of its first refusal.
``Gateway.counters`` counts calls ``served`` and every refusal by reason.

Example::

    gateway = await Gateway.start(ledger, ca, settings.gateway,
                                  roles=RoleBook.open(roles_file(settings.home)),
                                  orders=factory.is_order)
    print(gateway.url)          # https://127.0.0.1:<port>
    await gateway.close()
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from pervasive.chain import Ledger
from pervasive.config import GatewaySettings
from pervasive.contracts.sale_order import SaleOrder
from pervasive.errors import ChainUnavailable, ConfigError, UserError
from pervasive.gateway.jsonrpc import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    NODE_UNAVAILABLE,
    NOT_ALLOWED,
    RATE_LIMITED,
    UNAUTHORISED,
    Call,
    Invalid,
    JsonId,
    MalformedRequest,
    ParsedRequest,
    decode,
    encode,
    error_object,
    read_request,
    single_call,
)
from pervasive.gateway.limits import RateLimiter
from pervasive.gateway.policy import Policy, Rejection, Role, SaleOrderRules, Verdict
from pervasive.gateway.roles import RoleBook
from pervasive.gateway.upstream import Answer, HttpUpstream, LedgerUpstream
from pervasive.http import Deferred, HttpServer, PeerCertificate, Request, Response, ServerOptions
from pervasive.pki import CertificateAuthority, RevokedSerials
from pervasive.pki.authority import BROKER_HOSTS

__all__ = ["FILE_RECHECK", "GATEWAY_SERVICE", "Gateway", "OrderCheck", "loop_factory"]

_LOG = logging.getLogger(__name__)

OrderCheck = Callable[[str], Awaitable[bool]]
"""Is this address a sale order? (``SaleOrderFactory.is_order``)."""

GATEWAY_SERVICE = "gateway"
"""The server certificate's folder under ``<pki>/`` and its CN prefix."""

FILE_RECHECK = 0.001
"""Seconds between the gateway's looks at the CRL and role book files for changes made by
other processes (one ``stat`` each, at the first request after the interval: never per
request under load, and always at the first request after a quiet spell). Changes made
in this process (a revocation through the same CA object, an assignment through the
same role book) count at once."""

_WILDCARD_HOSTS = ("0.0.0.0", "::", "")  # noqa: S104 - names, not a bind
_Answer = dict[str, Any]
_JSON_START = (b"{", b"[")
_TLS12_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES256-GCM-SHA384"
)
_monotonic = time.monotonic
_BUG = encode(error_object(None, INTERNAL_ERROR, "a bug in pervasive: please file an issue"))


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """The event loop to run a gateway on: uvloop's where installed, else asyncio's.

    On uvloop the gateway spends about a quarter less CPU per call (its transports,
    TLS included, are compiled); it works the same on plain asyncio.

    Example: ``with asyncio.Runner(loop_factory=loop_factory()) as runner: runner.run(main())``.
    """
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


class _Plan:
    """What to do with one request whose calls are not all forwarded as they came."""

    __slots__ = ("answers", "first_refusal", "forward", "request")

    def __init__(self, request: ParsedRequest) -> None:
        self.request = request
        self.answers: list[_Answer | None] = [None] * len(request.items)
        self.forward: list[int] = []
        self.first_refusal: Rejection | None = None

    def refuse(self, index: int, call_id: JsonId, rejection: Rejection) -> None:
        item = self.request.items[index]
        if not (isinstance(item, Call) and item.notification):
            self.answers[index] = error_object(call_id, rejection.code, rejection.message)
        if self.first_refusal is None:
            self.first_refusal = rejection


class Gateway:
    """A running gateway; start one with :meth:`start`."""

    def __init__(
        self,
        ledger: Ledger,
        authority: CertificateAuthority,
        settings: GatewaySettings,
        *,
        roles: RoleBook,
        orders: OrderCheck | None,
    ) -> None:
        self.ledger = ledger
        self.settings = settings
        self.roles = roles
        self.counters: Counter[str] = Counter()
        """Calls ``served`` and refusals by reason (``rate_limited``, ``no_role``, ...)."""
        self.policy = Policy.default(
            SaleOrderRules(
                SaleOrder.VIEW_SELECTORS, SaleOrder.RELEASE_SELECTOR, chain_id=ledger.chain_id
            )
            if orders is not None
            else None
        )
        self.limiter = RateLimiter(settings.requests_per_second, settings.burst)
        self._orders = orders
        self._known_orders: set[str] = set()
        self._revoked = RevokedSerials(authority)
        self._next_look = 0.0
        self._wall = 0.0
        """``time.time()`` at the last look at the files: what expiry is judged against."""
        self._roles_unreadable: ConfigError | None = None
        self._authority = authority
        self._http: HttpUpstream | None = HttpUpstream(ledger.url) if ledger.url else None
        self._local = LedgerUpstream(ledger)
        self._node = self._http.display if self._http is not None else self._local.display
        self._server: HttpServer | None = None
        self.port = 0
        self.url = ""

    @classmethod
    async def start(
        cls,
        ledger: Ledger,
        authority: CertificateAuthority,
        settings: GatewaySettings,
        *,
        roles: RoleBook,
        orders: OrderCheck | None = None,
    ) -> Gateway:
        """Listen on ``settings.host:port`` (HTTPS) in front of ``ledger``'s node.

        The server certificate is the CA's ``gateway`` certificate for the host (issued
        on first use, in ``<pki>/gateway/``). ``orders`` tells whether an address is a
        sale order; without it the warehouse role reaches no contract. The gateway looks
        at the ``roles`` file itself (every :data:`FILE_RECHECK` at most), whatever
        ``recheck`` it was opened with.

        Example: ``await Gateway.start(ledger, ca, settings.gateway, roles=book)``.
        """
        gateway = cls(ledger, authority, settings, roles=roles, orders=orders)
        options = ServerOptions(max_body_bytes=settings.max_body_bytes, idle_timeout=120.0)
        server = HttpServer(
            {("POST", "/"): gateway.handle},
            options,
            rejections=gateway.counters,
            refusal=gateway._http_refusal,
        )
        try:
            await server.start(settings.host, settings.port, tls=gateway._tls_context())
        except OSError as exc:
            await gateway.close()
            raise ConfigError(
                f"the gateway cannot listen on {settings.host}:{settings.port}: {exc.strerror}; "
                "choose another [gateway] port"
            ) from exc
        gateway._server = server
        gateway.port = server.port
        host = "127.0.0.1" if settings.host in _WILDCARD_HOSTS else settings.host
        gateway.url = f"https://{host}:{server.port}"
        return gateway

    def _tls_context(self) -> ssl.SSLContext:
        host = self.settings.host
        hosts = BROKER_HOSTS if host in _WILDCARD_HOSTS or host in BROKER_HOSTS else (host,)
        if host not in _WILDCARD_HOSTS and host not in hosts:
            hosts = (host, *hosts)
        credentials = self._authority.server_credentials(GATEWAY_SERVICE, hosts)
        context = credentials.server_ssl_context()
        # a foreign certificate still fails the handshake; a missing one is answered
        # in HTTP (403, -32001) so that the device learns why, and it is counted
        context.verify_mode = ssl.CERT_OPTIONAL
        # the certificate is P-256 ECDSA: under TLS 1.2 (the devices' client contexts)
        # prefer AES-128-GCM, the cheapest per record with AES-NI (TLS 1.3 keeps
        # OpenSSL's suites: Python 3.11 cannot set them)
        context.set_ciphers(_TLS12_CIPHERS)
        # devices keep their connections alive and do not resume sessions: no tickets to
        # encrypt and send at every handshake
        context.num_tickets = 0
        context.options |= ssl.OP_NO_TICKET
        return context

    async def close(self) -> None:
        """Stop listening, drop the node's connections, stop following the CA."""
        if self._server is not None:
            await self._server.close()
            self._server = None
        if self._http is not None:
            await self._http.close()
        self._revoked.close()

    # -- one request ------------------------------------------------------------------
    def handle(self, request: Request) -> Response | Deferred | Awaitable[Response]:
        """Judge and forward one HTTP request (the route of ``POST /``)."""
        now = _monotonic()
        if now >= self._next_look:
            self._look(now)
        peer = request.peer
        role = None
        if (
            peer is not None
            and peer.serial not in self._revoked.serials
            and peer.not_after >= self._wall
            and self._roles_unreadable is None
        ):
            role = self.roles.assigned.get(peer.common_name)
        if role is None:  # refused: _identify says why
            identity = self._identify(peer)
            if isinstance(identity, Response):
                return identity
            role = identity[0]
        assert peer is not None
        name = peer.common_name
        try:
            document = decode(request.body)
        except MalformedRequest as bad:
            return self._malformed(bad)
        single = single_call(document)
        if single is not None and self._http is not None:  # the hot path
            verdict = self.policy.verdict(role, single[0], single[1])
            orders = verdict.orders
            if (
                verdict.rejection is None
                and (not orders or self._known_orders.issuperset(orders))
                and self.limiter.grant(name, 1, now)
            ):
                return self._pass_through(request.body, 1)
        return self._general(role, name, document, request.body, now)

    def _general(
        self, role: Role, name: str, document: Any, body: bytes, now: float
    ) -> Response | Deferred | Awaitable[Response]:
        """Judge a request call by call (again), every refusal explained."""
        try:
            parsed = read_request(document, max_batch=self.settings.max_batch)
        except MalformedRequest as bad:
            return self._malformed(bad)
        items = parsed.items
        granted = self.limiter.grant(name, len(items), now)
        judged: list[Verdict] = []
        if granted == len(items):
            for item in items:
                if type(item) is not Call or item.notification:
                    break
                verdict = self.policy.judge(role, item)
                judged.append(verdict)
                if verdict.rejection is not None or (
                    verdict.orders and not self._known_orders.issuperset(verdict.orders)
                ):
                    break
            else:
                if self._http is not None:  # every call passes as it came: bytes through
                    return self._pass_through(body, len(items))
        return self._planned(role, name, parsed, granted, judged)

    def _look(self, now: float) -> None:
        """Look at the CRL and role book files (another process's changes) and the clock."""
        self._next_look = now + FILE_RECHECK
        self._wall = time.time()
        self._revoked.refresh()
        try:
            self.roles.refresh()
        except ConfigError as unreadable:
            if self._roles_unreadable is None:  # said once, not at every look
                _LOG.error("%s", unreadable)
            self._roles_unreadable = unreadable
        else:
            self._roles_unreadable = None

    def _identify(self, peer: PeerCertificate | None) -> tuple[Role, str] | Response:
        if peer is None:
            return self._unauthorised(
                "no_certificate",
                "no client certificate: present the certificate the platform CA issued you",
            )
        if peer.serial in self._revoked.serials:
            return self._unauthorised(
                "revoked", f"the certificate of {peer.common_name!r} is revoked; ask for a new one"
            )
        if peer.not_after < self._wall:
            return self._unauthorised(
                "expired", f"the certificate of {peer.common_name!r} has expired; rotate it"
            )
        if self._roles_unreadable is not None:
            return self._unauthorised(
                "role_book_unreadable", "the gateway's role book is unreadable"
            )
        role = self.roles.assigned.get(peer.common_name)
        if role is None:
            return self._unauthorised(
                "no_role",
                f"{peer.common_name!r} holds no role at this gateway; an operator grants one "
                "with `pervasive gateway role`",
            )
        return role, peer.common_name

    def _malformed(self, bad: MalformedRequest) -> Response:
        self.counters[bad.reason] += 1
        return Response(400, encode(error_object(bad.call_id, bad.code, bad.message)))

    def _unauthorised(self, reason: str, message: str) -> Response:
        self.counters[reason] += 1
        return Response(403, encode(error_object(None, UNAUTHORISED, message)))

    def _http_refusal(self, reason: str, message: str, status: int) -> Response:
        """Answer the HTTP server's own refusals (too large, bad HTTP, 404) in JSON-RPC."""
        if reason == "too_large":
            status = 413
            message = f"the request exceeds {self.settings.max_body_bytes} bytes: {message}"
        return Response(status, encode(error_object(None, INVALID_REQUEST, message)))

    # -- the hot path: bytes through ----------------------------------------------------
    def _pass_through(self, body: bytes, calls: int) -> Deferred:
        assert self._http is not None
        reply = Deferred()

        def relay(answer: Answer) -> None:
            try:
                response = self._relayed(answer, calls)
            except Exception:  # a bug must cost this request its answer, not hang it
                _LOG.exception("answering from the node's answer failed")
                response = Response(500, _BUG)
            reply.resolve(response)

        self._http.send(body, relay)
        return reply

    def _relayed(self, answer: Answer, calls: int) -> Response:
        if isinstance(answer, ChainUnavailable):
            self.counters["node_unreachable"] += calls
            return Response(502, encode(error_object(None, NODE_UNAVAILABLE, str(answer))))
        status, body = answer
        if body[:1] not in _JSON_START and body.lstrip()[:1] not in _JSON_START:
            self.counters["node_bad_answer"] += calls
            message = f"the node at {self._node} answered HTTP {status} without JSON"
            return Response(502, encode(error_object(None, INTERNAL_ERROR, message)))
        self.counters["served"] += calls
        return Response(status, body)

    # -- the general path: judged call by call ----------------------------------------
    def _planned(
        self,
        role: Role,
        identity: str,
        parsed: ParsedRequest,
        granted: int,
        judged: Sequence[Verdict],
    ) -> Response | Awaitable[Response]:
        plan = _Plan(parsed)
        checks: list[tuple[int, tuple[str, ...]]] = []
        limited = Rejection(
            RATE_LIMITED,
            "rate_limited",
            f"{identity!r} may make {self.settings.requests_per_second:g} calls/s "
            f"(bursts of {self.settings.burst}); slow down",
            429,
        )
        for index, item in enumerate(parsed.items):
            if isinstance(item, Invalid):
                self.counters["invalid_request"] += 1
                invalid = Rejection(INVALID_REQUEST, "invalid_request", item.message, 400)
                plan.refuse(index, item.id, invalid)
            elif index >= granted:
                self.counters["rate_limited"] += 1
                plan.refuse(index, item.id, limited)
            else:
                # judged already on the way to the hot path, or now
                verdict = judged[index] if index < len(judged) else self.policy.judge(role, item)
                if verdict.rejection is not None:
                    self.counters[verdict.rejection.reason] += 1
                    plan.refuse(index, item.id, verdict.rejection)
                elif verdict.orders and not self._known_orders.issuperset(verdict.orders):
                    checks.append((index, verdict.orders))
                else:
                    plan.forward.append(index)
        if not checks and not plan.forward:
            return self._finish(plan, identity)
        return self._completed(plan, checks, identity)

    async def _completed(
        self, plan: _Plan, checks: list[tuple[int, tuple[str, ...]]], identity: str
    ) -> Response:
        for index, addresses in checks:
            item = plan.request.items[index]
            assert isinstance(item, Call)
            try:
                outcome = await self._are_orders(addresses)
            except ChainUnavailable as down:
                self.counters["node_unreachable"] += 1
                plan.refuse(
                    index, item.id, Rejection(NODE_UNAVAILABLE, "node_unreachable", str(down), 502)
                )
                continue
            if outcome is not None:
                self.counters["not_a_sale_order"] += 1
                message = (
                    f"{outcome} is not a sale order; the warehouse role reaches sale orders only"
                )
                plan.refuse(index, item.id, Rejection(NOT_ALLOWED, "not_a_sale_order", message))
            else:
                plan.forward.append(index)
        plan.forward.sort()
        if plan.forward:
            await self._forward(plan)
        return self._finish(plan, identity)

    async def _are_orders(self, addresses: tuple[str, ...]) -> str | None:
        """The first address that is no sale order, or ``None`` when all are."""
        for address in addresses:
            if address in self._known_orders:
                continue
            try:
                is_order = self._orders is not None and await self._orders(address)
            except ChainUnavailable:
                raise
            except UserError as refused:  # e.g. the zero address
                _LOG.info("order check of %s refused: %s", address, refused)
                is_order = False
            if not is_order:
                return address
            self._known_orders.add(address)
        return None

    async def _forward(self, plan: _Plan) -> None:
        calls = [plan.request.items[index] for index in plan.forward]
        try:
            if self._http is not None:
                batch = [
                    {"jsonrpc": "2.0", "id": n, "method": call.method, "params": call.params}
                    for n, call in enumerate(calls)
                    if isinstance(call, Call)
                ]
                answers = await self._via_http(batch)
            else:
                answers = [
                    await self._local.call(call.method, call.params)
                    for call in calls
                    if isinstance(call, Call)
                ]
        except ChainUnavailable as down:
            message = str(down)
            for index in plan.forward:
                self.counters["node_unreachable"] += 1
                item = plan.request.items[index]
                assert isinstance(item, Call)
                plan.refuse(
                    index, item.id, Rejection(NODE_UNAVAILABLE, "node_unreachable", message, 502)
                )
            plan.forward = []
            return
        self.counters["served"] += len(calls)
        for index, answer in zip(plan.forward, answers, strict=True):
            item = plan.request.items[index]
            assert isinstance(item, Call)
            if not item.notification:
                plan.answers[index] = {"jsonrpc": "2.0", "id": item.id, **answer}

    async def _via_http(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        assert self._http is not None
        answer = await self._http.post(encode(batch))
        if isinstance(answer, ChainUnavailable):
            raise answer
        status, body = answer
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        if isinstance(document, dict) and "error" in document:  # the whole batch refused
            return [{"error": document["error"]}] * len(batch)
        if not isinstance(document, list):
            message = f"the node at {self._node} answered HTTP {status} with no JSON-RPC batch"
            return [{"error": {"code": INTERNAL_ERROR, "message": message}}] * len(batch)
        by_id = {entry.get("id"): entry for entry in document if isinstance(entry, dict)}
        out: list[dict[str, Any]] = []
        for n in range(len(batch)):
            entry = by_id.get(n)
            if entry is None:
                missing = f"the node at {self._node} left this call unanswered"
                out.append({"error": {"code": INTERNAL_ERROR, "message": missing}})
            elif "error" in entry:
                out.append({"error": entry["error"]})
            else:
                out.append({"result": entry.get("result")})
        return out

    def _finish(self, plan: _Plan, identity: str) -> Response:
        answers = [answer for answer in plan.answers if answer is not None]
        headers: tuple[tuple[bytes, bytes], ...] = ()
        if plan.forward:
            status = 200
        elif plan.first_refusal is not None:
            status = plan.first_refusal.status
        else:
            status = 204
        if status == 429:
            headers = ((b"Retry-After", b"%d" % max(1, self.limiter.retry_after(identity))),)
        if not answers:
            return Response(204, b"", headers=headers)
        body = encode(answers) if plan.request.batch else encode(answers[0])
        return Response(status, body, headers=headers)
