"""The running intermediate node: asyncio around the sans-I/O pipeline and protocol.

Control flow (paper 002, sections 2-3; one agreement per service)::

    MQTT sensor topics ──► SensorPipeline (verify, order, gaps) ──► MessageLog (durable)
                                   │ w[t]
                                   ▼
    committee inbox  ──► NodeProtocol (commit-reveal, update signatures) ──► MemberTransport
                                   │ Agreed / Submit[SignedUpdate] / Dispute
                                   ▼
                     WindowStore (QoS)  +  committee Submitter ──► Agreement contract

Five tasks share one event loop, so the sans-I/O objects are only ever touched
between awaits: a reader (MQTT → sensor batch or protocol input), an ingester
(batches of sensor messages → windows), the member transport's sender (``Send``
actions → MQTT, pipelined), a ticker (gap timeouts, protocol retries and timeouts,
update take-overs) and a chain worker (transactions one at a time, since one account
sends them).

Restart: the round journal says which windows are closed; the pipeline resumes at
the first open one and is fed the logged messages again, so a killed node rebuilds
the same ``w[t]``, reuses the secret it committed to, and the update table makes
sure no update is sent twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pervasive.chain import Receipt
from pervasive.committee import MemberTransport, Publish, Send, Submit, Submitter, takeover_rank
from pervasive.config import NodeSettings
from pervasive.crypto import PrivateKey
from pervasive.domain import QoS, SignedUpdate
from pervasive.errors import NotFound, PervasiveError, ReplayedMessage, UserError
from pervasive.messaging.port import MqttConnection, MqttMessage
from pervasive.offchain.agreement import AgreementSpec
from pervasive.offchain.bodies import kind_name
from pervasive.offchain.functions import OffchainFunction
from pervasive.offchain.journal import RoundStatus, SQLiteRoundJournal
from pervasive.offchain.node.chain import AgreementPort
from pervasive.offchain.node.ingest import IngestResult, SensorPipeline
from pervasive.offchain.node.message_log import MessageLog
from pervasive.offchain.node.transport import NODES_PREFIX, Inbound, NodeTopics
from pervasive.offchain.node.window_requests import WindowServer
from pervasive.offchain.node_protocol import NodeProtocol
from pervasive.offchain.outcomes import Action, Agreed, Dispute
from pervasive.offchain.qos import WindowStore
from pervasive.offchain.window import WindowArray
from pervasive.offchain.window_data import pack_window
from pervasive.store import attach

__all__ = ["IntermediateNodeService", "NodeEvent", "NodeStats"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NodeEvent:
    """Something the operator (or the demo) wants to see: ``kind`` is ``window``,
    ``agreed``, ``disputed``, ``submitting`` (an update is going to the chain),
    ``recorded``, ``dispute-sent`` or ``error``."""

    kind: str
    t: int
    at: float
    detail: str = ""
    receipt: Receipt | None = None
    action: Action | None = None


@dataclass
class NodeStats:
    """Counters of one node (a snapshot is cheap to take)."""

    accepted: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    gaps: int = 0
    windows: int = 0
    agreed: int = 0
    disputed: int = 0
    updates_sent: int = 0
    updates_skipped: int = 0
    update_gas: int = 0
    disputes_sent: int = 0
    protocol_rejected: dict[str, int] = field(default_factory=dict)
    protocol_sent: dict[str, int] = field(default_factory=dict)
    protocol_bytes: int = 0
    windows_served: int = 0
    """Window requests answered (with the window, or with "not held")."""
    window_requests_refused: dict[str, int] = field(default_factory=dict)


class IntermediateNodeService:
    """One intermediate node of one agreement, as an asyncio service.

    Example::

        service = IntermediateNodeService(key=key, agreement=spec, function=f,
                                          connection=mqtt, chain=agreement_port,
                                          database=settings.path("node", "node.sqlite"))
        async with service:             # restores, subscribes, starts its tasks
            await service.wait_for(lambda s: s.stats.agreed >= 3, timeout=60)
    """

    def __init__(
        self,
        *,
        key: PrivateKey,
        agreement: AgreementSpec,
        function: OffchainFunction,
        connection: MqttConnection,
        chain: AgreementPort,
        database: Path | str | sqlite3.Connection,
        sensor_ids: tuple[str, ...] = (),
        options: NodeSettings | None = None,
        on_event: Callable[[NodeEvent], None] | None = None,
    ) -> None:
        self.options = options or NodeSettings()
        self.agreement = agreement
        self.address = key.address
        db = attach(database, "")
        self._db = db
        self.journal = SQLiteRoundJournal(db, agreement.address, key.address)
        self.store = WindowStore(db, agreement)
        self.protocol = NodeProtocol(
            key,
            agreement,
            function,
            self.journal,
            timeout=self.options.protocol_timeout,
            max_retries=self.options.max_retries,
            compact_wait=self.options.compact_wait,
            stored_window_data=self._stored_window_data,
        )
        self.log = MessageLog(db, agreement.address)
        self.windows = WindowServer(key, agreement, self.store)
        self.submitter: Submitter[SignedUpdate] = Submitter(
            db,
            agreement.address,
            chain,
            SignedUpdate.decode,
            takeover_after=self.options.takeover_after,
        )
        self.topics = NodeTopics(agreement.address, key.address, sensor_ids=sensor_ids)
        self.transport = MemberTransport(
            connection,
            prefix=NODES_PREFIX,
            session=agreement.address,
            member=key.address,
            kind_name=kind_name,
            max_in_flight=self.options.max_in_flight,
        )
        self.connection = connection
        self.chain = chain
        self.on_event = on_event
        self.pipeline = SensorPipeline(
            agreement, gap_timeout=self.options.gap_timeout, first_t=self._first_open_window()
        )
        self.events: list[NodeEvent] = []
        self.built_at: dict[int, float] = {}
        """Wall-clock time each window ``w[t]`` was built here (its last message arrived)."""
        self._stats = NodeStats()
        self._sensor_batch: list[bytes] = []
        self._sensor_ready = asyncio.Event()
        self._chain_jobs: asyncio.Queue[Dispute | None] = asyncio.Queue()
        self._chain_wakeup = asyncio.Event()
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    # ------------------------------------------------------------------ lifecycle

    def _first_open_window(self) -> int:
        t = 0
        while True:
            entry = self.journal.load(t)
            if entry is None or entry.status is RoundStatus.OPEN:
                return t
            t += 1

    async def start(self) -> None:
        """Replay the message log, subscribe, and start the node's tasks."""
        now = time.time()
        spec = self.agreement.window
        first = self.pipeline.next_t
        starts = {s: spec.range_of(i, first).start for i, s in enumerate(spec.sensors)}
        replayed = list(self.log.replay(starts))
        if replayed:
            _log.info("node %s: replaying %d logged sensor messages", self.address, len(replayed))
            self._handle_ingest(
                self.pipeline.receive_many(replayed, asyncio.get_running_loop().time()), now
            )
        await self.topics.subscribe(self.connection)
        await self.transport.subscribe()
        for job in (self._read, self._ingest, self.transport.run, self._tick, self._chain_worker):
            self._tasks.append(
                asyncio.create_task(job(), name=f"node-{self.address[:8]}-{job.__name__}")
            )
        self._chain_wakeup.set()

    async def stop(self) -> None:
        """Cancel the tasks (state is durable: a new service resumes where this one stopped)."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def __aenter__(self) -> IntermediateNodeService:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def wait_for(
        self, predicate: Callable[[IntermediateNodeService], bool], timeout: float
    ) -> None:
        """Wait until ``predicate(self)`` holds (checked after each change); else TimeoutError."""
        async with asyncio.timeout(timeout):
            while not predicate(self):
                self._changed.clear()
                await self._changed.wait()

    @property
    def stats(self) -> NodeStats:
        """Current counters."""
        s = self._stats
        s.accepted = self.pipeline.accepted
        s.rejected = dict(self.pipeline.rejections)
        s.gaps = len(self.pipeline.gaps)
        s.updates_sent = self.submitter.sent
        s.updates_skipped = self.submitter.skipped
        s.protocol_rejected = dict(self.protocol.stats.rejected)
        s.protocol_sent = dict(self.transport.sent)
        s.protocol_bytes = self.transport.bytes_sent
        s.windows_served = self.windows.served + self.windows.not_held
        s.window_requests_refused = dict(self.windows.refused)
        return s

    # ------------------------------------------------------------------ tasks

    async def _read(self) -> None:
        async for message in self.connection.messages():
            self._dispatch(message)

    def _dispatch(self, message: MqttMessage) -> None:
        kind = self.topics.classify(message)
        if kind is Inbound.SENSOR:
            self._sensor_batch.append(message.payload)
            self._sensor_ready.set()
        elif kind is Inbound.WINDOW_REQUEST:
            try:
                topic, reply = self.windows.answer(message.payload)
            except UserError as exc:
                _log.warning("node %s: refused a window request: %s", self.address, exc)
                return
            self.transport.post_raw(Publish(topic, reply, "WINDOW_DATA"))
        elif kind is Inbound.PROTOCOL:
            loop_now = asyncio.get_running_loop().time()
            try:
                actions = self.protocol.receive(message.payload, loop_now)
            except ReplayedMessage:
                return  # counted by the protocol; a duplicate delivery or a replay attack
            except UserError as exc:
                _log.warning("node %s: refused a protocol message: %s", self.address, exc)
                return
            self._handle_actions(actions, time.time())

    async def _ingest(self) -> None:
        loop = asyncio.get_running_loop()
        last = -math.inf
        while True:
            await self._sensor_ready.wait()
            self._sensor_ready.clear()
            if loop.time() - last < self.options.batch_wait:
                # A busy stream: the client hands over one message per event-loop turn,
                # so let it fill the batch for a moment; one verification pass and one
                # message-log commit then serve many messages. A message after a quiet
                # spell (the last of a window, typically) is taken at once.
                await asyncio.sleep(self.options.batch_wait)
            while self._sensor_batch:
                size = self.options.batch_size
                batch, self._sensor_batch = self._sensor_batch[:size], self._sensor_batch[size:]
                result = self.pipeline.receive_many(batch, loop.time())
                self._handle_ingest(result, time.time())
                await asyncio.sleep(0)
            last = loop.time()

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.options.tick_interval)
            now = time.time()
            self._handle_ingest(self.pipeline.tick(loop.time()), now)
            self._handle_actions(self.protocol.tick(loop.time()), now)
            if self.submitter.any_due(now):
                self._chain_wakeup.set()

    async def _chain_worker(self) -> None:
        while True:
            await self._chain_wakeup.wait()
            self._chain_wakeup.clear()
            while not self._chain_jobs.empty():
                dispute = self._chain_jobs.get_nowait()
                if dispute is not None:
                    await self._send_dispute(dispute)
            for submission in self.submitter.due(time.time()):
                role = "designated" if submission.designated else "stand-in"
                self._emit(NodeEvent("submitting", submission.round, time.time(), role))
                try:
                    receipt = await self.submitter.submit(submission)
                except PervasiveError as exc:
                    self._emit(
                        NodeEvent("error", submission.round, time.time(), f"update failed: {exc}")
                    )
                    continue
                if receipt is not None:
                    self._stats.update_gas += receipt.gas_used
                    self.store.mark_published(submission.round)
                self._emit(
                    NodeEvent(
                        "recorded",
                        submission.round,
                        time.time(),
                        "sent by this node" if receipt else "already recorded on-chain",
                        receipt=receipt,
                    )
                )

    async def _send_dispute(self, dispute: Dispute) -> None:
        window = dispute.evidence.window
        data = b""
        if window is not None and self.agreement.qos is QoS.ONCHAIN_PROOF:
            data = pack_window(window, self.agreement.sensors)
        try:
            receipt = await self.chain.open_dispute(dispute.t, dispute.kind, dispute.evidence, data)
        except PervasiveError as exc:
            self._emit(NodeEvent("error", dispute.t, time.time(), f"dispute failed: {exc}"))
            return
        self._stats.disputes_sent += 1
        self._emit(
            NodeEvent("dispute-sent", dispute.t, time.time(), dispute.kind.name, receipt=receipt)
        )

    # ------------------------------------------------------------------ handlers

    def _handle_ingest(self, result: IngestResult, now: float) -> None:
        if result.accepted:
            self.log.append(result.accepted)
        for reason, text in result.rejected:
            _log.info("node %s: rejected a sensor message (%s): %s", self.address, reason, text)
        for gap in result.gaps:
            self._emit(NodeEvent("gap", -1, now, f"{gap.sensor} q={gap.first}..{gap.last}"))
        loop_now = asyncio.get_running_loop().time()
        for windows in result.windows:
            self._start_window(windows, now, loop_now)
        if result.accepted or result.rejected:
            self._changed.set()

    def _start_window(self, windows: WindowArray, now: float, loop_now: float) -> None:
        self.store.put(windows)
        self.built_at.setdefault(windows.t, now)
        self._stats.windows += 1
        self._emit(NodeEvent("window", windows.t, now, f"H(w[t])=0x{windows.hash.hex()[:16]}"))
        self._handle_actions(self.protocol.start_window(windows, loop_now), now)

    def _handle_actions(self, actions: list[Action], now: float) -> None:
        for action in actions:
            if isinstance(action, Send):
                self.transport.post(action)
            elif isinstance(action, Agreed):
                self.store.record(action)
                self._stats.agreed += 1
                self._emit(NodeEvent("agreed", action.t, now, action=action))
            elif isinstance(action, Submit):
                self._queue_update(action.round, action.transaction, now)
            elif isinstance(action, Dispute):
                self.store.record(action)
                self._stats.disputed += 1
                self._emit(NodeEvent("disputed", action.t, now, action.kind.name, action=action))
                if action.evidence.notice is None:
                    self._chain_jobs.put_nowait(action)
                    self._chain_wakeup.set()

    def _queue_update(self, t: int, update: SignedUpdate, now: float) -> None:
        """Keep a fully signed update: send it now (designated) or take over later."""
        designated = self.agreement.submitter_for(t)
        rank = takeover_rank(self.agreement.nodes, designated, self.address)
        is_designated = designated == self.address
        added = self.submitter.add(t, update, designated=is_designated, rank=rank, now=now)
        if added and is_designated:
            self._chain_wakeup.set()

    def _stored_window_data(self, t: int) -> bytes:
        """The packed ``w[t]`` still held under on-chain proof of storage (else empty)."""
        if self.agreement.qos is not QoS.ONCHAIN_PROOF:
            return b""
        try:
            return pack_window(self.store.serve(t), self.agreement.sensors)
        except NotFound:
            return b""

    def _emit(self, event: NodeEvent) -> None:
        self.events.append(event)
        if self.on_event is not None:
            self.on_event(event)
        self._changed.set()
