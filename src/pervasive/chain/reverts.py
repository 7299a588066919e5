"""Decoding revert data into a reason a person can read."""

from __future__ import annotations

from eth_abi.abi import decode
from eth_abi.exceptions import DecodingError

__all__ = ["decode_revert"]

_ERROR = bytes.fromhex("08c379a0")  # Error(string)
_PANIC = bytes.fromhex("4e487b71")  # Panic(uint256)
_PANICS = {
    0x01: "assertion failed",
    0x11: "arithmetic overflow or underflow",
    0x12: "division or modulo by zero",
    0x21: "invalid enum value",
    0x31: "pop from an empty array",
    0x32: "array index out of bounds",
    0x41: "out of memory",
    0x51: "call to a zero-initialised function",
}


def decode_revert(data: bytes | str | None) -> str | None:
    """The reason carried by revert ``data``, or ``None`` if there is none.

    Example: ``decode_revert(bytes.fromhex("08c379a0" + ...)) == "not the owner"``.
    """
    if data is None:
        return None
    if isinstance(data, str):
        text = data.removeprefix("0x")
        try:
            data = bytes.fromhex(text)
        except ValueError:
            return str(data) or None
    if not data:
        return None
    selector, body = data[:4], data[4:]
    try:
        if selector == _ERROR:
            (reason,) = decode(["string"], body)
            return str(reason)
        if selector == _PANIC:
            (code,) = decode(["uint256"], body)
            return f"panic 0x{code:02x}: {_PANICS.get(code, 'unknown panic')}"
    except DecodingError:
        pass
    return f"custom error 0x{data.hex()}"
