"""What a node observes, without a network: JSON paths to integers, the --allow guard
(SSRF), CID content through the injected reader; DEVICE is not fetched (the node's
reading book answers it: test_oracle_readings.py)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pervasive.contracts.oracle_hub import QueryKind
from pervasive.crypto import keccak256
from pervasive.errors import NotFound
from pervasive.oracle import (
    SourceFailed,
    SourceFetcher,
    SourceRefused,
    extract_value,
    url_allowed,
)

ALLOW = ["http://127.0.0.1:8080/ShipmentCost"]


@given(value=st.integers(0, 2**256 - 1), keys=st.lists(st.text("abc", min_size=1), max_size=4))
def test_the_integer_at_a_path_is_found_however_deep(value: int, keys: list[str]) -> None:
    node: object = value
    for key in reversed(keys):
        node = {key: node}
    assert extract_value(json.dumps(node).encode(), ".".join(keys) or "") == value


@pytest.mark.parametrize(
    ("body", "path", "value"),
    [
        (b'{"data": {"items": [{"price": 7}, {"price": 9}]}}', "data.items.1.price", 9),
        (b'{"cost": "1234"}', "cost", 1234),
        (b" 42\n", "", 42),
    ],
)
def test_paths_through_lists_strings_of_digits_and_plain_bodies(
    body: bytes, path: str, value: int
) -> None:
    assert extract_value(body, path) == value


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (b'{"cost": 1.5}', "cost"),
        (b'{"cost": true}', "cost"),
        (b'{"cost": -1}', "cost"),
        (b'{"cost": 1}', "price"),
        (b"[1, 2]", "5"),
        (b"not json", "cost"),
        (b"12a", ""),
        (b"\xff", ""),
    ],
)
def test_anything_but_an_unsigned_integer_is_a_failed_observation(body: bytes, path: str) -> None:
    with pytest.raises(SourceFailed):
        extract_value(body, path)


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://127.0.0.1:8080/ShipmentCost?device=VerticalPump", True),
        ("http://127.0.0.1:8080/ShipmentCostly", True),  # a path prefix, as written
        ("http://127.0.0.1:8080/admin", False),
        ("http://127.0.0.1:8081/ShipmentCost", False),
        ("https://127.0.0.1:8080/ShipmentCost", False),
        ("http://localhost:8080/ShipmentCost", False),
        ("http://127.0.0.1:8080@169.254.169.254/ShipmentCost", False),
        ("http://user@127.0.0.1:8080/ShipmentCost", False),
        ("file:///etc/passwd", False),
        ("http://127.0.0.1:99999/ShipmentCost", False),
    ],
)
def test_only_urls_under_an_allowed_prefix_pass(url: str, allowed: bool) -> None:
    assert url_allowed(url, ALLOW) is allowed


async def test_the_fetcher_refuses_and_counts_before_any_request() -> None:
    fetcher = SourceFetcher(allow=ALLOW, fetch_timeout=1.0, max_response_bytes=1024)
    with pytest.raises(SourceRefused, match="--allow"):
        await fetcher.observe(QueryKind.URL, "http://10.0.0.1/secret", "")
    with pytest.raises(SourceRefused, match="not by fetching"):
        await fetcher.observe(QueryKind.DEVICE, "pump-1/temperature", "value")
    with pytest.raises(SourceRefused, match="no content store"):
        await fetcher.observe(QueryKind.CID, "bafk...", "")
    assert fetcher.refusals == {"not_allowed": 1, "unsupported": 2}
    await fetcher.close()
    with pytest.raises(Exception, match="http"):
        SourceFetcher(allow=["127.0.0.1"], fetch_timeout=1.0, max_response_bytes=1024)


async def test_cid_content_comes_from_the_injected_reader() -> None:
    store = {"bafk-cost": b'{"cost": 77}', "bafk-big": b"x" * 2000}

    def read(cid: str) -> bytes:
        if cid not in store:
            raise NotFound(f"no content {cid}")
        return store[cid]

    fetcher = SourceFetcher(allow=[], fetch_timeout=1.0, max_response_bytes=1024, cid=read)
    seen = await fetcher.observe(QueryKind.CID, "bafk-cost", "cost")
    assert (seen.value, seen.digest) == (77, keccak256(store["bafk-cost"]))
    assert (await fetcher.observe(QueryKind.CID, "bafk-cost", "")).value == 12  # its length
    for cid in ("bafk-missing", "bafk-big"):
        with pytest.raises(SourceFailed):
            await fetcher.observe(QueryKind.CID, cid, "")
    assert fetcher.refusals == {"fetch": 1, "too_large": 1}
