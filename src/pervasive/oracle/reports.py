"""The message oracle nodes exchange: one signed report per query attempt.

Each node that observed a query's source signs the hub's EIP-712 ``Report``
(:class:`pervasive.contracts.oracle_hub.Report`) and sends it to the other members in a
committee envelope (:mod:`pervasive.committee.envelope`) of the oracle committee's
domain: ``session`` = the hub, ``round`` = the query id, ``kind`` = :data:`REPORT`. The
body carries what the receiver cannot know by itself (the query's id and source it
has from the chain):

    ReportBody = abi_encode(uint8 attempt, bytes32 response_digest, uint256 value,
                            uint64 observed_at, bytes signature)

``signature`` is the sender's 65-byte signature over the hub's ``Report``: the same
bytes the hub's ``fulfill`` checks, so a report that convinces a member convinces the hub.

Example::

    body = ReportBody.of(signed, attempt=1)
    envelope = signer.sign(round=signed.report.query_id, kind=REPORT, body=body.encode())
    decode_report_body(envelope).signed(query_source)     # SignedReport
"""

from __future__ import annotations

from dataclasses import dataclass

from pervasive.committee import Envelope
from pervasive.contracts.oracle_hub import Report, SignedReport
from pervasive.crypto import abi_decode, abi_encode, domain_separator
from pervasive.errors import InvalidInput

__all__ = [
    "COMMITTEE_DOMAIN_NAME",
    "REPORT",
    "ReportBody",
    "committee_domain",
    "decode_report_body",
]

REPORT = 1
"""The envelope kind of a report."""

COMMITTEE_DOMAIN_NAME = "pervasive oracle committee"
"""The EIP-712 domain name of the members' envelopes (with chain id and hub)."""

_TYPES = ["uint8", "bytes32", "uint256", "uint64", "bytes"]


def committee_domain(chain_id: int, hub: str) -> bytes:
    """The domain separator of the envelopes of the committee serving ``hub``.

    Example: ``committee_domain(31337, hub.address)``.
    """
    return domain_separator(COMMITTEE_DOMAIN_NAME, "1", chain_id, hub)


@dataclass(frozen=True)
class ReportBody:
    """A report as it travels: the attempt it answers and the signed fields."""

    attempt: int
    response_digest: bytes
    value: int
    observed_at: int
    signature: bytes

    @classmethod
    def of(cls, signed: SignedReport, *, attempt: int) -> ReportBody:
        """The body of an oracle's own signed report."""
        r = signed.report
        return cls(attempt, r.response_digest, r.value, r.observed_at, signed.signature)

    def encode(self) -> bytes:
        """ABI ``(uint8, bytes32, uint256, uint64, bytes)``."""
        return abi_encode(
            _TYPES,
            [self.attempt, self.response_digest, self.value, self.observed_at, self.signature],
        )

    def signed(self, query_id: int, source: str, signer: str) -> SignedReport:
        """The hub report this body claims ``signer`` signed (not yet verified)."""
        report = Report(query_id, self.response_digest, self.value, self.observed_at, source)
        return SignedReport(report, signer, self.signature)


def decode_report_body(envelope: Envelope) -> ReportBody:
    """Decode a report envelope's body (:class:`InvalidInput` if it is no report).

    Example: ``body = decode_report_body(envelope)``.
    """
    if envelope.kind != REPORT:
        raise InvalidInput(f"unknown oracle message kind {envelope.kind}")
    attempt, digest, value, observed_at, signature = abi_decode(_TYPES, envelope.body)
    if len(signature) != 65 or attempt < 1:
        raise InvalidInput("a report carries a 65-byte signature and an attempt from 1")
    return ReportBody(int(attempt), bytes(digest), int(value), int(observed_at), bytes(signature))
