"""The smart-lock case study's off-chain function (paper 002, section 2).

Each lock sends ``m = [b, k, s, t]``: bicycle ``b``, token ``k``, state ``s`` (unlocked
or locked) and time ``t`` (Unix seconds). A rental ``t(k, t1, t2) = t2 - t1`` runs
from an unlock by token ``k`` to the next lock of the same bicycle by ``k``.
``T_d(k)`` is the total time token ``k`` was used in day ``d`` (a rental crossing
midnight UTC is split between the days) and ``T_m`` the total over every token and
day of month ``m``: what the insurance bills.

Output (deterministic, integers only):
``abi_encode((string token, uint32 day, uint64 seconds)[] daily,
(uint32 yyyymm, uint64 seconds)[] monthly)``
with ``day`` counted from 1970-01-01, ``daily`` sorted by (token, day) and ``monthly``
by month. A window with no completed rental gives ``None`` (null: nothing on-chain).
Unlocks still open at the end of the window, and locks without a matching unlock,
are not counted in this window.
"""

from __future__ import annotations

import collections
import datetime
from collections.abc import Sequence

from pervasive.crypto import abi_decode, abi_encode
from pervasive.offchain.declaration import SensorDeclaration
from pervasive.offchain.window import WindowArray

__all__ = [
    "SMART_LOCK_FIELDS",
    "decode_rental_time",
    "rental_intervals",
    "smart_lock_declaration",
    "smart_lock_rental_time",
]

SMART_LOCK_FIELDS: tuple[tuple[str, str], ...] = (
    ("bicycle", "uint64"),
    ("token", "string"),
    ("unlocked", "bool"),
    ("time", "uint64"),
)
"""``m = [b, k, s, t]`` as a sensor declaration (``unlocked`` true for ``u``, false for ``l``)."""

_TYPES = [kind for _, kind in SMART_LOCK_FIELDS]
_DAY = 86_400
_OUTPUT = ["(string,uint32,uint64)[]", "(uint32,uint64)[]"]


def smart_lock_declaration(public_key: bytes) -> SensorDeclaration:
    """The declaration ``d_s`` of a lock.

    Example: ``smart_lock_declaration(key.public_key.to_bytes())``.
    """
    return SensorDeclaration.create(public_key, "smart-lock", SMART_LOCK_FIELDS)


def rental_intervals(events: Sequence[tuple[int, str, bool, int]]) -> list[tuple[str, int, int]]:
    """Pair unlocks and locks per bicycle into ``(token, t1, t2)`` rentals.

    ``events`` are ``(bicycle, token, unlocked, time)`` tuples in any order; they are
    sorted by time (ties keep their given order).

    Example: ``rental_intervals([(1, "k", True, 10), (1, "k", False, 70)]) == [("k", 10, 70)]``.
    """
    open_rentals: dict[int, tuple[str, int]] = {}
    out = []
    for bicycle, token, unlocked, time in sorted(events, key=lambda e: e[3]):
        if unlocked:
            open_rentals[bicycle] = (token, time)
            continue
        started = open_rentals.pop(bicycle, None)
        if started is not None and started[0] == token and time >= started[1]:
            out.append((token, started[1], time))
    return out


def _month(day: int) -> int:
    date = datetime.date(1970, 1, 1) + datetime.timedelta(days=day)
    return date.year * 100 + date.month


def smart_lock_rental_time(windows: WindowArray) -> bytes | None:
    """``f(w[t])``: ``T_d(k)`` per token and day, and ``T_m`` per month, ABI-encoded.

    Example: ``decode_rental_time(smart_lock_rental_time(w))  # (daily, monthly)``.
    """
    events = []
    for message in windows.messages():
        bicycle, token, unlocked, time = abi_decode(_TYPES, message.values)
        events.append((bicycle, token, unlocked, time))
    daily: collections.Counter[tuple[str, int]] = collections.Counter()
    for token, start, end in rental_intervals(events):
        cursor = start
        while cursor < end:
            day = cursor // _DAY
            stop = min(end, (day + 1) * _DAY)
            daily[token, day] += stop - cursor
            cursor = stop
    if not daily:
        return None
    monthly: collections.Counter[int] = collections.Counter()
    for (_, day), seconds in daily.items():
        monthly[_month(day)] += seconds
    return abi_encode(
        _OUTPUT,
        [
            [(token, day, seconds) for (token, day), seconds in sorted(daily.items())],
            sorted(monthly.items()),
        ],
    )


def decode_rental_time(
    result: bytes,
) -> tuple[list[tuple[str, int, int]], list[tuple[int, int]]]:
    """Inverse of the output encoding: ``([(token, day, T_d)], [(yyyymm, T_m)])``.

    Example: ``daily, monthly = decode_rental_time(agreed.result)``.
    """
    daily, monthly = abi_decode(_OUTPUT, result)
    return [(str(k), int(d), int(s)) for k, d, s in daily], [(int(m), int(s)) for m, s in monthly]
