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

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final, Union, cast

from ._errors import ServerError

if TYPE_CHECKING:
    from ._speedups import Gather

_CompiledParse = Callable[[bytes, int, bool, type, int], tuple[list[Any], bytes, int, int]]
_CompiledEncode = Callable[[Sequence[Any]], Union[bytes, None]]  # noqa: UP007
_compiled_parse: _CompiledParse | None
compiled_encode: _CompiledEncode | None
compiled_encode_many: Callable[[Sequence[Any]], tuple[bytes, list[tuple[Any, ...]]] | None] | None
_compiled_gather: type[Gather] | None
try:
    from . import _speedups
except ImportError:  # built without a C compiler: pure Python does it all
    _compiled_parse = compiled_encode = compiled_encode_many = _compiled_gather = None
    NEED_MORE = 1
else:
    _compiled_gather = _speedups.Gather
    _compiled_parse = _speedups.parse
    compiled_encode = _speedups.encode
    compiled_encode_many = _speedups.encode_many
    NEED_MORE = _speedups.NEED_MORE

#: ``LEVREDIS_SPEEDUPS=0`` parses and encodes with pure Python alone (the
#: parser is chosen per connection, the encoder when levredis is imported).
SPEEDUPS_ENV: Final = "LEVREDIS_SPEEDUPS"


def speedups_turned_off() -> bool:
    """``LEVREDIS_SPEEDUPS=0`` is set (read now: the parser asks per connection)."""
    return os.environ.get(SPEEDUPS_ENV, "1").strip() == "0"


if speedups_turned_off():
    compiled_encode = compiled_encode_many = None

#: A decoded reply: ``str`` (or ``bytes`` with ``decode=False``), ``int``, a
#: nested ``list``, ``None`` for NULL, or a ``ServerError`` (a ``str``) inside
#: arrays; with RESP3 also ``bool``, ``float``, ``dict`` and ``set``.
Reply = Union[  # noqa: UP007 (a runtime alias)
    str, bytes, int, float, list["Reply"], dict[Any, "Reply"], set[Any], None]

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
#: A length or integer line longer than this without CRLF is a corrupt stream
#: (a signed 64-bit integer has at most 20 characters).
MAX_HEADER_LENGTH: Final = 64
#: Simple strings and errors have no announced length; Redis can send long
#: ones (from Lua, say). Their bound is the bulk string's.
MAX_LINE_LENGTH: Final = MAX_BULK_LENGTH

_SURROGATE: Final = "surrogateescape"


class SimpleString(str):
    """A simple-string reply (``+OK``), for callers that ask to tell it from a bulk one."""

    __slots__ = ()


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

_BULK_HEADERS: Final = tuple(b"$%d" % n for n in range(512))
_ARRAY_HEADERS: Final = tuple(b"*%d" % n for n in range(64))


def argument_bytes(arg: object) -> bytes:
    """One command argument as the bytes sent on the wire; raises ``ArgumentError``.

    The one conversion every layer uses: the encoder, the session state
    machine (command names, SELECT's db) and the cluster's key hashing.
    ``str`` is UTF-8 (``surrogateescape``, so a value read back and sent
    again is byte-identical), ``int`` and ``float`` their decimal text,
    bytes-like objects as they are. A subclass is sent as its base type's
    value: its overrides (``encode``, ``__bytes__``, ``__index__``,
    ``__repr__``, ``__class__`` ...) are not consulted, so they can neither
    raise out of here nor change the bytes. The value itself is never put in
    a message: it may be a secret.
    """
    kind = type(arg)  # (not arg.__class__, which an object may fake)
    try:
        if kind is str:
            return arg.encode("utf-8", _SURROGATE)  # type: ignore[attr-defined, no-any-return]
        if kind is bytes:
            return arg  # type: ignore[return-value]
        if kind is bool or arg is None:
            # True/None are almost always a bug; sending "True" or "None"
            # would silently store the wrong data.
            raise ArgumentError(
                f"is {arg!r}: send str, bytes, int or float "
                "(write 1/0 or 'true'/'false' explicitly)"
            )
        if issubclass(kind, str):
            return str.encode(cast(str, arg), "utf-8", _SURROGATE)
        if issubclass(kind, bytes):
            return bytes.__getitem__(cast(bytes, arg), slice(None))
        if issubclass(kind, bytearray):
            return bytes(bytearray.__getitem__(cast(bytearray, arg), slice(None)))
        if kind is memoryview:
            return arg.tobytes()  # type: ignore[attr-defined, no-any-return]
        if issubclass(kind, int):
            return b"%d" % int.__index__(cast(int, arg))
        if issubclass(kind, float):
            return float.__repr__(cast(float, arg)).encode("ascii")
    except ArgumentError:
        raise
    except UnicodeEncodeError as exc:
        raise ArgumentError(
            f"is a str that cannot be encoded as UTF-8 (a lone surrogate at "
            f"position {exc.start}, often from json.loads of broken input)"
        ) from None
    except ValueError:
        if issubclass(kind, int):
            raise ArgumentError("is an int with too many digits to send") from None
        raise ArgumentError("is a released memoryview") from None
    except Exception as exc:  # not reached by any type we know: still a value, not a raise
        raise ArgumentError(
            f"has type {type_name(kind)}, whose conversion failed ({type_name(type(exc))})"
        ) from None
    raise ArgumentError(f"has type {type_name(kind)}: send str, bytes, int or float")


def type_name(kind: type) -> str:
    """A type's own name, for messages (a metaclass may make ``__name__`` raise)."""
    try:
        return str(type.__dict__["__name__"].__get__(kind))
    except Exception:
        return "?"


def frozen(args: Sequence[object]) -> tuple[object, ...]:
    """The arguments as a tuple, mutable buffers (``bytearray``, ``memoryview``)
    copied to ``bytes``: a snapshot that the caller's later changes cannot reach,
    so what is planned from it is what was encoded from it. Raises
    ``ArgumentError`` (naming the position) for a buffer that cannot be read.
    """
    taken = tuple(args)
    if not any(issubclass(type(arg), (bytearray, memoryview)) for arg in taken):
        return taken
    copies = list(taken)
    for position, arg in enumerate(taken, 1):
        if issubclass(type(arg), (bytearray, memoryview)):
            try:
                copies[position - 1] = argument_bytes(arg)
            except ArgumentError as exc:
                raise ArgumentError(f"argument {position} {exc}") from None
    return tuple(copies)


def command_name(arg: object) -> str:
    """A command or subcommand name as upper-case text ("" when it is no name at all)."""
    try:
        return argument_bytes(arg).decode("utf-8", "replace").upper()
    except ArgumentError:
        return ""


def encode_command(args: Sequence[object]) -> bytes:
    """Encode one command as a RESP array of bulk strings.

    Each argument is converted by ``argument_bytes``; a bad one raises
    ``ArgumentError`` naming its position. The compiled encoder takes the
    common arguments (ASCII ``str``, ``bytes``, 64-bit ``int``); for any
    other it declines and ``encode_command_pure`` does the whole command.

    >>> encode_command(["GET", "k"])
    b'*2\\r\\n$3\\r\\nGET\\r\\n$1\\r\\nk\\r\\n'
    """
    if compiled_encode is not None:
        data = compiled_encode(args)
        if data is not None:
            return data
    return encode_command_pure(args)


def encode_command_pure(args: Sequence[object]) -> bytes:
    """``encode_command`` in Python alone: every argument type, every error."""
    count = len(args)
    if count == 0:
        raise ArgumentError("no command given")
    # Every piece of a command is followed by CRLF: join them with it.
    parts = [_ARRAY_HEADERS[count] if count < 64 else b"*%d" % count]
    append = parts.append
    position = 0
    try:
        for position, arg in enumerate(args, 1):  # noqa: B007 (named in the error)
            # Exact type checks first: the common cases, without isinstance chains.
            if type(arg) is str:
                data = arg.encode("utf-8", _SURROGATE)
            elif type(arg) is bytes:
                data = arg
            elif type(arg) is int:
                data = b"%d" % arg
            else:
                data = argument_bytes(arg)
            size = len(data)
            append(_BULK_HEADERS[size] if size < 512 else b"$%d" % size)
            append(data)
    except (ArgumentError, UnicodeEncodeError, ValueError):
        try:
            argument_bytes(args[position - 1])
        except ArgumentError as exc:
            raise ArgumentError(f"argument {position} {exc}") from None
        raise  # not reached: the slow path refuses what the fast one did
    append(b"")
    return b"\r\n".join(parts)


def _parse_length(text: bytes, what: str) -> int:
    """A decimal integer as Redis writes it: an optional minus, then digits.

    ``int()`` alone would also take spaces, ``+`` and ``_``, which no server
    sends; a reply is either exactly well-formed or refused.
    """
    digits = text[1:] if text[:1] == b"-" else text
    if not digits.isdigit() or len(digits) > 19:  # bytes.isdigit is ASCII only
        raise RespError(f"invalid {what} {bytes(text[:40])!r}")
    value = int(text)
    if not -(2**63) <= value < 2**63:
        raise RespError(f"invalid {what} {bytes(text[:40])!r} (out of 64-bit range)")
    return value


#: Header line → length, for the bulk strings almost every reply is made of.
_BULK_LENGTHS: Final = {b"$%d" % n: n for n in range(1024)}
_ARRAY_LENGTHS: Final = {b"*%d" % n: n for n in range(1024)}
#: A bulk string longer than this that is still arriving is gathered into one
#: buffer, instead of being split into lines and joined again.
BIG_BULK: Final = 256 * 1024
_NEED_MORE: Final = _Incomplete()


class Pieces:
    """A large bulk string's data and CRLF, gathered as the received pieces.

    The pure twin of ``_speedups.Gather`` (which copies the pieces into the
    value's own bytes object as they come, so the value is never held twice):
    ``add`` keeps what belongs to the value, ``finish`` joins once. Nothing
    is reserved for an announced length.
    """

    __slots__ = ("_pieces", "need")

    def __init__(self, total: int) -> None:
        self._pieces: list[bytes] = []
        #: Bytes still due, the CRLF included.
        self.need = total

    def add(self, piece: bytes) -> int:
        """Keep the start of ``piece`` that belongs to the value; how many bytes that is."""
        need = self.need
        if len(piece) <= need:
            self._pieces.append(piece)
            self.need = need - len(piece)
            return len(piece)
        self._pieces.append(piece[:need])
        self.need = 0
        return need

    def finish(self) -> bytes | None:
        """The value, or None when it is not followed by CRLF."""
        pieces = self._pieces
        # Drop the CRLF (it may straddle the last two pieces), then join once.
        ending = b""
        while len(ending) < 2:
            last = pieces.pop()
            cut = len(last) - (2 - len(ending))
            ending = last[max(cut, 0) :] + ending
            if cut > 0:
                pieces.append(last[:cut])
        data = b"".join(pieces) if ending == b"\r\n" else None
        pieces.clear()
        return data


def check_pending_line(line: bytes, size: int) -> None:
    """Refuse the start of a line (``size`` bytes so far) that can no longer become valid."""
    prefix = line[0]
    if prefix in _HEADER_PREFIXES:
        if size > MAX_HEADER_LENGTH:
            raise RespError(f"no line end within {MAX_HEADER_LENGTH} bytes of a length")
    elif prefix in (SIMPLE, ERROR):
        if size > MAX_LINE_LENGTH:
            raise RespError(f"no line end within {MAX_LINE_LENGTH} bytes")
    else:
        raise RespError(f"unknown reply type byte 0x{prefix:02x} ({chr(prefix)!r})")


_HEADER_PREFIXES: Final = frozenset({BULK, ARRAY, INTEGER})


class Parser:
    """Incremental RESP2 parser: feed bytes, take complete replies.

    Received bytes are split into CRLF-terminated lines once, in C
    (``bytes.split``); replies are then read line by line. A flat array of bulk
    strings, the most common large reply, is checked and decoded with ``map``
    over slices, without a Python-level step per element. Arrays are parsed
    with an explicit stack, not recursion, so any nesting depth is safe and a
    half-received array is resumed where it stopped.
    """

    __slots__ = ("_lines", "_index", "_tail", "_tail_more", "_tail_size", "_stack", "_big",
                 "decode", "kind", "mark_simple")

    #: What gathers a large bulk string (the compiled parser's: ``Gather``).
    _gatherer: type[Pieces] | type[Gather] = Pieces

    def __init__(self, decode: bool = True) -> None:
        self._lines: list[bytes] = []
        self._index = 0
        # Bytes after the last CRLF: the start of a line still arriving.
        self._tail = b""
        # Pieces received after ``_tail`` with no LF among them (the line
        # cannot have ended), and the pending line's whole size.
        self._tail_more: list[bytes] = []
        self._tail_size = 0
        # Each open array: (announced count, items so far).
        self._stack: list[tuple[int, list[Reply]]] = []
        # A large bulk string being gathered (its data plus CRLF): ``Pieces``
        # keeps the received pieces, the compiled ``Gather`` copies them into
        # the value as they come. An announced length reserves nothing by itself.
        self._big: Pieces | Gather | None = None
        #: Simple and bulk strings come back as str when true, bytes when false.
        self.decode = decode
        #: Type byte of the last complete top-level reply (``SIMPLE``, ``ARRAY`` ...).
        self.kind = 0
        #: Return simple strings, at any depth, as ``SimpleString`` (the CLI's
        #: redis-cli-style output needs to tell them from bulk strings).
        self.mark_simple = False

    def feed(self, data: bytes) -> None:
        """Add received bytes."""
        big = self._big
        if big is not None:
            taken = big.add(data)
            if taken == len(data):
                return
            data = data[taken:]
        tail = self._tail
        if tail:
            if b"\n" not in data:
                # The pending line still cannot end: keep the piece, instead of
                # joining and splitting a long line again on every chunk.
                self._tail_more.append(data)
                self._tail_size += len(data)
                return
            data = b"".join([tail, *self._tail_more, data]) if self._tail_more else tail + data
            self._tail_more.clear()
        lines = data.split(b"\r\n")
        self._tail = lines.pop()
        self._tail_size = len(self._tail)
        if lines:
            if self._index:
                del self._lines[: self._index]
                self._index = 0
            self._lines += lines

    def clear(self) -> None:
        """Drop every received byte not yet taken (the connection is gone): a
        large value cut off mid-way is not kept for as long as its client is."""
        self._lines = []
        self._index = 0
        self._tail = b""
        self._tail_more = []
        self._tail_size = 0
        self._stack = []
        self._big = None

    def take_ready(self) -> tuple[list[Reply], bytes] | None:
        """Complete replies read ahead in one go, and their type bytes; or None.

        Only the compiled parser reads ahead (``AcceleratedParser``); these
        come before anything ``next_reply`` gives after them.
        """
        return None

    def has_partial(self) -> bool:
        """True when some bytes of a reply arrived but the reply is not complete."""
        return (
            self._index < len(self._lines)
            or bool(self._tail)
            or bool(self._stack)
            or self._big is not None
        )

    def _decoded(self, data: bytes) -> str | bytes:
        return data.decode("utf-8", _SURROGATE) if self.decode else data

    def _whole_tail(self) -> bytes:
        """The bytes after the last CRLF, as one piece."""
        if self._tail_more:
            self._tail = b"".join([self._tail, *self._tail_more])
            self._tail_more.clear()
        return self._tail

    def _gather_big(self, header: int, length: int) -> None:
        """Move a large, incomplete bulk string's data into a buffer of its own.

        Lines up to its header are consumed already (their values are on the
        stack), so none is kept.
        """
        rest = b"\r\n".join([*self._lines[header + 1 :], self._whole_tail()])
        self._lines.clear()
        self._index = 0
        self._tail = b""
        self._tail_size = 0
        self._big = self._gatherer(length + 2)
        self.feed(rest)

    def _finish_big(self) -> str | bytes:
        big = self._big
        assert big is not None
        self._big = None
        data = big.finish()  # (its pieces are gone before the decoded copy is made)
        if data is None:
            raise RespError("bulk string not followed by CRLF")
        return data.decode("utf-8", _SURROGATE) if self.decode else data

    def _bulk_spanning_lines(self, index: int, length: int) -> tuple[bytes, int] | None:
        """A bulk string whose data contains CRLF: (data, next index), or None if incomplete."""
        lines = self._lines
        parts = [lines[index + 1]]
        total = len(parts[0])
        position = index + 1
        while total < length:
            position += 1
            if position >= len(lines):
                return None
            parts.append(lines[position])
            total += 2 + len(lines[position])
        if total != length:
            raise RespError("bulk string not followed by CRLF")
        return b"\r\n".join(parts), position + 1

    def next_reply(self) -> Reply | _Incomplete:
        """The next complete reply, or ``INCOMPLETE``; raises ``RespError``.

        A Redis error reply comes back as a ``ServerError`` value (at the top
        level and inside arrays alike); NULL bulk strings and arrays as ``None``.
        ``self.kind`` tells the top-level type.
        """
        stack = self._stack
        value: Reply | _Incomplete
        if self._big is not None:
            if self._big.need:
                return INCOMPLETE
            value = self._finish_big()
            prefix = BULK
        else:
            value = _NEED_MORE
            prefix = 0
        lines = self._lines
        index = self._index
        decode = self.decode
        while True:
            if value is _NEED_MORE:
                if index >= len(lines):
                    self._index = index
                    if self._tail:
                        check_pending_line(self._tail, self._tail_size)
                    return INCOMPLETE
                line = lines[index]
                if not line:
                    raise RespError("empty line where a reply was expected")
                prefix = line[0]
                if prefix == BULK:
                    length = _BULK_LENGTHS.get(line)
                    if length is None:
                        length = _parse_length(line[1:], "bulk length")
                        if length == -1:
                            value = None
                            index += 1
                        elif length < 0:
                            raise RespError(f"invalid bulk length {length}")
                        elif length > MAX_BULK_LENGTH:
                            raise RespError(f"bulk length {length} exceeds the 512 MB limit")
                    if value is _NEED_MORE:
                        if index + 1 >= len(lines):
                            tail = self._whole_tail()
                            if len(tail) > length + 1 or (
                                len(tail) == length + 1 and tail[-1] != 13
                            ):
                                raise RespError("bulk string not followed by CRLF")
                            if length > BIG_BULK:
                                self._gather_big(index, length)
                                return INCOMPLETE
                            self._index = index
                            return INCOMPLETE
                        data = lines[index + 1]
                        if len(data) == length:
                            value = data.decode("utf-8", _SURROGATE) if decode else data
                            index += 2
                        elif len(data) > length:
                            raise RespError("bulk string not followed by CRLF")
                        else:
                            spanned = self._bulk_spanning_lines(index, length)
                            if spanned is None:
                                if length > BIG_BULK:
                                    self._gather_big(index, length)
                                    return INCOMPLETE
                                self._index = index
                                return INCOMPLETE
                            data, index = spanned
                            value = self._decoded(data)
                elif prefix == ARRAY:
                    count = _ARRAY_LENGTHS.get(line)
                    if count is None:
                        count = _parse_length(line[1:], "array length")
                        if count > MAX_ARRAY_LENGTH:
                            raise RespError(f"array length {count} is out of range")
                        if count < -1:
                            raise RespError(f"invalid array length {count}")
                    index += 1
                    if count > 0:
                        end = index + 2 * count
                        if end <= len(lines):
                            # A flat array of bulk strings, all here: check every
                            # header against its data's length, then decode, in C.
                            heads = lines[index:end:2]
                            datas = lines[index + 1 : end : 2]
                            if list(map(_BULK_LENGTHS.get, heads)) == list(map(len, datas)):
                                # No element holds CRLF (each is exactly one line),
                                # and UTF-8 never folds an ASCII byte into another
                                # character: decoding them joined, then splitting,
                                # gives each one's text, in one decode.
                                value = (
                                    cast("list[Reply]", b"\r\n".join(datas)
                                         .decode("utf-8", _SURROGATE).split("\r\n"))
                                    if decode
                                    else cast("list[Reply]", datas)
                                )
                                index = end
                        if value is _NEED_MORE:
                            stack.append((count, []))
                            continue
                    else:
                        value = [] if count == 0 else None
                elif prefix == INTEGER:
                    value = _parse_length(line[1:], "integer")
                    index += 1
                elif prefix == SIMPLE:
                    if self.mark_simple:
                        value = SimpleString(line[1:].decode("utf-8", _SURROGATE))
                    else:
                        value = line[1:].decode("utf-8", _SURROGATE) if decode else line[1:]
                    index += 1
                elif prefix == ERROR:
                    value = ServerError(line[1:].decode("utf-8", _SURROGATE))
                    index += 1
                else:
                    raise RespError(f"unknown reply type byte 0x{prefix:02x} ({chr(prefix)!r})")
            # ``value`` is one complete element: the reply, or part of an array.
            if not stack:
                self.kind = prefix
                self._index = index
                return value
            while True:
                length, items = stack[-1]
                items.append(value)  # type: ignore[arg-type]  # a complete element here
                if len(items) < length:
                    value = _NEED_MORE
                    break
                stack.pop()
                value = items
                if not stack:
                    self.kind = ARRAY
                    self._index = index
                    return value



#: A partial reply the compiled parser keeps (and reads again from its start
#: when more bytes come) up to this size, and for at most RETRIES reads; past
#: either, the incremental pure parser takes over. So no reply is read again
#: more than RETRIES times, even one trickling in byte by byte.
HANDOFF: Final = 256 * 1024
RETRIES: Final = 8


class AcceleratedParser(Parser):
    """``Parser`` with the compiled fast path for whole replies.

    The compiled parser (``_speedups.c``) only ever starts at a reply
    boundary: when the pure parser holds nothing. It reads the complete
    replies, checking exactly what the pure parser checks, and stops before
    anything it would refuse or leaves to the pure parser (deep nesting, a
    large bulk string still arriving); from there on the pure parser reads,
    until it holds nothing again. So the hand-over is exact by construction,
    and a broken stream gets the pure parser's own error.
    """

    __slots__ = ("_at", "_kinds", "_pending", "_pure", "_tries", "_values")

    _gatherer = _compiled_gather or Pieces

    def __init__(self, decode: bool = True) -> None:
        super().__init__(decode)
        # Complete replies the compiled parser read, not yet taken: _values[_at:],
        # and their type bytes.
        self._values: list[Reply] = []
        self._kinds = b""
        self._at = 0
        # The start of a reply the compiled parser will read again, whole, and
        # how many reads it has been tried on.
        self._pending = b""
        self._tries = 0
        # False only while the pure parser holds nothing (then it need not be asked).
        self._pure = False

    def feed(self, data: bytes) -> None:
        pending = self._pending
        if pending:
            data = pending + data
            self._pending = b""
        if self.mark_simple or self._pure:
            self._pure = True
            Parser.feed(self, data)
            return
        assert _compiled_parse is not None
        values, kinds, end, status = _compiled_parse(data, 0, self.decode, ServerError, BIG_BULK)
        if values:
            at = self._at
            if at < len(self._values):  # some not taken yet: they come first
                self._values = self._values[at:] + values
                self._kinds = self._kinds[at:] + kinds
            else:
                self._values, self._kinds = values, kinds
            self._at = 0
        rest = len(data) - end
        if rest and status == NEED_MORE and rest <= HANDOFF:
            # The same reply again (nothing completed before it), or a new one.
            tries = self._tries + 1 if pending and end == 0 else 1
            if tries <= RETRIES:
                self._pending = data[end:]
                self._tries = tries
                return
        self._tries = 0
        if rest:
            self._pure = True
            if not self._gather_top_level(data, end):
                Parser.feed(self, data[end:])

    def _gather_top_level(self, data: bytes, start: int) -> bool:
        """A large bulk string at the top level, still arriving: straight into its
        gatherer, without splitting its first piece into lines and joining them
        again. False (nothing done) for anything else the compiled parser left."""
        if data[start:start + 1] != b"$":
            return False
        header_end = data.find(b"\r\n", start, start + MAX_HEADER_LENGTH + 2)
        if header_end < 0:
            return False
        try:
            length = _parse_length(data[start + 1:header_end], "bulk length")
        except RespError:
            return False  # the pure parser names it
        body = header_end + 2
        if not BIG_BULK < length <= MAX_BULK_LENGTH or len(data) - body >= length + 2:
            return False
        big = self._big = self._gatherer(length + 2)
        if isinstance(big, Pieces):
            big.add(data[body:])
        else:  # the compiled one copies from a view: no slice made first
            big.add(memoryview(data)[body:])
        return True

    def has_partial(self) -> bool:
        return (bool(self._pending) or self._at < len(self._values)
                or Parser.has_partial(self))

    def clear(self) -> None:
        Parser.clear(self)
        self._values = []
        self._kinds = self._pending = b""
        self._at = self._tries = 0
        self._pure = False

    def next_reply(self) -> Reply | _Incomplete:
        at = self._at
        values = self._values
        if at < len(values):
            self.kind = self._kinds[at]
            if at + 1 == len(values):
                self._values = []  # no reference kept to what was handed out
                self._at = 0
            else:
                self._at = at + 1
            return values[at]
        if not self._pure:
            return INCOMPLETE
        reply = Parser.next_reply(self)
        if reply is INCOMPLETE and not Parser.has_partial(self):
            self._pure = False  # drained: the compiled parser takes the next bytes
        return reply

    def take_ready(self) -> tuple[list[Reply], bytes] | None:
        at = self._at
        values = self._values
        if at >= len(values):
            return None
        kinds = self._kinds
        self._values = []
        self._at = 0
        if at:
            return values[at:], kinds[at:]
        return values, kinds


def speedups_available() -> bool:
    """Whether the compiled parser is built and not turned off (``LEVREDIS_SPEEDUPS=0``)."""
    return _compiled_parse is not None and not speedups_turned_off()


def new_parser(decode: bool = True) -> Parser:
    """The parser for a new connection: compiled fast path when available."""
    return AcceleratedParser(decode) if speedups_available() else Parser(decode)
