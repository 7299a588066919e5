"""Refusals counted from mosquitto 2.0.11's own log lines, and the line that explains an exit."""

from __future__ import annotations

from pervasive.messaging.mosquitto_log import count_refusals, exit_reason

# lines as mosquitto 2.0.11 wrote them in the integration tests
LOG = """\
2026-12-07T03:39:19: mosquitto version 2.0.11 running
2026-12-07T03:39:19: OpenSSL Error[0]: error:0A000126:SSL routines::unexpected eof while reading
2026-12-07T03:39:19: Client thing-3 been disconnected by administrative action.
2026-12-07T03:39:19: OpenSSL Error[0]: error:0A000086:SSL routines::certificate verify failed
2026-12-07T03:39:19: OpenSSL Error[1]: error:0A000086:SSL routines::certificate verify failed
2026-12-07T03:39:20: Client thing-5 disconnected due to oversize packet.
2026-12-07T03:39:21: Outgoing messages are being dropped for client thing-6.
"""


def test_each_refusal_is_counted_once_under_its_reason() -> None:
    assert count_refusals(LOG) == {
        "revoked": 1,
        "tls refused": 1,  # the probe's closed handshake is none; Error[1] is the same one
        "oversize packet": 1,
        "queue full": 1,
    }


def test_the_exit_reason_is_the_first_error_line_without_its_timestamp() -> None:
    failed = LOG + "2026-12-07T03:40:00: Error: Address already in use\n"
    assert exit_reason(failed) == "Error: Address already in use"
    assert exit_reason(LOG) is None
