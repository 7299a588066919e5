"""One notary member of the service provider SP, as an asyncio service (paper 003, V).

The thin I/O around the sans-I/O parts, in the order a member lives through them:

```
setup    inbox ─▶ DkgMember (eq. 2-5) ─▶ Send ─▶ MemberTransport        (round 0, kinds 1-4)
         DkgFinished ─▶ NotaryState.save_key (share sealed) + transcript ─▶ ContentStore (CID)
         member 1 deploys C_sp, C_o, C_u ─▶ CONTRACTS ─▶ every member checks them on-chain
serve    HTTP: GET /check · POST /attest (Algorithm 2; PoolView follows B_u's pool)
               POST /challenge · GET /challenge?id= · POST /release · /health · /metrics
         challenge ─▶ relayed (CHALLENGE) ─▶ ChallengeDesk facts ─▶ decide
               ─▶ PENALIZE: ThresholdSigner.sign ─▶ PARTIAL_SIGNATURE to all (eq. 6)
         t partials ─▶ group signature (eq. 7) ─▶ Submitter (exactly once) ─▶ C_sp.penalize
```

Everything a member must not forget is in its SQLite file: DKG seed and messages
(sealed), the share (sealed), challenges and verdicts, the partials it signed, the
penalties to send. A member killed at any point and started again with the same
arguments resumes; it never signs a second, different message for one request.

Releases at the end of the period are combined by whoever asks: ``POST /release``
returns this member's partial over ``release_message`` once the period has ended and
no challenge against the account is open;
:func:`pervasive.crosschain.notary_routes.collect_release`
combines ``t`` of them.

Example::

    async with NotaryService(key=key, spec=spec, connection=mqtt, user_ledger=ledger,
                             data_chain=chain, database=path) as member:
        await member.wait_ready(timeout=60)
        print(member.url)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pervasive.chain import Ledger, Signer
from pervasive.committee import (
    Envelope,
    EnvelopeReceiver,
    EnvelopeSigner,
    Jobs,
    MemberTransport,
    Send,
    SQLiteEpochs,
    Submitter,
    decode_envelope,
    takeover_rank,
)
from pervasive.contracts.notary import Notary
from pervasive.contracts.user_contract import UserContract
from pervasive.crosschain.chains import DataChain
from pervasive.crosschain.challenge import (
    CLOCK_GRACE,
    Challenge,
    Outcome,
    Verdict,
    decide,
    penalty_request,
)
from pervasive.crosschain.challenge_desk import ChallengeDesk
from pervasive.crosschain.check_server import CheckService
from pervasive.crosschain.committee_spec import CommitteeContracts, CommitteeSpec
from pervasive.crosschain.deployment import check_committee_contracts, deploy_committee_contracts
from pervasive.crosschain.deposit_check import DepositCheck
from pervasive.crosschain.dkg import DkgMember
from pervasive.crosschain.dkg_bodies import DkgAborted, DkgFinished, DkgKind, DkgSchedule
from pervasive.crosschain.dkg_store import SQLiteDkgStore
from pervasive.crosschain.errors import DkgFailed
from pervasive.crosschain.evm_chain import EvmDataChain
from pervasive.crosschain.notary_routes import NotaryRoutes
from pervasive.crosschain.notary_state import KeyRecord, NotaryState
from pervasive.crosschain.penalties import (
    SERVING_ROUND,
    ChallengeBody,
    ContractsBody,
    NotaryPenaltyPort,
    PenaltyTransaction,
    ServingBody,
    ServingKind,
    challenge_round,
    decode_serving_body,
)
from pervasive.crosschain.pool_view import PoolView
from pervasive.crosschain.signing import (
    PartialSignature,
    SQLiteSignatureJournal,
    ThresholdKey,
    ThresholdSigner,
)
from pervasive.crypto import PrivateKey
from pervasive.errors import ConfigError, PervasiveError, ReplayedMessage, UserError
from pervasive.http.server import HttpServer, ServerOptions
from pervasive.messaging.port import MqttConnection
from pervasive.storage import ContentStore
from pervasive.store import attach

__all__ = ["NOTARY_PREFIX", "NotaryService", "NotaryStats"]

NOTARY_PREFIX = "pervasive/notary"
"""MQTT topic prefix of the members' inboxes: ``pervasive/notary/<session>/<member>``."""

_log = logging.getLogger(__name__)
_TICK = 0.2


@dataclass
class NotaryStats:
    """Counters of one member (``/metrics`` and the demo's tables)."""

    phase: str = "dkg"
    dkg_seconds: float | None = None
    """From the agreed DKG start to this member holding its share and the group key."""
    signing_seconds: list[float] = field(default_factory=list)
    """Per penalty: from this member's partial to the group signature (eq. 6-7)."""
    challenges: int = 0
    penalties_signed: int = 0
    penalties_sent: int = 0
    penalty_gas: list[int] = field(default_factory=list)


class NotaryService:
    """One member of the notary committee (see the module docstring)."""

    def __init__(
        self,
        *,
        key: PrivateKey,
        spec: CommitteeSpec,
        connection: MqttConnection,
        user_ledger: Ledger,
        data_chain: DataChain,
        database: Path | str | sqlite3.Connection,
        content: ContentStore | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        takeover_after: float = 5.0,
        artifacts: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.key = key
        self.spec = spec
        self.index = spec.index_of(key.address)
        self.address = key.address
        self.signer = Signer.from_key(key.secret)
        self.connection = connection
        self.user_ledger = user_ledger
        self.data_chain = data_chain
        self.content = content
        self.host, self.port = host, port
        self.artifacts = artifacts
        self.clock = clock
        self._db = attach(database, "")
        epochs = SQLiteEpochs(self._db)
        self._dkg = DkgMember(
            key=key,
            index=self.index,
            members={m.index: m.public_key for m in spec.members},
            threshold=spec.threshold,
            chain_id=spec.chain_id,
            setup_nonce=spec.setup_nonce,
            schedule=DkgSchedule.starting(spec.dkg_start, spec.dkg_step),
            store=SQLiteDkgStore(self._db),
            epochs=epochs,
        )
        self.session = self._dkg.session
        self.state = NotaryState(self._db, self.session, key)
        others = [a for a in spec.addresses if a != key.address]
        self._receiver: EnvelopeReceiver[ServingBody] = EnvelopeReceiver(
            self._dkg.domain, self.session, senders=others, decode_body=decode_serving_body
        )
        self._envelopes = EnvelopeSigner(
            key, self._dkg.domain, self.session, epoch=epochs.next(self.session, key.address)
        )
        self.transport = MemberTransport(
            connection, prefix=NOTARY_PREFIX, session=self.session, member=key.address,
            kind_name=_kind_name,
        )  # fmt: skip
        self.stats = NotaryStats()
        self.key_record: KeyRecord | None = None
        self.contracts: CommitteeContracts | None = None
        self.signer_bls: ThresholdSigner | None = None
        self.desk: ChallengeDesk | None = None
        self.check: DepositCheck | None = None
        self.server: HttpServer | None = None
        self.notary: Notary | None = None
        self._port: NotaryPenaltyPort | None = None
        self._submitter: Submitter[PenaltyTransaction] | None = None
        self._early: list[tuple[int, PartialSignature]] = []
        self._dkg_started = False
        self._signed_at: dict[bytes, float] = {}
        self._evaluating: set[bytes] = set()
        self._submitting = asyncio.Lock()
        self._before_start: list[Envelope] = []
        self._announced: CommitteeContracts | None = None
        self._serving = asyncio.Event()
        self._setup_error: PervasiveError | None = None
        self._setup_over = asyncio.Event()
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._jobs = Jobs(f"notary {self.index}")

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Subscribe, resume or start the key generation, and run the member's tasks."""
        await self.transport.subscribe()
        for job in (self._read, self.transport.run, self._tick):
            self._tasks.append(
                asyncio.create_task(job(), name=f"notary-{self.index}-{job.__name__}")
            )
        self.key_record = self.state.key()
        if self.key_record is None:
            self._spawn(self._start_dkg())
        else:
            self.stats.phase = "contracts"
            self._spawn(self._after_key())

    async def _start_dkg(self) -> None:
        # every member deals at the agreed start, by when all have subscribed their inbox
        await asyncio.sleep(max(0.0, self.spec.dkg_start - self.clock()))
        self._post(self._dkg.start(self.clock()))
        self._dkg_started = True
        early, self._before_start = self._before_start, []
        for envelope in early:
            with contextlib.suppress(ReplayedMessage):
                self._post(self._dkg.receive(envelope, self.clock()))

    async def stop(self) -> None:
        """Stop serving (state is durable: a new service resumes where this one stopped)."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._jobs.cancel()
        if self.server is not None:
            await self.server.close()

    async def __aenter__(self) -> NotaryService:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def wait_ready(self, timeout: float) -> None:
        """Wait until the member serves (key generated, contracts checked, HTTP up).

        Raises the setup's error (:class:`DkgFailed`, a chain or listening error) as soon
        as the member knows it cannot serve, instead of waiting out ``timeout``.
        """
        async with asyncio.timeout(timeout):
            await self._setup_over.wait()
        if self._setup_error is not None:
            raise self._setup_error

    async def wait_for(self, predicate: Callable[[NotaryService], bool], timeout: float) -> None:
        """Wait until ``predicate(self)`` holds (checked after each change)."""
        async with asyncio.timeout(timeout):
            while not predicate(self):
                self._changed.clear()
                await self._changed.wait()

    @property
    def url(self) -> str:
        """Where this member answers HTTP."""
        return f"http://{self.host}:{self.server.port if self.server else self.port}"

    # ------------------------------------------------------------------ inbox

    async def _read(self) -> None:
        async for message in self.connection.messages():
            if message.topic != self.transport.inbox:
                continue
            try:
                self._dispatch(message.payload)
            except ReplayedMessage:
                pass  # counted by the receivers: a duplicate delivery or a replay
            except UserError as exc:
                _log.warning("notary %d: refused a message: %s", self.index, exc)
            self._changed.set()

    def _dispatch(self, payload: bytes) -> None:
        envelope = decode_envelope(payload)
        if envelope.kind in DkgKind.__members__.values():
            if self.key_record is None and self._dkg_started:
                self._post(self._dkg.receive(envelope, self.clock()))
            elif self.key_record is None:
                self._before_start.append(envelope)
            return
        received = self._receiver.accept(envelope)
        sender = self.spec.index_of(received.sender)
        body = received.body
        if isinstance(body, PartialSignature):
            self._take_partial(sender, body)
        elif isinstance(body, ChallengeBody):
            self.take_challenge(body.challenge, relay=False)
        elif sender == 1 and self._announced is None:
            self._announced = body.contracts

    def _post(self, actions: Sequence[object]) -> None:
        for action in actions:
            if isinstance(action, Send):
                self.transport.post(action)
            elif isinstance(action, DkgFinished):
                self._finish_dkg(action)
            elif isinstance(action, DkgAborted):
                self._setup_failed(DkgFailed(f"the key generation failed: {action.reason}"))

    def _setup_failed(self, error: PervasiveError) -> None:
        self.stats.phase = "failed"
        self._setup_error = error
        self._setup_over.set()
        self._changed.set()
        _log.error("notary %d: cannot serve: %s", self.index, error)

    def _broadcast(self, kind: ServingKind, body: bytes) -> None:
        envelope = self._envelopes.sign(SERVING_ROUND, int(kind), body)
        others = tuple(a for a in self.spec.addresses if a != self.address)
        self.transport.post(Send(others, envelope))

    # ------------------------------------------------------------------ setup

    def _finish_dkg(self, finished: DkgFinished) -> None:
        transcript = finished.transcript.to_json()
        cid = str(self.content.put(transcript)) if self.content is not None else ""
        self.state.save_key(finished.result, cid)
        self.stats.dkg_seconds = self.clock() - self.spec.dkg_start
        self.key_record = self.state.key()
        self.stats.phase = "contracts"
        _log.info("notary %d: group key agreed, transcript %s", self.index, cid or "(not stored)")
        self._spawn(self._after_key())

    async def _after_key(self) -> None:
        try:
            await self._connect_contracts()
        except PervasiveError as exc:
            self._setup_failed(exc)

    async def _connect_contracts(self) -> None:
        record = self.key_record
        assert record is not None
        contracts = self.state.contracts() or self.spec.contracts
        if contracts is None and self.index == 1:
            contracts = await deploy_committee_contracts(
                self.user_ledger, self.signer, self.spec, record.result.group_key,
                record.transcript, artifacts=self.artifacts,
            )  # fmt: skip
        while contracts is None:
            contracts = self._announced
            if contracts is None:
                self._changed.clear()
                await self._changed.wait()
        await check_committee_contracts(
            self.user_ledger, self.spec, contracts, record.result.group_key
        )
        self.state.save_contracts(contracts)
        if self.index == 1:
            self._broadcast(ServingKind.CONTRACTS, ContractsBody(contracts).encode())
        await self._serve(record, contracts)

    async def _serve(self, record: KeyRecord, contracts: CommitteeContracts) -> None:
        result = record.result
        self.contracts = contracts
        self.notary = Notary.at(self.user_ledger, contracts.notary, self.signer)
        user = UserContract.at(self.user_ledger, contracts.user_contract)
        key = ThresholdKey(
            result.index, result.share, result.public_shares, result.threshold, result.group_key
        )
        self.signer_bls = ThresholdSigner(key, SQLiteSignatureJournal(self._db))
        self.desk = ChallengeDesk(
            EvmDataChain(self.user_ledger, from_block=contracts.from_block),
            user,
            self.data_chain,
            coef_percent=self.spec.coef_percent,
            from_block=contracts.from_block,
        )
        self._port = NotaryPenaltyPort(self.notary)
        self._submitter = Submitter(
            self._db, self.session, self._port, PenaltyTransaction.decode, takeover_after=5.0
        )
        for row in self.state.challenges():
            self._port.remember(row.challenge.id)
        self.check = DepositCheck(coef_percent=self.spec.coef_percent)
        view = PoolView(
            self.user_ledger, self.check, notary=self.notary, user_contract=user,
            from_block=contracts.from_block,
        )  # fmt: skip
        await view.refresh()
        self._tasks.append(asyncio.create_task(view.run(), name=f"notary-{self.index}-pool"))
        service = CheckService(
            self.check, self.key, chain_id=self.user_ledger.chain_id, oracle=contracts.oracle
        )
        extra = NotaryRoutes(
            index=self.index, spec=self.spec, state=self.state, notary=self.notary,
            signer=self.signer_bls, take_challenge=self.take_challenge,
            rejections=service.rejections, clock=self.clock,
        )  # fmt: skip
        # an unpaid challenge carries C's raw transaction (hex): allow up to 64 KiB bodies
        options = ServerOptions(max_body_bytes=64 * 1024)
        try:
            self.server = await HttpServer(
                service.routes() | extra.routes(), options, rejections=service.rejections
            ).start(self.host, self.port)
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {self.host}:{self.port} ({exc.strerror}): another process "
                "holds it; free it or give this member another url in the committee spec"
            ) from None
        self.stats.phase = "serving"
        for index, body in self._early:
            self._take_partial(index, body)
        self._early.clear()
        for row in self.state.open_challenges():
            self._spawn(self._evaluate(row.challenge))
        for row in self.state.challenges():
            if row.verdict is not None and row.verdict.outcome is Outcome.PENALIZE:
                self._spawn(self._resume_penalty(row.challenge))
        self._serving.set()
        self._setup_over.set()
        self._changed.set()

    # ------------------------------------------------------------------ challenges

    def take_challenge(self, challenge: Challenge, *, relay: bool = True) -> bool:
        """Accept a challenge (over HTTP or relayed); False if this member knew it already."""
        if not self.state.add_challenge(challenge):
            return False
        self.stats.challenges += 1
        if self._port is not None:
            self._port.remember(challenge.id)
        if relay:
            self._broadcast(ServingKind.CHALLENGE, ChallengeBody(challenge).encode())
        if self._serving.is_set():
            self._spawn(self._evaluate(challenge))
        return True

    async def _evaluate(self, challenge: Challenge) -> None:
        # one evaluation per challenge at a time: the tick retries, it must not pile up
        if challenge.id in self._evaluating:
            return
        self._evaluating.add(challenge.id)
        try:
            await self._evaluate_once(challenge)
        finally:
            self._evaluating.discard(challenge.id)

    async def _evaluate_once(self, challenge: Challenge) -> None:
        assert self.desk is not None and self.signer_bls is not None and self.notary is not None
        try:
            facts = await self.desk.facts(challenge)
        except PervasiveError as exc:
            _log.warning("notary %d: cannot read the chains for a challenge: %s", self.index, exc)
            return  # retried by the tick while the challenge stays open
        verdict = decide(
            challenge, facts, publish_window=self.spec.publish_window, now=self.clock()
        )
        self.state.record_verdict(verdict)
        self._changed.set()
        if verdict.outcome is not Outcome.PENALIZE:
            _log.info("notary %d: challenge %s: %s", self.index, verdict.outcome, verdict.reason)
            return
        request = penalty_request(
            verdict, chain_id=self.user_ledger.chain_id, notary=self.notary.address
        )
        try:
            partial = self.signer_bls.sign(request)
        except ReplayedMessage as exc:
            _log.error("notary %d: %s", self.index, exc)
            return
        self.stats.penalties_signed += 1
        self._signed_at[request.request_id] = time.perf_counter()
        self._broadcast(ServingKind.PARTIAL_SIGNATURE, partial.encode())
        signature = self.signer_bls.signature(request.request_id)
        if signature is not None:
            self._queue_penalty(verdict, signature)

    async def _resume_penalty(self, challenge: Challenge) -> None:
        # After a restart the partials received before it are gone, and the others may
        # have missed this member's: unless C_sp settled it, sign again (the journal gives
        # the same partial) and send it, or t honest members may never meet.
        assert self.notary is not None
        if not await self.notary.is_settled(challenge.id):
            await self._evaluate(challenge)

    def _take_partial(self, sender: int, body: PartialSignature) -> None:
        if self.signer_bls is None:
            self._early.append((sender, body))
            return
        signature = self.signer_bls.accept(sender, body)
        if signature is None:
            return
        record = self.state.challenge(body.request_id)
        if record is not None and record.verdict is not None:
            self._queue_penalty(record.verdict, signature)

    def _queue_penalty(self, verdict: Verdict, signature: bytes) -> None:
        assert self._submitter is not None
        challenge_id = verdict.challenge.id
        signed_at = self._signed_at.pop(challenge_id, None)
        if signed_at is not None:
            self.stats.signing_seconds.append(time.perf_counter() - signed_at)
        transaction = PenaltyTransaction(
            challenge_id, verdict.cheater, verdict.victim, verdict.amount, signature
        )
        members = self.spec.addresses
        designated = members[int.from_bytes(challenge_id, "big") % len(members)]
        rank = takeover_rank(members, designated, self.address)
        self._submitter.add(
            challenge_round(challenge_id), transaction,
            designated=rank == 0, rank=rank, now=self.clock(),
        )  # fmt: skip
        self._spawn(self._submit_due())

    async def _submit_due(self) -> None:
        assert self._submitter is not None
        if self._submitting.locked():
            return  # the running pass picks up what is due
        try:
            async with self._submitting:
                receipts = await self._submitter.run_due(self.clock())
        except PervasiveError as exc:
            _log.warning("notary %d: a penalty could not be sent yet: %s", self.index, exc)
            return
        for receipt in receipts:
            self.stats.penalties_sent += 1
            self.stats.penalty_gas.append(receipt.gas_used)
            _log.info("notary %d: penalty sent, gas %d", self.index, receipt.gas_used)
        self._changed.set()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(_TICK)
            now = self.clock()
            if self.key_record is None:
                if self._dkg_started:
                    self._post(self._dkg.tick(now))
                continue
            if not self._serving.is_set():
                continue
            for row in self.state.open_challenges():
                waiting = row.verdict is not None and row.verdict.outcome is Outcome.WAIT
                if waiting and row.verdict is not None and now < row.verdict.ready_at + CLOCK_GRACE:
                    continue
                self._spawn(self._evaluate(row.challenge))
            if self._submitter is not None and self._submitter.any_due(now):
                self._spawn(self._submit_due())

    def _spawn(self, job: Coroutine[Any, Any, None]) -> None:
        self._jobs.spawn(job)


def _kind_name(kind: int) -> str:
    for enum_type in (DkgKind, ServingKind):
        with contextlib.suppress(ValueError):
            return enum_type(kind).name
    return str(kind)
