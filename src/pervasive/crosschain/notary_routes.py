"""A notary member's HTTP routes beyond the deposit check, and the release client.

- ``POST /challenge`` takes a challenge (``{"kind", "payment_id", "evidence"}``, hex):
  202 with its id, relayed to every member; 400 ``bad_challenge`` otherwise.
- ``GET /challenge?id=0x…``: this member's verdict and whether C_sp settled it.
- ``POST /release {"account"}``: once the deposit period has ended and no challenge
  touching the account is open, this member's partial signature over
  ``release_message`` for the account's whole deposit (409 before, with the reason).

Refusals are counted with the deposit check's (``/metrics``). A release is combined
by whoever asks (:func:`collect_release`): the account owner gathers ``t`` partials,
combines them (eq. 6) and calls ``release`` on C_sp itself; the contract checks the
result (eq. 7), so a member's wrong partial costs the asker a retry, never a deposit.

Example::

    amount, signature = await collect_release(session, urls, account, threshold=3)
    await notary.with_signer(owner).release(account, amount, signature)
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import aiohttp

from pervasive.contracts.notary import Notary, release_id, release_message
from pervasive.crosschain.challenge import Challenge
from pervasive.crosschain.errors import DepositInsufficient
from pervasive.crosschain.notary_state import NotaryState
from pervasive.crosschain.signing import SigningRequest, ThresholdSigner
from pervasive.crypto.threshold import combine_signatures
from pervasive.errors import InvalidInput, ReplayedMessage
from pervasive.http.server import Handler, Request, Response, error_response

if TYPE_CHECKING:
    from pervasive.crosschain.committee_spec import CommitteeSpec

__all__ = ["NotaryRoutes", "collect_release"]


class NotaryRoutes:
    """The challenge and release routes of one serving member."""

    def __init__(
        self,
        *,
        index: int,
        spec: CommitteeSpec,
        state: NotaryState,
        notary: Notary,
        signer: ThresholdSigner,
        take_challenge: Callable[[Challenge], bool],
        rejections: Counter[str],
        clock: Callable[[], float],
    ) -> None:
        self.index = index
        self.spec = spec
        self.state = state
        self.notary = notary
        self.signer = signer
        self.take_challenge = take_challenge
        self.rejections = rejections
        self.clock = clock

    def routes(self) -> dict[tuple[str, str], Handler]:
        """``(method, path) -> handler`` for the member's HTTP server."""
        return {
            ("POST", "/challenge"): self.challenge,
            ("GET", "/challenge"): self.challenge_status,
            ("POST", "/release"): self.release,
        }

    def challenge(self, request: Request) -> Response:
        """``POST /challenge``: take a challenge and relay it."""
        try:
            challenge = Challenge.from_json(json.loads(request.body or b"{}"))
        except (json.JSONDecodeError, UnicodeDecodeError, InvalidInput) as exc:
            return error_response(self.rejections, "bad_challenge", str(exc))
        fresh = self.take_challenge(challenge)
        return _json(202, {"ok": True, "challenge_id": "0x" + challenge.id.hex(), "new": fresh})

    async def challenge_status(self, request: Request) -> Response:
        """``GET /challenge?id=``: this member's verdict and the chain's settlement."""
        raw = request.params().get(b"id", b"").decode("latin-1")
        try:
            challenge_id = bytes.fromhex(raw.removeprefix("0x"))
        except ValueError:
            challenge_id = b""
        record = self.state.challenge(challenge_id) if len(challenge_id) == 32 else None
        if record is None:
            return error_response(
                self.rejections, "unknown_challenge",
                "no challenge with this id: submit it first", 404,
            )  # fmt: skip
        verdict = record.verdict
        return _json(200, {
            "ok": True,
            "challenge_id": raw,
            "outcome": verdict.outcome.value if verdict else "pending",
            "reason": verdict.reason if verdict else "",
            "settled": await self.notary.is_settled(challenge_id),
        })  # fmt: skip

    async def release(self, request: Request) -> Response:
        """``POST /release``: this member's partial over the account's release message."""
        try:
            account = str(json.loads(request.body or b"{}")["account"])
            nonce = await self.notary.release_nonce(account)
            amount = await self.notary.deposit_of(account)
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, InvalidInput) as exc:
            return error_response(self.rejections, "bad_release", f"give a JSON account: {exc}")
        if self.clock() <= self.spec.period_end:
            return error_response(
                self.rejections, "period_open", "deposits are locked until the period ends", 409
            )
        open_ones = [
            r for r in self.state.open_challenges()
            if r.verdict is None
            or account.lower() in (r.verdict.cheater.lower(), r.verdict.victim.lower())
        ]  # fmt: skip
        if open_ones or amount == 0:
            return error_response(
                self.rejections, "not_releasable",
                "a challenge is still open or the deposit is empty: ask again later", 409,
            )  # fmt: skip
        message = release_message(self.spec.chain_id, self.notary.address, account, amount, nonce)
        try:
            partial = self.signer.sign(SigningRequest(release_id(account, nonce), message))
        except ReplayedMessage as exc:
            return error_response(self.rejections, "conflicting_release", str(exc), 409)
        return _json(200, {
            "ok": True, "index": self.index, "account": account, "amount": amount,
            "nonce": nonce, "message": "0x" + message.hex(),
            "partial": "0x" + partial.partial.hex(),
        })  # fmt: skip


def _json(status: int, body: dict[str, object]) -> Response:
    return Response(status, json.dumps(body).encode())


async def collect_release(
    session: aiohttp.ClientSession, members: Sequence[str], account: str, *, threshold: int
) -> tuple[int, bytes]:
    """Ask every member for its release partial; ``(amount, combined signature)`` from ``t``.

    Raises :class:`DepositInsufficient` with the members' reasons when fewer than ``t``
    agree on the same release message.
    """
    answers = await asyncio.gather(*(_ask(session, url, account) for url in members))
    by_message: dict[str, dict[int, bytes]] = {}
    amounts: dict[str, int] = {}
    errors = []
    for answer in answers:
        if not answer.get("ok"):
            errors.append(str(answer.get("error", answer)))
            continue
        message = str(answer["message"])
        by_message.setdefault(message, {})[int(answer["index"])] = bytes.fromhex(
            str(answer["partial"])[2:]
        )
        amounts[message] = int(answer["amount"])
    for message, partials in by_message.items():
        if len(partials) >= threshold:
            chosen = dict(sorted(partials.items())[:threshold])
            return amounts[message], combine_signatures(chosen)
    raise DepositInsufficient(
        f"fewer than {threshold} members released alike: {'; '.join(errors) or 'they differ'}"
    )


async def _ask(session: aiohttp.ClientSession, url: str, account: str) -> dict[str, Any]:
    try:
        async with session.post(f"{url}/release", json={"account": account}) as reply:
            answer: dict[str, Any] = await reply.json(content_type=None)
            return answer
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return {"ok": False, "error": f"{url} unreachable: {exc}"}
