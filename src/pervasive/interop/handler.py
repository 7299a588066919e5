"""The event follower's handler: map each log to a CloudEvent and append it, exactly once.

:class:`MappingHandler` is a :class:`~pervasive.chain.LogHandler`. ``deliver`` runs in
the follower's SQLite transaction: it decodes the log with its contract's compiled
mappings, reads the block's header once per block (its time; the transaction's index
for the id comes with the log, from the header only for a log without it), builds and
validates the CloudEvent and appends it to the event log through the same ``db``, tagged
with the feed's ``origin``; the follower's "delivered" record commits with it, so a kill
at any point leaves either both or neither (the follower delivers a range's logs in
batches, one transaction each). Readers learn of new events after the commit: the feed
wakes its publisher once the follower's poll returns (``appended`` tells whether anything
was appended), never from inside the transaction.
A refused event (it fails its schema, or does not decode) is counted in ``refusals`` by
reason and logged; the follower still records the log as delivered, so it is refused
once and never blocks the logs after it. ``retract``
(a reorganisation) appends a ``dev.pervasive.event.retracted`` event naming the
retracted id and marks the original.

Example::

    handler = MappingHandler(ledger, {factory.address: compiled}, origin="platform")
    follower = EventFollower(ledger, [factory.address], path, "platform", handler)
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
from collections import Counter, OrderedDict
from collections.abc import Mapping

from pervasive.chain import Ledger, Log
from pervasive.chain.headers import BlockHeader
from pervasive.errors import ChainUnavailable
from pervasive.interop.envelope import (
    RETRACTED_TYPE,
    ChainPosition,
    event_topic,
    read_event,
    retraction,
)
from pervasive.interop.errors import EventRefused
from pervasive.interop.mapping import CompiledMappings
from pervasive.interop.store import EventStore

__all__ = ["MappingHandler", "log_key"]

_log = logging.getLogger(__name__)
_HEADERS_KEPT = 64


def log_key(log: Log) -> str:
    """The log's identity as stored: ``<block hash>/<log index>``.

    Example: ``log_key(log)`` == ``"0x9f2c.../3"``.
    """
    return f"{log.block_hash}/{log.log_index}"


class MappingHandler:
    """Maps the logs of the followed contracts and appends them to the event log.

    ``contracts``: contract address -> its compiled mappings (:meth:`add` adds more);
    ``origin``: the feed's name, stored with each event (its publisher's filter).
    """

    def __init__(
        self,
        ledger: Ledger,
        contracts: Mapping[str, CompiledMappings],
        *,
        origin: str = "interop",
    ) -> None:
        self.ledger = ledger
        self.chain_id = ledger.chain_id
        self.origin = origin
        self._contracts = {address.lower(): m for address, m in contracts.items()}
        self._headers: OrderedDict[str, tuple[BlockHeader, dt.datetime]] = OrderedDict()
        """Recent blocks by hash: header and time (one lookup per block, not per log)."""
        self.counters: Counter[str] = Counter()
        """``mapped``, ``unmapped``, ``retracted``."""
        self.refusals: Counter[str] = Counter()
        """Refused events by reason (``schema``, ``undecodable``, ``unmappable``)."""
        self.appended = 0
        """Events and retractions appended so far (committed or not: compare after a poll)."""

    def add(self, address: str, mappings: CompiledMappings) -> None:
        """Map the logs of ``address`` with ``mappings`` too.

        Example: ``handler.add(agreement.address, compile_builtin("agreement", abi))``.
        """
        self._contracts[address.lower()] = mappings

    async def deliver(self, log: Log, db: sqlite3.Connection) -> None:
        """Map ``log`` and append its CloudEvent through ``db`` (refusals counted, not raised)."""
        mappings = self._contracts.get(log.address.lower())
        try:
            found = mappings.decode(log) if mappings is not None else None
            if found is None:
                self.counters["unmapped"] += 1
                return
            mapping, args = found
            header, time = await self._header(log)
            key = log_key(log)
            position = ChainPosition(
                chain_id=self.chain_id,
                address=log.address,
                block_number=log.block_number,
                block_hash=log.block_hash,
                transaction_hash=log.transaction_hash,
                transaction_index=(
                    _transaction_index(header, log)
                    if log.transaction_index is None
                    else log.transaction_index
                ),
                log_index=log.log_index,
                time=time,
                revision=EventStore.deliveries(db, key),
            )
            event = mapping.map(args, position)
        except EventRefused as exc:
            self.refusals[exc.reason] += 1
            _log.warning("interop: %s", exc)
            return
        topic = event_topic(str(self.chain_id), log.address, mapping.type)
        EventStore.append(db, event, topic=topic, log_key=key, origin=self.origin)
        self.counters["mapped"] += 1
        self.appended += 1

    async def retract(self, log: Log, db: sqlite3.Connection) -> None:
        """Append the retraction of ``log``'s event (if one was appended) through ``db``."""
        stored = EventStore.live_for(db, log_key(log))
        if stored is None:
            return  # the log was unmapped or refused: nothing went out
        original = read_event(stored.body)
        event = retraction(original, time=dt.datetime.now(dt.UTC), reason="reorganisation")
        topic = event_topic(str(self.chain_id), log.address, RETRACTED_TYPE)
        seq = EventStore.append(db, event, topic=topic, origin=stored.origin)
        if seq is not None:
            EventStore.mark_retracted(db, stored.seq, seq)
        self.counters["retracted"] += 1
        self.appended += 1
        self._headers.pop(log.block_hash, None)

    async def _header(self, log: Log) -> tuple[BlockHeader, dt.datetime]:
        known = self._headers.get(log.block_hash)
        if known is None:
            header = await self.ledger.rpc.block_header(log.block_hash)
            if header is None:
                # its block left the chain while we mapped it: the follower retries and rewinds
                raise ChainUnavailable(
                    f"block {log.block_number} ({log.block_hash}) is no longer known to the "
                    "node (a reorganisation in progress); the follower retries"
                )
            known = (header, dt.datetime.fromtimestamp(header.timestamp, dt.UTC))
            self._headers[log.block_hash] = known
            while len(self._headers) > _HEADERS_KEPT:
                self._headers.popitem(last=False)
        return known


def _transaction_index(header: BlockHeader, log: Log) -> int:
    wanted = log.transaction_hash.lower()
    for index, tx in enumerate(header.transaction_hashes):
        if tx.lower() == wanted:
            return index
    raise ChainUnavailable(
        f"transaction {log.transaction_hash} is not in block {log.block_number} any more "
        "(a reorganisation in progress); the follower retries"
    )
