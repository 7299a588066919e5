"""The artifact cache answers without compiling when the source and vyper are unchanged."""

from __future__ import annotations

import time
from pathlib import Path

from pervasive.contracts.compiler import (
    Artifact,
    compile_contract,
    contract_source,
    source_hash,
)


def test_a_cached_artifact_is_read_not_recompiled(tmp_path: Path) -> None:
    digest = source_hash(contract_source("registry"))
    planted = Artifact("registry", ({"type": "function", "name": "planted"},), b"\x60\x00", digest)
    (tmp_path / f"registry-{digest}.json").write_text(planted.to_json())
    started = time.perf_counter()
    assert compile_contract("registry", cache_dir=tmp_path) == planted
    assert time.perf_counter() - started < 0.5  # compiling takes seconds


def test_the_cache_key_covers_source_and_compiler_version() -> None:
    source = contract_source("registry")
    assert source_hash(source) == source_hash(source)
    assert source_hash(source) != source_hash(source + "\n# edited")
    assert len(source_hash(source)) == 64


def test_artifacts_serialise_losslessly() -> None:
    artifact = Artifact(
        "x", ({"type": "event", "name": "E", "inputs": []},), b"\x01\x02", "ab" * 32
    )
    assert Artifact.from_json(artifact.to_json()) == artifact
    assert artifact.abi_hash == Artifact.from_json(artifact.to_json()).abi_hash
