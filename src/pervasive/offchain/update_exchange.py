"""Phase 3 of the ring and leader protocols: every node signs the agreed window's update.

Paper 002, section 3: once the nodes agree on window ``t``, its result goes on-chain in
one transaction that every node signed. The contract verifies one EIP-712
:class:`~pervasive.domain.Update` ``(a, t, f(w[t]), H(w[t]), proofsHash, dataHash)``
signed by each node, in node order; every node builds the same struct from its own
agreed state (``proofsHash`` over the agreed commitments, ``dataHash`` over the packed
window under on-chain proof of storage). So once it agrees, a node signs the update and
sends its signature to the others, inside the agreement's envelope like any protocol
message (kind ``UPDATE_SIGNATURE``). A signature is accepted only if it recovers to
its sender over the update this node agreed on; one that arrives before this node
agrees is kept and checked then.

With every signature each node holds the complete :class:`~pervasive.domain.SignedUpdate`
and returns :class:`~pervasive.committee.Submit` once: the designated node sends it at
once, the others keep it to take over if the designated node stays silent
(:class:`~pervasive.committee.Submitter`). The fast protocol collects the same
signatures inside the next round instead (``compact.py``).

A node restarted after agreeing but before it held every signature rebuilds the update
from its journal, signs it again and sends it (:meth:`UpdateExchange.resume`); a peer
that already holds the whole update answers once with its own signature, so the
restarted node completes too (and a peer still waiting for it completes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from pervasive.committee import Submit
from pervasive.crypto import PrivateKey, Signature, keccak256, recover_hash
from pervasive.domain import SignedUpdate, Update
from pervasive.errors import InvalidSignature
from pervasive.offchain.agreement import AgreementSpec
from pervasive.offchain.bodies import MessageKind, UpdateSignature
from pervasive.offchain.journal import RoundJournal
from pervasive.offchain.outcomes import Action, Agreed
from pervasive.offchain.rounds import RoundMessenger

__all__ = ["UpdateExchange"]

_RETAINED_WINDOWS = 256


@dataclass
class _Window:
    update: Update | None = None
    data: bytes = b""
    signatures: dict[str, Signature] = field(default_factory=dict)
    early: dict[str, Signature] = field(default_factory=dict)
    complete: bool = False
    answered: set[str] = field(default_factory=set)


class UpdateExchange:
    """The update signatures of one node in a ring or leader agreement."""

    def __init__(
        self,
        key: PrivateKey,
        agreement: AgreementSpec,
        journal: RoundJournal,
        messenger: RoundMessenger,
        stored_window_data: Callable[[int], bytes] | None = None,
    ) -> None:
        """``stored_window_data(t)``: the packed ``w[t]`` kept under on-chain proof of
        storage, for an update still owed after a restart (empty if not held)."""
        self.key = key
        self.address = key.address
        self.agreement = agreement
        self.journal = journal
        self.messenger = messenger
        self._others = tuple(n for n in agreement.nodes if n != self.address)
        self._windows: dict[int, _Window] = {}
        self._resumed: list[int] = []
        for entry in journal.unsubmitted_agreed():
            if entry.result is None:
                continue
            data = b""
            if entry.data_hash != bytes(32) and stored_window_data is not None:
                data = stored_window_data(entry.t)
            if (keccak256(data) if data else bytes(32)) != entry.data_hash:
                continue  # the window data is gone: this update cannot be sent
            state = self._window(entry.t)
            state.update = Update(
                agreement.address, entry.t, entry.result, entry.window_hash,
                entry.proofs_hash, entry.data_hash,
            )  # fmt: skip
            state.data = data
            state.signatures[self.address] = state.update.sign(key, agreement.chain_id)
            self._resumed.append(entry.t)

    def resume(self) -> list[Action]:
        """After a restart: send again our signature of every update we still owe (once)."""
        resumed, self._resumed = self._resumed, []
        return [self._announce(t, self._windows[t]) for t in resumed if t in self._windows]

    def _announce(self, t: int, state: _Window, to: tuple[str, ...] | None = None) -> Action:
        body = UpdateSignature(state.signatures[self.address]).encode()
        return self.messenger.emit(t, to or self._others, MessageKind.UPDATE_SIGNATURE, body)

    def on_agreed(self, agreed: Agreed, packed: bytes) -> list[Action]:
        """Sign the update of an agreed window and send the signature to the others.

        ``packed`` is the window data under on-chain proof of storage, else empty. The
        null result goes nowhere: nothing is signed or sent.
        """
        if agreed.result is None:
            return []
        state = self._window(agreed.t)
        if state.update is not None:
            return []
        update = Update.for_window(
            self.agreement.address,
            agreed.t,
            agreed.result,
            agreed.window_hash,
            proofs_hash=agreed.proofs_hash,
            data=packed or None,
        )
        state.update, state.data = update, packed
        signature = update.sign(self.key, self.agreement.chain_id)
        state.signatures[self.address] = signature
        digest = update.typed_hash(self.agreement.chain_id).digest
        for signer, early in state.early.items():
            if recover_hash(digest, early) == signer:
                state.signatures[signer] = early
        state.early.clear()
        return [self._announce(agreed.t, state), *self._complete(agreed.t, state)]

    def on_signature(self, sender: str, t: int, body: UpdateSignature) -> list[Action]:
        """A node's signature on the update of window ``t``; :class:`Submit` once all signed.

        Raises :class:`InvalidSignature` for one that is not ``sender``'s over the update
        this node agreed on.
        """
        state = self._window(t)
        if state.complete:
            # only a restarted peer still signs a window we completed: answer it, once
            if sender in state.answered:
                return []
            state.answered.add(sender)
            return [self._announce(t, state, to=(sender,))]
        if state.update is None:
            state.early[sender] = body.signature
            return []
        digest = state.update.typed_hash(self.agreement.chain_id).digest
        if recover_hash(digest, body.signature) != sender:
            raise InvalidSignature(
                f"the update signature of window {t} is not {sender}'s over our update"
            )
        state.signatures[sender] = body.signature
        return self._complete(t, state)

    def _window(self, t: int) -> _Window:
        if t not in self._windows:
            self._windows[t] = _Window()
            for old in [k for k in self._windows if k < t - _RETAINED_WINDOWS]:
                del self._windows[old]
        return self._windows[t]

    def _complete(self, t: int, state: _Window) -> list[Action]:
        nodes = self.agreement.nodes
        if state.complete or not all(n in state.signatures for n in nodes):
            return []
        state.complete = True
        assert state.update is not None
        if not self.journal.mark_submitted(t):
            return []  # handed out before a restart: the submitter's table has it
        signed = SignedUpdate(state.update, tuple(state.signatures[n] for n in nodes), state.data)
        return [Submit(t, signed)]
