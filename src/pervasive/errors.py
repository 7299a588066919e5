"""The exception tree of pervasive.

Every error the package raises on purpose derives from :class:`PervasiveError`.
It splits in two, as vyper splits user errors from ``CompilerPanic``: a
:class:`UserError` is something the caller can fix (the message says how), an
:class:`InternalError` is a bug in pervasive. Builtin mixins in parentheses keep
``except ValueError`` (or ``LookupError``, ``PermissionError``) working for callers
that do not know pervasive.

The classes defined here are the kinds every layer shares; a subsystem defines the
kinds only it raises, next to its code. The whole tree, with the module that defines
each class outside this one (``tests/unit/package/test_package_errors.py`` fails when
a class is missing here or hangs elsewhere):

```
PervasiveError                        root of every error pervasive raises on purpose
├── UserError                         something the caller can fix; the message says how
│   │ errors.py
│   ├── ConfigError                   bad setting, unknown backend, unreadable pervasive.toml
│   ├── KeystoreError                 missing account, wrong password, corrupt key file
│   ├── InvalidInput (ValueError)     malformed address, key, id, field type, payload
│   │   ├── SchemaViolation           a message does not match its declaration
│   │   │   └── EventRefused          interop.errors: an event's data fails its JSON Schema
│   │   ├── InvalidSignature          a signature does not verify or names someone else
│   │   │   └── PartialSignatureInvalid  crosschain.errors: a partial BLS signature fails
│   │   ├── MalformedPacket           messaging.packets: bytes that are no MQTT 3.1.1 packet
│   │   │   └── PacketTooLarge        messaging.packets: a packet over the client's max_packet
│   │   ├── MessageTooLarge           messaging.packets: a publish over [mqtt] max_message_bytes
│   │   ├── FunctionMismatch          offchain.functions: function's hash is not the pinned one
│   │   ├── InvalidReceipt            domain.sale_receipt: malformed, or not signed by its buyer
│   │   ├── MalformedRequest          gateway.jsonrpc: a body answered by one JSON-RPC error
│   │   ├── UnreadableImage           apps.salesorder.barcode: no receipt barcode in an image
│   │   ├── InclusionProofInvalid     crosschain.errors: a Merkle branch does not prove its claim
│   │   ├── MappingError              interop.errors: a mapping does not fit its ABI or its schema
│   │   ├── SourceRefused             oracle.sources: the node will not observe this source
│   │   ├── SpecError                 service.spec: a spec is malformed or does not fit its contract
│   │   └── _Failure                  shadow.protocol, private: a parser's rejection
│   ├── ReplayedMessage               a sequence number or nonce seen before
│   │   └── DuplicateShadowRequest    shadow.store: a request (token and payload) already applied
│   ├── NotFound (LookupError)        an entity, deployment or record does not exist
│   ├── ChainUnavailable              the node cannot be reached or started
│   │   └── LitecoinUnavailable       crosschain.errors: litecoind cannot be started or reached
│   ├── TransactionReverted           the EVM reverted; carries the decoded reason
│   ├── TransactionTimeout            no receipt within the allowed time; it may still be mined
│   │ chain/
│   ├── TransactionRefused            ledger: the node refused a signed transaction (nonce, funds)
│   ├── FollowerError                 follower: exactly-once delivery can no longer be kept
│   ├── RequestRefused                rpc: an endpoint with access control (a gateway) refused us
│   │ messaging/errors.py
│   ├── BrokerUnavailable             the MQTT broker cannot be started or reached
│   ├── ConnectionRefused             the broker refused us (TLS handshake or CONNACK)
│   ├── TopicDenied (PermissionError) the access policy forbids this publish or subscribe
│   │ pki/errors.py
│   ├── CertificateRejected           a presented certificate is not acceptable
│   │   ├── UnknownIssuer             not signed by this platform's CA (or tampered with)
│   │   ├── CertificateExpired        outside its validity window (expired or not yet valid)
│   │   ├── CertificateRevoked        revoked (compromised, rotated, or the device retired)
│   │   └── WrongUsage                lacks the extended key usage the caller needs
│   │ offchain/node/window_requests.py
│   ├── NotAuthorised (PermissionError)  the requester is neither party nor node of the agreement
│   │ shadow/store.py
│   ├── StaleShadowWrite              another writer changed the shadow since it was read
│   │ oracle/sources.py
│   ├── SourceFailed                  a source cannot be read or holds no integer at the path
│   │ storage/errors.py
│   ├── ContentCorrupted              the bytes stored under a CID do not hash to it
│   │ crosschain/errors.py
│   ├── DkgFailed                     the notary's key generation cannot finish
│   ├── ChallengeRefused              a challenge is malformed, premature or about an included tx
│   ├── DepositInsufficient           a deposit does not cover pending payments plus the amount
│   │ web/refusals.py
│   ├── WebRequestRefused             a page or form cannot be served: status, reason, message
│   │ apps/salesorder/
│   ├── DoorFault                     shadow_door: the door did not confirm a move
│   ├── _Refused                      warehouse, private: a refusal on its way to a DoorDecision
│   │ service/deployment.py
│   ├── DeploymentRefused             a deploy or upgrade would break a service's history or data
│   │ cli/device.py
│   ├── RegistrationInterrupted       device register stopped part-way; rerun to resume
│   │ apps/logistics/scenario.py
│   ├── DemoStalled                   a step of the logistics case study did not happen in time
│   │ store/__init__.py
│   ├── UnreadableDatabase            a SQLite file is corrupt, no database, or cannot be opened
│   │ crosschain/litecoin/rpc.py
│   └── LitecoinRpcError              litecoind answered a call with an error (code, message)
├── InternalError                     a bug in pervasive: please file an issue
│ sensing/verifier.py
└── _Fallback                         private: the fast verifier is unsure, the reference decides
```

The two private classes never leave their module: ``_Failure`` becomes a ``Rejected``
reply, ``_Fallback`` a call of the reference implementation. They derive from the
root anyway: should one escape through a bug, ``except PervasiveError`` still holds,
and the rule "every exception class derives from the root" needs no exemption.
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
