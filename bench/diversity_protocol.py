"""DIVERSITY intermediate nodes: ingestion rate, per-window latency, messages per protocol.

Three measurements (paper 002's off-chain execution, issue "Off-chain execution"):

1. **ingestion, pipeline**: signed lock messages (10 locks) through one node's sensor
   side: fast verification (schema, signature), sequence tracking, window building and
   the durable message log, in batches as the service runs them;
2. **ingestion, over MQTT**: the same messages published by 4 lock sessions through
   mosquitto (TLS, QoS 1) into a running :class:`IntermediateNodeService`, counted from
   the node's first accepted message to its last;
3. **latency and messages**: three nodes on loopback (mosquitto) and anvil with instant
   mining; one lock, windows of one rental (z = sl = 2); for each window the last
   message is published and the time until the update receipt is measured at the
   designated node; per signing mode (ring = Fig. 2A, leader, fast = Fig. 2B) with the
   protocol messages per window (all nodes, point-to-point, the update-signature
   exchange included) and the update gas.

Usage: ``.venv/bin/python bench/diversity_protocol.py [--messages 10000] [--windows 30]``;
writes ``bench/results/diversity_protocol.csv`` and ``.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import logging
import statistics
import tempfile
import time
from pathlib import Path

from pervasive.apps.smartlock import FUNCTIONS, RENTAL_TIME, smart_lock_declaration
from pervasive.chain import Ledger, open_ledger
from pervasive.config import Settings
from pervasive.contracts import QoSLevel, Reaction, ReactionKind, Registry
from pervasive.crypto import PrivateKey
from pervasive.messaging import ClientOptions, MosquittoBroker, MqttClient
from pervasive.offchain import AgreementSpec, SigningMode, WindowSpec, sign_sensor_message
from pervasive.offchain.node import (
    AgreementPlan,
    IntermediateNodeService,
    MessageLog,
    NodeOptions,
    NodePlan,
    PartyPlan,
    SensorPipeline,
    SensorPlan,
    provision_agreement,
    sensor_topic,
)
from pervasive.offchain.node.runner import running_node
from pervasive.pki import CertificateAuthority

RESULTS = Path(__file__).parent / "results"
LOCK_KEYS = [PrivateKey(bytes([0x60 + i]) * 32) for i in range(10)]


def signed_traces(messages: int, locks: int) -> dict[int, list[bytes]]:
    per_lock = messages // locks
    out: dict[int, list[bytes]] = {}
    for lock in range(locks):
        key = LOCK_KEYS[lock]
        declaration = smart_lock_declaration(key.public_key.to_bytes())
        out[lock] = [
            sign_sensor_message(
                key, declaration, q, [lock, f"token-{q % 17}", q % 2 == 0, 1_770_000_000 + 60 * q]
            ).encode()
            for q in range(per_lock)
        ]
    return out


def lock_spec(locks: int, size: int) -> AgreementSpec:
    declarations = tuple(smart_lock_declaration(k.public_key.to_bytes()) for k in LOCK_KEYS[:locks])
    return AgreementSpec(
        address="0x" + "ab" * 20,
        chain_id=31337,
        nodes=(PrivateKey(b"\x01" * 32).address, PrivateKey(b"\x02" * 32).address),
        sensors=declarations,
        window=WindowSpec(tuple(d.address for d in declarations), (0,) * locks, size, size),
        function_name=RENTAL_TIME.name,
        function_hash=RENTAL_TIME.source_hash,
    )


def ingest_pipeline(traces: dict[int, list[bytes]], folder: Path) -> tuple[int, float]:
    spec = lock_spec(len(traces), 100)
    pipeline = SensorPipeline(spec, gap_timeout=5)
    log = MessageLog(folder / "ingest.sqlite", spec.address)
    interleaved = [p for group in zip(*traces.values(), strict=True) for p in group]
    started = time.perf_counter()
    windows = 0
    for i in range(0, len(interleaved), 2048):
        result = pipeline.receive_many(interleaved[i : i + 2048], now=0.0)
        log.append(result.accepted)
        windows += len(result.windows)
    elapsed = time.perf_counter() - started
    assert pipeline.accepted == len(interleaved), pipeline.rejections
    return len(interleaved), len(interleaved) / elapsed


async def _deploy(
    ledger: Ledger, folder: Path, nodes: int, locks: int, window: int
) -> tuple[str, tuple[NodePlan, ...], Registry]:
    plans = tuple(
        NodePlan(f"node-{i}", ledger.dev_signer(2 + i), party=i % 2) for i in range(nodes)
    )
    plan = AgreementPlan(
        parties=(
            PartyPlan("provider", ledger.dev_signer(0)),
            PartyPlan("insurer", ledger.dev_signer(1)),
        ),
        sensors=tuple(
            SensorPlan(f"lock-{i}", k, smart_lock_declaration(k.public_key.to_bytes()), 0)
            for i, k in enumerate(LOCK_KEYS[:locks])
        ),
        nodes=plans,
        function=RENTAL_TIME,
        window_size=window,
        sliding_factor=window,
        qos=QoSLevel.OFFCHAIN_PROOF,
        reaction=Reaction(ReactionKind.PAY_PER_UNIT, 0, 1, 1),
        escrow={0: 10**18},
    )
    registry = await Registry.open(ledger, ledger.dev_signer(0), artifacts=folder / "artifacts")
    agreement = await provision_agreement(
        ledger, ledger.dev_signer(0), plan, registry=registry, artifacts=folder / "artifacts"
    )
    return agreement.address, plans, registry


@contextlib.asynccontextmanager
async def _platform(folder: Path):  # type: ignore[no-untyped-def]
    ca = CertificateAuthority.open(folder / "pki", "bench")
    broker = MosquittoBroker(folder / "mosquitto", ca.broker_credentials(), ca.active_identities)
    await broker.start()
    ca.add_listener(broker.refresh)
    try:
        yield ca, broker
    finally:
        await broker.stop()
        ca.close()


def _options(
    ca: CertificateAuthority, broker: MosquittoBroker, identity: str, folder: Path
) -> ClientOptions:
    return ClientOptions("127.0.0.1", broker.port, ca.client_credentials(identity, folder / "mqtt"))


async def _nodes(
    stack: contextlib.AsyncExitStack, ledger: Ledger, ca: CertificateAuthority,
    broker: MosquittoBroker, folder: Path, address: str, plans: tuple[NodePlan, ...],
    mode: SigningMode, registry: Registry,
) -> list[IntermediateNodeService]:  # fmt: skip
    services = []
    for plan in plans:
        options = _options(ca, broker, f"svc:node.{plan.id}", folder)
        service = await stack.enter_async_context(
            running_node(
                ledger, registry, address, plan.signer, options,
                database=folder / f"{plan.id}-{mode.value}.sqlite", functions=FUNCTIONS,
                mode=mode,
                options=NodeOptions(gap_timeout=5, protocol_timeout=5, takeover_after=60),
                artifacts=folder / "artifacts",
            )
        )  # fmt: skip
        services.append(service)
    return services


async def ingest_mqtt(
    ledger: Ledger, folder: Path, traces: dict[int, list[bytes]]
) -> tuple[int, float]:
    total = sum(len(t) for t in traces.values())
    address, plans, registry = await _deploy(ledger, folder, 2, len(traces), 10**6)
    async with _platform(folder) as (ca, broker), contextlib.AsyncExitStack() as stack:
        [node] = await _nodes(
            stack, ledger, ca, broker, folder, address, plans[:1], SigningMode.RING, registry
        )
        clients = []
        for lock in traces:
            client = MqttClient(_options(ca, broker, f"lock-{lock}", folder))
            await client.connect()
            clients.append(client)
        first: list[float] = []

        def stamp(service: IntermediateNodeService) -> bool:
            if not first and service.stats.accepted:
                first.append(time.perf_counter())
            return service.stats.accepted >= total

        async def play(lock: int, client: MqttClient) -> None:
            for payload in traces[lock]:
                await client.publish(sensor_topic(f"lock-{lock}"), payload)

        waiting = asyncio.create_task(node.wait_for(stamp, timeout=600))
        await asyncio.gather(*(play(lock, c) for lock, c in zip(traces, clients, strict=True)))
        await waiting
        elapsed = time.perf_counter() - first[0]
        for client in clients:
            await client.close()
    return total, total / elapsed


async def latency(
    ledger: Ledger, folder: Path, windows: int, mode: SigningMode
) -> dict[str, float]:
    address, plans, registry = await _deploy(ledger, folder, 3, 1, 2)
    key = LOCK_KEYS[0]
    declaration = smart_lock_declaration(key.public_key.to_bytes())
    async with _platform(folder) as (ca, broker), contextlib.AsyncExitStack() as stack:
        services = await _nodes(stack, ledger, ca, broker, folder, address, plans, mode, registry)
        client = MqttClient(_options(ca, broker, "lock-0", folder))
        await client.connect()
        samples = []
        start = 1_772_323_200
        for t in range(windows):
            unlock = sign_sensor_message(
                key, declaration, 2 * t, [7, "token-a", True, start + 3600 * t]
            )
            lock = sign_sensor_message(
                key, declaration, 2 * t + 1, [7, "token-a", False, start + 3600 * t + 900]
            )
            await client.publish(sensor_topic("lock-0"), unlock.encode())
            await asyncio.sleep(0.02)
            sent = time.time()
            await client.publish(sensor_topic("lock-0"), lock.encode())

            def done(s: IntermediateNodeService, t: int = t) -> bool:
                return any(e.kind == "recorded" and e.t == t and e.receipt for e in s.events)

            finished = await asyncio.wait(
                [asyncio.create_task(s.wait_for(done, timeout=60)) for s in services],
                return_when=asyncio.FIRST_COMPLETED,
            )
            for task in finished[1]:
                task.cancel()
            event = next(
                e
                for s in services
                for e in s.events
                if e.kind == "recorded" and e.t == t and e.receipt
            )
            samples.append(event.at - sent)
        await client.close()
        messages = sum(sum(s.stats.protocol_sent.values()) for s in services) / windows
        gas = sum(s.stats.update_gas for s in services) / windows
        disputes = sum(s.stats.disputed for s in services)
    samples.sort()
    return {
        "p50_ms": 1000 * statistics.median(samples),
        "p95_ms": 1000 * samples[int(0.95 * (len(samples) - 1))],
        "messages_per_window": messages,
        "update_gas": gas,
        "disputes": disputes,
    }


async def main(args: argparse.Namespace) -> None:
    logging.getLogger("amqtt").setLevel(logging.CRITICAL)
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        traces = signed_traces(args.messages, 10)
        count, rate = ingest_pipeline(traces, folder)
        rows.append(
            {
                "measure": "ingestion, pipeline (verify+order+window+log)",
                "value": f"{rate:.0f} msg/s",
                "n": count,
            }
        )
        print(rows[-1])
        ledger = await open_ledger(Settings(home=folder / "home", backend="anvil"), persist=False)
        try:
            from pervasive.contracts import compile_contract

            for name in ("registry", "agreement", "agreement_factory"):
                compile_contract(name, cache_dir=folder / "artifacts")
            mqtt_traces = dict(list(traces.items())[:4])
            count, rate = await ingest_mqtt(ledger, folder / "mqtt-ingest", mqtt_traces)
            rows.append(
                {
                    "measure": "ingestion, mosquitto -> node service",
                    "value": f"{rate:.0f} msg/s",
                    "n": count,
                }
            )
            print(rows[-1])
            for mode in (SigningMode.RING, SigningMode.LEADER, SigningMode.FAST):
                sub = folder / f"latency-{mode.value}"
                (sub / "artifacts").mkdir(parents=True)
                for compiled in (folder / "artifacts").iterdir():
                    (sub / "artifacts" / compiled.name).write_bytes(compiled.read_bytes())
                result = await latency(ledger, sub, args.windows, mode)
                for name, value in result.items():
                    rows.append(
                        {
                            "measure": f"3 nodes, {mode.value}: {name}",
                            "value": f"{value:.1f}",
                            "n": args.windows,
                        }
                    )
                    print(rows[-1])
        finally:
            await ledger.close()
    RESULTS.mkdir(exist_ok=True)
    with (RESULTS / "diversity_protocol.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["measure", "value", "n"])
        writer.writeheader()
        writer.writerows(rows)
    lines = [
        "# DIVERSITY intermediate nodes (bench/diversity_protocol.py)",
        "",
        "Anvil (instant mining), mosquitto with TLS on loopback, 2 cores shared with other work.",
        "",
        "| measure | value | n |",
        "|---|---|---|",
        *(f"| {r['measure']} | {r['value']} | {r['n']} |" for r in rows),
    ]
    (RESULTS / "diversity_protocol.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--windows", type=int, default=30)
    asyncio.run(main(parser.parse_args()))
