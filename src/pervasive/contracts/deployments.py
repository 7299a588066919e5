"""Where our contracts are deployed, per chain, kept in SQLite in the data directory.

A deployment is recorded under ``(chain id, contract name)`` with its address, block,
ABI hash, source hash and the hash of the code found at the address right after
deploying. :func:`ensure_deployed` reuses a recorded deployment only while the chain
still holds exactly that code there (``eth_getCode``) and the source has not changed;
otherwise (a fresh embedded chain, an anvil restarted without state, a new contract
version) it deploys again and overwrites the record.

Example::

    book = DeploymentBook(settings.path("deployments.sqlite"))
    deployment, fresh = await ensure_deployed(ledger, signer, artifact, book)
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pervasive.chain import Ledger, Signer
from pervasive.contracts.compiler import Artifact
from pervasive.crypto import abi_encode, keccak256
from pervasive.errors import ChainUnavailable, InternalError, InvalidInput
from pervasive.store import open_database

__all__ = ["Deployment", "DeploymentBook", "code_hash_at", "deploy", "ensure_deployed"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deployments (
    chain_id    INTEGER NOT NULL,
    name        TEXT    NOT NULL,
    address     TEXT    NOT NULL,
    block       INTEGER NOT NULL,
    abi_hash    TEXT    NOT NULL,
    source_hash TEXT    NOT NULL,
    code_hash   TEXT    NOT NULL,
    deployed_at REAL    NOT NULL,
    PRIMARY KEY (chain_id, name)
);
"""


@dataclass(frozen=True)
class Deployment:
    """One contract deployed on one chain."""

    chain_id: int
    name: str
    address: str
    block: int
    abi_hash: str
    source_hash: str
    code_hash: str
    """keccak256 of the runtime code at ``address``, hex."""


class DeploymentBook:
    """The table of deployments (one SQLite file; ``":memory:"`` for a throwaway book)."""

    def __init__(self, path: Path | str) -> None:
        self._db: sqlite3.Connection = open_database(path, schema=_SCHEMA)

    def get(self, chain_id: int, name: str) -> Deployment | None:
        """The recorded deployment of ``name`` on ``chain_id``, if any."""
        row = self._db.execute(
            "SELECT chain_id, name, address, block, abi_hash, source_hash, code_hash"
            " FROM deployments WHERE chain_id = ? AND name = ?",
            (chain_id, name),
        ).fetchone()
        return Deployment(*row) if row else None

    def record(self, deployment: Deployment) -> None:
        """Record (or replace) the deployment of its contract on its chain."""
        self._db.execute(
            "INSERT OR REPLACE INTO deployments VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                deployment.chain_id, deployment.name, deployment.address, deployment.block,
                deployment.abi_hash, deployment.source_hash, deployment.code_hash, time.time(),
            ),
        )  # fmt: skip

    def close(self) -> None:
        """Close the database."""
        self._db.close()


async def code_hash_at(ledger: Ledger, address: str) -> str | None:
    """keccak256 of the code at ``address``, hex; ``None`` when there is no code."""
    try:
        code = bytes(await ledger.w3.eth.get_code(address))  # type: ignore[arg-type]
    except OSError as exc:
        raise ChainUnavailable(f"cannot read the code at {address}: {exc}") from exc
    return keccak256(code).hex() if code else None


async def deploy(ledger: Ledger, signer: Signer, artifact: Artifact, *args: Any) -> Deployment:
    """Deploy ``artifact`` from ``signer`` with constructor ``args``; nothing is recorded.

    Example: ``deployment = await deploy(ledger, ledger.dev_signer(0), artifact)``.
    """
    constructor = next((e for e in artifact.abi if e.get("type") == "constructor"), None)
    types = [str(p["type"]) for p in (constructor or {}).get("inputs", [])]
    if len(types) != len(args):
        raise InvalidInput(f"{artifact.name}'s constructor takes {len(types)} arguments")
    init_code = artifact.bytecode + (abi_encode(types, args) if types else b"")
    receipt = await ledger.transactor(signer).deploy(init_code)
    if receipt.contract_address is None:
        raise InternalError(f"deploying {artifact.name} gave a receipt without an address")
    code_hash = await code_hash_at(ledger, receipt.contract_address)
    if code_hash is None:
        raise InternalError(f"{artifact.name} deployed to {receipt.contract_address} has no code")
    return Deployment(
        chain_id=ledger.chain_id,
        name=artifact.name,
        address=receipt.contract_address,
        block=receipt.block_number,
        abi_hash=artifact.abi_hash,
        source_hash=artifact.source_hash,
        code_hash=code_hash,
    )


async def ensure_deployed(
    ledger: Ledger, signer: Signer, artifact: Artifact, book: DeploymentBook, *args: Any
) -> tuple[Deployment, bool]:
    """The live deployment of ``artifact`` on ``ledger``: reused when valid, else made now.

    Returns the deployment and whether it was deployed by this call.

    Example: ``deployment, fresh = await ensure_deployed(ledger, signer, artifact, book)``.
    """
    known = book.get(ledger.chain_id, artifact.name)
    if (
        known is not None
        and known.source_hash == artifact.source_hash
        and known.abi_hash == artifact.abi_hash
        and await code_hash_at(ledger, known.address) == known.code_hash
    ):
        return known, False
    deployment = await deploy(ledger, signer, artifact, *args)
    book.record(deployment)
    return deployment, True
