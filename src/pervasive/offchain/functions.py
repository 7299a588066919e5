"""Off-chain functions ``f_a``, registered by name, pinned by a source hash (paper 002, sec. 3).

The agreement names its off-chain code (the paper's ``offChainCode``); here it is a
Python callable ``f(w[t]) -> bytes | str | None`` registered under a name, together
with ``keccak256`` of its source text. A node runs ``f`` only if that source hash
equals the one the agreement stores, so every node provably runs the same code.

``None`` is the paper's *null*: nothing is written on-chain. A ``str`` result is
encoded as UTF-8, so results are always compared and committed as bytes.

The source text itself lives off-chain, content-addressed (paper 001's contract
database): :func:`store_function_source` puts the exact bytes the agreement's hash
covers into a :class:`~pervasive.storage.ContentStore`, whose CID digest *is* that hash.
"""

from __future__ import annotations

import inspect
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pervasive.crypto import keccak256
from pervasive.errors import InvalidInput, NotFound
from pervasive.offchain.window import WindowArray

if TYPE_CHECKING:  # a device declaring a sensor needs no content store
    from pervasive.storage import Cid, ContentStore

__all__ = [
    "Computation",
    "FunctionMismatch",
    "FunctionRegistry",
    "OffchainFunction",
    "Result",
    "normalise_source",
    "source_hash",
    "store_function_source",
]

Result = bytes | None
"""The output of ``f``: bytes, or ``None`` for the paper's null result."""

Computation = Callable[[WindowArray], bytes | str | None]


class FunctionMismatch(InvalidInput):
    """The registered function's source hash differs from the one the agreement pins."""


def normalise_source(source: str) -> str:
    """The source text as the agreement hashes it: dedented, trailing whitespace stripped.

    Example: ``normalise_source("  def f(w):  \\n      return 1\\n")``
    is ``'def f(w):\\n    return 1'``.
    """
    return "\n".join(line.rstrip() for line in textwrap.dedent(source).strip().splitlines())


def source_hash(source: str) -> bytes:
    """``keccak256`` of the UTF-8 :func:`normalise_source` text.

    Example: ``source_hash("def f(w):\\n    return None\\n").hex()``.
    """
    return keccak256(normalise_source(source).encode("utf-8"))


@dataclass(frozen=True)
class OffchainFunction:
    """A named off-chain computation with the hash of its source text.

    ``source`` is the normalised text whose UTF-8 ``keccak256`` is ``source_hash``
    (set by :meth:`FunctionRegistry.register`); ``None`` when the entry was built by
    hand without it, so it cannot be published.
    """

    name: str
    source_hash: bytes
    function: Computation
    source: str | None = None

    def __call__(self, windows: WindowArray) -> Result:
        """Run ``f(w[t])`` and normalise its output to bytes or ``None``.

        Example: ``fn(window_array)  # b'...' or None``.
        """
        out = self.function(windows)
        if out is None or isinstance(out, bytes):
            return out
        if isinstance(out, str):
            return out.encode("utf-8")
        raise InvalidInput(f"off-chain function {self.name!r} must return bytes, str or None")


class FunctionRegistry:
    """Off-chain functions a node can run, by name.

    Example::

        registry = FunctionRegistry()
        registry.register("monthly_rental", monthly_rental_time)
        f = registry.resolve("monthly_rental", agreement.function_hash)
    """

    def __init__(self) -> None:
        self._functions: dict[str, OffchainFunction] = {}

    def register(
        self, name: str, function: Computation, *, source: str | None = None
    ) -> OffchainFunction:
        """Register ``function`` under ``name`` (source read with ``inspect`` if not given)."""
        if name in self._functions:
            raise InvalidInput(f"an off-chain function named {name!r} is already registered")
        text = normalise_source(source if source is not None else inspect.getsource(function))
        entry = OffchainFunction(name, keccak256(text.encode("utf-8")), function, text)
        self._functions[name] = entry
        return entry

    def resolve(self, name: str, expected_hash: bytes) -> OffchainFunction:
        """The function ``name``, if its source hash is ``expected_hash``.

        Raises :class:`NotFound` for an unknown name and :class:`FunctionMismatch` when
        the code differs from what the agreement pins.
        """
        entry = self._functions.get(name)
        if entry is None:
            raise NotFound(f"no off-chain function named {name!r} is registered on this node")
        if entry.source_hash != expected_hash:
            raise FunctionMismatch(
                f"off-chain function {name!r} has source hash 0x{entry.source_hash.hex()}, "
                f"the agreement pins 0x{expected_hash.hex()}: deploy the agreed code"
            )
        return entry


def store_function_source(store: ContentStore, entry: OffchainFunction) -> Cid:
    """Put ``entry``'s source into ``store``; the CID's digest is the agreement's hash.

    Any party can then fetch the exact code an agreement names with
    ``store.get(cid_for_digest(agreement.function_hash))``. The store is for audit and
    retrieval: a node never runs code read from it, only what its registry holds.
    Raises :class:`InvalidInput` when the entry carries no source text, or one that
    does not hash to its ``source_hash``.

    Example: ``cid = store_function_source(ContentStore(home / "content"), entry)``.
    """
    if entry.source is None:
        raise InvalidInput(
            f"off-chain function {entry.name!r} has no source text to publish: "
            "register it with FunctionRegistry.register (which keeps the source)"
        )
    data = entry.source.encode("utf-8")
    if keccak256(data) != entry.source_hash:
        raise InvalidInput(
            f"the source text of off-chain function {entry.name!r} does not hash to its "
            f"source hash 0x{entry.source_hash.hex()}: build the entry with "
            "FunctionRegistry.register"
        )
    return store.put(data)
