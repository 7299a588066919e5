"""Signed readings per second from 100 simulated devices through mosquitto into verifiers.

Setup: a platform CA and a mosquitto broker with TLS client certificates
(``max_inflight_messages`` 1,000, see :mod:`pervasive.messaging.mosquitto`); publisher
processes each run a share of the devices with the device SDK; consumer processes
(identity ``svc:node``) verify every message.

- Devices: every reading takes a durable sequence number and is signed as paper 002's
  ``m_{s,q}``. With ``presign`` (the default) the readings are signed *before* the
  clock starts: real devices sign on their own CPUs, not on the two cores this
  benchmark shares with the broker and the consumers. Timed: every reading still goes
  through the device's SQLite outbox (``Device.publish_signed_many``, ``batch``
  readings per transaction; durable before it is sent) and QoS 1 with up to
  ``inflight`` readings per device awaiting their PUBACK.
- Acknowledged means durable (issue 11, item 6): mosquitto acknowledges before it saves
  (every ``autosave_interval`` s), so the outbox keeps an acknowledged reading
  ``autosave_interval + 2`` s (7 s) and sends it again if the connection drops first.
  Each configuration runs twice in the same process: "forget at PUBACK" (rows deleted
  at their PUBACK, the figure before issue 11) and "keep 7 s" (rows marked at their
  PUBACK, deleted in bulk once the broker was heard from 7 s later). Publisher CPU
  per message is measured until the last PUBACK (``publisher_cpu_us``, comparable
  with earlier rows), then, separately, while the publishers stay connected until
  every retained row is deleted (``retire_cpu_us``: the deferred deletes plus the
  idle wake-ups of 100 devices over ~8 s). The rate is from the first to the last
  verified message either way. The ratios are printed.
- Consumers: each checks every message with the intermediate node's
  :class:`pervasive.offchain.node.SensorVerifier` (canonical encoding, declared key
  and kind, values as declared, secp256k1 signature) and the node's
  :class:`pervasive.sensing.sequence.SequenceTracker` (each ``q`` once, in order per
  sensor; redeliveries are refused as replays and counted). With several consumers
  the devices are partitioned between them by topic, so each sensor's sequence is
  checked in one place. The run fails unless the consumers saw exactly
  ``devices x per_device`` distinct ``(sensor, q)`` pairs.

The figure is verified messages per second from the first message to the last
(summed over consumers, over the longest consumer window). CPU microseconds per
message of publishers, broker and consumers are reported too: on a shared machine
they vary less than the rate.

Every consumer connects with its own certificate (``svc:node.<i>``): the MQTT client id
is the certificate's identity (issue 11, item 1).

Usage: ``.venv/bin/python bench/device_throughput.py [--devices 100] [--per-device 300]
[--publishers 2] [--consumers 1] [--batch 10] [--inflight 64] [--sign-live]
[--durable both|yes|no] [--matrix]``; ``--matrix`` runs the configurations of the chart
one after another; ``--durable`` picks the outbox retention runs (default both).
Appends rows to ``bench/results/device_throughput.csv`` and redraws
``bench/results/device_throughput.png``.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import multiprocessing as mp
import os
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pervasive.crypto import PublicKey
from pervasive.devices import Device, DeviceFolder, sign_reading
from pervasive.devices.simulator import LOCATION_SENSOR
from pervasive.errors import ReplayedMessage
from pervasive.messaging import ClientCredentials, ClientOptions, MosquittoBroker, MqttClient
from pervasive.pki import CertificateAuthority
from pervasive.sensing import SensorVerifier
from pervasive.sensing.sequence import SequenceTracker

RESULTS = Path(__file__).parent / "results"
CSV_FILE = RESULTS / "device_throughput.csv"
PNG_FILE = RESULTS / "device_throughput.png"
TARGET = 5_000
AUTOSAVE_INTERVAL = 5
"""mosquitto's ``autosave_interval`` (the ``[mqtt]`` default): readings are kept 7 s."""
CLIENT = "link"
"""The MQTT client measured: the platform's own (:mod:`pervasive.messaging.link`).

Rows of ``aiomqtt (paho)`` were measured with the client it replaced (commit c65d580)."""
COLUMNS = [
    "client",
    "label",
    "devices",
    "messages",
    "publishers",
    "consumers",
    "batch",
    "inflight",
    "presign",
    "retention_s",
    "seconds",
    "verified_per_second",
    "replays",
    "publisher_cpu_us",
    "retire_cpu_us",
    "broker_cpu_us",
    "consumer_cpu_us",
    "verifier_alone_per_second",
    "load_average",
    "cores",
]


@dataclass(frozen=True)
class Config:
    label: str
    devices: int
    per_device: int
    publishers: int
    consumers: int
    batch: int
    inflight: int
    presign: bool
    manual_ack: bool = False
    autosave_interval: int = 0
    """The broker's save interval the outbox assumes; 0 forgets a reading at its PUBACK."""

    @property
    def retention(self) -> float:
        return self.autosave_interval + 2.0 if self.autosave_interval else 0.0


def _reading(i: int) -> dict[str, Any]:
    return {"cell": f"c-{i % 7}", "time": 1_700_000_000 + i}


def consume(
    options: ClientOptions, devices: list[tuple[str, bytes]], total: int, ready, out
) -> None:  # type: ignore[no-untyped-def]
    """One consumer process: verify every message of ``devices`` until ``total`` are in order."""

    async def go() -> tuple[int, int, float, float, int]:
        declarations = [LOCATION_SENSOR.declaration(PublicKey(key)) for _, key in devices]
        verifier = SensorVerifier(declarations)
        tracker = SequenceTracker({d.address: 0 for d in declarations}, gap_timeout=3600)
        replays = in_order = 0
        seen: set[tuple[str, int]] = set()
        async with MqttClient(options) as client:
            for device_id, _ in devices:
                await client.subscribe(f"pervasive/devices/{device_id}/sensors/+")
            ready.put(True)
            stream = client.messages()
            message = await anext(stream)
            start, cpu = time.perf_counter(), time.process_time()
            last = start
            while True:
                verified = verifier.verify(message.payload)
                try:
                    for accepted in tracker.accept(verified, now=0.0):
                        seen.add((accepted.sensor, accepted.sequence))
                        in_order += 1
                except ReplayedMessage:
                    replays += 1
                client.acknowledge(message)  # a no-op unless manual_ack: PUBACK after checking
                last = time.perf_counter()
                if in_order >= total:
                    break
                try:
                    async with asyncio.timeout(30):  # a loss must fail the run, not hang it
                        message = await anext(stream)
                except TimeoutError:
                    break
            elapsed, cpu = last - start, time.process_time() - cpu
        return len(seen), replays, elapsed, cpu, in_order

    out.put(asyncio.run(go()))


def publish(port: int, folders: list[Path], config: Config, ready, go_event, out) -> None:  # type: ignore[no-untyped-def]
    """One publisher process: its share of the devices, readings through the SDK's outbox."""

    async def run() -> tuple[float, float]:
        devices = [
            Device(
                p.name,
                DeviceFolder(p),
                host="127.0.0.1",
                port=port,
                sensors=[LOCATION_SENSOR],
                max_inflight=config.inflight,
                # a PINGREQ every 2 s when quiet: retained rows are deleted once the broker
                # was heard from 7 s after their PUBACK
                keepalive=4,
                autosave_interval=config.autosave_interval,
            )
            for p in folders
        ]
        await asyncio.gather(*(d.connect() for d in devices))
        signed = {
            d.device_id: [d.sign("location", _reading(i))[1] for i in range(config.per_device)]
            for d in devices
            if config.presign
        }
        ready.put(True)
        while not go_event.is_set():
            await asyncio.sleep(0.005)
        cpu = time.process_time()

        async def one(device: Device) -> None:
            for first in range(0, config.per_device, config.batch):
                last = min(first + config.batch, config.per_device)
                if config.presign:
                    wires = signed[device.device_id][first:last]
                    await device.publish_signed_many("location", wires)
                else:
                    await device.publish_many("location", [_reading(i) for i in range(first, last)])
                await asyncio.sleep(0)  # let the drains run between batches
            await device.flush(300)

        async def retired(device: Device) -> None:
            while device.retained:  # deleted once the broker was heard from 7 s later
                await asyncio.sleep(0.5)

        await asyncio.gather(*(one(d) for d in devices))
        flushed = time.process_time()
        await asyncio.gather(*(retired(d) for d in devices))
        tail = time.process_time() - flushed
        await asyncio.gather(*(d.close() for d in devices))
        return flushed - cpu, tail

    out.put(asyncio.run(run()))


def _process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _mosquitto_pid(config_file: Path) -> int:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if str(config_file).encode() in (entry / "cmdline").read_bytes():
                    return int(entry.name)
            except OSError:
                continue
    raise RuntimeError("mosquitto process not found")


def verifier_alone(folders: list[Path], count: int) -> float:
    """Messages per second one process verifies with no network (a consumer's ceiling)."""
    keys = [DeviceFolder(f).signing_key("location") for f in folders]
    declarations = [LOCATION_SENSOR.declaration(k.public_key) for k in keys]
    verifier = SensorVerifier(declarations)
    wires = [
        sign_reading(keys[i % len(keys)], declarations[i % len(keys)], i, _reading(i))
        for i in range(count)
    ]
    start = time.perf_counter()
    for wire in wires:
        verifier.verify(wire)
    return count / (time.perf_counter() - start)


def run(
    config: Config,
    root: Path,
    ca: CertificateAuthority,
    nodes: list[ClientCredentials],
    folders: list[Path],
    alone: float,
) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    broker = MosquittoBroker(
        root / f"mosquitto-{config.label}", ca.broker_credentials(), ca.active_identities
    )
    asyncio.run(broker.start())
    try:
        broker_pid = _mosquitto_pid(broker.config_file)
        options = [
            ClientOptions(
                "127.0.0.1", broker.port, nodes[i], ack_timeout=60, manual_ack=config.manual_ack
            )
            for i in range(config.consumers)
        ]
        keys = [
            (f.name, DeviceFolder(f).signing_key("location").public_key.to_bytes()) for f in folders
        ]
        ready, results, published, go_event = ctx.Queue(), ctx.Queue(), ctx.Queue(), ctx.Event()
        consumers = [
            ctx.Process(
                target=consume,
                args=(options[i], share, len(share) * config.per_device, ready, results),
            )
            for i, share in enumerate(keys[i :: config.consumers] for i in range(config.consumers))
        ]
        for process in consumers:
            process.start()
        for _ in consumers:
            ready.get(timeout=120)
        publishers = [
            ctx.Process(
                target=publish,
                args=(
                    broker.port,
                    folders[i :: config.publishers],
                    config,
                    ready,
                    go_event,
                    published,
                ),
            )
            for i in range(config.publishers)
        ]
        for process in publishers:
            process.start()
        for _ in publishers:
            ready.get(timeout=600)
        time.sleep(1)
        broker_cpu = _process_cpu(broker_pid)
        go_event.set()
        outcomes = [results.get(timeout=900) for _ in consumers]
        spent = [published.get(timeout=300) for _ in publishers]
        publisher_cpu = sum(flushed for flushed, _ in spent)
        retire_cpu = sum(tail for _, tail in spent)
        broker_cpu = _process_cpu(broker_pid) - broker_cpu
        for process in (*publishers, *consumers):
            process.join(60)
    finally:
        asyncio.run(broker.stop())
    total = config.devices * config.per_device
    distinct = sum(o[0] for o in outcomes)
    if distinct != total:
        raise SystemExit(
            f"{config.label}: consumers saw {distinct} distinct (sensor, q), expected {total}"
        )
    seconds = max(o[2] for o in outcomes)
    return {
        "client": CLIENT,
        "label": config.label,
        "devices": config.devices,
        "messages": total,
        "publishers": config.publishers,
        "consumers": config.consumers,
        "batch": config.batch,
        "inflight": config.inflight,
        "presign": config.presign,
        "retention_s": f"{config.retention:g}",
        "seconds": f"{seconds:.3f}",
        "verified_per_second": f"{total / seconds:.0f}",
        "replays": sum(o[1] for o in outcomes),
        "publisher_cpu_us": f"{publisher_cpu / total * 1e6:.0f}",
        "retire_cpu_us": f"{retire_cpu / total * 1e6:.0f}",
        "broker_cpu_us": f"{broker_cpu / total * 1e6:.0f}",
        "consumer_cpu_us": f"{sum(o[3] for o in outcomes) / total * 1e6:.0f}",
        "verifier_alone_per_second": f"{alone:.0f}",
        "load_average": f"{os.getloadavg()[0]:.1f}",
        "cores": os.cpu_count(),
    }


def report(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Verified device messages per second (target {TARGET:,}/s)")
    for column in (
        "configuration",
        "msg/s",
        "target",
        "vs target",
        "µs CPU/msg pub · broker · cons",
        "replays",
        "load",
    ):
        table.add_column(column, justify="right")
    for row in rows:
        rate = int(row["verified_per_second"])
        style = "green" if rate >= TARGET else "red"
        table.add_row(
            row["label"],
            f"[{style}]{rate:,}[/]",
            f"{TARGET:,}",
            f"{rate / TARGET:.0%}",
            f"{row['publisher_cpu_us']} · {row['broker_cpu_us']} · {row['consumer_cpu_us']}",
            str(row["replays"]),
            row["load_average"],
        )
    Console(width=140).print(table)


def compare(rows: list[dict[str, Any]]) -> None:
    """Print, per configuration, what keeping acknowledged readings costs against not."""
    today = {r["label"].rsplit(", ", 1)[0]: r for r in rows if r["retention_s"] == "0"}
    for row in rows:
        base = today.get(row["label"].rsplit(", ", 1)[0])
        if row["retention_s"] == "0" or base is None:
            continue
        rate = int(row["verified_per_second"]) / int(base["verified_per_second"])
        cpu = int(row["publisher_cpu_us"]) / max(1, int(base["publisher_cpu_us"]))
        print(
            f"{row['label']}: {int(row['verified_per_second']):,} msg/s vs "
            f"{int(base['verified_per_second']):,} forgetting at PUBACK (x{rate:.2f}); "
            f"publisher CPU until the last PUBACK {row['publisher_cpu_us']} vs "
            f"{base['publisher_cpu_us']} µs/msg (x{cpu:.2f}), then "
            f"{row['retire_cpu_us']} µs/msg to delete the retained rows"
        )


def write(rows: list[dict[str, Any]]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    old: list[dict[str, str]] = []
    if CSV_FILE.exists():
        with CSV_FILE.open() as handle:
            old = [r for r in csv.DictReader(handle) if r.get("label")]
    with CSV_FILE.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        writer.writeheader()
        writer.writerows([*old, *rows])
    chart([*old, *rows])


def chart(rows: list[dict[str, Any]]) -> None:
    """Grouped bars: the last run of each configuration, one bar per MQTT client."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        latest[(str(row["label"]), str(row.get("client") or "?"))] = row
    labels = list(dict.fromkeys(label for label, _ in latest))
    clients = list(dict.fromkeys(client for _, client in latest))
    height = 0.8 / len(clients)
    figure, axis = plt.subplots(figsize=(10, 1.2 + 0.9 * len(labels)))
    peak = 0
    for index, client in enumerate(clients):
        shown = [label for label in labels if (label, client) in latest]
        rates = [int(latest[(label, client)]["verified_per_second"]) for label in shown]
        peak = max([peak, *rates])
        positions = [
            labels.index(label) + (index - (len(clients) - 1) / 2) * height for label in shown
        ]
        bars = axis.barh(positions, rates, height=height, label=client)
        loads = [latest[(label, client)]["load_average"] for label in shown]
        axis.bar_label(
            bars, [f"{r:,}/s (load {x})" for r, x in zip(rates, loads, strict=True)], padding=3
        )
    axis.axvline(TARGET, color="tab:red", linestyle="--", label=f"target {TARGET:,}/s")
    axis.set_yticks(range(len(labels)), labels)
    axis.set_xlim(0, max(peak, TARGET) * 1.3)
    axis.set_xlabel("verified msg/s: 100 devices, mosquitto TLS, QoS 1, every signature checked")
    axis.set_title(f"Device throughput on {os.cpu_count()} shared cores, by MQTT client")
    axis.invert_yaxis()
    axis.legend(loc="upper right")
    figure.tight_layout()
    figure.savefig(PNG_FILE, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--per-device", type=int, default=300)
    parser.add_argument("--publishers", type=int, default=2)
    parser.add_argument("--consumers", type=int, default=1)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--inflight", type=int, default=64)
    parser.add_argument("--sign-live", action="store_true", help="sign while timed")
    parser.add_argument(
        "--manual-ack", action="store_true", help="consumers PUBACK after verifying, not on arrival"
    )
    parser.add_argument(
        "--durable",
        choices=["both", "yes", "no"],
        default="both",
        help="keep acknowledged readings 7 s (yes), forget them at PUBACK (no), or run both",
    )
    parser.add_argument("--matrix", action="store_true", help="run the chart's configurations")
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    base = dict(
        devices=args.devices,
        per_device=args.per_device,
        publishers=args.publishers,
        presign=not args.sign_live,
    )
    if args.matrix:
        configs = [
            Config("one in flight, commit per reading", consumers=1, batch=1, inflight=1, **base),
            Config("64 in flight, commit per reading", consumers=1, batch=1, inflight=64, **base),
            Config("64 in flight, batch 10", consumers=1, batch=10, inflight=64, **base),
            Config(
                "64 in flight, batch 10, 2 consumers", consumers=2, batch=10, inflight=64, **base
            ),
        ]
    else:
        label = args.label or (
            f"{args.inflight} in flight, batch {args.batch}, {args.consumers} consumer(s)"
            + (", manual ack" if args.manual_ack else "")
        )
        configs = [
            Config(
                label,
                consumers=args.consumers,
                batch=args.batch,
                inflight=args.inflight,
                manual_ack=args.manual_ack,
                **base,
            )
        ]
    intervals = {"both": (0, AUTOSAVE_INTERVAL), "yes": (AUTOSAVE_INTERVAL,), "no": (0,)}
    configs = [
        replace(
            config,
            label=f"{config.label}, "
            + (f"keep {interval + 2} s after PUBACK" if interval else "forget at PUBACK"),
            autosave_interval=interval,
        )
        for config in configs
        for interval in intervals[args.durable]
    ]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ca = CertificateAuthority.open(root / "pki", "bench")
        try:
            folders = []
            for index in range(args.devices):
                folder = root / "devices" / f"dev-{index}"
                ca.write_credentials(ca.issue_device(f"dev-{index}"), folder)
                folders.append(folder)
            nodes = [  # one identity per consumer connection: the client id is the identity
                ca.write_credentials(ca.issue_service(f"svc:node.{i}"), root / f"node-{i}")
                for i in range(max(c.consumers for c in configs))
            ]
            alone = verifier_alone(folders[:10], 2000)
            for config in configs:
                for folder in folders:  # fresh outboxes and sequence numbers per run
                    for name in ("outbox.sqlite", "sequence.sqlite"):
                        for leftover in folder.glob(f"{name}*"):
                            leftover.unlink()
                rows.append(run(config, root, ca, nodes, folders, alone))
                print(rows[-1], flush=True)
        finally:
            ca.close()
    report(rows)
    compare(rows)
    write(rows)
    if max(int(r["verified_per_second"]) for r in rows) < TARGET:
        sys.exit(1)


if __name__ == "__main__":
    main()
