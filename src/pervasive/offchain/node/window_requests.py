"""Stored windows served on request: off-chain proof of storage (paper 002, section 4, QoS).

Under :attr:`~pervasive.offchain.qos.QoS.OFFCHAIN_PROOF` every node keeps each window
``w[t]``; the chain holds only ``H(w[t])``. A party or a node of the agreement asks a
node for ``w[t]`` and checks what it gets against the chain: the data is believed
because it hashes to the recorded ``H(w[t])`` and every sensor message in it carries its
sensor's signature, not because of who sent it. The node's signature on the reply
binds the answer (or its "not held") to the node that gave it.

Both messages are committee :class:`~pervasive.committee.Envelope` s in the agreement's
EIP-712 domain (so a request cannot be replayed against another agreement):

- request, kind ``WINDOW_REQUEST``, body empty (:class:`~pervasive.offchain.bodies.WindowRequest`),
  ``round`` = ``t``, signed by the requester, published on the node's
  ``window_request_topic`` (``transport.py``);
- reply, kind ``WINDOW_DATA``, the request's nonce in the signed envelope, body
  :class:`~pervasive.offchain.bodies.WindowReply` ``(bool held, bytes data)`` with
  ``data`` = :meth:`WindowData.encode` of ``w[t]``, signed by the node, published on
  the requester's ``window_reply_topic``.

:class:`WindowServer` (sans-I/O) turns a request into a reply; a request from anyone
who is neither a party nor a node, badly signed, or replayed, is refused and counted.
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

from pervasive.committee import Envelope, EnvelopeReceiver, decode_envelope
from pervasive.crypto import PrivateKey
from pervasive.errors import InvalidInput, NotFound, UserError
from pervasive.messaging.port import MqttConnection
from pervasive.offchain.agreement import AgreementSpec
from pervasive.offchain.bodies import Body, MessageKind, WindowReply, WindowRequest, decode_body
from pervasive.offchain.node.transport import window_reply_topic, window_request_topic
from pervasive.offchain.qos import WindowStore
from pervasive.offchain.window_data import WindowData, pack_window

__all__ = ["NotAuthorised", "WindowServer", "fetch_window"]


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
        self._receiver: EnvelopeReceiver[Body] = EnvelopeReceiver(
            agreement.domain_separator,
            agreement.address,
            senders=self._allowed,
            decode_body=decode_body,
        )

    def answer(self, payload: bytes) -> tuple[str, bytes]:
        """The reply to a request: ``(topic, payload)``; raises and counts a refusal.

        Raises :class:`InvalidInput` (undecodable, wrong kind or agreement),
        :class:`~pervasive.errors.InvalidSignature`, :class:`~pervasive.errors.ReplayedMessage`,
        or :class:`NotAuthorised` for a requester who is neither party nor node.
        """
        try:
            request = self._checked(payload)
        except UserError as exc:
            self.refused[type(exc).__name__] += 1
            raise
        try:
            windows = self._store.serve(request.round)
        except NotFound:
            reply = WindowReply(held=False)
            self.not_held += 1
        else:
            reply = WindowReply(held=True, data=pack_window(windows, self._agreement.sensors))
            self.served += 1
        answer = Envelope.create(
            self._key,
            self._agreement.domain_separator,
            session=self._agreement.address,
            round=request.round,
            kind=MessageKind.WINDOW_DATA,
            nonce=request.nonce,
            body=reply.encode(),
        )
        return window_reply_topic(self._agreement.address, request.sender), answer.encode()

    def _checked(self, payload: bytes) -> Envelope:
        request = decode_envelope(payload)
        if request.kind != MessageKind.WINDOW_REQUEST:
            raise InvalidInput(f"a kind {request.kind} message is not a window request")
        if request.sender not in self._allowed:
            raise NotAuthorised(
                f"{request.sender} is neither a party nor a node of {self._agreement.address}"
            )
        return self._receiver.accept(request).envelope


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
    request = Envelope.create(
        key,
        agreement.domain_separator,
        session=agreement.address,
        round=t,
        kind=MessageKind.WINDOW_REQUEST,
        nonce=nonce,
        body=WindowRequest().encode(),
    )
    await connection.publish(window_request_topic(agreement.address, node), request.encode())
    receiver: EnvelopeReceiver[Body] = EnvelopeReceiver(
        agreement.domain_separator, agreement.address, senders=(node,), decode_body=decode_body
    )
    async with asyncio.timeout(timeout):
        async for message in connection.messages():
            if message.topic != reply_topic:
                continue
            reply = decode_envelope(message.payload)
            if reply.nonce != nonce or reply.kind != MessageKind.WINDOW_DATA:
                continue  # an answer to an earlier request
            if reply.round != t:
                raise InvalidInput(f"the reply of {reply.sender} is for window {reply.round}")
            body = receiver.accept(reply).body
            assert isinstance(body, WindowReply)
            return _opened(body, node, t)
    raise TimeoutError(f"node {node} did not answer")  # pragma: no cover - the stream is endless


def _opened(reply: WindowReply, node: str, t: int) -> WindowData:
    if not reply.held:
        raise NotFound(f"node {node} does not hold window {t} (its QoS drops windows)")
    window = WindowData.decode(reply.data)
    window.verify_signatures()
    return window
