"""Sans-I/O RESP2: commands to bytes, bytes to values.

Nothing here touches a socket or an event loop. ``encode_command`` turns one
command's arguments into wire bytes; ``Parser`` is fed whatever bytes arrive and
hands back complete replies one at a time, keeping partial ones across feeds::

    >>> parser = Parser()
    >>> parser.feed(b"*2\\r\\n$1\\r\\na\\r\\n:7\\r")
    >>> parser.next_reply() is INCOMPLETE
    True
    >>> parser.feed(b"\\n")
    >>> parser.next_reply(), chr(parser.kind)
    (['a', 7], '*')
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Union

from ._errors import ServerError

#: A decoded reply: ``str`` (or ``bytes`` with ``decode=False``), ``int``, a
#: nested ``list``, ``None`` for NULL, or a ``ServerError`` (a ``str``) inside
#: arrays.
Reply = Union[str, bytes, int, list["Reply"], None]  # noqa: UP007 (a runtime alias)

#: Reply type bytes, as ``Parser.kind`` reports them.
SIMPLE: Final = 0x2B  # +
ERROR: Final = 0x2D  # -
INTEGER: Final = 0x3A  # :
BULK: Final = 0x24  # $
ARRAY: Final = 0x2A  # *

#: Redis refuses bulk strings above 512 MB (proto-max-bulk-len); so do we,
#: before allocating anything for them.
MAX_BULK_LENGTH: Final = 512 * 1024 * 1024
#: No element count a real server sends comes near this; a larger one is a
#: corrupt stream.
MAX_ARRAY_LENGTH: Final = 2**32 - 1
#: A header or simple line longer than this without CRLF is a corrupt stream.
MAX_LINE_LENGTH: Final = 1024 * 1024

_SURROGATE: Final = "surrogateescape"


class RespError(Exception):
    """The byte stream is not valid RESP2 (raised by ``Parser``)."""


class ArgumentError(Exception):
    """A command argument cannot be sent (raised by ``encode_command``)."""


class _Incomplete:
    """Type of ``INCOMPLETE``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "INCOMPLETE"


#: Returned by ``Parser.next_reply`` while the next reply has not fully arrived.
INCOMPLETE: Final = _Incomplete()

_BULK_HEADERS: Final = tuple(b"$%d\r\n" % n for n in range(512))
_ARRAY_HEADERS: Final = tuple(b"*%d\r\n" % n for n in range(64))


def _argument_bytes(arg: object, position: int) -> bytes:
    """One argument as bytes; the slow path for anything but str and bytes."""
    if isinstance(arg, (bool, type(None))):
        # True/None are almost always a bug; sending "True" or "None" would
        # silently store the wrong data. The value itself is never echoed.
        raise ArgumentError(
            f"argument {position} is {arg!r}: send str, bytes, int or float "
            "(write 1/0 or 'true'/'false' explicitly)"
        )
    if isinstance(arg, str):
        return arg.encode("utf-8", _SURROGATE)
    if isinstance(arg, (bytes, bytearray, memoryview)):
        return bytes(arg)
    if isinstance(arg, int):
        return b"%d" % arg
    if isinstance(arg, float):
        return repr(arg).encode("ascii")
    raise ArgumentError(
        f"argument {position} has type {type(arg).__name__}: "
        "send str, bytes, int or float"
    )


def encode_command(args: Sequence[object]) -> bytes:
    """Encode one command as a RESP array of bulk strings.

    ``str`` is sent as UTF-8 (with ``surrogateescape``, so a value read back
    and sent again is byte-identical), ``int`` and ``float`` by their decimal
    text. ``None``, ``bool`` and other types raise ``ArgumentError``.
    """
    count = len(args)
    if count == 0:
        raise ArgumentError("no command given")
    parts = [_ARRAY_HEADERS[count] if count < 64 else b"*%d\r\n" % count]
    append = parts.append
    for position, arg in enumerate(args, 1):
        # Exact type checks first: the common cases, without isinstance chains.
        if type(arg) is str:
            data = arg.encode("utf-8", _SURROGATE)
        elif type(arg) is bytes:
            data = arg
        elif type(arg) is int:
            data = b"%d" % arg
        else:
            data = _argument_bytes(arg, position)
        size = len(data)
        append(_BULK_HEADERS[size] if size < 512 else b"$%d\r\n" % size)
        append(data)
        append(b"\r\n")
    return b"".join(parts)


def _parse_length(line: bytearray, what: str) -> int:
    try:
        return int(line)
    except ValueError:
        shown = bytes(line[:40])
        raise RespError(f"invalid {what} {shown!r}") from None


class Parser:
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
                if len(buffer) - position > MAX_LINE_LENGTH:
                    raise RespError(f"no line end within {MAX_LINE_LENGTH} bytes")
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
