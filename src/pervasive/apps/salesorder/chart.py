"""The warehouse case study as a PNG: the flow against time and the door's scan-to-open.

Left: the steps of the run (platform, listing, purchase, door online, each receipt
shown) against time. Right: for the receipt that opened the door, the time from the
decoded receipt to the reported ``open``, split into verifying (signature and
``verifyOwnership`` through the gateway), releasing (the ``release`` transaction) and
opening (the shadow's desired -> delta -> actuator -> reported round trip).

Example: ``write_chart(report, Path("warehouse.png"))``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from pervasive.apps.salesorder.scenario import WarehouseReport

__all__ = ["write_chart"]

_TARGET_MS = 50.0  # the scan-to-open target (p50, loopback)


def write_chart(report: WarehouseReport, path: Path) -> Path:
    """Draw the report to ``path`` (PNG) and return it."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5), width_ratios=(3, 1))
    steps = report.steps
    left.barh(range(len(steps)), [s.at for s in steps], color="#8ab6f9")
    left.set_yticks(range(len(steps)), [s.what for s in steps], fontsize=8)
    left.invert_yaxis()
    left.set_xlabel("seconds since start")
    left.set_title(f"paper 004 on chain {report.chain_id}: flow")
    parts: list[tuple[str, float, str]] = []
    for scan in report.scans:
        t = scan.decision.timings
        if scan.decision.opened and None not in (t.decoded, t.verified, t.released,
                                                 t.reported_open):  # fmt: skip
            assert t.decoded is not None and t.verified is not None
            assert t.released is not None and t.reported_open is not None
            parts = [
                ("verify", (t.verified - t.decoded) * 1000, "#3b7dd8"),
                ("release", (t.released - t.verified) * 1000, "#2a9d8f"),
                ("open", (t.reported_open - t.released) * 1000, "#e9c46a"),
            ]
            break
    bottom = 0.0
    for label, value, colour in parts:
        right.bar(["scan to open"], [value], bottom=bottom, color=colour, label=label)
        bottom += value
    right.axhline(_TARGET_MS, color="#d62828", linestyle="--", label="target p50")
    right.set_ylabel("ms")
    right.set_title("decoded receipt -> reported open")
    right.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
