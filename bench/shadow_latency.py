"""Shadow update round trip on loopback: publish `/update`, wait for `/update/accepted`.

Setup: a platform CA, mosquitto with TLS client certificates, the shadow service
(:class:`pervasive.shadow.ShadowService`, SQLite store on disk, identity ``svc:shadow``)
and one device client (its own certificate). AWS's quota of 20 requests per second
per thing is lifted for the run, since one thing sends back to back. The device sends ``--updates``
sequential updates of ``reported`` (alternating values, so every one changes the
document), each with a fresh ``clientToken``, and times each until the matching
``/update/accepted`` arrives. Reports p50, p90, p99 and max in milliseconds.

Usage: ``.venv/bin/python bench/shadow_latency.py [--updates 1000]``; appends a row to
``bench/results/shadow_latency.csv``.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from pervasive.config import ShadowSettings
from pervasive.messaging import ClientOptions, MosquittoBroker, MqttClient, shadow_topic
from pervasive.pki import CertificateAuthority
from pervasive.shadow import ShadowCore, ShadowService, ShadowStore

RESULTS = Path(__file__).parent / "results" / "shadow_latency.csv"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def measure(updates: int, warmup: int) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ca = CertificateAuthority.open(root / "pki", "bench")
        broker = MosquittoBroker(root / "mosquitto", ca.broker_credentials(), ca.active_identities)
        shadow_creds = ca.write_credentials(ca.issue_service("svc:shadow"), root / "shadow")
        device_creds = ca.write_credentials(ca.issue_device("lock-1"), root / "lock-1")
        await broker.start()
        try:
            store = ShadowStore.open(root / "shadow.sqlite")
            async with (
                MqttClient(
                    # as the platform runs it: durable, acknowledging once answered
                    ClientOptions("127.0.0.1", broker.port, shadow_creds, manual_ack=True)
                ) as service_mqtt,
                MqttClient(ClientOptions("127.0.0.1", broker.port, device_creds)) as device,
            ):
                # one thing sends back to back: lift AWS's 20 requests/s per thing quota
                limits = ShadowSettings(requests_per_second=1e6, burst=10**6)
                service = ShadowService(service_mqtt, store, ShadowCore(limits))
                task = asyncio.create_task(service.run())
                await device.subscribe(shadow_topic("lock-1", "update", "accepted"))
                await device.subscribe(shadow_topic("lock-1", "update", "rejected"))
                await asyncio.sleep(0.3)
                stream = device.messages()
                samples: list[float] = []
                for index in range(warmup + updates):
                    token = f"t{index}"
                    body = {"state": {"reported": {"door": "open" if index % 2 else "closed"}},
                            "clientToken": token}  # fmt: skip
                    start = time.perf_counter()
                    await device.publish(
                        shadow_topic("lock-1", "update"), json.dumps(body).encode()
                    )
                    while True:
                        reply = await asyncio.wait_for(anext(stream), 10)
                        answer = json.loads(reply.payload)
                        if answer.get("clientToken") == token:
                            if reply.topic.endswith("/rejected"):
                                raise SystemExit(f"update rejected: {answer}")
                            break
                    if index >= warmup:
                        samples.append((time.perf_counter() - start) * 1000)
                task.cancel()
            store.close()
        finally:
            await broker.stop()
            ca.close()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=50)
    args = parser.parse_args()
    samples = asyncio.run(measure(args.updates, args.warmup))
    p50, p90, p99 = (percentile(samples, f) for f in (0.5, 0.9, 0.99))
    print(
        f"shadow update round trip over {len(samples)} updates: p50 {p50:.2f} ms, "
        f"p90 {p90:.2f} ms, p99 {p99:.2f} ms, max {max(samples):.2f} ms, "
        f"mean {statistics.fmean(samples):.2f} ms (cores={os.cpu_count()})"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    new = not RESULTS.exists()
    with RESULTS.open("a", newline="") as handle:
        writer = csv.writer(handle)
        if new:
            writer.writerow(["updates", "p50_ms", "p90_ms", "p99_ms", "max_ms", "cores"])
        writer.writerow([len(samples), f"{p50:.3f}", f"{p90:.3f}", f"{p99:.3f}",
                         f"{max(samples):.3f}", os.cpu_count()])  # fmt: skip


if __name__ == "__main__":
    main()
