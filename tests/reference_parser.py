"""A deliberately plain RESP2 parser: one byte buffer, one position, no tricks.

It is the reference the fast parser in ``levredis._resp`` is checked against
(same replies, or both refuse the stream). Slow, and meant to stay obvious.
"""

from __future__ import annotations

import re

from levredis._errors import ServerError
from levredis._resp import (
    ARRAY,
    BULK,
    ERROR,
    INCOMPLETE,
    INTEGER,
    MAX_ARRAY_LENGTH,
    MAX_BULK_LENGTH,
    MAX_HEADER_LENGTH,
    MAX_LINE_LENGTH,
    SIMPLE,
    Reply,
    RespError,
    _Incomplete,
)

_SURROGATE = "surrogateescape"

_INTEGER = re.compile(rb"-?[0-9]{1,19}")


def _parse_length(line: bytearray, what: str) -> int:
    if _INTEGER.fullmatch(line) is None or not -(2**63) <= int(line) < 2**63:
        shown = bytes(line[:40])
        raise RespError(f"invalid {what} {shown!r}")
    return int(line)


class ReferenceParser:
    """Incremental RESP2 parser: feed bytes, take complete replies.

    Arrays are parsed with an explicit stack, not recursion, so any nesting
    depth is safe and a half-received array is resumed where it stopped.
    """

    __slots__ = ("_buffer", "_position", "_stack", "decode", "kind")

    def __init__(self, decode: bool = True) -> None:
        self._buffer = bytearray()
        self._position = 0
        # Each open array: [announced count, items so far].
        self._stack: list[tuple[int, list[Reply]]] = []
        #: Simple and bulk strings come back as str when true, bytes when false.
        self.decode = decode
        #: Type byte of the last complete top-level reply (``SIMPLE``, ``ARRAY`` ...).
        self.kind = 0

    def feed(self, data: bytes) -> None:
        """Append received bytes; consumed bytes are dropped first."""
        buffer = self._buffer
        position = self._position
        if position:
            if position == len(buffer):
                buffer.clear()
                self._position = 0
            elif position >= 65536 or position * 2 >= len(buffer):
                del buffer[:position]
                self._position = 0
        buffer += data

    def has_partial(self) -> bool:
        """True when some bytes of a reply arrived but the reply is not complete."""
        return self._position < len(self._buffer) or bool(self._stack)

    def next_reply(self) -> Reply | _Incomplete:
        """The next complete reply, or ``INCOMPLETE``; raises ``RespError``.

        A Redis error reply comes back as a ``ServerError`` value (at the top
        level and inside arrays alike); NULL bulk strings and arrays as ``None``.
        ``self.kind`` tells the top-level type.
        """
        buffer = self._buffer
        position = self._position
        stack = self._stack
        value: Reply
        while True:
            end = buffer.find(b"\r\n", position)
            if end < 0:
                pending = len(buffer) - position
                if pending:
                    first = buffer[position]
                    if first in (BULK, ARRAY, INTEGER):
                        if pending > MAX_HEADER_LENGTH:
                            raise RespError("no line end within the length limit")
                    elif first in (SIMPLE, ERROR):
                        if pending > MAX_LINE_LENGTH:
                            raise RespError("no line end within the line limit")
                    else:
                        raise RespError(f"unknown reply type byte 0x{first:02x}")
                self._position = position
                return INCOMPLETE
            prefix = buffer[position]
            if prefix == BULK:
                length = _parse_length(buffer[position + 1 : end], "bulk length")
                if length >= 0:
                    if length > MAX_BULK_LENGTH:
                        raise RespError(
                            f"bulk length {length} exceeds the 512 MB limit"
                        )
                    start = end + 2
                    stop = start + length
                    if len(buffer) < stop + 2:
                        self._position = position
                        return INCOMPLETE
                    if buffer[stop : stop + 2] != b"\r\n":
                        raise RespError("bulk string not followed by CRLF")
                    if self.decode:
                        value = buffer[start:stop].decode("utf-8", _SURROGATE)
                    else:
                        value = bytes(buffer[start:stop])
                    position = stop + 2
                elif length == -1:
                    value = None
                    position = end + 2
                else:
                    raise RespError(f"invalid bulk length {length}")
            elif prefix == INTEGER:
                value = _parse_length(buffer[position + 1 : end], "integer")
                position = end + 2
            elif prefix == SIMPLE:
                if self.decode:
                    value = buffer[position + 1 : end].decode("utf-8", _SURROGATE)
                else:
                    value = bytes(buffer[position + 1 : end])
                position = end + 2
            elif prefix == ERROR:
                value = ServerError(
                    buffer[position + 1 : end].decode("utf-8", _SURROGATE)
                )
                position = end + 2
            elif prefix == ARRAY:
                length = _parse_length(buffer[position + 1 : end], "array length")
                position = end + 2
                if length > 0:
                    if length > MAX_ARRAY_LENGTH:
                        raise RespError(f"array length {length} is out of range")
                    stack.append((length, []))
                    continue
                if length == 0:
                    value = []
                elif length == -1:
                    value = None
                else:
                    raise RespError(f"invalid array length {length}")
            else:
                raise RespError(
                    f"unknown reply type byte 0x{prefix:02x} ({chr(prefix)!r})"
                )
            if not stack:
                self.kind = prefix
                self._position = position
                return value
            while True:
                length, items = stack[-1]
                items.append(value)
                if len(items) < length:
                    break
                stack.pop()
                if not stack:
                    self.kind = ARRAY
                    self._position = position
                    return items
                value = items
