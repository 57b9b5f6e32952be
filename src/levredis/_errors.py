"""Error kinds, and the one place where exceptions become error values.

Every error levredis hands back is a ``str`` (so ``err == "not found"`` and
``print(err)`` just work) of a small subclass that tells its kind apart::

    value, err = await client.cmd("GET", "k")
    if isinstance(err, levredis.NetworkError):
        ...  # retry later
"""

from __future__ import annotations

import socket
import ssl


class Error(str):
    """Base of every error value levredis returns.

    Its repr is the plain string's, so ``(None, 'not found')`` prints as the
    contract reads; ``type(err).__name__`` names the kind.
    """

    __slots__ = ()


class ConfigError(Error):
    """The config given to ``connect()`` is invalid; nothing was opened."""

    __slots__ = ()


class UsageError(Error):
    """A call was refused before anything was sent (bad argument, wrong state)."""

    __slots__ = ()


class ServerError(Error):
    """Redis answered with an error reply, e.g. ``WRONGTYPE Operation ...``."""

    __slots__ = ()

    def __new__(cls, text: str | bytes = "") -> ServerError:
        # The C parser hands error lines over as bytes when decoding is off.
        if isinstance(text, bytes):
            text = text.decode("utf-8", "surrogateescape")
        return super().__new__(cls, text)

    @property
    def code(self) -> str:
        """The error's first word: ``"ERR"``, ``"WRONGTYPE"``, ``"NOAUTH"`` ..."""
        return self.split(" ", 1)[0]


class NotFound(Error):
    """A NULL reply: the key (or value) does not exist."""

    __slots__ = ()


class NetworkError(Error):
    """The connection failed or was lost; it is closed and never pooled."""

    __slots__ = ()


class Timeout(NetworkError):
    """No reply within the configured ``timeout``."""

    __slots__ = ()


class TLSError(NetworkError):
    """The TLS handshake failed (untrusted certificate, wrong host name ...)."""

    __slots__ = ()


class ProtocolError(NetworkError):
    """The server sent bytes that are not valid RESP; the connection is closed."""

    __slots__ = ()


class ClosedError(Error):
    """The client was closed by its owner."""

    __slots__ = ()


NOT_FOUND = NotFound("not found")
CLOSED = ClosedError("closed")
TIMEOUT = Timeout("timeout")
CONNECTION_CLOSED = NetworkError("connection closed by server")


def error_from_exception(exc: BaseException | None) -> Error:
    """Map an exception raised by the network stack to an error value.

    This is the only place that knows which exception means what; every layer
    that catches one hands it here. The messages never contain arguments a
    caller passed, so no secret can leak through them.
    """
    if exc is None:
        return CONNECTION_CLOSED
    if isinstance(exc, Error):
        return exc
    if isinstance(exc, TimeoutError):
        return TIMEOUT
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = exc.verify_message or exc.reason or "certificate verify failed"
        return TLSError(f"TLS certificate verification failed: {reason}")
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or exc.strerror or type(exc).__name__
        return TLSError(f"TLS error: {reason}")
    if isinstance(exc, ConnectionRefusedError):
        return NetworkError("connection refused")
    if isinstance(exc, ConnectionResetError):
        return NetworkError("connection reset by peer")
    if isinstance(exc, BrokenPipeError):
        return NetworkError("connection closed by server (broken pipe)")
    if isinstance(exc, socket.gaierror):
        return NetworkError(f"cannot resolve host: {exc.strerror}")
    if isinstance(exc, OSError):
        return NetworkError(exc.strerror or str(exc) or type(exc).__name__)
    return NetworkError(f"{type(exc).__name__}: {exc}")
