"""End-to-end cross-chain exchange latency (paper 003, section VII-C, Table 3, Figs 5 and 8).

What is timed, per exchange, on a real world built by
:func:`~pervasive.apps.dataexchange.exchange_world` (4-member threshold-BLS committee,
t = 3, C_sp/C_o/C_u on B_u, P's device and Sys, C's client):

- **ours**: ``Consumer.exchange`` from C asking the members for attestations to C
  holding the readings (``t`` EIP-712 attestations over HTTP, ``pay`` sent to C_u on
  B_u, the signed transaction handed to P's Sys, the sealed index back, the data
  fetched with a signed challenge). Nothing waits for a block: P's index posting on
  B_d is started, not awaited (the scheme's security is the deposit + challenge).
- **HTLC baseline** (the classic hash-time-locked swap of a payment against the data
  key, paper section II), same chains, same block times, in the same run. Direction:
  P (the seller) holds the secret ``k`` (the data key) and announces ``h = sha256(k)``
  in its offer; C locks the price on B_u under ``h`` (Vyper HTLC, timelock 2 h) and
  waits 1 confirmation; P, having seen C's lock, locks its leg on B_d under the same
  ``h`` (Vyper HTLC on the second EVM chain, or the native P2SH Script HTLC on
  Litecoin regtest, timelock 1 h / 100 blocks) and waits 1 confirmation; P claims C's
  lock on B_u revealing ``k`` (1 confirmation): **C holds the data key** when it has
  read ``k`` from that claim (column ``htlc key``); C then claims P's leg on B_d with
  ``k`` (1 confirmation): the swap is complete (column ``htlc swap``). The 10x target
  is checked against ``htlc key`` (the earlier, less flattering point for us).
  Receipts / confirmations are polled every 10 ms (our own loop, so the baseline is
  not slowed by the ledger's back-off polling). With 1 s blocks every exchange and
  every swap starts after an untimed random pause of 0-1 s, so the samples cover all
  phases of the block clocks instead of locking onto one.

Configurations: data chain EVM (two anvil chains, chain ids 31337/31338) or Litecoin
(anvil + litecoind regtest), each with **instant** mining (anvil automine; Litecoin:
one ``generatetoaddress`` right after each posting, outside the timed region) and with
**1 s blocks** (anvil ``--block-time 1`` on both EVM chains; Litecoin: a task mining
one block per second).

Targets (issue): p50 <= 100 ms for every configuration (paper: 1,303-1,718 ms for its
scheme, Table 3 Evidence/Asset; WeCross 3,438-4,505 ms) and p50 at least 10x below the
HTLC baseline's p50 measured in the same run. With instant mining a confirmation costs
only a few ms, so the baseline is not slowed by blocks and the 10x target is not
expected to hold there: it is reported, not hidden.

Attestation expiries (src/, seen while writing this bench): each member signs its
attestation with its own expiry (its followed B_u head + 20 blocks). ``Consumer.attest``
used to pack the first ``t`` signatures with the *minimum* expiry, so when the
members' heads differed by a block C_o refused the pay ("the deposit oracle refused";
up to 6 of 30 samples needed a retry, one needed 9). Since ``exchange.py`` groups the
answers by ``(required, expiry)`` and asks again after 0.1 s when no ``t`` agree, no
attempt is refused, but that re-ask shows as a ~100 ms ``pay`` step in 1-2 of 30
samples (two set the p95). A consumer-chosen expiry in ``POST /attest`` would remove it. The
bench still retries a refused exchange like a client would, keeps the retry's time in
the sample and reports how many samples needed one.

Second defect (src/, Litecoin adapter): ``LitecoinDataChain.post_index`` funds each
posting with ``fundrawtransaction`` (no ``lockUnspents``, no lock between fund and
send), so two postings in flight pick the same coin and one is refused
(``txn-mempool-conflict``). P's postings run in the background, so C's latency is not
affected, but P is then exposed to an ``undelivered`` penalty; the bench counts
failed postings and reports them as a missed target (22 of 30 in one ``ltc-1s`` run
with back-to-back exchanges; 0 once exchanges were spaced by the random pause).

Usage: ``PYTHONPATH=src .venv/bin/python bench/crosschain_latency.py [--exchanges 30]
[--swaps 8] [--configs evm-instant,evm-1s,ltc-instant,ltc-1s]``. Writes
``bench/results/crosschain_latency.csv`` (one row per sample) and
``bench/results/crosschain_latency.png``; exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import logging
import os
import random
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
TARGET_P50_MS = 100.0
TARGET_RATIO = 10.0
PAPER_MS = (1303.0, 1718.0)  # Table 3, our scheme: Evidence, Asset exchange
WECROSS_MS = (3438.0, 4505.0)  # Table 3, WeCross: Asset exchange, Evidence
CONFIGS = ("evm-instant", "evm-1s", "ltc-instant", "ltc-1s")
POLL = 0.01


@dataclass
class Config:
    """One chain pair and block regime with its samples (milliseconds)."""

    name: str
    ours: list[float] = field(default_factory=list)
    steps: list[dict[str, float]] = field(default_factory=list)
    htlc_key: list[float] = field(default_factory=list)
    htlc_swap: list[float] = field(default_factory=list)
    setup_s: float = 0.0
    failures: list[str] = field(default_factory=list)
    """Refused exchange attempts (retried; their time stays in the sample)."""
    retried: list[int] = field(default_factory=list)
    """Per counted sample: how many refused attempts preceded the successful one."""
    posting_failures: int = 0
    """P's index postings on B_d that failed (they do not delay C, but P is exposed)."""
    load_before: float = 0.0

    @property
    def data(self) -> str:
        return "litecoin" if self.name.startswith("ltc") else "evm"

    @property
    def block_time(self) -> float | None:
        return 1.0 if self.name.endswith("1s") else None


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no samples."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


async def confirm_evm(ledger: object, tx_hash: str, timeout: float = 60.0) -> object:
    """Poll ``eth_getTransactionReceipt`` every 10 ms until mined (1 confirmation)."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        receipt = await ledger.receipt(tx_hash)  # type: ignore[attr-defined]
        if receipt is not None:
            if not receipt.succeeded:
                raise RuntimeError(f"HTLC transaction {tx_hash} reverted")
            return receipt
        await asyncio.sleep(POLL)
    raise TimeoutError(f"{tx_hash} not mined in {timeout} s")


async def confirm_ltc(rpc: object, tx_id: str, timeout: float = 60.0) -> None:
    """Poll ``getrawtransaction`` every 10 ms until the tx has 1 confirmation."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        found = await rpc.call("getrawtransaction", tx_id, True)  # type: ignore[attr-defined]
        if int(found.get("confirmations", 0)) >= 1:
            return
        await asyncio.sleep(POLL)
    raise TimeoutError(f"litecoin tx {tx_id} not confirmed in {timeout} s")


async def miner(rpc: object, wallet: str, stop: asyncio.Event) -> None:
    """Litecoin '1 s blocks': one ``generatetoaddress`` per second until ``stop``."""
    address = await rpc.call("getnewaddress", wallet=wallet)  # type: ignore[attr-defined]
    next_at = time.perf_counter()
    while not stop.is_set():
        next_at += 1.0
        await rpc.call("generatetoaddress", 1, address)  # type: ignore[attr-defined]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(0.0, next_at - time.perf_counter()))


async def run_config(config: Config, args: argparse.Namespace, root: Path) -> None:
    from coincurve import PrivateKey as CoinKey

    from pervasive.apps.dataexchange import exchange_world
    from pervasive.config import Settings
    from pervasive.contracts.htlc import Htlc, hashlock
    from pervasive.crosschain.litecoin.htlc import HtlcTerms, LitecoinHtlc
    from pervasive.platform import Platform

    home = root / config.name
    settings = Settings(
        home=home, backend="anvil", broker="embedded", password="pw",
        block_time=config.block_time,
    )  # fmt: skip
    config.load_before = os.getloadavg()[0]
    started = time.perf_counter()
    async with (
        Platform(settings, persist=False) as platform,
        exchange_world(platform, root=home / "dx", data=config.data) as w,  # type: ignore[arg-type]
    ):
        config.setup_s = time.perf_counter() - started
        await w.publish_readings(20)
        stop = asyncio.Event()
        mining = None
        rpc = getattr(w.data_chain, "rpc", None)
        if rpc is not None:
            wallet = w.data_chain.wallet  # type: ignore[attr-defined]
            mine_to = await rpc.call("getnewaddress", wallet=wallet)
            if config.block_time:
                mining = asyncio.create_task(miner(rpc, wallet, stop))
        try:
            # -- ours -------------------------------------------------------------
            for i in range(args.exchanges + 1):  # the first one warms up, not counted
                # A refused attempt is retried by C at once; its time stays in the sample
                # (see "retried" in the report and the src/ bug noted in the docstring).
                if config.block_time:  # untimed: start at a random phase of the block
                    await asyncio.sleep(random.uniform(0, config.block_time))
                t0 = time.perf_counter()
                for _attempt in range(20):
                    try:
                        result = await w.consumer.exchange(
                            w.sys.url, provider=w.provider.address,
                            dataset=w.dataset.digest, amount=w.price,
                        )  # fmt: skip
                        break
                    except Exception as exc:
                        heads = [m.check.head for m in w.committee.members]
                        config.failures.append(
                            f"{type(exc).__name__}: {exc} (members' followed B_u heads {heads})"
                        )
                else:
                    print("\n".join(config.failures[-20:]), file=sys.stderr)
                    raise RuntimeError("20 attempts of one exchange failed")
                total = time.perf_counter() - t0
                if i:
                    config.ours.append(total * 1000)
                    config.steps.append({k: v * 1000 for k, v in result.timings.items()})
                    config.retried.append(_attempt)
                if rpc is not None and not config.block_time:
                    await w.desk.postings.drain()  # untimed: mine right after posting
                    await rpc.call("generatetoaddress", 1, mine_to)
            await w.desk.postings.drain()
            config.posting_failures = w.desk.postings.failed
            # -- HTLC baseline ----------------------------------------------------
            bu = w.user_ledger
            c_u, p_u = w.consumer_signer, w.provider
            htlc_u = await Htlc.open(bu, p_u)
            if rpc is None:
                bd = w.data_chain.ledger  # type: ignore[attr-defined]
                c_d, p_d = bd.dev_signer(5), bd.dev_signer(6)
                htlc_d = await Htlc.open(bd, p_d)
            else:
                ltc = LitecoinHtlc(rpc, wallet=wallet)
                c_key, p_key = CoinKey(), CoinKey()
                destination = await ltc.wallet_script()
            from pervasive.chain import ContractCall

            for i in range(args.swaps + 1):
                secret = secrets.token_bytes(32)  # P's data key, announced as h
                h = hashlock(secret)
                now = int(time.time())
                if config.block_time:  # untimed: start at a random phase of the blocks
                    await asyncio.sleep(random.uniform(0, config.block_time))
                t0 = time.perf_counter()
                # 1. C locks the price on B_u, 1 confirmation
                data = htlc_u.contract.encode("lock", p_u.address, h, now + 7200)
                sent = await bu.transactor(c_u).send(
                    ContractCall(to=htlc_u.address, data=data, value=w.price)
                )
                receipt = await confirm_evm(bu, sent.hashes[-1])
                (locked,) = htlc_u.contract.events(receipt, "Locked")
                c_lock = bytes(locked.args["id"])
                # 2. P locks its leg on B_d, 1 confirmation
                if rpc is None:
                    data = htlc_d.contract.encode("lock", c_d.address, h, now + 3600)
                    sent = await bd.transactor(p_d).send(
                        ContractCall(to=htlc_d.address, data=data, value=w.price)
                    )
                    receipt = await confirm_evm(bd, sent.hashes[-1])
                    (locked,) = htlc_d.contract.events(receipt, "Locked")
                    p_lock: object = bytes(locked.args["id"])
                else:
                    height = int(await rpc.call("getblockcount"))
                    terms = HtlcTerms(
                        h, c_key.public_key.format(), p_key.public_key.format(), height + 100
                    )
                    p_lock = await ltc.lock(terms, amount=1_000_000)
                    if not config.block_time:
                        await rpc.call("generatetoaddress", 1, mine_to)
                    await confirm_ltc(rpc, p_lock.tx_id)  # type: ignore[attr-defined]
                # 3. P claims C's lock on B_u revealing k; C reads k: C holds the key
                data = htlc_u.contract.encode("claim", c_lock, secret)
                sent = await bu.transactor(p_u).send(ContractCall(to=htlc_u.address, data=data))
                receipt = await confirm_evm(bu, sent.hashes[-1])
                (revealed,) = htlc_u.revealed_preimages(receipt)
                assert revealed == secret
                t_key = time.perf_counter()
                # 4. C claims P's leg on B_d with k, 1 confirmation: swap complete
                if rpc is None:
                    data = htlc_d.contract.encode("claim", p_lock, revealed)
                    sent = await bd.transactor(c_d).send(ContractCall(to=htlc_d.address, data=data))
                    await confirm_evm(bd, sent.hashes[-1])
                else:
                    claim = await ltc.claim(p_lock, revealed, c_key, destination)  # type: ignore[arg-type]
                    if not config.block_time:
                        await rpc.call("generatetoaddress", 1, mine_to)
                    await confirm_ltc(rpc, claim)
                t_swap = time.perf_counter()
                if i:  # the first swap warms up (deployments, caches), not counted
                    config.htlc_key.append((t_key - t0) * 1000)
                    config.htlc_swap.append((t_swap - t0) * 1000)
        finally:
            stop.set()
            if mining is not None:
                await mining


def report(configs: list[Config]) -> list[str]:
    misses: list[str] = []
    print(f"\n{'config':<12} {'n':>3} {'ours p50':>9} {'p95':>7} {'htlc key p50':>13} "
          f"{'p95':>7} {'swap p50':>9} {'ratio':>6} {'paper ms':>10} {'WeCross ms':>11} "
          f"{'load':>5}")  # fmt: skip
    for c in configs:
        p50, p95 = pct(c.ours, 50), pct(c.ours, 95)
        k50, k95, s50 = pct(c.htlc_key, 50), pct(c.htlc_key, 95), pct(c.htlc_swap, 50)
        ratio = k50 / p50
        print(f"{c.name:<12} {len(c.ours):>3} {p50:9.1f} {p95:7.1f} {k50:13.1f} {k95:7.1f} "
              f"{s50:9.1f} {ratio:5.1f}x {'1303-1718':>10} {'3438-4505':>11} "
              f"{c.load_before:5.2f}")  # fmt: skip
        if not p50 <= TARGET_P50_MS:
            misses.append(f"{c.name}: p50 {p50:.1f} ms > {TARGET_P50_MS:.0f} ms")
        if not ratio >= TARGET_RATIO:
            misses.append(f"{c.name}: only {ratio:.1f}x faster than the HTLC (target 10x)")
    print(
        "\nour steps, p50 ms (pay = t attestations + pay sent; index = Sys checks, seals, "
        "answers; data = signed fetch):"
    )
    for c in configs:
        parts = " ".join(
            f"{k}={statistics.median(s[k] for s in c.steps):.1f}" for k in ("pay", "index", "data")
        )
        print(f"  {c.name:<12} {parts}   (world setup {c.setup_s:.1f} s, failed exchanges "
              f"{len(c.failures)}, samples with a retry {sum(1 for r in c.retried if r)}, "
              f"failed B_d postings {c.posting_failures})")  # fmt: skip
        for failure in sorted(set(c.failures))[:5]:
            print(f"    refused attempt: {failure[:300]}")
        if c.posting_failures:
            misses.append(f"{c.name}: {c.posting_failures} of P's B_d postings failed")
    return misses


def write(configs: list[Config]) -> None:
    RESULTS.mkdir(exist_ok=True)
    with (RESULTS / "crosschain_latency.csv").open("w", newline="") as out:
        rows = csv.writer(out)
        rows.writerow(["config", "scheme", "sample", "total_ms", "pay_ms", "index_ms",
                       "data_ms", "key_ms", "refused_attempts", "cores",
                       "load_before"])  # fmt: skip
        for c in configs:
            samples = zip(c.ours, c.steps, c.retried, strict=True)
            for i, (total, step, retried) in enumerate(samples):
                rows.writerow([c.name, "ours", i, f"{total:.2f}", f"{step['pay']:.2f}",
                               f"{step['index']:.2f}", f"{step['data']:.2f}", "", retried,
                               os.cpu_count(), f"{c.load_before:.2f}"])  # fmt: skip
            for i, (key, swap) in enumerate(zip(c.htlc_key, c.htlc_swap, strict=True)):
                rows.writerow([c.name, "htlc", i, f"{swap:.2f}", "", "", "", f"{key:.2f}", "",
                               os.cpu_count(), f"{c.load_before:.2f}"])  # fmt: skip
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 5))
    data, labels = [], []
    for c in configs:
        data += [c.ours, c.htlc_key, c.htlc_swap]
        labels += [f"{c.name}\nours", f"{c.name}\nHTLC key", f"{c.name}\nHTLC swap"]
    ax.boxplot(data, showfliers=True)
    ax.set_xticks(range(1, len(labels) + 1), labels, fontsize=7)
    ax.set_yscale("log")
    ax.axhline(TARGET_P50_MS, color="green", ls="--", lw=1, label="target p50 100 ms")
    ax.axhspan(*PAPER_MS, color="orange", alpha=0.3, label="paper 003 (1,303-1,718 ms)")
    ax.axhspan(*WECROSS_MS, color="red", alpha=0.2, label="WeCross (3,438-4,505 ms)")
    ax.set_ylabel("end-to-end latency (ms, log)")
    ax.set_title("Cross-chain exchange: C calls C_u -> C holds the data")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / "crosschain_latency.png", dpi=120)


async def amain(args: argparse.Namespace) -> int:
    root = Path(tempfile.mkdtemp(prefix="cc-latency-"))
    configs = [Config(name) for name in args.configs.split(",")]
    try:
        for config in configs:
            print(f"[{config.name}] building the world and measuring...", flush=True)
            await run_config(config, args, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    misses = report(configs)
    write(configs)
    print(f"\nwrote {RESULTS / 'crosschain_latency.csv'} and .png")
    for miss in misses:
        print("TARGET MISSED:", miss)
    return 1 if misses else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--exchanges", type=int, default=30, help="our exchanges per config")
    parser.add_argument("--swaps", type=int, default=8, help="HTLC swaps per config")
    parser.add_argument("--configs", default=",".join(CONFIGS))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print(f"cores {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}")
    return asyncio.run(amain(args))


if __name__ == "__main__":
    sys.exit(main())
