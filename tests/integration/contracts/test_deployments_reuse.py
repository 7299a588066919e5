"""Deployments are recorded per chain and reused only while the chain still holds the code."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from pervasive.chain import open_ledger
from pervasive.config import load_settings
from pervasive.contracts import DeploymentBook, Registry, compile_contract, ensure_deployed


async def test_a_persistent_chain_reuses_its_registry_across_restarts(
    tmp_path: Path, artifacts: Path
) -> None:
    settings = load_settings({"home": tmp_path, "backend": "embedded"}, environ={})
    book = DeploymentBook(tmp_path / "deployments.sqlite")
    artifact = compile_contract("registry", cache_dir=artifacts)

    ledger = await open_ledger(settings)
    first, fresh = await ensure_deployed(ledger, ledger.dev_signer(0), artifact, book)
    assert fresh
    await Registry.open(ledger, ledger.dev_signer(0), artifacts=artifacts, book=book)
    await (
        (await Registry.find(ledger, book, artifacts=artifacts))
        .with_signer(ledger.dev_signer(0))
        .add_user("alice")
    )
    await ledger.close()

    ledger = await open_ledger(settings)  # same data directory: the chain state persisted
    try:
        again, fresh = await ensure_deployed(ledger, ledger.dev_signer(0), artifact, book)
        assert (again, fresh) == (first, False)
        registry = await Registry.find(ledger, book, artifacts=artifacts)
        assert [u.id for u in await registry.list_users()] == ["alice"]
    finally:
        await ledger.close()
    assert book.get(ledger.chain_id, "registry") == first


async def test_missing_or_different_code_is_redeployed(tmp_path: Path, artifacts: Path) -> None:
    settings = load_settings({"home": tmp_path, "backend": "embedded"}, environ={})
    book = DeploymentBook(":memory:")
    artifact = compile_contract("registry", cache_dir=artifacts)
    ledger = await open_ledger(settings, persist=False)
    try:
        first, _ = await ensure_deployed(ledger, ledger.dev_signer(0), artifact, book)
        # The record names an address whose code is not what was deployed there.
        book.record(replace(first, code_hash="00" * 32))
        second, fresh = await ensure_deployed(ledger, ledger.dev_signer(0), artifact, book)
        assert fresh and second.address != first.address
    finally:
        await ledger.close()

    fresh_chain = await open_ledger(settings, persist=False)  # same chain id, empty chain
    try:
        third, fresh = await ensure_deployed(fresh_chain, fresh_chain.dev_signer(0), artifact, book)
        assert fresh and third.block == 1
        assert book.get(fresh_chain.chain_id, "registry") == third
    finally:
        await fresh_chain.close()
