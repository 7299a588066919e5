"""The errors only the cross-chain subsystem raises (drawn in :mod:`pervasive.errors`)."""

from __future__ import annotations

from pervasive.errors import ChainUnavailable, InvalidInput, InvalidSignature, UserError

__all__ = [
    "ChallengeRefused",
    "DepositInsufficient",
    "DkgFailed",
    "InclusionProofInvalid",
    "LitecoinUnavailable",
    "PartialSignatureInvalid",
]


class DkgFailed(UserError):
    """The key generation cannot finish: too few qualified members, or a deadline passed."""


class PartialSignatureInvalid(InvalidSignature):
    """A member's partial BLS signature does not verify against its public share."""


class InclusionProofInvalid(InvalidInput):
    """A Merkle (Patricia) branch does not prove what it claims against the block header."""


class ChallengeRefused(UserError):
    """A challenge is malformed, premature, or about a transaction that was in fact included."""


class DepositInsufficient(UserError):
    """A deposit does not cover the pending payments plus the amount asked for."""


class LitecoinUnavailable(ChainUnavailable):
    """The litecoind node cannot be started or reached."""
