"""Signed readings per second from 100 simulated devices through mosquitto into a verifier.

Setup: a platform CA and a mosquitto broker with TLS client certificates; publisher
processes each run a share of the devices with the device SDK (every reading takes a
durable sequence number, is signed as paper 002's m_{s,q} and goes through the
device's SQLite outbox, QoS 1); one consumer process (identity ``svc:node``)
subscribes to every sensor topic and verifies every signature (decoding, schema and
secp256k1 recovery, :class:`pervasive.devices.SensorVerifier`), optionally fanning
batches out to a pool of verifier processes. The figure is verified messages per
second at the consumer, from its first message to its last.

Usage: ``.venv/bin/python bench/device_throughput.py [--devices 100] [--per-device 300]
[--publishers 2] [--workers 0] [--presign]``; appends a row to
``bench/results/device_throughput.csv``.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import multiprocessing as mp
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from pervasive.devices import Device, DeviceFolder, SensorVerifier
from pervasive.devices.simulator import LOCATION_SENSOR
from pervasive.messaging import ClientOptions, MosquittoBroker, MqttClient
from pervasive.offchain.declaration import SensorDeclaration
from pervasive.pki import CertificateAuthority

RESULTS = Path(__file__).parent / "results" / "device_throughput.csv"
_VERIFIER: SensorVerifier | None = None


def _verify_batch(payloads: list[bytes]) -> int:
    assert _VERIFIER is not None
    for payload in payloads:
        _VERIFIER.verify(payload)
    return len(payloads)


def _declarations(keys: list[bytes]) -> list[SensorDeclaration]:
    from pervasive.crypto import PublicKey

    return [LOCATION_SENSOR.declaration(PublicKey(k)) for k in keys]


def consume(
    options: ClientOptions, keys: list[bytes], total: int, workers: int, ready, out
) -> None:  # type: ignore[no-untyped-def]
    async def go() -> tuple[int, float]:
        verifier = SensorVerifier(_declarations(keys))
        pool = (
            ProcessPoolExecutor(workers, initializer=_init_declared, initargs=(keys,))
            if workers
            else None
        )
        loop = asyncio.get_running_loop()
        futures = []
        async with MqttClient(options) as client:
            await client.subscribe("pervasive/devices/+/sensors/+")
            ready.set()
            received = 0
            start = 0.0
            batch: list[bytes] = []
            stream = client.messages()
            while received < total:
                message = await anext(stream)
                if received == 0:
                    start = time.perf_counter()
                received += 1
                if pool is None:
                    verifier.verify(message.payload)
                else:
                    batch.append(message.payload)
                    if len(batch) >= 200 or received == total:
                        futures.append(loop.run_in_executor(pool, _verify_batch, batch))
                        batch = []
            verified = sum(await asyncio.gather(*futures)) if pool is not None else received
            elapsed = time.perf_counter() - start
        if pool is not None:
            pool.shutdown()
        return verified, elapsed

    out.put(asyncio.run(go()))


def _init_declared(keys: list[bytes]) -> None:
    global _VERIFIER  # noqa: PLW0603 - one verifier per worker process
    _VERIFIER = SensorVerifier(_declarations(keys))


def publish(port: int, folders: list[Path], per_device: int, presign: bool, go_event) -> None:  # type: ignore[no-untyped-def]
    async def run() -> None:
        devices = [
            Device(p.name, DeviceFolder(p), host="127.0.0.1", port=port, sensors=[LOCATION_SENSOR])
            for p in folders
        ]
        await asyncio.gather(*(d.connect() for d in devices))
        signed: dict[str, list[bytes]] = {}
        if presign:
            for d in devices:
                signed[d.device_id] = [
                    d.sign("location", {"cell": f"c-{i % 7}", "time": 1_700_000_000 + i})[1]
                    for i in range(per_device)
                ]
        while not go_event.is_set():
            await asyncio.sleep(0.01)

        async def one(device: Device) -> None:
            for i in range(per_device):
                if presign:
                    await device.publish_signed("location", signed[device.device_id][i])
                else:
                    await device.publish(
                        "location", {"cell": f"c-{i % 7}", "time": 1_700_000_000 + i}
                    )
                if i % 20 == 0:
                    await asyncio.sleep(0)
            await device.flush(120)

        await asyncio.gather(*(one(d) for d in devices))
        await asyncio.gather(*(d.close() for d in devices))

    asyncio.run(run())


def verifier_alone(folders: list[Path], count: int) -> float:
    """Messages per second one process verifies with no network (the consumer's ceiling)."""
    devices = [DeviceFolder(f) for f in folders]
    keys = [d.signing_key("location") for d in devices]
    verifier = SensorVerifier(LOCATION_SENSOR.declaration(k.public_key) for k in keys)
    codecs = [verifier.declare(LOCATION_SENSOR.declaration(k.public_key)) for k in keys]
    wires = [
        codecs[i % len(keys)].sign(keys[i % len(keys)], i, {"cell": "c-1", "time": i})
        for i in range(count)
    ]
    start = time.perf_counter()
    for wire in wires:
        verifier.verify(wire)
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--per-device", type=int, default=300)
    parser.add_argument("--publishers", type=int, default=2)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--presign", action="store_true")
    args = parser.parse_args()
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ca = CertificateAuthority.open(root / "pki", "bench")
        broker = MosquittoBroker(root / "mosquitto", ca.broker_credentials(), ca.active_identities)
        folders = []
        for index in range(args.devices):
            folder = root / "devices" / f"dev-{index}"
            ca.write_credentials(ca.issue_device(f"dev-{index}"), folder)
            folders.append(folder)
        keys = [DeviceFolder(f).signing_key("location").public_key.to_bytes() for f in folders]
        node = ca.write_credentials(ca.issue_service("svc:node"), root / "node")
        alone = verifier_alone(folders[:10], 3000)
        asyncio.run(broker.start())
        try:
            total = args.devices * args.per_device
            ready, out, go_event = ctx.Event(), ctx.Queue(), ctx.Event()
            options = ClientOptions("127.0.0.1", broker.port, node, ack_timeout=30)
            consumer = ctx.Process(
                target=consume, args=(options, keys, total, args.workers, ready, out)
            )
            consumer.start()
            ready.wait(60)
            shares = [folders[i :: args.publishers] for i in range(args.publishers)]
            publishers = [
                ctx.Process(
                    target=publish,
                    args=(broker.port, share, args.per_device, args.presign, go_event),
                )
                for share in shares
            ]
            for process in publishers:
                process.start()
            time.sleep(3 + args.devices * 0.02)
            go_event.set()
            verified, elapsed = out.get(timeout=600)
            for process in (*publishers, consumer):
                process.join(60)
        finally:
            asyncio.run(broker.stop())
            ca.close()
    rate = verified / elapsed
    print(
        f"{verified} signed messages from {args.devices} devices verified in {elapsed:.2f} s: "
        f"{rate:,.0f}/s (publishers={args.publishers}, workers={args.workers}, "
        f"presign={args.presign}, cores={os.cpu_count()}); one process verifies "
        f"{alone:,.0f}/s with no network; load average {os.getloadavg()[0]:.1f}"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    new = not RESULTS.exists()
    with RESULTS.open("a", newline="") as handle:
        writer = csv.writer(handle)
        if new:
            writer.writerow(["devices", "messages", "publishers", "workers", "presign",
                             "seconds", "verified_per_second", "verifier_alone_per_second",
                             "load_average", "cores"])  # fmt: skip
        writer.writerow([args.devices, verified, args.publishers, args.workers, args.presign,
                         f"{elapsed:.3f}", f"{rate:.0f}", f"{alone:.0f}",
                         f"{os.getloadavg()[0]:.1f}", os.cpu_count()])  # fmt: skip


if __name__ == "__main__":
    main()
