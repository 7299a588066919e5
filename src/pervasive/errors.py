"""The exception tree of pervasive.

Every error the package raises on purpose derives from :class:`PervasiveError`.
It splits in two, as vyper splits user errors from ``CompilerPanic``:

```
PervasiveError
├── UserError                      something the caller can fix; the message says how
│   ├── ConfigError                bad setting, unknown backend, unreadable pervasive.toml
│   ├── KeystoreError              missing account, wrong password, corrupt key file
│   ├── InvalidInput (ValueError)  malformed address, key, id, field type, schema
│   │   ├── SchemaViolation        a message does not match its declaration
│   │   └── InvalidSignature       a signature does not verify or names someone else
│   ├── ReplayedMessage            a sequence number or nonce seen before
│   ├── ChainUnavailable           the node cannot be reached or started
│   ├── TransactionReverted        the EVM reverted; carries the decoded reason
│   ├── TransactionTimeout         no receipt within the allowed time
│   └── NotFound (LookupError)     an entity, deployment or record does not exist
└── InternalError                  a bug in pervasive: please file an issue
```
"""

from __future__ import annotations

__all__ = [
    "ChainUnavailable",
    "ConfigError",
    "InternalError",
    "InvalidInput",
    "InvalidSignature",
    "KeystoreError",
    "NotFound",
    "PervasiveError",
    "ReplayedMessage",
    "SchemaViolation",
    "TransactionReverted",
    "TransactionTimeout",
    "UserError",
]


class PervasiveError(Exception):
    """Root of every error pervasive raises on purpose."""


class UserError(PervasiveError):
    """An error the caller can act on; the message says what went wrong and what to do."""


class InternalError(PervasiveError):
    """A broken invariant inside pervasive: a bug. Please file an issue with the traceback."""

    def __init__(self, message: str) -> None:
        super().__init__(f"{message} (this is a bug in pervasive; please file an issue)")


class ConfigError(UserError):
    """A setting is missing, unknown or of the wrong type."""


class KeystoreError(UserError):
    """An account's key file is missing, corrupt, or the password is wrong."""


class InvalidInput(UserError, ValueError):
    """A value given to pervasive is malformed (address, key, id, type name...)."""


class SchemaViolation(InvalidInput):
    """A message does not match the schema it was declared with."""


class InvalidSignature(InvalidInput):
    """A signature does not verify, or it verifies for someone other than the claimed signer."""


class ReplayedMessage(UserError):
    """A message carries a sequence number (or nonce) that was already accepted."""


class NotFound(UserError, LookupError):
    """An entity, deployment or stored record does not exist."""


class ChainUnavailable(UserError):
    """The Ethereum node cannot be reached, or could not be started."""


class TransactionReverted(UserError):
    """The EVM reverted a call or transaction.

    ``reason`` is the decoded revert string (``Error(string)``), a ``Panic(uint256)``
    description, or ``None`` when the contract reverted without data.
    """

    def __init__(self, reason: str | None, *, tx_hash: str | None = None) -> None:
        self.reason = reason
        self.tx_hash = tx_hash
        where = f" (transaction {tx_hash})" if tx_hash else ""
        super().__init__(f"transaction reverted: {reason or 'no reason given'}{where}")


class TransactionTimeout(UserError):
    """A transaction was sent but no receipt arrived in time; it may still be mined."""
