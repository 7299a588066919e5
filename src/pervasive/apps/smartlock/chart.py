"""The smart-lock month as a PNG: daily rental time and what the month cost on-chain.

Left: rental hours per day of the month (``sum_k T_d(k)``) from the agreed ``T_d(k)``
table. Right: gas of the month on-chain, DIVERSITY's one update against the paper's
raw-data baseline (every lock message a transaction, estimated as 21,000 gas plus the
message's calldata).

Example: ``write_chart(report, Path("smartlock.png"))``.
"""

from __future__ import annotations

import collections
import datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from pervasive.apps.smartlock.scenario import MonthReport

__all__ = ["raw_data_gas", "write_chart"]

_DAY = 86_400


def raw_data_gas(report: MonthReport) -> int:
    """Estimated gas of sending every lock message as its own transaction (paper's RDA).

    Example: ``raw_data_gas(report) > report.update.gas_used``.
    """
    per_message = report.message_bytes // max(1, report.message_count)
    return report.message_count * (21_000 + 16 * per_message)


def write_chart(report: MonthReport, path: Path) -> Path:
    """Draw the report to ``path`` (PNG) and return it."""
    daily: collections.Counter[int] = collections.Counter()
    for _, day, seconds in report.daily_table:
        daily[(datetime.date(1970, 1, 1) + datetime.timedelta(days=day)).day] += seconds
    days = sorted(daily)
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4), width_ratios=(3, 1))
    left.bar(days, [daily[d] / 3600 for d in days], color="#3b7dd8")
    left.set_xlabel(f"day of {report.month.year}-{report.month.month:02d}")
    left.set_ylabel("rental hours (all tokens)")
    total_hours = (report.result_seconds or 0) / 3600
    left.set_title(f"T_d per day; T_m = {total_hours:.1f} h over {len(report.month.locks)} locks")
    update_gas = report.update.gas_used if report.update else 0
    labels = ["DIVERSITY\n(1 update)", f"raw data\n({report.message_count} tx, est.)"]
    values = [update_gas, raw_data_gas(report)]
    right.bar(labels, values, color=["#2a9d8f", "#e76f51"])
    right.set_yscale("log")
    right.set_ylabel("gas for the month")
    for x, value in enumerate(values):
        right.text(x, value, f"{value:,}", ha="center", va="bottom", fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
