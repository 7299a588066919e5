"""What an oracle node observes: a source fetched within limits, an integer extracted.

A query names a source by kind (paper 001, section 4: Oraclize's URL and IPFS data
sources): ``URL`` is an HTTP GET, ``CID`` content of the platform's content store.
``DEVICE`` (a device's signed reading) is not fetched: the node answers it from the
readings it verified itself (:mod:`pervasive.oracle.readings`); a fetcher asked for one
refuses it. The node reads at most ``max_response_bytes`` within ``fetch_timeout``
seconds, and only URLs under the prefixes its operator allowed: a query may come from
any contract, so without that guard any consumer could make the oracles probe the
nodes' own network (SSRF).
Redirects are not followed (they could leave the allowed prefixes).

The answer is :class:`Observation`: ``keccak256`` of the exact bytes read (what the
oracles sign and the consumer gets as ``digest``) and the integer at the query's JSON
path (:func:`extract_value`). Refusals (:class:`SourceRefused`: the node will not look)
and failures (:class:`SourceFailed`: it looked and found no integer) are counted in
:attr:`SourceFetcher.refusals` by reason.

Example::

    fetcher = SourceFetcher(allow=["http://127.0.0.1:8080/"], fetch_timeout=5.0,
                            max_response_bytes=65536)
    seen = await fetcher.observe(QueryKind.URL, "http://127.0.0.1:8080/cost", "cost")
    seen.value, seen.digest
"""

from __future__ import annotations

import collections
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp

from pervasive.contracts.oracle_hub import QueryKind
from pervasive.crypto import keccak256
from pervasive.errors import InvalidInput, PervasiveError, UserError

__all__ = [
    "CidReader",
    "Observation",
    "SourceFailed",
    "SourceFetcher",
    "SourceRefused",
    "extract_value",
    "url_allowed",
]

CidReader = Callable[[str], bytes]
"""Reads content by CID text (the CLI fills it from ``pervasive.storage.ContentStore``);
raises :class:`~pervasive.errors.NotFound` (or another ``PervasiveError``) when it cannot."""

_UINT256 = 1 << 256


class SourceRefused(InvalidInput):
    """The node will not observe this source (not allowed, not supported, malformed)."""


class SourceFailed(UserError):
    """The source could not be read, or holds no unsigned integer at the query's path."""


@dataclass(frozen=True)
class Observation:
    """What one node saw: the response's digest, the integer in it, and when."""

    digest: bytes
    """keccak256 of the exact response bytes."""
    value: int
    observed_at: int
    """Unix seconds."""
    size: int
    """Bytes read."""


def extract_value(body: bytes, path: str) -> int:
    """The unsigned integer at ``path`` in the JSON ``body``; ``""``: the body as a decimal.

    A path is dot-separated keys and list indexes (``data.items.0.price``). The value
    must be a JSON integer (or a string of decimal digits) in ``0..2**256-1``; a float, a
    boolean or anything else is a :class:`SourceFailed`.

    Example: ``extract_value(b'{"cost": {"eur": 1234}}', "cost.eur") == 1234``.
    """
    if path == "":
        return _as_uint(_text(body).strip(), "the response")
    try:
        node: object = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SourceFailed(
            f"the response is not JSON ({exc}), so path {path!r} cannot apply"
        ) from None
    for step in path.split("."):
        if isinstance(node, dict) and step in node:
            node = node[step]
        elif isinstance(node, list) and step.isdigit() and int(step) < len(node):
            node = node[int(step)]
        else:
            raise SourceFailed(f"the response has nothing at {path!r} (stopped at {step!r})")
    return _as_uint(node, f"the value at {path!r}")


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise SourceFailed("the response is not UTF-8 text") from None


def _as_uint(value: object, what: str) -> int:
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _UINT256:
        raise SourceFailed(f"{what} is not an unsigned 256-bit integer: {str(value)[:40]!r}")
    return value


def url_allowed(url: str, prefixes: Sequence[str]) -> bool:
    """Whether ``url`` is under one of ``prefixes`` (same scheme, host and port; path prefix).

    Example: ``url_allowed("http://127.0.0.1:8080/cost", ["http://127.0.0.1:8080/"])``.
    """
    try:
        target = urlsplit(url)
        port = target.port
    except ValueError:
        return False
    if target.scheme not in ("http", "https") or "@" in target.netloc or not target.hostname:
        return False
    for prefix in prefixes:
        allowed = urlsplit(prefix)
        same_origin = (
            allowed.scheme == target.scheme
            and allowed.hostname == target.hostname
            and _port(allowed.scheme, allowed.port) == _port(target.scheme, port)
        )
        if same_origin and target.path.startswith(allowed.path or "/"):
            return True
    return False


def _port(scheme: str, port: int | None) -> int:
    return port if port is not None else (443 if scheme == "https" else 80)


class SourceFetcher:
    """Observes query sources within the node's limits; one per node (holds an HTTP session)."""

    def __init__(
        self,
        *,
        allow: Sequence[str],
        fetch_timeout: float,
        max_response_bytes: int,
        cid: CidReader | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        for prefix in allow:
            if urlsplit(prefix).scheme not in ("http", "https") or not urlsplit(prefix).hostname:
                raise InvalidInput(
                    f"--allow {prefix!r} is not an http(s) URL prefix: write e.g. "
                    "http://127.0.0.1:8080/"
                )
        self.allow = tuple(allow)
        self.fetch_timeout = fetch_timeout
        self.max_response_bytes = max_response_bytes
        self._cid = cid
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        self.refusals: collections.Counter[str] = collections.Counter()
        """Sources not observed, by reason: ``not_allowed``, ``unsupported``, ``fetch``,
        ``too_large``, ``status``, ``no_value``."""
        self.observed = 0

    async def observe(self, kind: int, source: str, path: str) -> Observation:
        """Read ``source`` and extract the integer at ``path``; raise and count otherwise."""
        if kind == QueryKind.URL:
            body = await self._get(source)
        elif kind == QueryKind.CID:
            body = self._read_cid(source)
        elif kind == QueryKind.DEVICE:
            self.refusals["unsupported"] += 1
            raise SourceRefused(
                f"DEVICE query {source!r}: a node answers these from the readings it "
                "follows (OracleNode(declarations=...)), not by fetching"
            )
        else:
            self.refusals["unsupported"] += 1
            raise SourceRefused(f"query kind {kind} is unknown (1 URL, 2 DEVICE, 3 CID)")
        try:
            value = len(body) if kind == QueryKind.CID and path == "" else extract_value(body, path)
        except SourceFailed:
            self.refusals["no_value"] += 1
            raise
        self.observed += 1
        return Observation(keccak256(body), value, int(self._clock()), len(body))

    def _read_cid(self, source: str) -> bytes:
        if self._cid is None:
            self.refusals["unsupported"] += 1
            raise SourceRefused("this node has no content store: it cannot answer CID queries")
        try:
            body = self._cid(source)
        except PervasiveError as exc:
            self.refusals["fetch"] += 1
            raise SourceFailed(f"content {source!r} cannot be read: {exc}") from exc
        if len(body) > self.max_response_bytes:
            self.refusals["too_large"] += 1
            raise SourceFailed(f"content {source!r} is over {self.max_response_bytes} bytes")
        return body

    async def _get(self, url: str) -> bytes:
        if not url_allowed(url, self.allow):
            self.refusals["not_allowed"] += 1
            raise SourceRefused(
                f"{url[:80]!r} is not under this node's --allow prefixes: refused (a query may "
                "not make the oracles probe other hosts)"
            )
        if self._closed:
            # a fetch that outlived its node's stop must not open a session nobody closes
            raise SourceFailed(f"{url[:80]} not read: this oracle node is stopping")
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.fetch_timeout)
            )
        try:
            async with self._session.get(url, allow_redirects=False) as response:
                if response.status != 200:
                    self.refusals["status"] += 1
                    raise SourceFailed(f"{url[:80]} answered HTTP {response.status}")
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.content.iter_chunked(16 * 1024):
                    size += len(chunk)
                    if size > self.max_response_bytes:
                        self.refusals["too_large"] += 1
                        raise SourceFailed(
                            f"{url[:80]} sent more than {self.max_response_bytes} bytes"
                        )
                    chunks.append(chunk)
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.refusals["fetch"] += 1
            raise SourceFailed(f"{url[:80]} cannot be read: {exc or type(exc).__name__}") from exc
        return b"".join(chunks)

    async def close(self) -> None:
        """Close the HTTP session; later fetches fail (the node is stopping)."""
        self._closed = True
        if self._session is not None:
            await self._session.close()
            self._session = None
