"""Signed contract calls per second submitted from one process to a real anvil node.

Setup: ``open_ledger`` starts anvil (``persist=False``) mining a block every
``--block-time`` seconds, as a real chain does (``--block-time 0`` is automine: anvil
then mines one block per transaction and its own mining, not the client, sets the pace)
and deploys a Vyper counter; every call is ``bump(1)``, signed by one funded account.
Two paths, each submitting ``--calls`` transactions:

(a) web3.py's default path, one call at a time:
    ``contract.functions.bump(1).build_transaction({"from", "nonce"})`` (web3 fills
    chain id, fees and an estimated gas), ``Account.sign_transaction``,
    ``w3.eth.send_raw_transaction``;
(b) ``TransactionManager.submit_many``: one gas estimate and one fee read, local
    nonces, signing with rlp+coincurve, JSON-RPC batches of ``--batch`` calls, up to
    four batches on the wire at once (anvil pools transactions ahead of a nonce gap).

"Submitted" means the node accepted the transaction (it returned the hash); the clock
stops when the last one is accepted. We then wait for every receipt and check that the
counter on chain rose by exactly ``--calls`` (nothing lost, nothing applied twice).
The issue's target for (b) is at least 1,500 calls/s; the script exits with status 1
below it.

Usage: ``.venv/bin/python bench/tx_throughput.py [--calls 3000] [--baseline-calls 1000]
[--batch 500] [--block-time 1]``; writes
``bench/results/tx_throughput.csv`` and ``bench/results/tx_throughput.png``.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_abi.abi import decode, encode
from eth_account import Account
from eth_utils.crypto import keccak
from rich.console import Console
from rich.table import Table

from pervasive.chain import ContractCall, Ledger, TransactionManager, open_ledger
from pervasive.config import Settings
from pervasive.contracts.compiler import compile_source

RESULTS = Path(__file__).parent / "results"
TARGET = 1500.0

COUNTER = """
# pragma version ~=0.4.3
total: public(uint256)

@external
def bump(by: uint256):
    self.total += by
"""


@dataclass(frozen=True)
class Run:
    path: str
    calls: int
    submit_seconds: float
    mined_seconds: float

    @property
    def rate(self) -> float:
        return self.calls / self.submit_seconds


async def total(ledger: Ledger, address: str) -> int:
    raw = await ledger.call(address, keccak(text="total()")[:4])
    return int(decode(["uint256"], raw)[0])


async def wait_mined(manager: TransactionManager, hashes: list[str]) -> None:
    receipts = await manager.wait_all(hashes, timeout=300)
    assert all(r.succeeded for r in receipts)


async def web3_default(
    ledger: Ledger, manager: TransactionManager, address: str, abi: list[Any], calls: int
) -> Run:
    contract = ledger.w3.eth.contract(address=address, abi=abi)  # type: ignore[arg-type]
    sender = manager.signer.address
    key = manager.signer.private_key
    nonce = await ledger.nonce(sender)
    hashes: list[str] = []
    start = time.perf_counter()
    for index in range(calls):
        tx = await contract.functions.bump(1).build_transaction(
            {"from": sender, "nonce": nonce + index}  # type: ignore[typeddict-item]
        )
        signed = Account.sign_transaction(tx, key)
        sent = await ledger.w3.eth.send_raw_transaction(signed.raw_transaction)
        hashes.append("0x" + bytes(sent).hex())
    submitted = time.perf_counter() - start
    await wait_mined(manager, hashes)
    manager.forget_nonce()  # web3 used nonces behind the manager's back
    return Run(
        "web3.py build_transaction + sign + send", calls, submitted, time.perf_counter() - start
    )


async def submit_many(manager: TransactionManager, address: str, calls: int, batch: int) -> Run:
    call = ContractCall(
        to=address, data=keccak(text="bump(uint256)")[:4] + encode(["uint256"], [1])
    )
    start = time.perf_counter()
    hashes = await manager.submit_many([call] * calls, batch_size=batch)
    submitted = time.perf_counter() - start
    await wait_mined(manager, hashes)
    return Run(
        f"TransactionManager.submit_many (batches of {batch})",
        calls,
        submitted,
        time.perf_counter() - start,
    )


async def measure(calls: int, baseline_calls: int, batch: int, block_time: float) -> list[Run]:
    compiled = compile_source("counter", COUNTER)
    with tempfile.TemporaryDirectory() as home:
        ledger = await open_ledger(
            Settings(home=Path(home), backend="anvil", block_time=block_time or None),
            persist=False,
        )
        try:
            manager = ledger.transactor(ledger.dev_signer(0))
            receipt = await manager.deploy(compiled.bytecode)
            address = receipt.contract_address
            assert address is not None
            abi = compiled.abi
            baseline = await web3_default(ledger, manager, address, abi, baseline_calls)
            assert await total(ledger, address) == baseline_calls, "web3 lost or repeated calls"
            ours = await submit_many(manager, address, calls, batch)
            assert await total(ledger, address) == baseline_calls + calls, (
                "submit_many lost or repeated calls"
            )
        finally:
            await ledger.close()
    return [baseline, ours]


def report(runs: list[Run], block_time: float) -> None:
    baseline = runs[0].rate
    table = Table(title="Signed contract calls submitted to anvil from one process")
    for column in ("path", "calls", "submit s", "calls/s", "x web3", "all mined s"):
        table.add_column(column, justify="left" if column == "path" else "right")
    for run in runs:
        table.add_row(
            run.path, str(run.calls), f"{run.submit_seconds:.2f}", f"{run.rate:,.0f}",
            f"{run.rate / baseline:.1f}", f"{run.mined_seconds:.2f}",
        )  # fmt: skip
    Console().print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / "tx_throughput.csv", "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(
            [
                "path",
                "calls",
                "submit_seconds",
                "calls_per_second",
                "ratio_to_web3",
                "all_mined_seconds",
                "anvil_block_time",
            ]
        )
        for run in runs:
            writer.writerow(
                [run.path, run.calls, f"{run.submit_seconds:.3f}", f"{run.rate:.0f}",
                 f"{run.rate / baseline:.2f}", f"{run.mined_seconds:.3f}", block_time or "automine"]
            )  # fmt: skip
    chart(runs, block_time)


def chart(runs: list[Run], block_time: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4))
    labels = ["web3.py default\n(one by one)", "submit_many\n(batched)"]
    bars = axes.bar(labels, [run.rate for run in runs], color=["#999999", "#2a6f97"])
    axes.bar_label(bars, labels=[f"{run.rate:,.0f}/s" for run in runs])
    axes.axhline(TARGET, color="#c0392b", linestyle="--", label=f"target {TARGET:,.0f}/s")
    axes.set_ylabel("signed contract calls submitted per second")
    mining = f"a block every {block_time:g} s" if block_time else "automine"
    axes.set_title(f"one process, anvil ({mining})")
    axes.legend()
    figure.tight_layout()
    figure.savefig(RESULTS / "tx_throughput.png", dpi=120)
    plt.close(figure)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--baseline-calls", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--block-time", type=float, default=1.0, help="0: automine")
    args = parser.parse_args()
    runs = asyncio.run(measure(args.calls, args.baseline_calls, args.batch, args.block_time))
    report(runs, args.block_time)
    if runs[1].rate < TARGET:
        print(f"below the target of {TARGET:,.0f} calls/s", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
