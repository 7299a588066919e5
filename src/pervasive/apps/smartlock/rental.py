"""The smart-lock agreement's off-chain function ``f``: rental time per token, day and month.

Paper 002, section 2: each lock sends ``m = [b, k, s, t]``; a rental of token ``k``
lasts ``t(k, t1, t2) = t2 - t1`` from an unlock to the next lock of the same bicycle;
``T_d(k)`` sums token ``k``'s rentals in day ``d`` and ``T_m`` sums every ``T_d(k)`` of
month ``m``; the insurer bills the provider on ``T_m``.

The agreement's window is one month of every lock (see ``docs/smartlock-demo.md``), so
``f(w[t])`` computes the whole table ``T_d(k)`` and its total ``T_m``. What goes on-chain
must fit the contract (at most 512 bytes, and the ``PAY_PER_UNIT`` reaction reads the
first word), so the result is the fixed 160 bytes

    abi_encode(uint256 T_m, uint256 yyyymm, uint256 rentals, uint256 tokens, bytes32 daily)

with ``T_m`` in seconds (the premium is ``amount`` wei per rental second) and ``daily``
the keccak256 of the ABI-encoded table ``(string token, uint32 day, uint64 T_d)[]``
sorted by (token, day): every node agrees on the full table, the chain keeps its hash.
``yyyymm`` is the month of the window's first rental day. A window without a completed
rental is the null result. An unlock still open at the end of the window, and a lock
without a matching unlock, count for nothing; a rental crossing midnight UTC is split
between the two days.
"""

from __future__ import annotations

import collections
import datetime
from collections.abc import Sequence
from dataclasses import dataclass

from pervasive.crypto import abi_decode, abi_encode, keccak256
from pervasive.offchain.functions import FunctionRegistry, OffchainFunction
from pervasive.offchain.window import WindowArray
from pervasive.sensing import SensorDeclaration

__all__ = [
    "FUNCTIONS",
    "FUNCTION_NAME",
    "RENTAL_TIME",
    "SMART_LOCK_FIELDS",
    "MonthlyRental",
    "decode_monthly_rental",
    "monthly_rental_time",
    "rental_intervals",
    "rental_table",
    "smart_lock_declaration",
]

FUNCTION_NAME = "smartlock-monthly-rental"
SMART_LOCK_FIELDS: tuple[tuple[str, str], ...] = (
    ("bicycle", "uint64"),
    ("token", "string"),
    ("unlocked", "bool"),
    ("time", "uint64"),
)
"""``m = [b, k, s, t]`` as a sensor declaration (``unlocked`` true for ``u``, false for ``l``)."""
_DAY = 86_400
_TYPES = [kind for _, kind in SMART_LOCK_FIELDS]
_RESULT = ["uint256", "uint256", "uint256", "uint256", "bytes32"]
_TABLE = ["(string,uint32,uint64)[]"]


@dataclass(frozen=True)
class MonthlyRental:
    """The decoded result of ``f``."""

    seconds: int
    """``T_m``: rental seconds of every token in the window's month."""
    month: int
    """``yyyymm``."""
    rentals: int
    tokens: int
    daily_hash: bytes
    """keccak256 of the ``T_d(k)`` table."""


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


def rental_table(windows: WindowArray) -> tuple[list[tuple[str, int, int]], int]:
    """``T_d(k)`` as ``[(token, day, seconds)]`` sorted by (token, day), and the rental count.

    ``day`` counts days since 1970-01-01 (UTC).

    Example: ``table, rentals = rental_table(w)``.
    """
    events = []
    for message in windows.messages():
        bicycle, token, unlocked, time = abi_decode(_TYPES, message.values)
        events.append((bicycle, token, unlocked, time))
    daily: collections.Counter[tuple[str, int]] = collections.Counter()
    intervals = rental_intervals(events)
    for token, start, end in intervals:
        cursor = start
        while cursor < end:
            day = cursor // _DAY
            stop = min(end, (day + 1) * _DAY)
            daily[token, day] += stop - cursor
            cursor = stop
    table = [(token, day, seconds) for (token, day), seconds in sorted(daily.items())]
    return table, len(intervals)


def _month(day: int) -> int:
    date = datetime.date(1970, 1, 1) + datetime.timedelta(days=day)
    return date.year * 100 + date.month


def monthly_rental_time(windows: WindowArray) -> bytes | None:
    """``f(w[t])``: ``T_m``, its month, rentals, tokens and the hash of the ``T_d(k)`` table.

    Example: ``decode_monthly_rental(monthly_rental_time(w)).seconds``.
    """
    table, rentals = rental_table(windows)
    if not table:
        return None
    total = sum(seconds for _, _, seconds in table)
    month = _month(min(day for _, day, _ in table))
    tokens = len({token for token, _, _ in table})
    daily = keccak256(abi_encode(_TABLE, [table]))
    return abi_encode(_RESULT, [total, month, rentals, tokens, daily])


def decode_monthly_rental(result: bytes) -> MonthlyRental:
    """Decode ``f``'s result. Example: ``decode_monthly_rental(record.result).month``."""
    seconds, month, rentals, tokens, daily = abi_decode(_RESULT, result)
    return MonthlyRental(seconds, month, rentals, tokens, daily)


FUNCTIONS = FunctionRegistry()
"""The off-chain functions of the smart-lock case study, by name."""
RENTAL_TIME: OffchainFunction = FUNCTIONS.register(FUNCTION_NAME, monthly_rental_time)
