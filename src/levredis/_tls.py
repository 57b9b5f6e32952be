"""TLS settings: ``ssl=True``, a caller's ``SSLContext``, or a mapping of files.

The mapping form (``{"ca": ..., "cert": ..., "key": ..., "password": ...,
"verify": ..., "server_hostname": ...}``) is checked and turned into an
``SSLContext`` when the config is parsed, so a missing file or a wrong key
password is a config error before anything is sent. Contexts are shared
between configs with the same files (and the same file versions), so
connections with equal settings share a pool.
"""

from __future__ import annotations

import hashlib
import os
import ssl
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Final

#: The keys of the mapping form.
TLS_KEYS: Final = ("ca", "cert", "key", "password", "verify", "server_hostname")
_MASK: Final = "***"
#: Contexts kept for reuse (by files, their versions, password digest, verify).
_CONTEXT_CACHE_SIZE: Final = 64
_contexts: OrderedDict[tuple[object, ...], ssl.SSLContext] = OrderedDict()
_default_context: ssl.SSLContext | None = None


class TLSSettingError(Exception):
    """What is wrong with an ``ssl`` mapping, and a value safe to show."""

    def __init__(self, what: str, shown: object) -> None:
        super().__init__(what)
        self.what = what
        self.shown = shown


class TLSOptions(Mapping[str, Any]):
    """The ``ssl`` mapping, validated, with the context made from it.

    A read-only mapping of what was given (``client.cfg["ssl"]``); its repr
    masks the key's password.
    """

    __slots__ = ("_values", "context", "server_hostname")

    def __init__(self, values: dict[str, Any], context: ssl.SSLContext) -> None:
        self._values = values
        self.context = context
        #: The name to send (SNI) and to verify, when it is not the host's.
        self.server_hostname: str | None = values.get("server_hostname")

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Any:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        inner = ", ".join(f"{key!r}: {_MASK if key == 'password' else repr(value)}"
                          for key, value in self._values.items())
        return f"{{{inner}}}"

    __str__ = __repr__


def parse_tls(value: Mapping[Any, Any]) -> TLSOptions:
    """Check an ``ssl`` mapping and make its context; raises ``TLSSettingError``."""
    unknown = [key for key in value if key not in TLS_KEYS]
    if unknown:
        raise TLSSettingError(
            f"ssl has no key {unknown[0]!r} (its keys: {', '.join(TLS_KEYS)})",
            _Shown(type(unknown[0]).__name__))
    values: dict[str, Any] = {}
    for name in ("ca", "cert", "key"):
        path = value.get(name)
        if path is None:
            continue
        try:
            text = os.fspath(path) if isinstance(path, (str, os.PathLike)) else None
        except Exception:  # an os.PathLike whose __fspath__ fails or returns no path
            text = None
        if not isinstance(text, str) or not text:
            raise TLSSettingError(f"ssl {name} must be a file path (str or pathlib.Path)",
                                  _Shown(type(path).__name__))
        if not os.path.isfile(text):
            what = "is a directory, not a file" if os.path.isdir(text) else "no such file"
            raise TLSSettingError(f"ssl {name}: {what}", text)
        # Absolute: "client.pem" from two working directories is two files.
        values[name] = os.path.abspath(text)
    password = value.get("password")
    if password is not None:
        if not isinstance(password, str):
            raise TLSSettingError("ssl password must be a str", _Shown(type(password).__name__))
        try:
            encoded = password.encode("utf-8")
        except UnicodeEncodeError:
            raise TLSSettingError("ssl password cannot be sent as UTF-8 (a lone surrogate)",
                                  _Shown(_MASK)) from None
        if len(encoded) > 1023:  # OpenSSL's own limit for a key's pass phrase
            raise TLSSettingError("ssl password is longer than 1023 bytes", _Shown(_MASK))
        if "cert" not in values:
            raise TLSSettingError("ssl password is the client key's: give cert (and key) too",
                                  _Shown(_MASK))
        values["password"] = password
    if "key" in values and "cert" not in values:
        raise TLSSettingError("ssl key needs its cert", values["key"])
    verify = value.get("verify", True)
    if not isinstance(verify, bool):
        raise TLSSettingError("ssl verify must be a bool", verify)
    values["verify"] = verify
    hostname = value.get("server_hostname")
    if hostname is not None:
        if not isinstance(hostname, str) or not hostname:
            raise TLSSettingError("ssl server_hostname must be a non-empty str", hostname)
        values["server_hostname"] = hostname
    return TLSOptions(values, _context(values))


def _context(values: dict[str, Any]) -> ssl.SSLContext:
    files = tuple((values.get(name), _version(values.get(name))) for name in ("ca", "cert", "key"))
    secret = values.get("password")
    digest = hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest() \
        if secret is not None else None
    cache_key = (*files, digest, values["verify"])
    context = _contexts.get(cache_key)
    if context is not None:
        _contexts.move_to_end(cache_key)
        return context
    asked: list[bool] = []

    def no_password() -> bytes:
        # Without a password callback OpenSSL would prompt on the terminal
        # and block the event loop: an encrypted key without one fails now.
        asked.append(True)
        return b""

    try:
        context = ssl.create_default_context(cafile=values.get("ca"))
        if not values["verify"]:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if "cert" in values:
            context.load_cert_chain(values["cert"], values.get("key"),
                                    secret if secret is not None else no_password)
    except (ssl.SSLError, OSError, ValueError) as exc:
        # The reason names the problem (bad decrypt, key mismatch, no PEM),
        # never the password.
        if asked:
            raise TLSSettingError("ssl key is encrypted: give its password",
                                  _Shown(values.get("key") or values["cert"])) from None
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) \
            or type(exc).__name__
        if secret is not None and reason in ("PEM lib", "BAD_DECRYPT", "bad decrypt"):
            reason = f"{reason} (a wrong password for the key?)"
        raise TLSSettingError(f"ssl files could not be loaded: {reason}",
                              _Shown(", ".join(f"{name}={values[name]}" for name in
                                               ("ca", "cert", "key") if name in values))) from None
    _contexts[cache_key] = context
    while len(_contexts) > _CONTEXT_CACHE_SIZE:
        _contexts.popitem(last=False)
    return context


def _version(path: str | None) -> tuple[int, int] | None:
    """A file's version, so a renewed certificate makes a new context (and pool)."""
    if path is None:
        return None
    try:
        stat = os.stat(path)
    except OSError:
        return None  # loading it says what is wrong
    return stat.st_mtime_ns, stat.st_size


def tls_for(ssl_setting: object, host: str) -> tuple[ssl.SSLContext | None, str | None]:
    """The context and the server name to verify for a config's ``ssl``.

    ``ssl=True`` verifies the certificate chain against the system trust
    store and the host name, like every trusted client; there is no silent
    fallback.
    """
    global _default_context
    if ssl_setting is False:
        return None, None
    if isinstance(ssl_setting, ssl.SSLContext):
        return ssl_setting, host
    if isinstance(ssl_setting, TLSOptions):
        return ssl_setting.context, ssl_setting.server_hostname or host
    if _default_context is None:
        _default_context = ssl.create_default_context()
    return _default_context, host


class _Shown:
    """Shows a description instead of a value in an error."""

    def __init__(self, text: str) -> None:
        self._text = text

    def __repr__(self) -> str:
        return f"<{self._text}>"
