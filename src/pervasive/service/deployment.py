"""Deploying and upgrading a pervasive contract: its logic over its contract database C_d.

Paper 001, section 4: "for each smart contract C we create a new database contract
C_d used only to store and retrieve data of C". :func:`deploy_service` compiles the
spec's logic (cached in the artifacts folder), checks the spec against its ABI,
deploys C_d when the spec has ``[database]``, deploys the logic with its constructor
arguments resolved and makes it C_d's writer. :func:`upgrade_service` deploys a
higher version of the logic over the *same* C_d and moves the writer in one
transaction: every record stays where it is, nothing is migrated.

:class:`ServiceBook` (``<home>/services.sqlite``) keeps every version deployed per
chain; the highest is the current one. Deploying the same version again reuses it;
another source under a deployed version is refused ("bump version").

Example::

    book = ServiceBook.open(settings.path("services.sqlite"))
    spec = load_spec("shipping.toml")
    v1 = await deploy_service(ledger, signer, spec, book=book, artifacts=art, oracle=None)
    v2 = await upgrade_service(ledger, signer, load_spec("shipping-v2.toml"), book=book,
                               artifacts=art, oracle=None)
    v2.database == v1.database      # True: the records stayed
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from pervasive.chain import Ledger, Signer
from pervasive.contracts import Artifact, compile_source, deploy
from pervasive.contracts.compiler import source_hash
from pervasive.contracts.contract_database import ContractDatabase
from pervasive.contracts.deployments import code_hash_at
from pervasive.crypto import checksum_address
from pervasive.errors import InternalError, NotFound, UserError
from pervasive.service.spec import (
    ServiceSpec,
    SpecError,
    check_against_abi,
    parse_argument,
)
from pervasive.store import open_database, transaction

__all__ = [
    "DeploymentRefused",
    "ServiceBook",
    "ServiceDeployment",
    "compile_logic",
    "deploy_service",
    "upgrade_service",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS services (
    chain_id    INTEGER NOT NULL,
    name        TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    address     TEXT    NOT NULL,
    database    TEXT,
    abi         TEXT    NOT NULL,
    block       INTEGER NOT NULL,
    source_hash TEXT    NOT NULL,
    deployer    TEXT    NOT NULL,
    records     TEXT    NOT NULL,
    deployed_at REAL    NOT NULL,
    PRIMARY KEY (chain_id, name, version)
);
"""
_COLUMNS = "name, version, chain_id, address, database, abi, block, source_hash, deployer"


class DeploymentRefused(UserError):
    """A deploy or upgrade would break the service's history or data; the message says why."""


@dataclass(frozen=True)
class ServiceDeployment:
    """One version of a pervasive contract deployed on one chain."""

    name: str
    version: int
    chain_id: int
    address: str
    """The logic contract."""
    database: str | None
    """Its C_d (the same across versions), ``None`` for a service without ``[database]``."""
    abi: tuple[dict[str, Any], ...]
    block: int
    """The block the logic was deployed in (where to start following its events)."""
    source_hash: str
    deployer: str
    """The account that deployed it: C_d's owner, the one that may upgrade."""


def _row(row: tuple[Any, ...]) -> ServiceDeployment:
    name, version, chain_id, address, database, abi, block, digest, deployer = row
    return ServiceDeployment(
        name=name,
        version=version,
        chain_id=chain_id,
        address=address,
        database=database,
        abi=tuple(json.loads(abi)),
        block=block,
        source_hash=digest,
        deployer=deployer,
    )


class ServiceBook:
    """Every version of every service deployed, per chain (one SQLite file)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    @classmethod
    def open(cls, path: Path | str) -> Self:
        """Open (creating) the book at ``path``; ``":memory:"`` for a throwaway one.

        Example: ``book = ServiceBook.open(settings.path("services.sqlite"))``.
        """
        return cls(open_database(path, schema=_SCHEMA))

    def get(self, chain_id: int, name: str) -> ServiceDeployment | None:
        """The current (highest) version of service ``name`` on ``chain_id``, if any."""
        rows = self._select(
            "WHERE chain_id = ? AND name = ? ORDER BY version DESC LIMIT 1", chain_id, name
        )
        return rows[0] if rows else None

    def history(self, chain_id: int, name: str) -> list[ServiceDeployment]:
        """Every version of ``name`` deployed on ``chain_id``, oldest first."""
        return self._select("WHERE chain_id = ? AND name = ? ORDER BY version", chain_id, name)

    def services(self, chain_id: int) -> list[ServiceDeployment]:
        """The current version of every service on ``chain_id``, by name."""
        return self._select(
            "AS s WHERE chain_id = ? AND version = (SELECT MAX(version) FROM services"
            " WHERE chain_id = s.chain_id AND name = s.name) ORDER BY name",
            chain_id,
        )

    def _select(self, tail: str, *params: Any) -> list[ServiceDeployment]:
        # ``tail`` is always one of this class's literals; values go through parameters
        query = f"SELECT {_COLUMNS} FROM services {tail}"  # noqa: S608
        return [_row(row) for row in self._db.execute(query, params).fetchall()]

    def declared_records(self, chain_id: int, name: str) -> dict[str, str]:
        """The C_d records (name -> type) the current version of ``name`` declared."""
        row = self._db.execute(
            "SELECT records FROM services WHERE chain_id = ? AND name = ?"
            " ORDER BY version DESC LIMIT 1",
            (chain_id, name),
        ).fetchone()
        return dict(json.loads(row[0])) if row else {}

    def record(self, deployment: ServiceDeployment, records: Mapping[str, str]) -> None:
        """Add ``deployment`` (a new version) with the records its spec declares."""
        self._db.execute(
            "INSERT INTO services VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                deployment.chain_id, deployment.name, deployment.version, deployment.address,
                deployment.database, json.dumps(list(deployment.abi)), deployment.block,
                deployment.source_hash, deployment.deployer, json.dumps(dict(records)),
                time.time(),
            ),
        )  # fmt: skip

    def forget(self, chain_id: int, name: str) -> None:
        """Drop every version of ``name`` on ``chain_id`` (the chain no longer holds them)."""
        with transaction(self._db):
            self._db.execute(
                "DELETE FROM services WHERE chain_id = ? AND name = ?", (chain_id, name)
            )

    def close(self) -> None:
        """Close the database."""
        self._db.close()


# -- compiling ------------------------------------------------------------------------------
_VYPER_LINE = re.compile(r"line (\d+):\d+")


def _compile_error(text: str) -> str:
    """Vyper's first error of ``text`` on one line: `` (line 80): 'x' has not been declared.``"""
    text = text.partition("does not compile: ")[2] or text
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith("Compilation failed")]
    first = lines[0].removesuffix(" (this is a bug in pervasive; please file an issue)")
    at = _VYPER_LINE.search(text)
    return f" (line {at.group(1)}): {first}" if at else f": {first}"


def compile_logic(spec: ServiceSpec, artifacts: Path | None) -> Artifact:
    """The spec's logic contract compiled (cached as ``<artifacts>/service-<name>-<hash>.json``).

    A source that does not compile is a :class:`SpecError` naming its first error.

    Example: ``compile_logic(spec, settings.path("artifacts")).abi``.
    """
    source = spec.logic_source()
    digest = source_hash(source)
    cache = artifacts / f"service-{spec.name}-{digest}.json" if artifacts is not None else None
    if cache is not None and cache.is_file():
        try:
            cached = Artifact.from_json(cache.read_text())
        except (ValueError, KeyError, TypeError):
            cached = None
        if cached is not None and cached.source_hash == digest:
            return cached
    try:
        artifact = compile_source(spec.name, source)
    except InternalError as exc:  # compile_source's "does not compile": here a user error
        raise SpecError(
            f"{spec.file_label}: contract.source: {spec.contract.label} does not compile"
            f"{_compile_error(str(exc))}",
            reason="compile",
        ) from None
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")
        partial.write_text(artifact.to_json())
        partial.replace(cache)
    return artifact


# -- deploying ------------------------------------------------------------------------------
async def _live(ledger: Ledger, book: ServiceBook, name: str) -> ServiceDeployment | None:
    """The current deployment of ``name``, ``None`` (and forgotten) when the chain lost it."""
    current = book.get(ledger.chain_id, name)
    if current is None:
        return None
    if await code_hash_at(ledger, current.address) is None:
        book.forget(ledger.chain_id, name)  # a fresh chain (embedded, anvil restarted)
        return None
    return current


def _check_version(spec: ServiceSpec, current: ServiceDeployment, digest: str) -> bool:
    """True when ``spec`` is ``current`` again; refuses a changed or lower version."""
    if spec.version == current.version:
        if digest == current.source_hash:
            return True
        raise DeploymentRefused(
            f"{spec.file_label}: version: {spec.name} version {spec.version} is deployed on "
            f"chain {current.chain_id} from another source: bump version to "
            f"{current.version + 1}"
        )
    if spec.version < current.version:
        raise DeploymentRefused(
            f"{spec.file_label}: version: {spec.name} is at version {current.version} on "
            f"chain {current.chain_id}; {spec.version} is older: bump version to "
            f"{current.version + 1}"
        )
    return False


async def deploy_service(
    ledger: Ledger,
    signer: Signer,
    spec: ServiceSpec,
    *,
    book: ServiceBook,
    artifacts: Path | None,
    oracle: str | None,
) -> ServiceDeployment:
    """Deploy the spec's service (C_d, then the logic as its writer), or reuse it.

    Deploying a version that is deployed with the same source returns it; a deployed
    service at another version is refused (``pervasive service upgrade``).

    Example: ``await deploy_service(ledger, signer, spec, book=book, artifacts=a, oracle=None)``.
    """
    artifact = compile_logic(spec, artifacts)
    check_against_abi(spec, artifact.abi)
    current = await _live(ledger, book, spec.name)
    if current is not None:
        if _check_version(spec, current, artifact.source_hash):
            return current
        raise DeploymentRefused(
            f"{spec.name} is deployed at version {current.version} on chain "
            f"{current.chain_id}: use `pervasive service upgrade {spec.file_label}`"
        )
    database = None
    if spec.database is not None:
        database = await ContractDatabase.deploy(ledger, signer, artifacts=artifacts)
    return await _deploy_logic(
        ledger, signer, spec, artifact, book=book, database=database, oracle=oracle
    )


async def upgrade_service(
    ledger: Ledger,
    signer: Signer,
    spec: ServiceSpec,
    *,
    book: ServiceBook,
    artifacts: Path | None,
    oracle: str | None,
) -> ServiceDeployment:
    """Deploy a higher version of a deployed service over the same C_d and move the writer.

    Every stored record is kept. The signer must be C_d's owner (the first deployer).
    Upgrading to the current version with its own source again returns it.

    Example: ``await upgrade_service(ledger, signer, spec_v2, book=book, artifacts=a,
    oracle=None)``.
    """
    artifact = compile_logic(spec, artifacts)
    check_against_abi(spec, artifact.abi)
    current = await _live(ledger, book, spec.name)
    if current is None:
        raise NotFound(
            f"{spec.name} is not deployed on chain {ledger.chain_id}: "
            f"use `pervasive service deploy {spec.file_label}` first"
        )
    if _check_version(spec, current, artifact.source_hash):
        return current
    if (spec.database is None) != (current.database is None):
        change = "drop its [database]" if spec.database is None else "add a [database]"
        raise DeploymentRefused(
            f"{spec.file_label}: database: version {spec.version} would {change}; an upgrade "
            "keeps the contract database: deploy under a new name instead"
        )
    database = None
    if current.database is not None:
        database = ContractDatabase.at(ledger, current.database, signer)
        declared = book.declared_records(ledger.chain_id, spec.name)
        for record, kind in (spec.database.records if spec.database else {}).items():
            if declared.get(record, kind) != kind:
                raise DeploymentRefused(
                    f"{spec.file_label}: database.records.{record}: stored as "
                    f"{declared[record]}, declared {kind}: keep the type or use a new record"
                )
        owner = await database.owner()
        if owner != signer.address:
            raise DeploymentRefused(
                f"only {owner}, the owner of {spec.name}'s contract database, may upgrade it "
                f"(not {signer.address}): sign with that account"
            )
    return await _deploy_logic(
        ledger, signer, spec, artifact, book=book, database=database, oracle=oracle
    )


async def _deploy_logic(
    ledger: Ledger,
    signer: Signer,
    spec: ServiceSpec,
    artifact: Artifact,
    *,
    book: ServiceBook,
    database: ContractDatabase | None,
    oracle: str | None,
) -> ServiceDeployment:
    arguments = _constructor_arguments(
        ledger, signer, spec, artifact, book=book, database=database, oracle=oracle
    )
    logic = await deploy(ledger, signer, artifact, *arguments)
    if database is not None:
        await database.with_signer(signer).set_writer(logic.address)
    deployment = ServiceDeployment(
        name=spec.name,
        version=spec.version,
        chain_id=ledger.chain_id,
        address=logic.address,
        database=database.address if database is not None else None,
        abi=artifact.abi,
        block=logic.block,
        source_hash=artifact.source_hash,
        deployer=signer.address,
    )
    book.record(deployment, spec.database.records if spec.database else {})
    return deployment


def _constructor_arguments(
    ledger: Ledger,
    signer: Signer,
    spec: ServiceSpec,
    artifact: Artifact,
    *,
    book: ServiceBook,
    database: ContractDatabase | None,
    oracle: str | None,
) -> list[Any]:
    constructor = next((e for e in artifact.abi if e.get("type") == "constructor"), {})
    types = [str(p["type"]) for p in constructor.get("inputs", ())]
    out: list[Any] = []
    for index, (kind, value) in enumerate(zip(types, spec.contract.constructor, strict=True)):
        argument = parse_argument("constructor", value)
        entry = f"{spec.file_label}: contract.constructor[{index}]"
        if argument.kind == "database":
            if database is None:
                raise SpecError(f"{entry}: '$database' needs a [database] table",
                                reason="no_database")  # fmt: skip
            out.append(database.address)
        elif argument.kind == "oracle":
            if oracle is None:
                raise NotFound(
                    f"{entry}: '$oracle' but no oracle hub is deployed on chain "
                    f"{ledger.chain_id}: deploy one first (pervasive oracle)"
                )
            out.append(checksum_address(oracle))
        elif argument.kind == "operator":
            out.append(signer.address)
        elif argument.kind == "contract":
            other = book.get(ledger.chain_id, str(argument.value))
            if other is None:
                raise NotFound(
                    f"{entry}: service {argument.value!r} is not deployed on chain "
                    f"{ledger.chain_id}: deploy it first"
                )
            out.append(other.address)
        elif kind == "address":
            out.append(checksum_address(str(argument.value)))
        elif kind.startswith("bytes") and kind != "bytes" and isinstance(argument.value, str):
            out.append(bytes.fromhex(argument.value.removeprefix("0x")))
        elif kind == "bytes" and isinstance(argument.value, str):
            out.append(argument.value.encode())
        else:
            out.append(argument.value)
    return out
