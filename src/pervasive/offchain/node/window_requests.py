"""Stored windows served on request: off-chain proof of storage (paper 002, section 4, QoS).

Under :attr:`~pervasive.offchain.qos.QoS.OFFCHAIN_PROOF` every node keeps each window
``w[t]``; the chain holds only ``H(w[t])``. A party or a node of the agreement asks a
node for ``w[t]`` and checks what it gets against the chain: the data is believed
because it hashes to the recorded ``H(w[t])`` and every sensor message in it carries its
sensor's signature, not because of who sent it. The node's signature on the reply
binds the answer (or its "not held") to the node that gave it.

Both messages are :class:`~pervasive.offchain.messages.ProtocolMessage` envelopes in the
agreement's EIP-712 domain (so a request cannot be replayed against another agreement):

- request, kind ``WINDOW_REQUEST``, body empty, ``window`` = ``t``, signed by the
  requester, published on the node's ``window_request_topic`` (``transport.py``);
- reply, kind ``WINDOW_DATA``, the request's nonce in the signed envelope, body
  ``abi_encode(bool held, bytes data)`` with ``data`` = :meth:`WindowData.encode` of
  ``w[t]``, signed by the node, published on the requester's ``window_reply_topic``.

:class:`WindowServer` (sans-I/O) turns a request into a reply; a request from anyone
who is neither a party nor a node, or badly signed, is refused and counted.
:func:`fetch_window` is the requester's side over any
:class:`~pervasive.messaging.port.MqttConnection`.

Example::

    data = await fetch_window(connection, party_key, spec, node_address, t=0)
    assert data.hash == (await agreement.record(0)).window_hash
"""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter

from pervasive.crypto import PrivateKey, abi_decode, abi_encode
from pervasive.errors import InvalidInput, NotFound, UserError
from pervasive.messaging.port import MqttConnection
from pervasive.offchain.agreement import AgreementSpec
from pervasive.offchain.messages import MessageKind, ProtocolMessage, decode_protocol_message
from pervasive.offchain.node.transport import window_reply_topic, window_request_topic
from pervasive.offchain.node.updates import pack_window
from pervasive.offchain.qos import WindowStore
from pervasive.offchain.window_data import WindowData

__all__ = ["NotAuthorised", "WindowServer", "fetch_window"]

_REPLY_BODY = ["bool", "bytes"]


class NotAuthorised(UserError, PermissionError):
    """The requester is neither a party nor a node of the agreement."""


class WindowServer:
    """A node's answers to window requests: verified, authorised, signed.

    Example: ``topic, payload = server.answer(request_payload)``.
    """

    def __init__(
        self,
        key: PrivateKey,
        agreement: AgreementSpec,
        store: WindowStore,
    ) -> None:
        self._key = key
        self._agreement = agreement
        self._store = store
        self._allowed = frozenset((*agreement.nodes, *agreement.parties))
        self.served = 0
        """Requests answered with the window."""
        self.not_held = 0
        """Requests answered with "not held" (dropped under the QoS, or never built)."""
        self.refused: Counter[str] = Counter()
        """Requests refused, by reason."""

    def answer(self, payload: bytes) -> tuple[str, bytes]:
        """The reply to a request: ``(topic, payload)``; raises and counts a refusal.

        Raises :class:`InvalidInput` (undecodable, wrong kind or agreement),
        :class:`~pervasive.errors.InvalidSignature`, or :class:`NotAuthorised` for a
        requester who is neither party nor node.
        """
        try:
            request = self._checked(payload)
        except UserError as exc:
            self.refused[type(exc).__name__] += 1
            raise
        try:
            windows = self._store.serve(request.window)
        except NotFound:
            data, held = b"", False
            self.not_held += 1
        else:
            data, held = pack_window(windows, self._agreement), True
            self.served += 1
        reply = ProtocolMessage.create(
            self._key,
            self._agreement.domain_separator,
            agreement=self._agreement.address,
            window=request.window,
            kind=MessageKind.WINDOW_DATA,
            nonce=request.nonce,
            body=abi_encode(_REPLY_BODY, [held, data]),
        )
        return window_reply_topic(self._agreement.address, request.sender), reply.encode()

    def _checked(self, payload: bytes) -> ProtocolMessage:
        request = decode_protocol_message(payload)
        if request.kind is not MessageKind.WINDOW_REQUEST:
            raise InvalidInput(f"a {request.kind.name} message is not a window request")
        if request.agreement != self._agreement.address:
            raise InvalidInput(f"the request names agreement {request.agreement}")
        request.verify(self._agreement.domain_separator)
        if request.sender not in self._allowed:
            raise NotAuthorised(
                f"{request.sender} is neither a party nor a node of {self._agreement.address}"
            )
        return request


async def fetch_window(
    connection: MqttConnection,
    key: PrivateKey,
    agreement: AgreementSpec,
    node: str,
    t: int,
    *,
    timeout: float = 10.0,
) -> WindowData:
    """Ask ``node`` for ``w[t]``; return it once its node signature and every sensor
    signature check out. Compare its :attr:`WindowData.hash` with the on-chain record.

    ``connection`` must be subscribed to nothing else on this agreement's reply topic of
    ``key``'s address (it is subscribed here). Raises :class:`NotFound` when the node does
    not hold the window, :class:`TimeoutError` when it does not answer.

    Example: ``data = await fetch_window(mqtt, key, spec, spec.nodes[0], 0)``.
    """
    reply_topic = window_reply_topic(agreement.address, key.address)
    await connection.subscribe(reply_topic, qos=1)
    nonce = secrets.randbits(63)
    request = ProtocolMessage.create(
        key,
        agreement.domain_separator,
        agreement=agreement.address,
        window=t,
        kind=MessageKind.WINDOW_REQUEST,
        nonce=nonce,
        body=b"",
    )
    await connection.publish(window_request_topic(agreement.address, node), request.encode())
    async with asyncio.timeout(timeout):
        async for message in connection.messages():
            if message.topic != reply_topic:
                continue
            reply = decode_protocol_message(message.payload)
            if reply.nonce != nonce or reply.kind is not MessageKind.WINDOW_DATA:
                continue  # an answer to an earlier request
            return _opened(reply, agreement, node, t)
    raise TimeoutError(f"node {node} did not answer")  # pragma: no cover - the stream is endless


def _opened(reply: ProtocolMessage, agreement: AgreementSpec, node: str, t: int) -> WindowData:
    if reply.sender != node or reply.window != t or reply.agreement != agreement.address:
        raise InvalidInput(f"the reply is from {reply.sender} for window {reply.window}")
    reply.verify(agreement.domain_separator)
    held, data = abi_decode(_REPLY_BODY, reply.body)
    if not held:
        raise NotFound(f"node {node} does not hold window {t} (its QoS drops windows)")
    window = WindowData.decode(data)
    window.verify_signatures()
    return window
