"""The optional C parser: ``hiredis.Reader`` behind the ``Parser`` interface.

Used, when installed, for replies that callers wait for: their values are the
same as the pure parser's. It cannot tell a simple string from a bulk string,
or a NULL bulk from a NULL array, so ``RedisProtocol`` gives replies that may
reach ``read()`` (pub/sub, MONITOR, replies nobody asked for) to the pure
parser, whose type tags are exact.
"""

from __future__ import annotations

import os
from typing import Any, Final

from ._errors import ServerError
from ._resp import ARRAY, BULK, ERROR, INCOMPLETE, INTEGER, Reply, RespError, _Incomplete

hiredis: Any
try:
    import hiredis
except ImportError:  # the [hiredis] extra is not installed
    hiredis = None

#: ``LEVREDIS_PARSER``: ``auto`` (hiredis when installed), ``python`` or ``hiredis``.
PARSER_ENV: Final = "LEVREDIS_PARSER"


def hiredis_wanted() -> bool:
    """Whether new connections should parse with hiredis."""
    choice = os.environ.get(PARSER_ENV, "auto").strip().lower()
    return hiredis is not None and choice != "python"


# hiredis' protocol error messages, in the pure parser's words.
_MESSAGES: Final = {
    "Bad bulk string length": "invalid bulk length",
    "Bulk string length out of range": "invalid bulk length (out of range)",
    "Multi-bulk length out of range": "invalid array length (out of range)",
    "Bad multi-bulk length": "invalid array length",
    "Bad integer value": "invalid integer",
}


def _translate(error: RespError) -> RespError:
    message = str(error)
    if message.startswith("Protocol error, got ") and "as reply type byte" in message:
        byte = message.split('"')[1] if message.count('"') >= 2 else "?"
        code = ord(byte[0]) if byte else 0
        return RespError(f"unknown reply type byte 0x{code:02x} ({byte[:1]!r})")
    return RespError(_MESSAGES.get(message, message))


class HiredisParser:
    """``hiredis.Reader`` with the same feed/next_reply/kind surface as ``Parser``."""

    __slots__ = ("_decode", "_reader", "kind")

    def __init__(self, decode: bool = True) -> None:
        assert hiredis is not None
        self._reader: Any = hiredis.Reader(
            protocolError=RespError,
            replyError=ServerError,
            encoding="utf-8" if decode else None,
            errors="surrogateescape",
        )
        self._decode = decode
        #: Type byte of the last reply, told from its Python type: strings
        #: count as bulk and NULL as a NULL bulk (see the module docstring).
        self.kind = 0

    @property
    def decode(self) -> bool:
        return self._decode

    @decode.setter
    def decode(self, decode: bool) -> None:
        if decode != self._decode:
            self._decode = decode
            self._reader.set_encoding("utf-8" if decode else None, "surrogateescape")

    def feed(self, data: bytes) -> None:
        self._reader.feed(data)

    def has_partial(self) -> bool:
        return bool(self._reader.has_data())

    def next_reply(self) -> Reply | _Incomplete:
        try:
            value = self._reader.gets()
        except RespError as error:
            raise _translate(error) from None
        if value is False:
            return INCOMPLETE
        kind = type(value)
        if kind is list:
            self.kind = ARRAY
        elif kind is int:
            self.kind = INTEGER
        elif kind is ServerError:
            self.kind = ERROR
        else:
            self.kind = BULK
        return value  # type: ignore[no-any-return]
