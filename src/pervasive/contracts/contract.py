"""A lean, typed handle on a deployed contract: ABI encoding, calls, transactions, events.

The per-contract wrappers (``registry.py`` ...) build on this instead of web3's
``Contract`` class: the ABI is read once into :class:`Function` and :class:`EventSpec`
records (canonical types, selector, topic), calldata is encoded with eth-abi, and
every read or write goes straight to the :class:`~pervasive.chain.Ledger`, so there
is one hop between a wrapper method and the JSON-RPC request.

Example::

    contract = Contract(ledger, address, artifact.abi)
    count = await contract.call("user_count")
    receipt = await contract.transact(signer, "register_user", "alice", signer.address)
    [event.name for event in contract.events(receipt)]   # ['UserRegistered']
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
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
    """ABI-decode ``data`` as ``types`` (strictly), addresses checksummed."""
    values = decode(list(types), data, strict=True)
    return tuple(_checksummed(parse(t), v) for t, v in zip(types, values, strict=True))


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
