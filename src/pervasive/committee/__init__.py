"""What every committee of mutually distrusting processes shares (papers 001, 002, 003).

A committee (DIVERSITY's intermediate nodes, a threshold-BLS notary, an oracle) is a
group of members that exchange signed messages and send exactly one transaction per
round. This kit holds the parts that do not depend on the protocol:

- :class:`Envelope`: the EIP-712 signed envelope (session, round, kind, sender, nonce,
  body), its wire form, and :class:`EnvelopeSigner` with never-repeating nonces
  (epochs from :class:`SQLiteEpochs`);
- :class:`EnvelopeReceiver`: admission at receipt (signature, member, replay) with the
  body decoded once into the subsystem's typed body (:class:`Received`);
- :class:`Send` and :class:`Submit`: the actions a sans-I/O protocol returns;
- :class:`MemberTransport`: one MQTT inbox per member, pipelined ordered publishes;
- :class:`Submitter`: exactly one transaction per round, durable, with stand-ins that
  take over from a silent designated member.

See ``README.md`` in this folder for the control flow and what it may import.

Example::

    signer = EnvelopeSigner(key, domain, session, epoch=SQLiteEpochs(db).next(session, me))
    receiver = EnvelopeReceiver(domain, session, senders=others, decode_body=decode)
"""

from pervasive.committee.actions import Send, Submit
from pervasive.committee.envelope import ENVELOPE_TYPE, Envelope, decode_envelope
from pervasive.committee.jobs import Jobs
from pervasive.committee.nonces import COUNTER_BITS, EnvelopeSigner, MemoryEpochs, SQLiteEpochs
from pervasive.committee.receiver import EnvelopeReceiver, Received
from pervasive.committee.submitter import (
    Encodable,
    Submission,
    SubmissionPort,
    SubmissionStatus,
    Submitter,
    takeover_rank,
)
from pervasive.committee.transport import MemberTransport, Publish, member_inbox_topic

__all__ = [
    "COUNTER_BITS",
    "ENVELOPE_TYPE",
    "Encodable",
    "Envelope",
    "EnvelopeReceiver",
    "EnvelopeSigner",
    "Jobs",
    "MemberTransport",
    "MemoryEpochs",
    "Publish",
    "Received",
    "SQLiteEpochs",
    "Send",
    "Submission",
    "SubmissionPort",
    "SubmissionStatus",
    "Submit",
    "Submitter",
    "decode_envelope",
    "member_inbox_topic",
    "takeover_rank",
]
