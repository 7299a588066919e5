"""A lean, typed handle on a deployed contract: ABI encoding, calls, transactions, events.

The per-contract wrappers (``registry.py`` ...) build on this instead of web3's
``Contract`` class: the ABI is read once into :class:`Function` and :class:`EventSpec`
records (canonical types, selector, topic), calldata is encoded with eth-abi, and
every read or write goes straight to the :class:`~pervasive.chain.Ledger`, so there
is one hop between a wrapper method and the JSON-RPC request.

Decoding (:func:`decode_values`, :meth:`EventSpec.decode`) has a fast path built once
per type list: static types (``uintN``, ``intN``, ``address``, ``bool``, ``bytesN``) are
read straight from their 32-byte words, ``string``/``bytes`` by offset and length,
addresses checksummed once each (cached). It returns exactly what eth-abi's strict
decoder returns (a hypothesis test pins the two together); anything it does not
handle, or does not find well-formed (dirty padding, an offset out of range, bad
UTF-8, arrays, tuples), goes to eth-abi, so errors and exotic types stay eth-abi's.

Example::

    contract = Contract(ledger, address, artifact.abi)
    count = await contract.call("user_count")
    receipt = await contract.transact(signer, "register_user", "alice", signer.address)
    [event.name for event in contract.events(receipt)]   # ['UserRegistered']
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode
from eth_abi.exceptions import DecodingError
from eth_abi.grammar import ABIType, BasicType, TupleType, parse

from pervasive.chain import ContractCall, Ledger, Log, Receipt, Signer
from pervasive.crypto import abi_encode, checksum_address, keccak256
from pervasive.errors import InternalError, InvalidInput

__all__ = ["Contract", "DecodedEvent", "EventSpec", "Function", "canonical_type", "decode_values"]


def canonical_type(param: Mapping[str, Any]) -> str:
    """The canonical ABI type of one ABI parameter, tuples spelled out: ``(string,uint8)[]``."""
    kind = str(param["type"])
    if kind.startswith("tuple"):
        inner = ",".join(canonical_type(c) for c in param["components"])
        return f"({inner}){kind[len('tuple') :]}"
    return kind


def _checksummed(kind: ABIType, value: Any) -> Any:
    """``value`` with every address in it in EIP-55 form (eth-abi decodes them lowercase)."""
    if kind.is_array:
        return tuple(_checksummed(kind.item_type, item) for item in value)
    if isinstance(kind, TupleType):
        return tuple(_checksummed(c, v) for c, v in zip(kind.components, value, strict=True))
    if isinstance(kind, BasicType) and kind.base == "address":
        return checksum_address(value)
    return value


def decode_values(types: Sequence[str], data: bytes) -> tuple[Any, ...]:
    """ABI-decode ``data`` as ``types`` (strictly), addresses checksummed.

    Example: ``decode_values(["uint8", "string"], abi_encode(["uint8", "string"], [7, "hi"]))``.
    """
    fast = _words_decoder(tuple(types))
    if fast is not None:
        values = fast(data)
        if values is not None:
            return values
    return _decode_reference(types, data)


def _decode_reference(types: Sequence[str], data: bytes) -> tuple[Any, ...]:
    """eth-abi's strict decoder, addresses checksummed: the fast path's reference."""
    values = decode(list(types), data, strict=True)
    return tuple(_checksummed(parse(t), v) for t, v in zip(types, values, strict=True))


# -- the fast path: 32-byte words read directly --------------------------------------
# A reader returns the value of one word, or None when the word is not what eth-abi's
# strict decoder accepts (ABI values are never None): the caller then hands the whole
# input to eth-abi, which raises its own error.
_WordReader = Callable[[bytes], Any]
_ZEROS = bytes(32)
_FALSE = bytes(32)
_TRUE = bytes(31) + b"\x01"
_SIZED = re.compile(r"(uint|int|bytes)([0-9]{1,3})")
_HIGH_NIBBLE = bytes.maketrans(b"0123456789abcdef", b"\x00" * 8 + b"\x20" * 8)
_HEX_LETTER = bytes.maketrans(b"0123456789abcdef", b"\x00" * 10 + b"\x20" * 6)


@functools.lru_cache(maxsize=16384)
def _address(body: bytes) -> str:
    """EIP-55 form of a 20-byte address, cached: the cost of decoding an address.

    The same letters as :func:`~pervasive.crypto.checksum_address` upper-cases (a letter
    whose digest nibble is 8 or more), computed with byte tables instead of per character.
    """
    text = body.hex().encode("ascii")
    nibbles = keccak256(text).hex()[:40].encode("ascii").translate(_HIGH_NIBBLE)
    upper = int.from_bytes(nibbles, "big") & int.from_bytes(text.translate(_HEX_LETTER), "big")
    return "0x" + (int.from_bytes(text, "big") - upper).to_bytes(40, "big").decode("ascii")


def _read_address(word: bytes) -> str | None:
    return _address(word[12:]) if word[:12] == _ZEROS[:12] else None


def _read_bool(word: bytes) -> bool | None:
    if word == _FALSE:
        return False
    return True if word == _TRUE else None


def _read_uint256(word: bytes) -> int:
    return int.from_bytes(word, "big")


def _uint_reader(bits: int) -> _WordReader:
    if bits == 256:
        return _read_uint256
    limit = 1 << bits

    def read(word: bytes) -> int | None:
        value = int.from_bytes(word, "big")
        return value if value < limit else None

    return read


def _int_reader(bits: int) -> _WordReader:
    low, high = -(1 << (bits - 1)), 1 << (bits - 1)

    def read(word: bytes) -> int | None:
        value = int.from_bytes(word, "big", signed=True)
        return value if low <= value < high else None  # else: padding is no sign extension

    return read


def _bytes_reader(size: int) -> _WordReader:
    padding = _ZEROS[size:]

    def read(word: bytes) -> bytes | None:
        return word[:size] if word[size:] == padding else None

    return read


def _word_reader(kind: str) -> _WordReader | None:
    """The reader of a static basic type, ``None`` for any other type."""
    if kind == "address":
        return _read_address
    if kind == "bool":
        return _read_bool
    sized = _SIZED.fullmatch(kind)
    if sized is None or sized.group(2).startswith("0"):
        return None
    base, size = sized.group(1), int(sized.group(2))
    if base == "bytes":
        return _bytes_reader(size) if 1 <= size <= 32 else None
    if size % 8 or not 8 <= size <= 256:
        return None
    return _uint_reader(size) if base == "uint" else _int_reader(size)


class _WordsDecoder:
    """Decodes the tuple ``(types...)`` word by word; ``None`` for input to leave to eth-abi."""

    __slots__ = ("_head", "_steps")

    def __init__(self, steps: tuple[tuple[_WordReader | None, bool], ...]) -> None:
        self._head = 32 * len(steps)
        self._steps = steps
        """Per type: its word reader, or ``None`` and whether it is a ``string`` (dynamic)."""

    def __call__(self, data: bytes) -> tuple[Any, ...] | None:
        if type(data) is not bytes or len(data) < self._head:
            return None
        out: list[Any] = []
        at = 0
        for read, text in self._steps:
            word = data[at : at + 32]
            at += 32
            value = read(word) if read is not None else self._dynamic(data, word, text)
            if value is None:
                return None
            out.append(value)
        return tuple(out)

    def _dynamic(self, data: bytes, word: bytes, text: bool) -> bytes | str | None:
        offset, size = int.from_bytes(word, "big"), len(data)
        if offset < self._head or offset + 32 > size:
            return None  # eth-abi: InvalidPointer or InsufficientDataBytes
        length = int.from_bytes(data[offset : offset + 32], "big")
        start = offset + 32
        end = start + length
        padded = end + (-length % 32)
        if padded > size or data[end:padded] != _ZEROS[: padded - end]:
            return None  # eth-abi: InsufficientDataBytes or NonEmptyPaddingBytes
        value = data[start:end]
        if not text:
            return value
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return None


@functools.lru_cache(maxsize=1024)
def _words_decoder(types: tuple[str, ...]) -> _WordsDecoder | None:
    """The fast decoder of ``types``, or ``None`` if one of them is not handled."""
    steps: list[tuple[_WordReader | None, bool]] = []
    for kind in types:
        if kind in ("string", "bytes"):
            steps.append((None, kind == "string"))
            continue
        read = _word_reader(kind)
        if read is None:
            return None
        steps.append((read, False))
    return _WordsDecoder(tuple(steps))


@dataclass(frozen=True)
class Function:
    """One function of an ABI: name, canonical input/output types and 4-byte selector."""

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    mutability: str

    @property
    def signature(self) -> str:
        """``name(type,...)``, as hashed into the selector."""
        return f"{self.name}({','.join(self.inputs)})"

    @property
    def selector(self) -> bytes:
        """The first four bytes of ``keccak256(signature)``."""
        return keccak256(self.signature.encode())[:4]

    def encode(self, args: Sequence[Any]) -> bytes:
        """Calldata: selector followed by the ABI-encoded arguments."""
        if len(args) != len(self.inputs):
            raise InvalidInput(
                f"{self.signature} takes {len(self.inputs)} arguments, got {len(args)}"
            )
        return self.selector + abi_encode(self.inputs, args)

    def decode_output(self, data: bytes) -> Any:
        """The return value: one value when the function returns one, else a tuple."""
        try:
            values = decode_values(self.outputs, data)
        except (DecodingError, ValueError) as exc:
            raise InternalError(f"{self.signature} returned undecodable data: {exc}") from exc
        return values[0] if len(values) == 1 else tuple(values)


@dataclass(frozen=True)
class EventSpec:
    """One event of an ABI: its topic and the names and types of its fields."""

    name: str
    names: tuple[str, ...]
    types: tuple[str, ...]
    indexed: tuple[bool, ...]

    @property
    def topic(self) -> bytes:
        """``keccak256("Name(type,...)")``, the log's first topic."""
        return keccak256(f"{self.name}({','.join(self.types)})".encode())

    def decode(self, log: Log) -> DecodedEvent:
        """Decode ``log``'s topics and data into named fields.

        An indexed field of a dynamic type (string, bytes, arrays) is only present as
        its keccak hash in the topics; it is returned as those 32 bytes.
        """
        plan = self._plan
        if plan is not None:
            args = plan.decode(log)
            if args is not None:
                return DecodedEvent(self.name, args, log)
        return self._decode_reference(log)

    @functools.cached_property
    def _plan(self) -> _EventPlan | None:
        """The fast decoder of this event, built on first use (``None``: eth-abi only)."""
        return _EventPlan.build(self)

    def _decode_reference(self, log: Log) -> DecodedEvent:
        """:meth:`decode` by eth-abi: the fast path's reference and fallback."""
        data_types = [t for t, i in zip(self.types, self.indexed, strict=True) if not i]
        try:
            data_values = iter(decode_values(data_types, log.data))
            topics = iter(log.topics[1:])
            args: dict[str, Any] = {}
            for name, kind, indexed in zip(self.names, self.types, self.indexed, strict=True):
                if not indexed:
                    args[name] = next(data_values)
                elif _is_dynamic(kind):
                    args[name] = next(topics)
                else:
                    args[name] = decode_values([kind], next(topics))[0]
        except (DecodingError, ValueError, StopIteration) as exc:
            raise InternalError(f"log does not match event {self.name}: {exc}") from exc
        return DecodedEvent(self.name, args, log)


def _is_dynamic(kind: str) -> bool:
    return kind in ("string", "bytes") or kind.endswith("]") or kind.startswith("(")


_FROM_DATA, _RAW_TOPIC, _TOPIC = 0, 1, 2


@dataclass(frozen=True)
class _EventPlan:
    """How to read one event's fields fast: from the data's values or from topic words."""

    data: _WordsDecoder
    fields: tuple[tuple[str, int, int, _WordReader | None], ...]
    """Per field: name, source (``_FROM_DATA``, ``_RAW_TOPIC``, ``_TOPIC``), index, reader."""
    topics: int
    """How many topics a log of this event has at least (the event's own included)."""

    @classmethod
    def build(cls, spec: EventSpec) -> _EventPlan | None:
        if not len(spec.names) == len(spec.types) == len(spec.indexed):
            return None  # eth-abi's path says what is wrong
        data = _words_decoder(
            tuple(t for t, i in zip(spec.types, spec.indexed, strict=True) if not i)
        )
        if data is None:
            return None
        fields: list[tuple[str, int, int, _WordReader | None]] = []
        values = topics = 0
        for name, kind, indexed in zip(spec.names, spec.types, spec.indexed, strict=True):
            if not indexed:
                fields.append((name, _FROM_DATA, values, None))
                values += 1
                continue
            topics += 1
            if _is_dynamic(kind):
                fields.append((name, _RAW_TOPIC, topics, None))
                continue
            read = _word_reader(kind)
            if read is None:
                return None
            fields.append((name, _TOPIC, topics, read))
        return cls(data, tuple(fields), topics + 1)

    def decode(self, log: Log) -> dict[str, Any] | None:
        """The fields of ``log``, or ``None`` to leave the log to eth-abi."""
        topics = log.topics
        if len(topics) < self.topics:
            return None
        values = self.data(log.data)
        if values is None:
            return None
        args: dict[str, Any] = {}
        for name, source, index, read in self.fields:
            if source == _FROM_DATA:
                args[name] = values[index]
            elif source == _RAW_TOPIC:
                args[name] = topics[index]
            else:
                topic = topics[index]
                if read is None or type(topic) is not bytes or len(topic) != 32:
                    return None
                value = read(topic)
                if value is None:
                    return None
                args[name] = value
        return args


@dataclass(frozen=True)
class DecodedEvent:
    """An event decoded from a log: its name, fields by name, and the log itself."""

    name: str
    args: Mapping[str, Any]
    log: Log


class Contract:
    """A deployed contract at ``address`` on ``ledger``, described by its ``abi``."""

    def __init__(self, ledger: Ledger, address: str, abi: Iterable[Mapping[str, Any]]) -> None:
        self.ledger = ledger
        self.address = address
        self._functions: dict[str, list[Function]] = {}
        self._events: dict[bytes, EventSpec] = {}
        for entry in abi:
            if entry.get("type") == "function":
                function = Function(
                    name=str(entry["name"]),
                    inputs=tuple(canonical_type(p) for p in entry.get("inputs", ())),
                    outputs=tuple(canonical_type(p) for p in entry.get("outputs", ())),
                    mutability=str(entry.get("stateMutability", "nonpayable")),
                )
                self._functions.setdefault(function.name, []).append(function)
            elif entry.get("type") == "event" and not entry.get("anonymous"):
                inputs = entry.get("inputs", ())
                spec = EventSpec(
                    name=str(entry["name"]),
                    names=tuple(str(p["name"]) for p in inputs),
                    types=tuple(canonical_type(p) for p in inputs),
                    indexed=tuple(bool(p.get("indexed")) for p in inputs),
                )
                self._events[spec.topic] = spec

    def function(self, name: str, arity: int | None = None) -> Function:
        """The ABI function ``name`` (taking ``arity`` arguments when it is overloaded)."""
        candidates = self._functions.get(name, [])
        if arity is not None:
            candidates = [f for f in candidates if len(f.inputs) == arity]
        if not candidates:
            raise InternalError(f"contract at {self.address} has no function {name}/{arity}")
        return candidates[0]

    def encode(self, name: str, *args: Any) -> bytes:
        """Calldata for ``name(*args)``."""
        return self.function(name, len(args)).encode(args)

    async def call(self, name: str, *args: Any, sender: str | None = None) -> Any:
        """Run a function with ``eth_call`` and decode its result (reverts raise)."""
        function = self.function(name, len(args))
        data = await self.ledger.call(self.address, function.encode(args), sender=sender)
        return function.decode_output(data)

    async def transact(
        self, signer: Signer, name: str, *args: Any, gas: int | None = None
    ) -> Receipt:
        """Send ``name(*args)`` from ``signer`` and wait for the receipt.

        A call that would revert raises :class:`~pervasive.errors.TransactionReverted`
        with the contract's reason before anything is sent (gas estimation runs it).
        """
        call = ContractCall(to=self.address, data=self.encode(name, *args), gas=gas)
        receipt: Receipt = await self.ledger.transactor(signer).transact(call)
        return receipt

    def events(self, receipt: Receipt, name: str | None = None) -> list[DecodedEvent]:
        """The events this contract emitted in ``receipt`` (only ``name`` when given)."""
        return self.decode_logs(receipt.logs, name)

    def decode_logs(self, logs: Iterable[Log], name: str | None = None) -> list[DecodedEvent]:
        """Decode the logs of this contract whose topic is a known event."""
        out = []
        for log in logs:
            if log.address.lower() != self.address.lower() or not log.topics:
                continue
            spec = self._events.get(log.topics[0])
            if spec is not None and (name is None or spec.name == name):
                out.append(spec.decode(log))
        return out
