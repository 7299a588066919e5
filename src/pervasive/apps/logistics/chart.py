"""The logistics case study as a PNG timeline: one lane per party, one marker per event.

Lanes (:data:`~pervasive.apps.logistics.report.PARTIES`) are the people (retailer,
supplier, carrier), the two devices, the oracle committee and the three pervasive
contracts. A step of the run is a grey dot in its party's lane; a CloudEvent of the
stream is a coloured marker in its contract's lane at the moment it arrived (two events
of one transaction stacked), a payment a star in its payee's lane; the container's
offline spell is a shaded band.

Example: ``write_chart(report, Path("logistics.png"))``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from pervasive.apps.logistics.report import PARTIES, LogisticsReport

__all__ = ["write_chart"]

_COLOURS = {
    "shipment-created": "#264653",
    "cost-requested": "#2a9d8f",
    "cost-quoted": "#8ab17d",
    "tracking-opened": "#e9c46a",
    "money-sent": "#f4a261",
    "escrow-opened": "#e76f51",
    "delivery-confirmed": "#9d4edd",
    "payment-released": "#d62828",
}


def write_chart(report: LogisticsReport, path: Path) -> Path:
    """Draw the report's timeline to ``path`` (PNG) and return it."""
    lanes = {party: index for index, party in enumerate(PARTIES)}
    figure, axes = plt.subplots(figsize=(13, 5.5))
    offline = [s.at for s in report.steps if s.party == "container-1" and "offline" in s.what]
    online = [s.at for s in report.steps if s.party == "container-1" and "back online" in s.what]
    if offline and online:
        axes.axvspan(offline[0], online[-1], color="#dddddd", alpha=0.6,
                     label="container offline (outbox)")  # fmt: skip
    for step in report.steps:
        lane = lanes.get(step.party)
        if lane is not None:
            axes.plot(step.at, lane, "o", color="#888888", markersize=4)
    seen: set[str] = set()
    last: dict[int, tuple[float, float]] = {}  # lane -> (time, offset) of its last marker
    for event in report.events:
        lane = lanes.get(event.service)
        if lane is None:
            continue
        kind = event.short_type
        at, offset = last.get(lane, (-1.0, 0.0))
        offset = offset + 0.22 if event.at - at < 0.15 else 0.0  # one transaction, two events
        last[lane] = (event.at, offset)
        axes.plot(event.at, lane + offset, "D", color=_COLOURS.get(kind, "#3b7dd8"),
                  markersize=9, label=kind if kind not in seen else None)  # fmt: skip
        seen.add(kind)
    for payment in report.payments:
        paid = [e.at for e in report.events if e.data.get("transaction") == payment.transaction]
        lane = lanes.get(payment.payee)
        if paid and lane is not None:
            axes.plot(paid[0], lane, "*", color="#2a9d8f", markersize=15,
                      label="paid" if "paid" not in seen else None)  # fmt: skip
            axes.annotate(f"{payment.amount / 10**18:g} ETH", (paid[0], lane),
                          textcoords="offset points", xytext=(8, 6), fontsize=8)  # fmt: skip
            seen.add("paid")
    axes.margins(x=0.06)
    axes.set_yticks(range(len(PARTIES)), list(PARTIES))
    axes.invert_yaxis()
    axes.set_xlabel("seconds since start")
    axes.grid(axis="x", linestyle=":", alpha=0.5)
    axes.set_title(
        f"paper 001, Fig. 1 on chain {report.chain_id} ({report.chain_kind}): "
        f"{len(report.events)} CloudEvents, grey dots = steps"
    )
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
