"""P's data exchange system Sys (paper 003, IV-A component 6, V-A step 1, V-B).

Sys keeps datasets of P's device readings and hands one to a consumer C only against
the data index P sealed to C's key and posted on the data chain B_d:

1. P registers a ``DatasetSpec`` (:mod:`.data_index`: sensor topics and declarations);
   its ``digest`` (a one-way function of the dataset's identity, V-A step 1) is what C
   looks up at ``GET /datasets/<digest>`` before paying; the answer says the
   data exists and how many readings it holds, never the readings.
2. Readings come from the platform broker: each is verified against the dataset's
   sensor declarations (:class:`~pervasive.sensing.verifier.SensorVerifier`), so a
   forged device signature never enters a dataset; QoS 1 redeliveries are kept once.
3. After C pays, P calls :meth:`DataExchange.seal` (remembering C's address for the
   payment id) and posts the ciphertext on B_d.
4. C takes a one-time ``POST /nonce`` and sends ``POST /data`` with the payment id, the
   nonce and its EIP-191 signature over ``data_request_message`` (:mod:`.data_index`).
   Sys checks nonce, payment id, ciphertext, signer and expiry (:meth:`DataExchange.admit`),
   then that the very ciphertext is posted on B_d (:meth:`DataExchange.release`).
   Anything else gets 400/403 with a one-line reason, counted in ``GET /metrics``.
   :func:`fetch_dataset` is C's side of this step.

:class:`DataExchange` is sans I/O (values in, :class:`Refusal` or results out);
:class:`DataExchangeServer` is the aiohttp adapter, the MQTT follower and the chain call.

Example::

    exchange = DataExchange()
    digest = exchange.register(DatasetSpec("cold-room", (topic,), (declaration,)))
    server = DataExchangeServer(exchange, data_chain)
    url = await server.start()
    follower = asyncio.create_task(server.follow(mqtt_client))
    ciphertext = exchange.seal(payment_id, digest, consumer.public_key, expiry, sys_url=url)
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import secrets
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
from aiohttp import web

from pervasive.crosschain.chains import PostedIndex
from pervasive.crosschain.data_index import (
    DataRequest,
    DatasetSpec,
    IndexRecord,
    data_request_message,
    parse_data_request,
    seal_index,
)
from pervasive.crypto import PrivateKey, PublicKey, keccak256, recover_message, sign_message
from pervasive.errors import ChainUnavailable, InvalidInput
from pervasive.messaging.port import MqttConnection
from pervasive.sensing.verifier import SensorVerifier

__all__ = [
    "MAX_REQUEST_BYTES",
    "DataExchange",
    "DataExchangeServer",
    "IndexSource",
    "Offer",
    "Refusal",
    "ServedReading",
    "fetch_dataset",
]

MAX_REQUEST_BYTES = 16 * 1024
"""Largest request body Sys reads; a data request is well under 3 KiB."""
_LOG = logging.getLogger(__name__)


class IndexSource(Protocol):
    """What Sys asks the data chain: the index posted for a payment (a ``DataChain`` has it)."""

    name: str

    async def find_index(self, payment_id: bytes) -> PostedIndex | None:
        """The index posted for ``payment_id`` in the canonical chain, or None."""
        ...


@dataclass(frozen=True)
class ServedReading:
    """One verified reading as served: C can check ``message`` against ``d_s`` itself."""

    topic: str
    sensor: str
    sequence: int
    message: bytes
    """The signed wire form ``m_{s,q}`` exactly as the device published it."""


@dataclass(frozen=True)
class Offer:
    """What Sys remembers of an index it sealed: whom it is for and which ciphertext."""

    payment_id: bytes
    consumer: str
    dataset_digest: bytes
    ciphertext: bytes
    expiry: int


@dataclass(frozen=True)
class Refusal:
    """A request Sys turns down: HTTP status, counter name, one-line reason for the caller."""

    status: int
    reason: str
    message: str


@dataclass
class _Dataset:
    spec: DatasetSpec
    verifier: SensorVerifier
    readings: dict[tuple[str, int], ServedReading] = field(default_factory=dict)
    floor: dict[str, int] = field(default_factory=dict)
    """Per sensor, the highest ``q`` evicted: a replay of an evicted reading stays out."""


class DataExchange:
    """The state of Sys, sans I/O: datasets, sealed offers, outstanding nonces, counters.

    Example: ``exchange.admit(request, now=time.time())`` is an :class:`Offer` or a
    :class:`Refusal`.
    """

    def __init__(self, *, nonce_ttl: float = 60.0, max_nonces: int = 4096) -> None:
        self.nonce_ttl = nonce_ttl
        self.max_nonces = max_nonces
        self._datasets: dict[bytes, _Dataset] = {}
        self._offers: dict[bytes, Offer] = {}
        self._nonces: dict[bytes, float] = {}
        self.refusals: Counter[str] = Counter()
        """Refused requests by reason (``unknown_nonce``, ``wrong_consumer``...)."""
        self.rejected_readings: Counter[str] = Counter()
        """Readings kept out of a dataset, by error class (``InvalidSignature``...)."""
        self.served = 0

    def register(self, spec: DatasetSpec) -> bytes:
        """Start keeping readings for ``spec``; returns its digest.

        Example: ``digest = exchange.register(spec)``.
        """
        if spec.digest not in self._datasets:
            self._datasets[spec.digest] = _Dataset(spec, SensorVerifier(spec.sensors))
        return spec.digest

    def topics(self) -> tuple[str, ...]:
        """Every sensor topic a registered dataset reads. Example: ``exchange.topics()``."""
        return tuple(sorted({t for d in self._datasets.values() for t in d.spec.topics}))

    def readings(self, digest: bytes) -> tuple[ServedReading, ...] | None:
        """The readings of a dataset in arrival order, or None if unknown.

        Example: ``len(exchange.readings(digest) or ())``.
        """
        dataset = self._datasets.get(digest)
        return None if dataset is None else tuple(dataset.readings.values())

    def ingest(self, topic: str, payload: bytes) -> int:
        """Verify one broker message and add it to every dataset of its topic.

        Returns how many datasets took it (0 for an invalid or repeated reading).

        Example: ``exchange.ingest(message.topic, message.payload)``.
        """
        taken = 0
        for dataset in self._datasets.values():
            if topic not in dataset.spec.topics:
                continue
            try:
                verified = dataset.verifier.verify(payload)
            except InvalidInput as exc:
                reason = type(exc).__name__
                self.rejected_readings[reason] += 1
                # debug: a misbehaving device must not flood the log; /metrics counts it
                _LOG.debug("reading on %s kept out of %s: %s", topic, dataset.spec.dataset_id, exc)
                continue
            key = (verified.sensor, verified.sequence)
            if key in dataset.readings or key[1] <= dataset.floor.get(key[0], -1):
                continue  # a QoS 1 redelivery or a replay: kept once
            dataset.readings[key] = ServedReading(topic, *key, payload)
            if len(dataset.readings) > dataset.spec.capacity:
                sensor, sequence = next(iter(dataset.readings))
                del dataset.readings[sensor, sequence]
                dataset.floor[sensor] = max(sequence, dataset.floor.get(sensor, -1))
            taken += 1
        return taken

    def seal(
        self,
        payment_id: bytes,
        dataset_digest: bytes,
        consumer: PublicKey,
        expiry: int,
        *,
        sys_url: str,
    ) -> bytes:
        """Seal the data index of a paid dataset to C's key and remember the offer.

        Raises :class:`~pervasive.errors.InvalidInput` for an unknown dataset or a
        payment id already sealed (one index per payment, as the DataIndex contract).

        Example: ``ciphertext = exchange.seal(pid, digest, c_key, expiry, sys_url=url)``.
        """
        if dataset_digest not in self._datasets:
            raise InvalidInput(f"no dataset {dataset_digest.hex()} is registered: register it")
        if payment_id in self._offers:
            raise InvalidInput(f"payment {payment_id.hex()} already has an index sealed")
        spec = self._datasets[dataset_digest].spec
        index = IndexRecord(payment_id, spec.dataset_id, sys_url, dataset_digest, expiry)
        ciphertext = seal_index(index, consumer)
        self._offers[payment_id] = Offer(
            payment_id, consumer.address, dataset_digest, ciphertext, expiry
        )
        return ciphertext

    def issue_nonce(self, now: float) -> tuple[bytes, float] | Refusal:
        """A fresh single-use 32-byte challenge and when it expires.

        Example: ``nonce, expires = exchange.issue_nonce(time.time())``.
        """
        if len(self._nonces) >= self.max_nonces:
            self._nonces = {n: t for n, t in self._nonces.items() if t >= now}
            if len(self._nonces) >= self.max_nonces:
                return self._refuse(503, "nonces_exhausted", "too many open challenges; retry")
        nonce = secrets.token_bytes(32)
        self._nonces[nonce] = now + self.nonce_ttl
        return nonce, now + self.nonce_ttl

    def admit(self, request: DataRequest, now: float) -> Offer | Refusal:
        """Every check that needs no chain: nonce, payment id, ciphertext, signer, expiry.

        The nonce is spent by any attempt, so a refused request cannot be retried with it.

        Example: ``offer = exchange.admit(parse_data_request(body), time.time())``.
        """
        expires = self._nonces.pop(request.nonce, None)
        if expires is None:
            return self._refuse(403, "unknown_nonce", "nonce unknown or already used: POST /nonce")
        if now > expires:
            return self._refuse(403, "expired_nonce", "nonce expired: POST /nonce for a new one")
        offer = self._offers.get(request.payment_id)
        if offer is None:
            return self._refuse(403, "unknown_payment", "Sys sealed no index for this payment id")
        if request.ciphertext is not None and not hmac.compare_digest(
            keccak256(request.ciphertext), keccak256(offer.ciphertext)
        ):
            return self._refuse(403, "wrong_ciphertext", "not the index sealed for this payment")
        try:
            signer = recover_message(
                data_request_message(request.nonce, offer.ciphertext), request.signature
            )
        except InvalidInput:
            return self._refuse(403, "bad_signature", "the signature does not verify")
        if not hmac.compare_digest(signer.lower().encode(), offer.consumer.lower().encode()):
            return self._refuse(
                403, "wrong_consumer", "signed by someone other than the index's consumer"
            )
        if now > offer.expiry:
            return self._refuse(403, "expired_index", "the data index has expired")
        return offer

    def release(
        self, offer: Offer, posted: PostedIndex | None
    ) -> tuple[ServedReading, ...] | Refusal:
        """The dataset for an admitted offer if its very ciphertext is posted on B_d.

        Example: ``exchange.release(offer, await chain.find_index(offer.payment_id))``.
        """
        if posted is None:
            return self._refuse(403, "index_not_posted", "index not on the data chain yet; retry")
        if not posted.matches(offer.ciphertext) or (
            posted.consumer and posted.consumer.lower() != offer.consumer.lower()
        ):
            return self._refuse(403, "index_mismatch", "the posted index is not the sealed one")
        self.served += 1
        return tuple(self._datasets[offer.dataset_digest].readings.values())

    def _refuse(self, status: int, reason: str, message: str) -> Refusal:
        self.refusals[reason] += 1
        return Refusal(status, reason, message)


def _json(status: int, body: Mapping[str, Any]) -> web.Response:
    return web.json_response(body, status=status)


def _refused(refusal: Refusal) -> web.Response:
    # the reason names a check, never the nonce, signature or ciphertext
    _LOG.info("data request refused: %s", refusal.reason)
    return _json(refusal.status, {"error": refusal.reason, "message": refusal.message})


class DataExchangeServer:
    """Sys over HTTP (aiohttp) and MQTT: the thin adapter around :class:`DataExchange`.

    Example::

        server = DataExchangeServer(exchange, data_chain)
        url = await server.start()          # http://127.0.0.1:<port>
        await server.stop()
    """

    def __init__(
        self,
        exchange: DataExchange,
        chain: IndexSource,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.exchange = exchange
        self.chain = chain
        self._host, self._port, self._clock = host, port, clock
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.subscribed = asyncio.Event()
        """Set once :meth:`follow` has subscribed to every dataset topic."""
        self.app = web.Application(client_max_size=MAX_REQUEST_BYTES)
        self.app.add_routes(
            [
                web.get("/datasets/{digest}", self._dataset),
                web.post("/nonce", self._nonce),
                web.post("/data", self._data),
                web.get("/metrics", self._metrics),
                web.get("/health", self._health),
            ]
        )

    async def start(self) -> str:
        """Listen; returns the base URL (the one to put in data indices).

        Example: ``url = await server.start()``.
        """
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://{self._host}:{port}"
        return self.url

    async def stop(self) -> None:
        """Stop listening. Example: ``await server.stop()``."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def follow(self, connection: MqttConnection) -> None:
        """Subscribe to every dataset topic and ingest readings until cancelled.

        Example: ``task = asyncio.create_task(server.follow(mqtt_client))``.
        """
        for topic in self.exchange.topics():
            await connection.subscribe(topic)
        self.subscribed.set()
        async for message in connection.messages():
            self.exchange.ingest(message.topic, message.payload)

    async def _dataset(self, request: web.Request) -> web.Response:
        try:
            digest = bytes.fromhex(request.match_info["digest"].removeprefix("0x"))
        except ValueError:
            digest = b""
        if len(digest) != 32:
            self.exchange.refusals["malformed"] += 1
            return _json(400, {"error": "malformed", "message": "a digest is 32 bytes of hex"})
        readings = self.exchange.readings(digest)
        if readings is None:
            return _json(404, {"exists": False})
        return _json(200, {"exists": True, "readings": len(readings)})

    async def _nonce(self, request: web.Request) -> web.Response:
        issued = self.exchange.issue_nonce(self._clock())
        if isinstance(issued, Refusal):
            return _refused(issued)
        nonce, expires = issued
        return _json(200, {"nonce": "0x" + nonce.hex(), "expires": int(expires)})

    async def _data(self, request: web.Request) -> web.Response:
        try:
            parsed = parse_data_request(json.loads(await request.read()))
        except web.HTTPRequestEntityTooLarge:
            self.exchange.refusals["too_large"] += 1
            return _json(413, {"error": "too_large", "message": "request body over 16 KiB"})
        except (ValueError, RecursionError) as exc:  # InvalidInput, JSON, deep nesting
            self.exchange.refusals["malformed"] += 1
            reason = str(exc) if isinstance(exc, InvalidInput) else "body is not a JSON object"
            return _json(400, {"error": "malformed", "message": reason[:200]})
        offer = self.exchange.admit(parsed, self._clock())
        if isinstance(offer, Refusal):
            return _refused(offer)
        try:
            posted = await self.chain.find_index(offer.payment_id)
        except (ChainUnavailable, TimeoutError, OSError) as exc:
            _LOG.warning("data chain %s unreachable: %s", self.chain.name, exc)
            return _json(503, {"error": "chain_unavailable", "message": "retry later"})
        released = self.exchange.release(offer, posted)
        if isinstance(released, Refusal):
            return _refused(released)
        return _json(
            200,
            {
                "payment_id": "0x" + offer.payment_id.hex(),
                "dataset_digest": "0x" + offer.dataset_digest.hex(),
                "readings": [
                    {
                        "topic": r.topic,
                        "sensor": r.sensor,
                        "sequence": r.sequence,
                        "message": "0x" + r.message.hex(),
                    }
                    for r in released
                ],
            },
        )

    async def _metrics(self, request: web.Request) -> web.Response:
        return _json(
            200,
            {
                "served": self.exchange.served,
                "refusals": dict(self.exchange.refusals),
                "rejected_readings": dict(self.exchange.rejected_readings),
            },
        )

    async def _health(self, request: web.Request) -> web.Response:
        return _json(200, {"ok": True, "chain": self.chain.name})


async def fetch_dataset(
    session: aiohttp.ClientSession, index: IndexRecord, ciphertext: bytes, key: PrivateKey
) -> tuple[ServedReading, ...] | Refusal:
    """C's side of step 7: take a nonce, sign the request, fetch the readings from Sys.

    ``index`` is what :func:`~pervasive.crosschain.data_index.open_index` gave for
    ``ciphertext``; a refusal comes back as the :class:`Refusal` Sys sent.

    Example: ``readings = await fetch_dataset(session, index, ciphertext, consumer_key)``.
    """
    async with session.post(f"{index.sys_url}/nonce") as reply:
        issued = await reply.json()
        if reply.status != 200:
            return Refusal(reply.status, issued["error"], issued["message"])
    nonce = bytes.fromhex(issued["nonce"].removeprefix("0x"))
    signature = sign_message(key, data_request_message(nonce, ciphertext)).to_bytes()
    body = {
        "payment_id": index.payment_id.hex(),
        "nonce": nonce.hex(),
        "signature": signature.hex(),
        "ciphertext": ciphertext.hex(),
    }
    async with session.post(f"{index.sys_url}/data", json=body) as reply:
        answer = await reply.json()
        if reply.status != 200:
            return Refusal(reply.status, answer["error"], answer["message"])
    return tuple(
        ServedReading(
            r["topic"], r["sensor"], r["sequence"], bytes.fromhex(r["message"].removeprefix("0x"))
        )
        for r in answer["readings"]
    )
