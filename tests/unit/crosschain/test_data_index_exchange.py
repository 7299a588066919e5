"""Sys's state machine without sockets: datasets, offers bound to an index, nonces."""

from __future__ import annotations

import hashlib

import pytest

from pervasive.crosschain.chains import PostedIndex
from pervasive.crosschain.data_exchange import DataExchange, Offer, Refusal
from pervasive.crosschain.data_index import DataRequest, DatasetSpec, data_request_message
from pervasive.crypto import PrivateKey, keccak256, sign_message
from pervasive.devices import SensorSpec
from pervasive.devices.declarations import sensor_topic
from pervasive.errors import InvalidInput
from pervasive.sensing import sign_sensor_message

SENSOR = PrivateKey(bytes([0x51]) * 32)
CONSUMER = PrivateKey(bytes([0xC1]) * 32)
DECLARATION = SensorSpec("hum", "humidity", (("percent", "uint64"),)).declaration(SENSOR.public_key)
TOPIC = sensor_topic("gh-1", "hum")
PAYMENT = keccak256(b"payment")
NOW = 1_800_000_000.0


def reading(q: int) -> bytes:
    return sign_sensor_message(SENSOR, DECLARATION, q, [q % 100]).encode()


def posted(ciphertext: bytes, consumer: str) -> PostedIndex:
    return PostedIndex(
        "evm:31337", PAYMENT, "0x01", 1, "0x02", int(NOW), "0xP", consumer,
        hashlib.sha256(ciphertext).digest(), ciphertext,
    )  # fmt: skip


@pytest.fixture
def exchange() -> DataExchange:
    exchange = DataExchange(max_nonces=2)
    exchange.register(DatasetSpec("greenhouse", (TOPIC,), (DECLARATION,), capacity=3))
    return exchange


def digest() -> bytes:
    return DatasetSpec("greenhouse", (TOPIC,), (DECLARATION,), capacity=3).digest


def test_a_full_dataset_drops_its_oldest_and_never_takes_it_back(exchange: DataExchange) -> None:
    assert [exchange.ingest(TOPIC, reading(q)) for q in range(5)] == [1, 1, 1, 1, 1]
    assert [r.sequence for r in exchange.readings(digest()) or ()] == [2, 3, 4]
    assert exchange.ingest(TOPIC, reading(1)) == 0  # evicted: a replay now, not news
    assert exchange.ingest(TOPIC, reading(3)) == 0  # kept already
    assert exchange.ingest("pervasive/devices/gh-2/sensors/hum", reading(9)) == 0
    assert [r.sequence for r in exchange.readings(digest()) or ()] == [2, 3, 4]


def test_open_nonces_are_bounded_and_expired_ones_make_room(exchange: DataExchange) -> None:
    assert not isinstance(exchange.issue_nonce(NOW), Refusal)
    assert not isinstance(exchange.issue_nonce(NOW), Refusal)
    refused = exchange.issue_nonce(NOW + 1)
    assert isinstance(refused, Refusal) and refused.status == 503
    assert not isinstance(exchange.issue_nonce(NOW + exchange.nonce_ttl + 1), Refusal)
    assert exchange.refusals == {"nonces_exhausted": 1}


def test_one_index_per_payment_and_only_for_a_registered_dataset(
    exchange: DataExchange,
) -> None:
    exchange.seal(PAYMENT, digest(), CONSUMER.public_key, 2**40, sys_url="http://sys")
    with pytest.raises(InvalidInput, match="already has an index"):
        exchange.seal(PAYMENT, digest(), CONSUMER.public_key, 2**40, sys_url="http://sys")
    with pytest.raises(InvalidInput, match="no dataset"):
        exchange.seal(keccak256(b"2"), bytes(32), CONSUMER.public_key, 2**40, sys_url="http://s")


def test_an_index_posted_for_another_consumer_releases_nothing(exchange: DataExchange) -> None:
    exchange.ingest(TOPIC, reading(0))
    ciphertext = exchange.seal(PAYMENT, digest(), CONSUMER.public_key, 2**40, sys_url="http://sys")
    issued = exchange.issue_nonce(NOW)
    assert not isinstance(issued, Refusal)
    nonce = issued[0]
    signature = sign_message(CONSUMER, data_request_message(nonce, ciphertext)).to_bytes()
    offer = exchange.admit(DataRequest(PAYMENT, nonce, signature), NOW)
    assert isinstance(offer, Offer) and offer.consumer == CONSUMER.address

    stranger = PrivateKey(bytes([0x5E]) * 32).address
    refused = exchange.release(offer, posted(ciphertext, stranger))
    assert isinstance(refused, Refusal) and refused.reason == "index_mismatch"
    released = exchange.release(offer, posted(ciphertext, CONSUMER.address.lower()))
    assert not isinstance(released, Refusal)
    assert [r.message for r in released] == [reading(0)]
    assert exchange.served == 1
