"""Deploying and upgrading a pervasive contract over its contract database C_d.

On the embedded chain and on anvil: v1 is deployed with a fresh C_d and made its
writer; records v1 writes are read by v2 after ``upgrade_service`` moved the writer;
v1 can no longer write; deploying the same version again reuses it; what would break
the history or the data is refused with a one-line message.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from pervasive.chain import Ledger
from pervasive.contracts import Contract
from pervasive.contracts.contract_database import ContractDatabase, record_key
from pervasive.errors import NotFound, TransactionReverted
from pervasive.service import SpecError, load_spec
from pervasive.service.deployment import (
    DeploymentRefused,
    ServiceBook,
    deploy_service,
    upgrade_service,
)

SAMPLES = Path(__file__).parents[2] / "unit" / "service" / "samples"


@pytest.fixture
def specs(tmp_path: Path) -> Path:
    """A copy of the sample specs and contracts, free to edit."""
    return Path(shutil.copytree(SAMPLES, tmp_path / "specs"))


@pytest.fixture
def book() -> Iterator[ServiceBook]:
    book = ServiceBook.open(":memory:")
    yield book
    book.close()


def _edit(path: Path, old: str, new: str) -> Path:
    path.write_text(path.read_text().replace(old, new, 1))
    return path


async def test_upgrade_keeps_every_record_v1_wrote(
    ledger: Ledger, artifacts: Path, specs: Path, book: ServiceBook
) -> None:
    owner, carrier = ledger.dev_signer(0), ledger.dev_signer(3).address
    v1 = await deploy_service(
        ledger,
        owner,
        load_spec(specs / "shipping.toml"),
        book=book,
        artifacts=artifacts,
        oracle=None,
    )
    assert v1.database is not None and v1.version == 1 and v1.deployer == owner.address
    database = ContractDatabase.at(ledger, v1.database)
    assert await database.writer() == v1.address
    assert await database.owner() == owner.address
    logic_v1 = Contract(ledger, v1.address, v1.abi)
    await logic_v1.transact(owner, "quote", "ship-1", 1250, carrier)
    await logic_v1.transact(ledger.dev_signer(1), "confirm_delivery", "ship-1", "container-1")

    again = await deploy_service(
        ledger,
        owner,
        load_spec(specs / "shipping.toml"),
        book=book,
        artifacts=artifacts,
        oracle=None,
    )
    assert again == v1  # the same version again: reused, nothing deployed

    v2 = await upgrade_service(
        ledger,
        owner,
        load_spec(specs / "shipping_v2.toml"),
        book=book,
        artifacts=artifacts,
        oracle=None,
    )
    assert (v2.version, v2.database) == (2, v1.database) and v2.address != v1.address
    assert await database.writer() == v2.address
    logic_v2 = Contract(ledger, v2.address, v2.abi)
    assert await logic_v2.call("version") == 2
    assert await logic_v2.call("cost", "ship-1") == 1250
    assert await logic_v2.call("discounted", "ship-1", 20) == 1000
    assert await database.read("carrier", "ship-1", "address") == carrier
    assert await database.read("delivered", "ship-1", "bool") is True
    with pytest.raises(TransactionReverted, match="only the writer may write"):
        await logic_v1.transact(owner, "quote", "ship-2", 1, carrier)
    await logic_v2.transact(owner, "quote", "ship-2", 7, carrier)
    assert await database.get_uint(record_key("cost", "ship-2")) == 7
    assert [d.version for d in book.history(ledger.chain_id, "shipping-test")] == [1, 2]
    assert book.get(ledger.chain_id, "shipping-test") == v2


async def test_what_would_break_history_or_data_is_refused(
    ledger: Ledger, artifacts: Path, specs: Path, book: ServiceBook
) -> None:
    owner = ledger.dev_signer(0)
    v1_spec = specs / "shipping.toml"
    with pytest.raises(NotFound, match=r"not deployed on chain .*service deploy"):
        await upgrade_service(
            ledger, owner, load_spec(v1_spec), book=book, artifacts=artifacts, oracle=None
        )
    await deploy_service(
        ledger, owner, load_spec(v1_spec), book=book, artifacts=artifacts, oracle=None
    )

    changed = _edit(specs / "shipping_v1.vy", "return 1\n", "return 11\n")
    assert changed.exists()
    with pytest.raises(DeploymentRefused, match="from another source: bump version to 2"):
        await deploy_service(
            ledger, owner, load_spec(v1_spec), book=book, artifacts=artifacts, oracle=None
        )
    v2_spec = specs / "shipping_v2.toml"
    with pytest.raises(DeploymentRefused, match=r"deployed at version 1.*service upgrade"):
        await deploy_service(
            ledger, owner, load_spec(v2_spec), book=book, artifacts=artifacts, oracle=None
        )
    with pytest.raises(DeploymentRefused, match="owner of shipping-test's contract database"):
        await upgrade_service(
            ledger,
            ledger.dev_signer(1),
            load_spec(v2_spec),
            book=book,
            artifacts=artifacts,
            oracle=None,
        )
    retyped = _edit(specs / "shipping_v2.toml", 'cost = "uint256"', 'cost = "int256"')
    with pytest.raises(DeploymentRefused, match=r"records.cost: stored as uint256, declared"):
        await upgrade_service(
            ledger, owner, load_spec(retyped), book=book, artifacts=artifacts, oracle=None
        )
    _edit(retyped, 'cost = "int256"', 'cost = "uint256"')
    undatabased = specs / "no_database.toml"
    text = v2_spec.read_text().split("[database]")[0].replace('"$database", ', "")
    undatabased.write_text(text.replace("shipping_v2.vy", "plain.vy"))
    (specs / "plain.vy").write_text(
        (specs / "shipping_v2.vy")
        .read_text()
        .replace(
            "def __init__(database: address, operator: address):",
            "def __init__(operator: address):",
        )
        .replace("self.database = ContractDatabase(database)", "pass")
    )
    with pytest.raises(DeploymentRefused, match="would drop its \\[database\\]"):
        await upgrade_service(
            ledger, owner, load_spec(undatabased), book=book, artifacts=artifacts, oracle=None
        )
    v2 = await upgrade_service(
        ledger, owner, load_spec(v2_spec), book=book, artifacts=artifacts, oracle=None
    )
    with pytest.raises(DeploymentRefused, match=r"at version 2 .* 1 is older"):
        await upgrade_service(
            ledger, owner, load_spec(v1_spec), book=book, artifacts=artifacts, oracle=None
        )
    assert book.get(ledger.chain_id, "shipping-test") == v2


async def test_a_shipped_contract_and_references_resolve(
    ledger: Ledger, artifacts: Path, specs: Path, book: ServiceBook
) -> None:
    owner = ledger.dev_signer(0)
    tracking = await deploy_service(
        ledger,
        owner,
        load_spec(specs / "tracking.toml"),
        book=book,
        artifacts=artifacts,
        oracle=None,
    )
    assert tracking.database is None
    assert await Contract(ledger, tracking.address, tracking.abi).call("shipment_count") == 0
    oracle_spec = _edit(specs / "shipping.toml", '"$operator"]', '"$oracle"]')
    with pytest.raises(NotFound, match="no oracle hub is deployed"):
        await deploy_service(
            ledger, owner, load_spec(oracle_spec), book=book, artifacts=artifacts, oracle=None
        )
    referring = _edit(oracle_spec, '"$oracle"]', '"$contract:tracking-test"]')
    deployment = await deploy_service(
        ledger, owner, load_spec(referring), book=book, artifacts=artifacts, oracle=None
    )
    assert await Contract(ledger, deployment.address, deployment.abi).call("operator") == (
        tracking.address
    )


async def test_a_source_that_does_not_compile_is_one_line(
    ledger: Ledger, artifacts: Path, specs: Path, book: ServiceBook
) -> None:
    _edit(specs / "shipping_v1.vy", "return 1\n", "return nothing_here\n")
    with pytest.raises(SpecError, match=r"contract.source: shipping_v1.vy does not compile") as e:
        await deploy_service(
            ledger,
            ledger.dev_signer(0),
            load_spec(specs / "shipping.toml"),
            book=book,
            artifacts=artifacts,
            oracle=None,
        )
    assert "\n" not in str(e.value)
