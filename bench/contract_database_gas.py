"""Upgrading a pervasive contract: its records in a contract database C_d vs in its own storage.

Paper 001, section 4: "By separating the contract database from the contract itself,
the deployment and management of new versions of the contract in the blockchain will
become less costly" (no figure given). Measured here, on a fresh chain per backend and
N (``persist=False``; the embedded py-evm by default), as receipts' ``gas_used``:

- **C_d** (ours): ``contract_database.vy`` plus ``bench/contracts/cd_logic.vy``, whose
  ``put_many`` writes each record through an external call to C_d. Upgrade v1 -> v2 =
  deploy logic v2 + ``set_writer(v2)``: two transactions whatever N is.
- **monolithic**: ``bench/contracts/monolithic.vy`` keeps the same records in its own
  storage. Upgrade v1 -> v2 = deploy v2 + ``migrate`` every record, in batches of 100
  (keys and values read off-chain, for free, from v1).

Also shown: the gas per record of the first write by v1 (C_d pays an external call and
an event per record), so the break-even is visible: C_d costs more per write and far
less per upgrade. Each upgrade is checked: v2 reads every sampled record v1 wrote.

Usage: ``.venv/bin/python bench/contract_database_gas.py [--sizes 10,100,1000]
[--backends embedded,anvil]``; prints a table and writes
``bench/results/contract_database_gas.csv`` and ``contract_database_gas.png``.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from pervasive.chain import ContractCall, Ledger, Signer, open_ledger
from pervasive.config import BackendName, Settings
from pervasive.contracts import Artifact, Contract, compile_source
from pervasive.contracts.contract_database import ContractDatabase, record_key
from pervasive.crypto import abi_encode

RESULTS = Path(__file__).resolve().parent / "results"
CONTRACTS = Path(__file__).resolve().parent / "contracts"
BATCH = 100
PAPER = 'paper 001: "less costly", no figure'


@dataclass(frozen=True)
class Row:
    """One design at one size on one backend."""

    backend: str
    records: int
    design: str
    deploy_gas: int
    """Deploying v1 (and C_d with its first set_writer, for C_d)."""
    write_gas: int
    """v1 writing the N records, in batches of 100."""
    upgrade_gas: int
    upgrade_transactions: int

    @property
    def write_gas_per_record(self) -> float:
        return self.write_gas / self.records


def _compile(name: str, version: int) -> Artifact:
    source = (CONTRACTS / f"{name}.vy").read_text()
    source = source.replace(
        "VERSION: constant(uint256) = 1", f"VERSION: constant(uint256) = {version}"
    )
    return compile_source(f"{name}_v{version}", source)


async def _deploy(
    ledger: Ledger, signer: Signer, artifact: Artifact, *args: Any
) -> tuple[str, int]:
    constructor = next((e for e in artifact.abi if e.get("type") == "constructor"), {})
    types = [str(p["type"]) for p in constructor.get("inputs", ())]
    code = artifact.bytecode + (abi_encode(types, args) if types else b"")
    receipt = await ledger.transactor(signer).deploy(code)
    assert receipt.contract_address is not None
    return receipt.contract_address, receipt.gas_used


async def _send(ledger: Ledger, signer: Signer, contract: Contract, name: str, *args: Any) -> int:
    call = ContractCall(to=contract.address, data=contract.encode(name, *args))
    receipt = await ledger.transactor(signer).transact(call)
    return receipt.gas_used


def _batches(n: int) -> list[range]:
    return [range(start, min(start + BATCH, n)) for start in range(0, n, BATCH)]


def _cost(i: int) -> int:
    return 1000 + 7 * i


async def _fill(ledger: Ledger, signer: Signer, contract: Contract, n: int) -> int:
    gas = 0
    for batch in _batches(n):
        ids = [f"ship-{i}" for i in batch]
        gas += await _send(ledger, signer, contract, "put_many", ids, [_cost(i) for i in batch])
    return gas


async def _check(contract: Contract, n: int) -> None:
    for i in sorted({0, n // 2, n - 1}):
        assert await contract.call("cost", f"ship-{i}") == _cost(i), "a record was lost"
    assert await contract.call("version") == 2


async def _with_database(ledger: Ledger, n: int, backend: str, artifacts: Path) -> Row:
    signer = ledger.dev_signer(0)
    address, database_gas = await _deploy(ledger, signer, ContractDatabase.artifact(artifacts))
    database = ContractDatabase.at(ledger, address, signer)
    v1_artifact, v2_artifact = _compile("cd_logic", 1), _compile("cd_logic", 2)
    v1, v1_gas = await _deploy(ledger, signer, v1_artifact, database.address)
    first_writer = (await database.set_writer(v1)).gas_used
    write_gas = await _fill(ledger, signer, Contract(ledger, v1, v1_artifact.abi), n)
    v2, v2_gas = await _deploy(ledger, signer, v2_artifact, database.address)
    moved = (await database.set_writer(v2)).gas_used
    await _check(Contract(ledger, v2, v2_artifact.abi), n)
    return Row(
        backend, n, "C_d", database_gas + v1_gas + first_writer, write_gas, v2_gas + moved, 2
    )


async def _monolithic(ledger: Ledger, n: int, backend: str) -> Row:
    signer = ledger.dev_signer(0)
    v1_artifact, v2_artifact = _compile("monolithic", 1), _compile("monolithic", 2)
    v1, v1_gas = await _deploy(ledger, signer, v1_artifact)
    write_gas = await _fill(ledger, signer, Contract(ledger, v1, v1_artifact.abi), n)
    v2, v2_gas = await _deploy(ledger, signer, v2_artifact)
    v2_contract = Contract(ledger, v2, v2_artifact.abi)
    migrate_gas = 0
    for batch in _batches(n):
        keys = [record_key("cost", f"ship-{i}") for i in batch]
        migrate_gas += await _send(
            ledger, signer, v2_contract, "migrate", keys, [_cost(i) for i in batch]
        )
    await _check(v2_contract, n)
    return Row(
        backend, n, "monolithic", v1_gas, write_gas, v2_gas + migrate_gas, 1 + len(_batches(n))
    )


async def measure(backend: str, sizes: list[int], artifacts: Path) -> list[Row]:
    rows = []
    for n in sizes:
        for design in ("C_d", "monolithic"):
            with tempfile.TemporaryDirectory() as home:
                settings = Settings(home=Path(home), backend=cast(BackendName, backend))
                ledger = await open_ledger(settings, persist=False)
                try:
                    row = (
                        await _with_database(ledger, n, backend, artifacts)
                        if design == "C_d"
                        else await _monolithic(ledger, n, backend)
                    )
                finally:
                    await ledger.close()
            rows.append(row)
            print(f"  {backend} N={n} {design}: upgrade {row.upgrade_gas:,} gas", file=sys.stderr)
    return rows


def _table(rows: list[Row]) -> str:
    lines = [
        f"{'backend':<9} {'N':>6} {'C_d upgrade':>13} {'monolithic upgrade':>19} {'saving':>8}"
        f" {'C_d write/rec':>14} {'mono write/rec':>15}   {PAPER}"
    ]
    by_key = {(r.backend, r.records, r.design): r for r in rows}
    for backend, n in sorted({(r.backend, r.records) for r in rows}):
        ours, mono = by_key[(backend, n, "C_d")], by_key[(backend, n, "monolithic")]
        lines.append(
            f"{backend:<9} {n:>6,} {ours.upgrade_gas:>9,} ({ours.upgrade_transactions} tx)"
            f" {mono.upgrade_gas:>12,} ({mono.upgrade_transactions} tx)"
            f" {mono.upgrade_gas / ours.upgrade_gas:>7.1f}x"
            f" {ours.write_gas_per_record:>14,.0f} {mono.write_gas_per_record:>15,.0f}"
        )
    return "\n".join(lines)


def _write(rows: list[Row]) -> None:
    RESULTS.mkdir(exist_ok=True)
    with (RESULTS / "contract_database_gas.csv").open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(
            [
                "backend",
                "records",
                "design",
                "deploy_gas",
                "write_gas",
                "write_gas_per_record",
                "upgrade_gas",
                "upgrade_transactions",
            ]
        )
        for r in rows:
            writer.writerow(
                [
                    r.backend,
                    r.records,
                    r.design,
                    r.deploy_gas,
                    r.write_gas,
                    round(r.write_gas_per_record),
                    r.upgrade_gas,
                    r.upgrade_transactions,
                ]
            )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    backend = rows[0].backend
    sizes = sorted({r.records for r in rows if r.backend == backend})
    by_key = {(r.records, r.design): r for r in rows if r.backend == backend}
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    width = 0.38
    positions = range(len(sizes))
    for offset, design, colour in (
        (-width / 2, "C_d", "#2b7bb9"),
        (width / 2, "monolithic", "#d95f02"),
    ):
        left.bar(
            [p + offset for p in positions],
            [by_key[(n, design)].upgrade_gas for n in sizes],
            width,
            label=design,
            color=colour,
        )
        right.bar(
            [p + offset for p in positions],
            [by_key[(n, design)].write_gas_per_record for n in sizes],
            width,
            label=design,
            color=colour,
        )
    for axis, title, label in (
        (left, "Upgrade v1 -> v2 (gas, log scale)", "gas"),
        (right, "First write by v1, per record", "gas per record"),
    ):
        axis.set_xticks(list(positions), [f"N = {n:,}" for n in sizes])
        axis.set_title(title)
        axis.set_ylabel(label)
        axis.legend()
    left.set_yscale("log")
    figure.suptitle(f"Contract database C_d vs monolithic storage ({backend}); {PAPER}")
    figure.tight_layout()
    figure.savefig(RESULTS / "contract_database_gas.png", dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000", help="record counts N")
    parser.add_argument("--backends", default="embedded", help="embedded, anvil or both")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as artifacts:
        rows = []
        for backend in args.backends.split(","):
            rows += asyncio.run(measure(backend, sizes, Path(artifacts)))
    print(_table(rows))
    _write(rows)
    print(f"wrote {RESULTS / 'contract_database_gas.csv'} and .png")


if __name__ == "__main__":
    main()
