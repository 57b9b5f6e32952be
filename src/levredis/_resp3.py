"""Sans-I/O RESP3 parser: every RESP3 type, as strict as the RESP2 parser.

Used for connections that asked for ``protocol: 3`` (RESP2 connections keep
``_resp.Parser`` and its compiled fast path). The interface is the same:
``feed`` bytes, take replies with ``next_reply`` (``INCOMPLETE`` until one is
whole), read the top-level type byte from ``kind``.

Decoding::

    + simple   -> str (bytes with decode off)      : integer  -> int
    - error    -> ServerError                      $ bulk     -> str / bytes ($-1: None)
    * array    -> list (*-1: None)                 _ null     -> None
    # boolean  -> bool                             , double   -> float (inf, -inf, nan)
    ( big num  -> int                              ! blob err -> ServerError
    = verbatim -> str / bytes, without its "txt:" format prefix
    % map      -> dict     (a list of [key, value] pairs when a key is unhashable)
    ~ set      -> set      (a list when a member is unhashable)
    > push     -> list, with ``kind`` PUSH: out-of-band data for read()
    | attribute-> read and dropped (the reply it annotates follows); kept in
                  ``last_attribute``

Aggregates are parsed with an explicit stack, so any nesting depth is safe
and a half-received reply resumes where it stopped; received bytes are
scanned once.
"""

from __future__ import annotations

import re
from typing import Any, Final

from ._errors import ServerError
from ._resp import (
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
    SimpleString,
    _Incomplete,
    _parse_length,
)

NULL: Final = 0x5F  # _
BOOLEAN: Final = 0x23  # #
DOUBLE: Final = 0x2C  # ,
BIG_NUMBER: Final = 0x28  # (
BLOB_ERROR: Final = 0x21  # !
VERBATIM: Final = 0x3D  # =
MAP: Final = 0x25  # %
SET: Final = 0x7E  # ~
ATTRIBUTE: Final = 0x7C  # |
PUSH: Final = 0x3E  # >

#: Types whose line is a length, then that many bytes of data and CRLF.
_BLOBS: Final = frozenset({BULK, BLOB_ERROR, VERBATIM})
#: Aggregates: their line is an element count (pairs, for maps and attributes).
_AGGREGATES: Final = frozenset({ARRAY, MAP, SET, PUSH, ATTRIBUTE})
#: Line types bounded like a length (a number of at most 20 characters).
_SHORT_LINES: Final = frozenset({INTEGER, NULL, BOOLEAN, DOUBLE} | _BLOBS | _AGGREGATES)
_KNOWN: Final = _SHORT_LINES | {SIMPLE, ERROR, BIG_NUMBER}
_DOUBLE: Final = re.compile(rb"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|-?inf|nan")
_BIG: Final = re.compile(rb"-?[0-9]+")
_SURROGATE: Final = "surrogateescape"


class _Frame:
    """An aggregate being read: its type, the elements still due, those read."""

    __slots__ = ("due", "items", "kind")

    def __init__(self, kind: int, due: int) -> None:
        self.kind = kind
        self.due = due
        self.items: list[Any] = []


class Resp3Parser:
    """Incremental RESP3 parser: feed bytes, take complete replies."""

    __slots__ = ("_buffer", "_position", "_scanned", "_stack", "_top", "decode", "kind",
                 "last_attribute", "mark_simple")

    def __init__(self, decode: bool = True) -> None:
        self._buffer = bytearray()
        self._position = 0
        # Where the search for the pending line's CRLF resumes (no rescans).
        self._scanned = 0
        self._stack: list[_Frame] = []
        self._top = 0
        #: Strings come back as str when true, bytes when false.
        self.decode = decode
        #: Type byte of the last complete top-level reply (``PUSH`` for a push).
        self.kind = 0
        #: The attribute map that came with the last reply that had one.
        self.last_attribute: Reply | dict[Any, Any] = None
        #: Return simple strings as ``SimpleString`` (the CLI tells them apart).
        self.mark_simple = False

    def feed(self, data: bytes) -> None:
        """Add received bytes."""
        if self._position and self._position == len(self._buffer):
            self._buffer.clear()
            self._scanned -= self._position
            self._position = 0
        self._buffer += data

    def has_partial(self) -> bool:
        """True when some bytes of a reply arrived but the reply is not complete."""
        return self._position < len(self._buffer) or bool(self._stack)

    def take_ready(self) -> None:
        """Nothing is read ahead here: replies come one by one from ``next_reply``."""
        return None

    def clear(self) -> None:
        """Drop every received byte not yet taken (the connection is gone)."""
        self._buffer = bytearray()
        self._position = self._scanned = self._top = 0
        self._stack = []

    def _text(self, data: bytes) -> str | bytes:
        return data.decode("utf-8", _SURROGATE) if self.decode else data

    def _compact(self) -> None:
        # Consumed bytes go once they are most of the buffer: amortized O(1).
        position = self._position
        if position > 65536 and position * 2 > len(self._buffer):
            del self._buffer[:position]
            self._scanned = max(self._scanned - position, 0)
            self._position = 0

    def next_reply(self) -> Any:
        """The next complete reply, or ``INCOMPLETE``; raises ``RespError`` on a bad stream."""
        buffer = self._buffer
        stack = self._stack
        while True:
            start = self._position
            if start >= len(buffer):
                return INCOMPLETE
            prefix = buffer[start]
            if prefix not in _KNOWN:
                raise RespError(f"unknown reply type byte 0x{prefix:02x} ({chr(prefix)!r})")
            if not stack:
                self._top = prefix  # the reply's own type (an attribute's is replaced)
            end = buffer.find(b"\r\n", max(start + 1, self._scanned))
            if end < 0:
                pending = len(buffer) - start
                limit = MAX_HEADER_LENGTH if prefix in _SHORT_LINES else MAX_LINE_LENGTH
                if pending > limit + 1:
                    raise RespError(f"no line end within {limit} bytes")
                self._scanned = max(len(buffer) - 1, start + 1)
                return INCOMPLETE
            line = bytes(buffer[start + 1 : end])
            after = end + 2
            value: Any
            if prefix in _BLOBS:
                length = _parse_length(line, "length")
                if length < 0:
                    if length != -1 or prefix != BULK:
                        raise RespError(f"invalid length {line[:40]!r}")
                    value = None
                else:
                    if length > MAX_BULK_LENGTH:
                        raise RespError(f"bulk length {length} over {MAX_BULK_LENGTH}")
                    if len(buffer) < after + length + 2:
                        self._scanned = start + 1  # the header is read again, no more
                        return INCOMPLETE
                    if buffer[after + length : after + length + 2] != b"\r\n":
                        raise RespError("bulk data not followed by CRLF")
                    data = bytes(buffer[after : after + length])
                    after += length + 2
                    value = self._blob(prefix, data)
            elif prefix in _AGGREGATES:
                count = _parse_length(line, "count")
                if count < 0:
                    if count != -1 or prefix != ARRAY:
                        raise RespError(f"invalid count {line[:40]!r}")
                    value = None
                else:
                    if count > MAX_ARRAY_LENGTH:
                        raise RespError(f"aggregate count {count} over {MAX_ARRAY_LENGTH}")
                    due = count * 2 if prefix in (MAP, ATTRIBUTE) else count
                    self._position = self._scanned = after
                    if due:
                        stack.append(_Frame(prefix, due))
                        continue
                    value = self._finish(_Frame(prefix, 0))
                    if prefix == ATTRIBUTE:
                        self.last_attribute = value
                        continue
            else:
                value = self._line(prefix, line)
            self._position = self._scanned = after
            # ``value`` is one complete element: a reply, or part of an aggregate.
            while stack:
                frame = stack[-1]
                frame.items.append(value)
                frame.due -= 1
                if frame.due:
                    break
                stack.pop()
                value = self._finish(frame)
                if frame.kind == ATTRIBUTE:
                    # Not an element: the value it annotates comes next.
                    self.last_attribute = value
                    break
                if frame.kind == PUSH and stack:
                    # Out-of-band data the server wrote in the middle of a reply
                    # (Redis 7.0 does, inside EXEC's array): not an element of
                    # it. It is handed over now; the reply goes on after it.
                    self.kind = PUSH
                    return value
            else:
                self.kind = self._top
                self._compact()
                return value

    def _blob(self, prefix: int, data: bytes) -> Any:
        if prefix == BULK:
            return self._text(data)
        if prefix == BLOB_ERROR:
            return ServerError(data.decode("utf-8", "replace"))
        if len(data) < 4 or data[3:4] != b":":
            raise RespError("verbatim string without its 3-letter format and ':'")
        return self._text(data[4:])

    def _line(self, prefix: int, line: bytes) -> Any:
        if prefix == SIMPLE:
            if self.mark_simple:
                return SimpleString(line.decode("utf-8", _SURROGATE))
            return self._text(line)
        if prefix == INTEGER:
            return _parse_length(line, "integer")
        if prefix == ERROR:
            return ServerError(line.decode("utf-8", "replace"))
        if prefix == NULL:
            if line:
                raise RespError(f"invalid null {line[:40]!r}")
            return None
        if prefix == BOOLEAN:
            if line == b"t":
                return True
            if line == b"f":
                return False
            raise RespError(f"invalid boolean {line[:40]!r}")
        if prefix == DOUBLE:
            if not _DOUBLE.fullmatch(line):
                raise RespError(f"invalid double {line[:40]!r}")
            return float(line)
        # BIG_NUMBER
        if not _BIG.fullmatch(line):
            raise RespError(f"invalid big number {line[:40]!r}")
        try:
            return int(line)
        except ValueError:  # beyond Python's int-from-text limit (4,300 digits)
            return line.decode("ascii")

    def _finish(self, frame: _Frame) -> Any:
        items = frame.items
        kind = frame.kind
        if kind in (ARRAY, PUSH):
            value: Any = items
        elif kind == SET:
            try:
                value = set(items)
            except TypeError:  # a member is itself an aggregate
                value = items
            else:
                if len(value) < len(items):  # 1, true and 1.0 are one in Python
                    value = items
        else:  # MAP, ATTRIBUTE
            pairs = [[key, item] for key, item in zip(items[::2], items[1::2], strict=True)]
            try:
                value = dict(zip(items[::2], items[1::2], strict=True))
            except TypeError:  # a key is itself an aggregate
                value = pairs
            else:
                if len(value) < len(pairs):  # keys distinct on the wire, equal in Python
                    value = pairs
        return value


def is_resp3_kind(kind: int) -> bool:
    """Whether a top-level type byte exists in RESP3 only."""
    return kind not in (SIMPLE, ERROR, INTEGER, BULK, ARRAY)


__all__ = [
    "ATTRIBUTE",
    "BIG_NUMBER",
    "BLOB_ERROR",
    "BOOLEAN",
    "DOUBLE",
    "MAP",
    "NULL",
    "PUSH",
    "SET",
    "VERBATIM",
    "Resp3Parser",
    "_Incomplete",
    "is_resp3_kind",
]
