"""What mosquitto's log says: refusals counted by reason, and the one line that explains an exit.

mosquitto 2.0 reports what it refuses only in its log (MQTT 3.1.1 has no negative
PUBACK and no reason on a dropped connection), so :class:`MosquittoBroker` reads its
own log with these pure functions:

* :func:`count_refusals` counts the lines that record a refusal, by reason:
  ``oversize packet`` (a packet over ``max_packet_size``: the sender is disconnected),
  ``queue full`` (an offline or slow client's queue reached ``max_queued_messages`` /
  ``max_queued_bytes``; mosquitto logs this once per episode, when it starts dropping,
  not once per dropped message), ``revoked`` (a live session closed because its
  certificate was revoked) and ``tls refused`` (a handshake failed over a certificate:
  none, unknown, expired or revoked).
* :func:`exit_reason` picks the line that says why mosquitto stopped
  (``Error: Address already in use``).

Example::

    count_refusals("...: Client lock-7 disconnected due to oversize packet.\\n")
    # Counter({'oversize packet': 1})
"""

from __future__ import annotations

import re
from collections import Counter

__all__ = ["REFUSAL_MARKERS", "count_refusals", "exit_reason"]

REFUSAL_MARKERS: tuple[tuple[str, str], ...] = (
    ("disconnected due to oversize packet.", "oversize packet"),
    ("Outgoing messages are being dropped for client", "queue full"),
    ("been disconnected by administrative action.", "revoked"),
    ("OpenSSL Error[0]", "tls refused"),
)
"""(fragment of a log line, reason it is counted under)."""

_TIMESTAMP = re.compile(r"^\S+: ")


def count_refusals(text: str) -> Counter[str]:
    """Refusals recorded in ``text`` (whole lines of mosquitto's log), by reason.

    An ``OpenSSL Error`` block of several lines counts once (its ``[0]`` line), and only
    when it is about a certificate: a connection closed during its handshake (the
    broker's own readiness probes) is no refusal.

    Example: ``count_refusals(log)["oversize packet"]``.
    """
    counted: Counter[str] = Counter()
    for line in text.splitlines():
        for marker, reason in REFUSAL_MARKERS:
            if marker in line and (reason != "tls refused" or "certificate" in line):
                counted[reason] += 1
    return counted


def exit_reason(text: str) -> str | None:
    """The first ``Error:`` line of ``text`` without its timestamp, or None.

    Example: ``exit_reason("1: Error: Address already in use")`` is
    ``'Error: Address already in use'``.
    """
    for line in text.splitlines():
        message = _TIMESTAMP.sub("", line, count=1).strip()
        if message.startswith("Error:"):
            return message
    return None
