"""The trie construction of every inclusion proof reproduces ethereum/tests' trie roots.

``tests/vectors/trie/`` holds ethereum/tests ``TrieTests/`` (see its README): each case
writes key/value pairs (a list: in order, null deletes; a map: any order) and names the
root. The ``secureTrie`` files keccak every key first, as the state trie does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pervasive.crosschain.inclusion import trie_root
from pervasive.crypto import keccak256

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "trie"
FILES = {  # file -> number of cases, so a truncated copy fails here rather than passing
    "trietest.json": 5,
    "trieanyorder.json": 7,
    "trietest_secureTrie.json": 3,
    "trieanyorder_secureTrie.json": 7,
    "hex_encoded_securetrie_test.json": 3,
}


def _bytes(text: str | None) -> bytes | None:
    if text is None:
        return None
    return bytes.fromhex(text[2:]) if text.startswith("0x") else text.encode()


def _cases() -> list[Any]:
    out = []
    for name, count in FILES.items():
        cases = json.loads((VECTORS / name).read_text())
        assert len(cases) == count, f"{name} has {len(cases)} cases, expected {count}"
        for case_name, case in cases.items():
            out.append(pytest.param(name, case, id=f"{name}:{case_name}"))
    return out


@pytest.mark.parametrize(("file", "case"), _cases())
def test_trie_root_matches_vector(file: str, case: dict[str, Any]) -> None:
    pairs = case["in"] if isinstance(case["in"], list) else list(case["in"].items())
    secure = "secure" in file.lower()
    items = []
    for key, value in pairs:
        raw_key = _bytes(key)
        assert raw_key is not None
        items.append((keccak256(raw_key) if secure else raw_key, _bytes(value)))
    assert "0x" + trie_root(items).hex() == case["root"]


def test_twenty_five_cases_are_checked() -> None:
    assert len(_cases()) == 25
