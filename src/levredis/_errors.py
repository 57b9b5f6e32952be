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


# What the server's TLS alerts mean for the person reading the error.
_NEEDS_CERT = ("the server requires a client certificate: give "
               "ssl={'cert': ..., 'key': ...} (tls-auth-clients yes)")
_REFUSED_CERT = ("the server refused the client certificate: is it issued by a CA in the "
                 "server's tls-ca-cert-file, and still valid?")
_TLS_ALERTS = {
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": _NEEDS_CERT,
    "SSLV3_ALERT_HANDSHAKE_FAILURE": _NEEDS_CERT + ", or no TLS version or cipher is shared",
    "TLSV1_ALERT_UNKNOWN_CA": _REFUSED_CERT,
    "SSLV3_ALERT_BAD_CERTIFICATE": _REFUSED_CERT,
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": _REFUSED_CERT,
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": _REFUSED_CERT,
    "TLSV1_ALERT_DECRYPT_ERROR": _REFUSED_CERT,
}
#: A TLS connection the server closed before answering its first command.
CLOSED_AFTER_TLS_HANDSHAKE = (
    "right after the TLS handshake, before answering: if the server requires client "
    "certificates (tls-auth-clients yes), give ssl={'cert': ..., 'key': ...} with a "
    "certificate from a CA it trusts")

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
        hint = _TLS_ALERTS.get(reason)
        return TLSError(f"TLS error: {reason}" + (f": {hint}" if hint else ""))
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
