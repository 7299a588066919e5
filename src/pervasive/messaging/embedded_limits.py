"""The embedded broker's packet-size limit, read off the wire before a packet is buffered.

amqtt reads a packet's fixed header, then ``remaining length`` bytes, whatever that
length says (up to MQTT's 256 MB). :class:`PacketFramer` follows the packet
boundaries of the byte stream a connection reads (sans I/O: fed the bytes, it answers)
and reports a packet over the limit as soon as its length field is complete, so the
body is never read. :class:`LimitedReader` is the amqtt reader adapter that feeds it
and ends the connection on an oversize packet, as mosquitto's ``max_packet_size`` does.

The size compared is the whole packet: fixed header, variable header and payload.

Example::

    framer = PacketFramer(max_bytes=1024)
    framer.feed(bytes((0x30, 0x80, 0x10)))  # a PUBLISH of 2,048 + 3 bytes: returns 2051
"""

from __future__ import annotations

import enum
import ssl
from collections.abc import Callable

from amqtt.adapters import ReaderAdapter
from amqtt.errors import NoDataError

__all__ = ["LimitedReader", "PacketFramer"]

_LENGTH_BYTES = 4
"""MQTT's remaining length takes at most four bytes ([MQTT-2.2.3])."""


class _Part(enum.Enum):
    TYPE = enum.auto()
    LENGTH = enum.auto()
    BODY = enum.auto()


class PacketFramer:
    """Follows MQTT packet boundaries in a byte stream; reports packets over ``max_bytes``."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._part = _Part.TYPE
        self._length = 0
        self._length_bytes = 0
        self._body_left = 0

    def feed(self, data: bytes) -> int | None:
        """Take the next bytes of the stream; return the size of a packet over the limit.

        A malformed length (more than four bytes) is reported as over the limit too.
        After a report the stream is not to be read further.

        Example: ``framer.feed(b"\\xc0\\x00")`` (a PINGREQ) returns ``None``.
        """
        index = 0
        while index < len(data):
            if self._part is _Part.TYPE:
                self._part, self._length, self._length_bytes = _Part.LENGTH, 0, 0
                index += 1
            elif self._part is _Part.LENGTH:
                byte = data[index]
                index += 1
                self._length |= (byte & 0x7F) << (7 * self._length_bytes)
                self._length_bytes += 1
                if byte & 0x80 and self._length_bytes == _LENGTH_BYTES:
                    return self.max_bytes + 1  # malformed: no size to report
                if not byte & 0x80:
                    size = 1 + self._length_bytes + self._length
                    if size > self.max_bytes:
                        return size
                    self._part, self._body_left = _Part.BODY, self._length
                    if not self._body_left:
                        self._part = _Part.TYPE
            else:
                taken = min(self._body_left, len(data) - index)
                index += taken
                self._body_left -= taken
                if not self._body_left:
                    self._part = _Part.TYPE
        return None


class LimitedReader(ReaderAdapter):  # type: ignore[misc]
    """An amqtt reader adapter that ends the connection on a packet over the limit.

    ``oversize(size)`` is called once (it counts and closes the connection); the read
    then fails as at the end of the stream, which ends amqtt's reader loop.
    ``deadline`` (event-loop time) is when the connection must have sent CONNECT.
    """

    def __init__(
        self,
        reader: ReaderAdapter,
        framer: PacketFramer,
        oversize: Callable[[int], None],
        *,
        deadline: float,
    ) -> None:
        self._reader = reader
        self._framer = framer
        self._oversize = oversize
        self._refused = False
        self.deadline = deadline

    async def read(self, n: int = -1) -> bytes:
        """Read as amqtt asks; fail as at EOF once a packet over the limit began."""
        if self._refused:
            raise NoDataError("the connection was closed: a packet over the size limit")
        try:
            data: bytes = await self._reader.read(n)
        except ssl.SSLError as exc:  # a TLS record error ends the stream like a reset
            raise NoDataError(f"TLS error: {exc}") from exc
        size = self._framer.feed(data)
        if size is not None:
            self._refused = True
            self._oversize(size)
            raise NoDataError(f"a packet of {size} bytes is over the limit")
        return data

    def feed_eof(self) -> None:
        """As the wrapped reader."""
        self._reader.feed_eof()
