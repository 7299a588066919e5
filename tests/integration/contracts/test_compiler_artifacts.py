"""Compiling the shipped contracts with the installed vyper, and the artifact cache."""

from __future__ import annotations

from pathlib import Path

from pervasive.contracts import Contract, compile_contract
from pervasive.contracts.compiler import Artifact, contract_source, source_hash


def test_the_registry_compiles_and_the_cache_is_keyed_by_source(artifacts: Path) -> None:
    artifact = compile_contract("registry", cache_dir=artifacts)  # compiled by the fixture
    # the cache lives as long as the machine's pytest folder: older sources may sit beside it
    cached = artifacts / f"registry-{source_hash(contract_source('registry'))}.json"
    assert cached in set(artifacts.glob("registry-*.json"))
    assert Artifact.from_json(cached.read_text()) == artifact
    assert 0 < len(artifact.bytecode) < 2 * 24_576  # init code; runtime stays under EIP-170
    names = {e.get("name") for e in artifact.abi}
    assert {"register_user", "register_sensor", "register_node", "set_agreement_factory"} <= names


def test_a_corrupt_cache_file_is_replaced(tmp_path: Path, artifacts: Path) -> None:
    good = compile_contract("registry", cache_dir=artifacts)
    path = tmp_path / f"registry-{good.source_hash}.json"
    path.write_text("{ not json")
    assert compile_contract("registry", cache_dir=tmp_path) == good
    assert Artifact.from_json(path.read_text()) == good


def test_every_external_function_is_in_the_handle(artifacts: Path) -> None:
    artifact = compile_contract("registry", cache_dir=artifacts)
    contract = Contract(None, "0x" + "00" * 20, artifact.abi)  # type: ignore[arg-type]
    selectors = {
        contract.function(str(e["name"])).selector for e in artifact.abi if e["type"] == "function"
    }
    assert len(selectors) == sum(1 for e in artifact.abi if e["type"] == "function")
