"""The data-exchange case study as a PNG: the timeline and what each exchange took.

Left: the steps of the run (setup, honest exchanges, the withholding provider's
challenge and penalty) against time. Right: per honest exchange, the time from C
asking to C holding the data, split into paying (attestations + ``pay`` sent), the
index (P checks the payment, seals and starts posting) and the data fetch.

Example: ``write_chart(report, Path("dataexchange.png"))``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from pervasive.apps.dataexchange.scenario import DataExchangeReport

__all__ = ["write_chart"]

_PARTS = (("pay", "#3b7dd8"), ("index", "#2a9d8f"), ("data", "#e9c46a"))


def write_chart(report: DataExchangeReport, path: Path) -> Path:
    """Draw the report to ``path`` (PNG) and return it."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5), width_ratios=(3, 2))
    steps = report.steps
    left.barh(range(len(steps)), [s.at for s in steps], color="#8ab6f9")
    left.set_yticks(range(len(steps)), [s.what for s in steps], fontsize=8)
    left.invert_yaxis()
    left.set_xlabel("seconds since start")
    left.set_title(f"B_u {report.user_chain}, B_d {report.data_chain}: timeline")
    bottoms = [0.0] * len(report.exchanges)
    labels = [f"#{i + 1}" for i in range(len(report.exchanges))]
    for part, colour in _PARTS:
        values = [e[part] * 1000 for e in report.exchanges]
        right.bar(labels, values, bottom=bottoms, color=colour, label=part)
        bottoms = [b + v for b, v in zip(bottoms, values, strict=True)]
    right.axhline(100, color="#e76f51", linestyle="--", linewidth=1, label="target 100 ms")
    right.set_ylabel("ms from C asking to C holding the data")
    right.set_title("honest exchanges (paper: 1,303-1,718 ms)")
    right.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
