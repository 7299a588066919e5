"""Fast cross-chain IoT data exchange (paper 003): the threshold-BLS notary committee.

A consumer C pays on the user chain B_u, a provider P posts the data index on the
data chain B_d, and nobody waits for a confirmation: deposits locked under the
committee's BLS group key cover what could still go wrong, and a challenge settles
it. The pieces, each usable alone:

- :class:`DkgMember` (eq. 2-5) and :class:`ThresholdSigner` (eq. 6-7), sans I/O;
- :class:`NotaryService`: one member as a service (DKG, contracts, deposit check over
  HTTP, challenges, penalties); :class:`CommitteeSpec` is the committee file;
- :class:`DepositCheck` (Algorithm 2) and :class:`CheckService`, its HTTP interface
  (served by :class:`pervasive.http.HttpServer`);
- :class:`Challenge` and :func:`decide` (V-C), :class:`ChallengeDesk` (the facts);
- :class:`DataChain` with :class:`EvmDataChain` (Merkle-Patricia proofs) and, in
  :mod:`pervasive.crosschain.litecoin`, :class:`~pervasive.crosschain.litecoin.LitecoinDataChain`;
- :class:`DataExchange` (P's Sys), :class:`Consumer` and :class:`ProviderDesk` (the
  exchange from both sides).

See ``README.md`` in this folder for the control flow and what this subsystem may import.
"""

from pervasive.crosschain.chains import DataChain, InclusionProof, PostedIndex
from pervasive.crosschain.challenge import Challenge, ChallengeKind, Outcome, Verdict, decide
from pervasive.crosschain.challenge_desk import ChallengeDesk
from pervasive.crosschain.check_server import CheckService
from pervasive.crosschain.committee_spec import CommitteeContracts, CommitteeMember, CommitteeSpec
from pervasive.crosschain.data_exchange import DataExchange, DataExchangeServer
from pervasive.crosschain.data_index import DatasetSpec, IndexRecord, open_index, seal_index
from pervasive.crosschain.deposit_check import CheckResult, DepositCheck
from pervasive.crosschain.dkg import DkgMember
from pervasive.crosschain.dkg_bodies import DkgResult, DkgSchedule, DkgTranscript
from pervasive.crosschain.errors import (
    ChallengeRefused,
    DepositInsufficient,
    DkgFailed,
    InclusionProofInvalid,
    LitecoinUnavailable,
    PartialSignatureInvalid,
)
from pervasive.crosschain.evm_chain import EvmDataChain
from pervasive.crosschain.exchange import Consumer, ExchangeResult, OwnPostings, ProviderDesk
from pervasive.crosschain.notary import NotaryService, NotaryStats
from pervasive.crosschain.payments import Payment, check_attestation, decode_payment
from pervasive.crosschain.signing import SigningRequest, ThresholdKey, ThresholdSigner

__all__ = [
    "Challenge",
    "ChallengeDesk",
    "ChallengeKind",
    "ChallengeRefused",
    "CheckResult",
    "CheckService",
    "CommitteeContracts",
    "CommitteeMember",
    "CommitteeSpec",
    "Consumer",
    "DataChain",
    "DataExchange",
    "DataExchangeServer",
    "DatasetSpec",
    "DepositCheck",
    "DepositInsufficient",
    "DkgFailed",
    "DkgMember",
    "DkgResult",
    "DkgSchedule",
    "DkgTranscript",
    "EvmDataChain",
    "ExchangeResult",
    "InclusionProof",
    "InclusionProofInvalid",
    "IndexRecord",
    "LitecoinUnavailable",
    "NotaryService",
    "NotaryStats",
    "Outcome",
    "OwnPostings",
    "PartialSignatureInvalid",
    "Payment",
    "PostedIndex",
    "ProviderDesk",
    "SigningRequest",
    "ThresholdKey",
    "ThresholdSigner",
    "Verdict",
    "check_attestation",
    "decide",
    "decode_payment",
    "open_index",
    "seal_index",
]
