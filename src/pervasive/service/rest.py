"""REST bindings: devices with IP access call the contract over HTTPS (paper 001, 3.1).

``[[rest]]`` routes are served by :class:`pervasive.http.HttpServer` over TLS with the
platform CA's client certificates, checked as the devices' gateway checks them
(``gateway/``): the handshake refuses a certificate of another CA; per request, a
missing certificate, a revoked one (:class:`~pervasive.pki.RevokedSerials`: this
process's revocations at once, another process's at the next request after the CRL
file changed) or an expired one is refused with ``403`` and a one-line JSON error,
and counted in ``counters`` by reason.

- ``POST`` binds a function that writes: the arguments (path parameters, JSON body
  fields, ``$device`` = the certificate's CN, literals) are resolved and encoded, the
  call is accepted into the inbox, and the answer is ``202`` with the inbox id at once:
  ``{"ok": true, "inbox": 7, "status": "pending", "href": "/inbox/7"}``. The call is
  applied exactly once by the sender; ``GET /inbox/<id>`` (same certificate CN) says
  how it stands (``pending``, ``signed``, ``done`` with transaction and block, or
  ``reverted`` with the reason).
- ``GET`` binds a view: ``eth_call``, answered ``200`` with
  ``{"ok": true, "result": ...}`` (integers as JSON numbers, bytes as 0x-hex).

Refusals: ``400`` body not a JSON object or an argument that does not fit, ``403``
certificate, ``404``/``405`` routes, ``409`` a view that reverted, ``413`` body over
``settings.service.max_body_bytes``, ``502`` node unreachable.

Example::

    server = await RestBindings(routes, contract, inbox, sender, authority=ca,
                                settings=settings.service, name="shipping").start()
    server.url        # https://127.0.0.1:<port>
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import ssl
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import httptools

from pervasive.config import ServiceSettings
from pervasive.contracts.contract import Contract, Function
from pervasive.errors import ChainUnavailable, InvalidInput, NotFound, TransactionReverted
from pervasive.http import (
    Deferred,
    HttpServer,
    PeerCertificate,
    Request,
    Response,
    ServerOptions,
    error_response,
)
from pervasive.pki import CertificateAuthority, RevokedSerials
from pervasive.pki.authority import BROKER_HOSTS
from pervasive.service.arguments import ArgumentPlan
from pervasive.service.calls import CallSender
from pervasive.service.inbox import Inbox, NewCall
from pervasive.service.spec import RestBinding

__all__ = ["INBOX_PATH", "RestBindings", "RestRoute"]

INBOX_PATH = "/inbox/{id}"
"""Where a POST's caller asks how its call stands."""

_WILDCARD_HOSTS = ("0.0.0.0", "::", "")  # noqa: S104 - names, not a bind
_PARAMETER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_Handler = Callable[[Request, dict[str, str], str], Awaitable[Response]]


def _template(path: str) -> re.Pattern[str]:
    parts = _PARAMETER.split(path)
    pattern = "".join(
        re.escape(part) if index % 2 == 0 else f"(?P<{part}>[^/]+)"
        for index, part in enumerate(parts)
    )
    return re.compile(pattern)


def _json(value: Any) -> Any:
    """A view's return value as JSON: bytes as 0x-hex, tuples as lists."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, tuple | list):
        return [_json(v) for v in value]
    return value


def _answer(status: int, document: dict[str, Any]) -> Response:
    return Response(status, json.dumps(document, separators=(",", ":")).encode())


@dataclass(frozen=True)
class RestRoute:
    """A compiled ``[[rest]]`` binding: method, path template, function and argument plan."""

    binding: RestBinding
    function: Function
    plan: ArgumentPlan

    @classmethod
    def compile(cls, binding: RestBinding, function: Function) -> RestRoute:
        """Compile ``binding`` against ``function`` (:class:`SpecError` when it does not fit)."""
        plan = ArgumentPlan.compile(
            binding.args,
            function.inputs,
            origin="rest",
            function=function.signature,
            path_parameters=binding.parameters,
        )
        return cls(binding, function, plan)


class _TemplateServer(HttpServer):
    """An :class:`HttpServer` whose routes are path templates (``/a/{b}``)."""

    def __init__(
        self,
        routes: Sequence[tuple[str, re.Pattern[str], _Handler]],
        options: ServerOptions,
        *,
        rejections: Counter[str],
        refusal: Callable[[str, str, int], Response],
        identify: Callable[[PeerCertificate | None], str | Response],
    ) -> None:
        super().__init__({}, options, rejections=rejections, refusal=refusal)
        self._templates = list(routes)
        self._identify = identify

    def dispatch(
        self, method: str, target: bytes, body: bytes, peer: PeerCertificate | None = None
    ) -> Response | Deferred | Awaitable[Response]:
        try:
            url = httptools.parse_url(target)
        except httptools.HttpParserInvalidURLError:
            return self.refuse("bad_request", "the request target is not a URL path")
        path = url.path.decode("latin-1")
        allowed = []
        for route_method, pattern, handler in self._templates:
            found = pattern.fullmatch(path)
            if found is None:
                continue
            if route_method != method:
                allowed.append(route_method)
                continue
            identity = self._identify(peer)
            if isinstance(identity, Response):
                return identity
            parameters = {k: unquote(v) for k, v in found.groupdict().items()}
            request = Request(method, path, url.query or b"", body, peer)
            return handler(request, parameters, identity)
        if allowed:
            return self.refuse("bad_method", f"{method} is not served on {path}", 405)
        return self.refuse("not_found", f"no route {path}", 404)


class RestBindings:
    """The HTTPS listener of one service's ``[[rest]]`` routes."""

    def __init__(
        self,
        routes: Sequence[RestRoute],
        contract: Contract,
        inbox: Inbox,
        sender: CallSender,
        *,
        authority: CertificateAuthority,
        settings: ServiceSettings,
        name: str,
        counters: Counter[str] | None = None,
    ) -> None:
        self.routes = tuple(routes)
        self.contract = contract
        self.inbox = inbox
        self.sender = sender
        self.authority = authority
        self.settings = settings
        self.name = name
        self.counters: Counter[str] = counters if counters is not None else Counter()
        """``rest_accepted`` calls, ``rest_served`` views, refusals by reason."""
        self.url = ""
        self._revoked: RevokedSerials | None = None
        self._server: _TemplateServer | None = None
        self._starting: asyncio.Future[HttpServer] | None = None

    async def start(self) -> RestBindings:
        """Listen on ``settings.host:port`` (HTTPS, client certificates of the platform CA).

        Example: ``url = (await bindings.start()).url``.
        """
        self._revoked = RevokedSerials(self.authority)
        templates: list[tuple[str, re.Pattern[str], _Handler]] = []
        for route in self.routes:
            handler = self._post(route) if route.binding.method == "POST" else self._get(route)
            templates.append((route.binding.method, _template(route.binding.path), handler))
        templates.append(("GET", _template(INBOX_PATH), self._status))
        server = _TemplateServer(
            templates,
            ServerOptions(max_body_bytes=self.settings.max_body_bytes, idle_timeout=120.0),
            rejections=self.counters,
            refusal=self._refusal,
            identify=self._identify,
        )
        self._server = server
        # shielded: a task cancelled while the listener binds still gets it closed
        self._starting = asyncio.ensure_future(
            server.start(self.settings.host, self.settings.port, tls=self._tls_context())
        )
        try:
            await asyncio.shield(self._starting)
        except OSError as exc:
            await self.close()
            raise InvalidInput(
                f"service {self.name} cannot listen on {self.settings.host}:"
                f"{self.settings.port}: {exc.strerror}; choose another [service] port"
            ) from exc
        host = "127.0.0.1" if self.settings.host in _WILDCARD_HOSTS else self.settings.host
        self.url = f"https://{host}:{server.port}"
        return self

    async def close(self) -> None:
        """Stop listening and stop following the CA."""
        if self._starting is not None:
            with contextlib.suppress(OSError):
                await self._starting
            self._starting = None
        if self._server is not None:
            await self._server.close()
            self._server = None
        if self._revoked is not None:
            self._revoked.close()
            self._revoked = None

    def _tls_context(self) -> ssl.SSLContext:
        host = self.settings.host
        hosts = BROKER_HOSTS if host in _WILDCARD_HOSTS or host in BROKER_HOSTS else (host,)
        credentials = self.authority.server_credentials(f"service-{self.name}", hosts)
        context = credentials.server_ssl_context()
        # another CA's certificate fails the handshake; none is answered 403 in JSON
        context.verify_mode = ssl.CERT_OPTIONAL
        return context

    # -- identity and refusals ----------------------------------------------------------
    def _identify(self, peer: PeerCertificate | None) -> str | Response:
        if peer is None:
            return self._refuse(
                "no_certificate",
                "no client certificate: present the certificate the platform CA issued you",
                403,
            )
        assert self._revoked is not None
        if peer.serial in self._revoked:
            return self._refuse(
                "revoked", f"the certificate of {peer.common_name!r} is revoked; ask for a new one",
                403,
            )  # fmt: skip
        if peer.not_after < time.time():
            return self._refuse(
                "expired", f"the certificate of {peer.common_name!r} has expired; rotate it", 403
            )
        return peer.common_name

    def _refuse(self, reason: str, message: str, status: int) -> Response:
        return error_response(self.counters, reason, message, status)

    def _refusal(self, reason: str, message: str, status: int) -> Response:
        """The HTTP server's own refusals (counted there), as one JSON line."""
        if reason == "too_large":
            status = 413
            message = (
                f"the request exceeds {self.settings.max_body_bytes} bytes "
                "(settings.service.max_body_bytes)"
            )
        return _answer(status, {"ok": False, "reason": reason, "error": message})

    # -- handlers -----------------------------------------------------------------------
    def _post(self, route: RestRoute) -> _Handler:
        async def handle(request: Request, parameters: dict[str, str], identity: str) -> Response:
            body: Any = {}
            if request.body.strip():
                try:
                    body = json.loads(request.body)
                except (ValueError, UnicodeDecodeError):
                    body = None
            if not isinstance(body, dict):
                return self._refuse("bad_body", "the body must be a JSON object", 400)
            try:
                args = route.plan.resolve(body, {"device": identity}, parameters)
                calldata = route.function.encode(args)
            except InvalidInput as exc:
                return self._refuse("schema", str(exc), 400)
            call_id = self.inbox.accept(
                NewCall("rest", identity, None, route.function.name, calldata)
            )
            self.sender.wake()
            self.counters["rest_accepted"] += 1
            document = {"ok": True, "inbox": call_id, "status": "pending",
                        "href": INBOX_PATH.replace("{id}", str(call_id))}  # fmt: skip
            return _answer(202, document)

        return handle

    def _get(self, route: RestRoute) -> _Handler:
        async def handle(request: Request, parameters: dict[str, str], identity: str) -> Response:
            fields = {k.decode("latin-1"): v.decode() for k, v in request.params().items() if k}
            try:
                args = route.plan.resolve(fields, {"device": identity}, parameters)
                data = route.function.encode(args)
            except InvalidInput as exc:
                return self._refuse("schema", str(exc), 400)
            try:
                raw = await self.contract.ledger.call(self.contract.address, data)
            except TransactionReverted as exc:
                return self._refuse("reverted", str(exc), 409)
            except ChainUnavailable as exc:
                return self._refuse("chain_unavailable", str(exc), 502)
            self.counters["rest_served"] += 1
            result = _json(route.function.decode_output(raw))
            return _answer(200, {"ok": True, "function": route.function.name, "result": result})

        return handle

    async def _status(
        self, request: Request, parameters: dict[str, str], identity: str
    ) -> Response:
        try:
            call = self.inbox.get(int(parameters["id"]))
        except (ValueError, NotFound):
            call = None
        if call is None or call.origin != "rest" or call.source != identity:
            return self._refuse("not_found", f"no call {parameters['id']} of yours", 404)
        document: dict[str, Any] = {"ok": True, "inbox": call.id, "status": call.status.value}
        if call.transaction_hash is not None:
            document["transaction"] = call.transaction_hash
        if call.block_number is not None:
            document["block"] = call.block_number
        if call.error is not None:
            document["error"] = call.error
        return _answer(200, document)
