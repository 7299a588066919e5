"""The typed wrapper of ``vyper/oracle_hub.vy``: queries with answers t of n oracles sign.

Paper 001, section 4: a consumer contract calls ``query(kind, source, path)`` (the
Oraclize ``oraclize_query``), the oracle nodes (:mod:`pervasive.oracle`) observe the
source, each signs an EIP-712 :class:`Report`, and anyone sends :meth:`OracleHub.fulfill`
with ``threshold`` of them; the hub checks them (one ``ecrecover`` each) and calls the
consumer's ``oracle_callback(query_id, answer, digest)``. A query past its deadline is
:meth:`OracleHub.expire`\\ d: retried, then timed out. This module holds the report's
digest (the same bytes the contract computes), signing, the packing the contract reads
(:func:`pack_reports`), the two transactions a committee sends (:class:`Fulfillment`,
:class:`Expiry`) and the hub's events as typed records.

Example::

    hub = await OracleHub.open(ledger, admin, oracles=[a, b, c], threshold=2, timeout=30,
                               max_attempts=3, book=book)
    report = Report(query_id=1, response_digest=keccak256(body), value=42,
                    observed_at=int(time.time()), source="http://127.0.0.1/cost")
    signed = [report.sign(key, ledger.chain_id, hub.address) for key in keys[:2]]
    await hub.fulfill(Fulfillment.of(signed))
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pervasive.chain import Ledger, Log, Receipt, Signer
from pervasive.contracts.contract import Contract
from pervasive.contracts.deployments import DeploymentBook, code_hash_at, deploy
from pervasive.contracts.deposit_oracle import pack_by_signer
from pervasive.contracts.handle import ContractHandle
from pervasive.crypto import (
    PrivateKey,
    Signature,
    abi_decode,
    abi_encode,
    checksum_address,
    domain_separator,
    recover_hash,
    sign_typed_data,
    struct_hash,
    typed_data_digest,
)
from pervasive.domain import check_account
from pervasive.errors import InvalidInput, InvalidSignature, NotFound

__all__ = [
    "HUB_DOMAIN_NAME",
    "HUB_DOMAIN_VERSION",
    "MAX_ORACLES",
    "ORACLE_HUB",
    "REPORT_BYTES",
    "REPORT_TYPE",
    "Expiry",
    "Fulfillment",
    "HubEvent",
    "OracleHub",
    "OracleSetReplaced",
    "QueryAnswered",
    "QueryKind",
    "QueryRequested",
    "QueryRetried",
    "QueryState",
    "QueryStatus",
    "QueryTimedOut",
    "Report",
    "SignedReport",
    "hub_domain",
    "pack_reports",
]

ORACLE_HUB = "oracle_hub"
"""The contract's name: its source is ``vyper/oracle_hub.vy``, its deployment record key."""

REPORT_TYPE = (
    "Report(uint256 queryId,bytes32 responseDigest,uint256 value,uint64 observedAt,string source)"
)
"""The EIP-712 type every oracle signs."""

HUB_DOMAIN_NAME = "pervasive oracle hub"
"""The EIP-712 domain name (with the chain id and the hub as verifying contract)."""

HUB_DOMAIN_VERSION = "1"
"""The EIP-712 domain version."""

MAX_ORACLES = 16
"""The most oracles a hub registers (and reports a fulfill carries)."""

REPORT_BYTES = 73
"""One packed report: ``observedAt`` (uint64, 8 bytes) || r || s || v."""

_MAX_SOURCE = 256
_MAX_PATH = 64
_UINT64 = 1 << 64
_UINT256 = 1 << 256


class QueryKind(enum.IntEnum):
    """What a query's ``source`` names (the contract's ``kind``)."""

    URL = 1
    """An HTTP(S) URL, fetched with GET."""
    DEVICE = 2
    """``<device id>/<sensor>``: the device's latest signed reading."""
    CID = 3
    """A CID of the platform's content store."""


class QueryState(enum.IntEnum):
    """Where a query stands on-chain (the contract's ``status``)."""

    UNKNOWN = 0
    PENDING = 1
    ANSWERED = 2
    TIMED_OUT = 3


@dataclass(frozen=True)
class QueryStatus:
    """Everything the hub keeps about one query."""

    query_id: int
    state: QueryState
    consumer: str
    attempt: int
    deadline: int
    """Unix time after which the current attempt may be expired."""


def hub_domain(chain_id: int, hub: str) -> bytes:
    """The EIP-712 domain separator of the hub at ``hub`` on ``chain_id``.

    Example: ``hub_domain(31337, hub.address)``.
    """
    return domain_separator(
        HUB_DOMAIN_NAME, HUB_DOMAIN_VERSION, chain_id, check_account(hub, what="hub")
    )


def _uint(name: str, value: int, bound: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < bound:
        raise InvalidInput(f"the report's {name} must be an unsigned integer below {bound}")
    return value


@dataclass(frozen=True)
class Report:
    """What an oracle observed for a query: the EIP-712 ``Report`` struct."""

    query_id: int
    response_digest: bytes
    """keccak256 of the exact response bytes observed."""
    value: int
    observed_at: int
    """Unix seconds of the observation (each oracle its own)."""
    source: str

    def __post_init__(self) -> None:
        _uint("query id", self.query_id, _UINT256)
        _uint("value", self.value, _UINT256)
        _uint("observation time", self.observed_at, _UINT64)
        if len(self.response_digest) != 32:
            raise InvalidInput("a report's response digest is 32 bytes (keccak256)")
        if not 0 < len(self.source.encode()) <= _MAX_SOURCE:
            raise InvalidInput(f"a report's source is 1 to {_MAX_SOURCE} bytes")

    def digest(self, chain_id: int, hub: str) -> bytes:
        """The EIP-712 digest an oracle signs (what the contract's ``report_digest`` returns).

        Example: ``report.digest(31337, hub.address)``.
        """
        body = struct_hash(
            REPORT_TYPE,
            [self.query_id, self.response_digest, self.value, self.observed_at, self.source],
        )
        return typed_data_digest(hub_domain(chain_id, hub), body).digest

    def sign(self, key: PrivateKey, chain_id: int, hub: str) -> SignedReport:
        """This report signed by ``key``'s oracle.

        Example: ``signed = report.sign(key, ledger.chain_id, hub.address)``.
        """
        body = struct_hash(
            REPORT_TYPE,
            [self.query_id, self.response_digest, self.value, self.observed_at, self.source],
        )
        typed = typed_data_digest(hub_domain(chain_id, hub), body)
        signature: Signature = sign_typed_data(key, typed)
        return SignedReport(self, key.address, signature.to_bytes())


@dataclass(frozen=True)
class SignedReport:
    """A report, its signer and the 65-byte signature (r || s || v)."""

    report: Report
    signer: str
    signature: bytes

    def verify(self, chain_id: int, hub: str) -> None:
        """Raise :class:`InvalidSignature` unless ``signer`` signed ``report`` for this hub."""
        try:
            recovered = recover_hash(
                self.report.digest(chain_id, hub), Signature.from_bytes(self.signature)
            )
        except InvalidInput as exc:
            raise InvalidSignature(f"the report of {self.signer} has a malformed signature") from (
                exc
            )
        if recovered != self.signer:
            raise InvalidSignature(f"the report is not signed by {self.signer}")

    def entry(self) -> bytes:
        """The 73 bytes the contract reads: ``observedAt`` (8) || r || s || v."""
        if len(self.signature) != 65:
            raise InvalidInput(f"the signature of {self.signer} is not 65 bytes (r || s || v)")
        return self.report.observed_at.to_bytes(8, "big") + self.signature


def pack_reports(signed: Iterable[SignedReport]) -> bytes:
    """Pack reports as ``fulfill`` reads them: signers in increasing address order.

    Example: ``pack_reports([report.sign(k, chain_id, hub) for k in keys])``.
    """
    entries = {s.signer: s.entry() for s in signed}
    return pack_by_signer(entries, entry_bytes=REPORT_BYTES, limit=MAX_ORACLES)


@dataclass(frozen=True)
class Fulfillment:
    """``fulfill(query_id, digest, answer, reports)``: what a committee sends once per query."""

    query_id: int
    digest: bytes
    value: int
    reports: bytes

    @classmethod
    def of(cls, signed: Sequence[SignedReport]) -> Fulfillment:
        """The fulfillment of reports that agree on (query id, digest, value).

        Example: ``Fulfillment.of([signed_a, signed_b])``.
        """
        if not signed:
            raise InvalidInput("a fulfillment needs at least one report")
        first = signed[0].report
        for s in signed:
            r = s.report
            if (r.query_id, r.response_digest, r.value) != (
                first.query_id, first.response_digest, first.value,
            ):  # fmt: skip
                raise InvalidInput("reports of one fulfillment must agree on id, digest and value")
        return cls(first.query_id, first.response_digest, first.value, pack_reports(signed))

    def encode(self) -> bytes:
        """ABI ``(uint256, bytes32, uint256, bytes)`` (the submitter's row)."""
        return abi_encode(
            ["uint256", "bytes32", "uint256", "bytes"],
            [self.query_id, self.digest, self.value, self.reports],
        )

    @classmethod
    def decode(cls, data: bytes) -> Fulfillment:
        """The inverse of :meth:`encode`."""
        query_id, digest, value, reports = abi_decode(
            ["uint256", "bytes32", "uint256", "bytes"], data
        )
        return cls(int(query_id), bytes(digest), int(value), bytes(reports))


@dataclass(frozen=True)
class Expiry:
    """``expire(query_id)`` for attempt ``attempt``: ends it in a retry or a timeout."""

    query_id: int
    attempt: int

    def encode(self) -> bytes:
        """ABI ``(uint256, uint256)`` (the submitter's row)."""
        return abi_encode(["uint256", "uint256"], [self.query_id, self.attempt])

    @classmethod
    def decode(cls, data: bytes) -> Expiry:
        """The inverse of :meth:`encode`."""
        query_id, attempt = abi_decode(["uint256", "uint256"], data)
        return cls(int(query_id), int(attempt))


# -- events -------------------------------------------------------------------------


@dataclass(frozen=True)
class QueryRequested:
    """A consumer asked (attempt 1); everything a node needs to answer."""

    query_id: int
    consumer: str
    kind: int
    source: str
    path: str
    deadline: int
    attempt: int
    block: int


@dataclass(frozen=True)
class QueryAnswered:
    """``t`` or more oracles agreed; the consumer was called back (``callback_ok``)."""

    query_id: int
    consumer: str
    value: int
    digest: bytes
    signers: int
    callback_ok: bool
    block: int
    transaction_hash: str


@dataclass(frozen=True)
class QueryRetried:
    """An attempt passed its deadline; attempt ``attempt`` runs until ``deadline``."""

    query_id: int
    attempt: int
    deadline: int
    block: int


@dataclass(frozen=True)
class QueryTimedOut:
    """The last attempt passed its deadline: the query ends without an answer."""

    query_id: int
    consumer: str
    attempt: int
    block: int


@dataclass(frozen=True)
class OracleSetReplaced:
    """The owner registered a new oracle set (``epoch`` 1 at deployment)."""

    epoch: int
    oracles: tuple[str, ...]
    threshold: int
    block: int


HubEvent = QueryRequested | QueryAnswered | QueryRetried | QueryTimedOut | OracleSetReplaced
"""Every event the hub emits, typed."""


class OracleHub(ContractHandle):
    """A deployed oracle hub; writes are sent from ``signer``."""

    NAME = ORACLE_HUB
    MISSING = "run `pervasive oracle init`"

    @classmethod
    async def open(  # type: ignore[override]
        cls,
        ledger: Ledger,
        signer: Signer,
        *,
        oracles: Sequence[str],
        threshold: int,
        timeout: int,
        max_attempts: int,
        book: DeploymentBook | None = None,
        artifacts: Path | None = None,
    ) -> OracleHub:
        """The hub recorded in ``book`` when it has exactly this configuration, else a new one.

        A new hub is deployed from ``signer`` (its owner) and recorded in ``book``.

        Example: ``await OracleHub.open(ledger, admin, oracles=[a, b, c], threshold=2,
        timeout=30, max_attempts=3, book=platform.deployments())``.
        """
        checked = [check_account(o, what="oracle") for o in oracles]
        if len(set(checked)) != len(checked):
            raise InvalidInput("the oracle list names an address twice")
        if not 0 < len(checked) <= MAX_ORACLES:
            raise InvalidInput(f"a hub registers 1 to {MAX_ORACLES} oracles")
        if not 0 < threshold <= len(checked):
            raise InvalidInput(f"the threshold must be in 1..{len(checked)}")
        if not 0 < timeout < 1 << 32:
            raise InvalidInput("the timeout is a positive number of seconds")
        if not 0 < max_attempts <= 255:
            raise InvalidInput("max_attempts must be 1 to 255")
        artifact = cls.artifact(artifacts)
        book = book or DeploymentBook(":memory:")
        known = book.get(ledger.chain_id, cls.NAME)
        if (
            known is not None
            and known.source_hash == artifact.source_hash
            and await code_hash_at(ledger, known.address) == known.code_hash
        ):
            hub = cls(Contract(ledger, known.address, artifact.abi), signer)
            same = (
                set(await hub.oracles()) == set(checked)
                and await hub.threshold() == threshold
                and await hub.timeout() == timeout
                and await hub.max_attempts() == max_attempts
            )
            if same:
                return hub
        deployment = await deploy(ledger, signer, artifact, checked, threshold, timeout,
                                  max_attempts)  # fmt: skip
        book.record(deployment)
        return cls(Contract(ledger, deployment.address, artifact.abi), signer)

    # -- writes -------------------------------------------------------------------------
    async def query(self, kind: QueryKind | int, source: str, path: str = "") -> QueryRequested:
        """Ask from the signer's account (tests and tools; consumers are contracts).

        Example: ``asked = await hub.query(QueryKind.URL, "http://127.0.0.1:8080/cost")``.
        """
        _check_query(kind, source, path)
        receipt = await self._send("query", int(kind), source, path)
        (event,) = [e for e in self.receipt_events(receipt) if isinstance(e, QueryRequested)]
        return event

    async def fulfill(self, fulfillment: Fulfillment) -> Receipt:
        """Send the answer with its reports (reverts: not pending, late, unregistered...)."""
        f = fulfillment
        return await self._send("fulfill", f.query_id, f.digest, f.value, f.reports)

    async def expire(self, query_id: int) -> Receipt:
        """End the current attempt of a query past its deadline (retry or time out)."""
        return await self._send("expire", query_id)

    async def replace_oracles(self, oracles: Sequence[str], threshold: int) -> Receipt:
        """Register a new oracle set (owner only)."""
        checked = [check_account(o, what="oracle") for o in oracles]
        return await self._send("replace_oracles", checked, threshold)

    # -- reads --------------------------------------------------------------------------
    async def oracles(self) -> tuple[str, ...]:
        """The registered oracles, in registration order."""
        return tuple(checksum_address(a) for a in await self.contract.call("oracles"))

    async def threshold(self) -> int:
        """How many agreeing reports an answer needs."""
        return int(await self.contract.call("threshold"))

    async def epoch(self) -> int:
        """The number of the current oracle set."""
        return int(await self.contract.call("epoch"))

    async def is_oracle(self, account: str) -> bool:
        """Whether ``account`` is in the current set."""
        return bool(await self.contract.call("is_oracle", check_account(account)))

    async def timeout(self) -> int:
        """Seconds an attempt may take."""
        return int(await self.contract.call("TIMEOUT"))

    async def max_attempts(self) -> int:
        """Attempts before a timeout."""
        return int(await self.contract.call("MAX_ATTEMPTS"))

    async def owner(self) -> str:
        """Who may replace the oracle set."""
        return checksum_address(await self.contract.call("OWNER"))

    async def query_status(self, query_id: int) -> QueryStatus:
        """What the hub keeps about ``query_id``; :class:`NotFound` for an unknown id.

        Example: ``(await hub.query_status(7)).state is QueryState.ANSWERED``.
        """
        state, consumer, attempt, deadline = await self.contract.call("query_status", query_id)
        if int(state) == QueryState.UNKNOWN:
            raise NotFound(f"no query {query_id} at the oracle hub {self.address}")
        return QueryStatus(
            query_id, QueryState(int(state)), checksum_address(consumer), int(attempt),
            int(deadline),
        )  # fmt: skip

    async def report_digest(self, report: Report) -> bytes:
        """The digest as the contract computes it (equal to :meth:`Report.digest`)."""
        r = report
        raw = await self.contract.call(
            "report_digest", r.query_id, r.response_digest, r.value, r.observed_at, r.source
        )
        return bytes(raw)

    async def domain_separator(self) -> bytes:
        """The contract's EIP-712 domain separator (equal to :func:`hub_domain`)."""
        return bytes(await self.contract.call("domain_separator"))

    # -- events -------------------------------------------------------------------------
    async def events(self, from_block: int = 0, to_block: int | None = None) -> list[HubEvent]:
        """The hub's events in ``from_block..to_block`` (default: the latest), in chain order.

        Example: ``[e for e in await hub.events() if isinstance(e, QueryAnswered)]``.
        """
        last = await self.contract.ledger.block_number() if to_block is None else to_block
        logs = await self.contract.ledger.logs([self.address], from_block, last)
        return self.decode(logs)

    def receipt_events(self, receipt: Receipt) -> list[HubEvent]:
        """The hub's events in one receipt."""
        return self.decode(receipt.logs)

    def decode(self, logs: Iterable[Log]) -> list[HubEvent]:
        """Typed events of the hub's logs (others skipped)."""
        out: list[HubEvent] = []
        for event in self.contract.decode_logs(logs):
            a, block = event.args, event.log.block_number
            if event.name == "QueryRequested":
                out.append(QueryRequested(
                    int(a["query_id"]), str(a["consumer"]), int(a["kind"]), str(a["source"]),
                    str(a["path"]), int(a["deadline"]), int(a["attempt"]), block,
                ))  # fmt: skip
            elif event.name == "QueryAnswered":
                out.append(QueryAnswered(
                    int(a["query_id"]), str(a["consumer"]), int(a["answer"]),
                    bytes(a["digest"]), int(a["signers"]), bool(a["callback_ok"]), block,
                    event.log.transaction_hash,
                ))  # fmt: skip
            elif event.name == "QueryRetried":
                out.append(QueryRetried(
                    int(a["query_id"]), int(a["attempt"]), int(a["deadline"]), block
                ))  # fmt: skip
            elif event.name == "QueryTimedOut":
                out.append(QueryTimedOut(
                    int(a["query_id"]), str(a["consumer"]), int(a["attempt"]), block
                ))  # fmt: skip
            elif event.name == "OracleSetReplaced":
                out.append(OracleSetReplaced(
                    int(a["epoch"]), tuple(str(o) for o in a["oracles"]), int(a["threshold"]),
                    block,
                ))  # fmt: skip
        return out


def _check_query(kind: QueryKind | int, source: str, path: str) -> None:
    try:
        QueryKind(int(kind))
    except ValueError:
        raise InvalidInput(f"query kind {kind} is not 1 (URL), 2 (DEVICE) or 3 (CID)") from None
    if not 0 < len(source.encode()) <= _MAX_SOURCE:
        raise InvalidInput(f"a query's source is 1 to {_MAX_SOURCE} bytes")
    if len(path.encode()) > _MAX_PATH:
        raise InvalidInput(f"a query's path is at most {_MAX_PATH} bytes")
