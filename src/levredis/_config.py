"""Parse and validate a connect() config into a frozen ``Config``.

Three forms are accepted: ``None`` (``127.0.0.1:6379``), a string
(``"host:port"``, ``"host:port/db"``, ``"[::1]:6379/2"``, or a
``redis://`` / ``rediss://`` URL), and a mapping. Every failure is a
``ConfigError`` reading ``invalid redis config: <what> (got <value>)``; a
password is never part of it.
"""

from __future__ import annotations

import ipaddress
import math
import ssl
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import SplitResult, parse_qsl, unquote, urlsplit

from ._cache import CacheSettings
from ._errors import ConfigError
from ._tls import TLSOptions, TLSSettingError, parse_tls

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 6379
_KNOWN_KEYS: Final = frozenset(
    {"host", "port", "db", "timeout", "ssl", "auth", "decode", "max_connections",
     "max_pushes", "max_push_bytes", "path", "protocol", "cache"})
_MASK: Final = "***"
# Keys other Python clients use: ignoring them would silently connect without
# the credentials, timeout or decoding the caller meant.
_FOREIGN_KEYS: Final = {
    "password": 'auth={"user": ..., "pass": ...}',
    "username": 'auth={"user": ..., "pass": ...}',
    "socket_timeout": "timeout",
    "socket_connect_timeout": "timeout",
    "decode_responses": "decode",
}
# Extra keys whose values are masked in every repr.
_SECRET_WORDS: Final = ("pass", "secret", "token", "credential", "auth", "key")


class Auth(Mapping[str, str]):
    """Read-only ``{"user": ..., "pass": ...}`` whose repr hides the password."""

    __slots__ = ("_password", "_user")

    def __init__(self, user: str, password: str) -> None:
        self._user = user
        self._password = password

    def __getitem__(self, key: str) -> str:
        if key == "user":
            return self._user
        if key == "pass":
            return self._password
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(("user", "pass"))

    def __len__(self) -> int:
        return 2

    def __repr__(self) -> str:
        return f"{{'user': {self._user!r}, 'pass': '{_MASK}'}}"

    __str__ = __repr__


@dataclass(frozen=True, slots=True, repr=False)
class Config:
    """A validated config. ``view()`` is what ``client.cfg`` shows."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    db: int = 0
    timeout: float | None = None
    ssl: bool | ssl.SSLContext | TLSOptions = False
    auth: Auth | None = None
    decode: bool = True
    #: Open connections allowed per pool key (None: REDIS_CLIENT_MAX_CONNECTIONS).
    max_connections: int | None = None
    #: Unread pushes (messages, bytes) past which the socket is not read.
    max_pushes: int = 10_000
    max_push_bytes: int = 64 * 1024 * 1024
    #: A Unix socket's path (then host and port are not used).
    path: str | None = None
    #: The protocol spoken: 2 (RESP2, the default) or 3 (RESP3, after HELLO 3).
    protocol: int = 2
    #: A cluster replica's connection: READONLY is part of its handshake
    #: (set by the cluster client only; its connections have a pool of their own).
    readonly: bool = False
    #: The client-side cache (protocol 3 only), or None.
    cache: CacheSettings | None = None
    extras: Mapping[str, Any] = field(default_factory=dict)

    @property
    def address(self) -> str:
        if self.path is not None:
            return f"unix:{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def describe(self) -> str:
        """``host:port/db`` plus TLS and user, never the password."""
        text = f"{self.address}/{self.db}"
        if self.ssl is not False:
            text += " tls"
        if self.auth is not None:
            text += f" user={self.auth['user']}"
        if self.cache is not None:
            text += " cache"
        return text

    def view(self) -> ConfigView:
        values: dict[str, Any] = dict(self.extras)
        values.update(
            host=self.host,
            port=self.port,
            db=self.db,
            timeout=self.timeout,
            ssl=self.ssl,
            auth=self.auth,
            decode=self.decode,
            max_connections=self.max_connections,
            max_pushes=self.max_pushes,
            max_push_bytes=self.max_push_bytes,
            path=self.path,
            protocol=self.protocol,
            cache=None if self.cache is None else _cache_view(self.cache),
        )
        return ConfigView(values)

    def __repr__(self) -> str:
        return f"Config({self.describe()})"


class ConfigView(Mapping[str, Any]):
    """Read-only normalized config (``client.cfg``); its repr hides the password."""

    __slots__ = ("_values",)

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = values

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        # Auth's own repr masks the password; extra keys that look secret
        # (a caller's "api_token", say) are masked too.
        inner = ", ".join(
            f"{key!r}: {_MASK if key != 'auth' and looks_secret(key) else safe_repr(value)}"
            for key, value in self._values.items()
        )
        return f"ConfigView({{{inner}}})"

    __str__ = __repr__


class InvalidConfig(Exception):
    """Raised inside this module; ``parse_config`` turns it into its error value."""

    def __init__(self, error: ConfigError) -> None:
        super().__init__(error)
        self.error = error


def looks_secret(key: object) -> bool:
    """Whether an extra config key's name suggests its value is a secret."""
    return isinstance(key, str) and any(word in key.lower() for word in _SECRET_WORDS)


def safe_repr(value: object) -> str:
    """``repr(value)``, or a stand-in where repr itself fails (an int over 4,300 digits)."""
    try:
        text = repr(value)
    except Exception:
        return f"<{type(value).__name__} that cannot be shown>"
    return text if len(text) <= 200 else f"{text[:200]}... ({len(text)} characters)"


def _invalid(what: str, got: object) -> InvalidConfig:
    return InvalidConfig(ConfigError(f"invalid redis config: {what} (got {safe_repr(got)})"))


def _check_host(host: object) -> str:
    if not isinstance(host, str) or not host:
        raise _invalid("host must be a non-empty string", host)
    try:
        host.encode("idna")
    except UnicodeError:
        raise _invalid("host is not a valid host name", _TypeName(host)) from None
    return host


def _check_path(path: object) -> str:
    if not isinstance(path, str) or not path.startswith("/") or "\0" in path:
        raise _invalid("path must be an absolute Unix socket path", path)
    return path


def _parse_unix_url(url: str) -> Config:
    """``unix://[user:pass@]/path?db=N&timeout=S`` (or ``redis+unix://``)."""
    try:
        shown = _masked_url(url)
        parts = urlsplit(url)
    except ValueError:
        raise _invalid("malformed URL", _TypeName(url)) from None
    if parts.fragment or parts.hostname:
        raise _invalid("write a Unix socket URL as unix:///path/to.sock", shown)
    path = _check_path(unquote(parts.path))
    options = _url_options(parts.query, shown, ("db", "timeout", "protocol"))
    return Config(path=path, db=_check_db(options.get("db", 0)), timeout=options.get("timeout"),
                  auth=_url_auth(parts, shown), protocol=options.get("protocol", 2))


def _url_options(query: str, shown: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    """A URL's query options, each at most once: db, timeout, max_connections, protocol."""
    options = parse_qsl(query, keep_blank_values=True)
    if len({key for key, _ in options}) != len(options):
        raise _invalid("a URL option is given twice", shown)
    found: dict[str, Any] = {}
    for key, value in options:
        if key not in allowed:
            raise _invalid(f"unsupported URL option {key!r}", shown)
        if key == "timeout":
            try:
                found[key] = _check_timeout(float(value))
            except ValueError:
                raise _invalid("timeout must be a number of seconds", shown) from None
        elif key == "max_connections":
            found[key] = _check_max_connections(_parse_int_text(value, key, shown))
        elif key == "protocol":
            found[key] = _check_protocol(_parse_int_text(value, key, shown))
        else:
            found[key] = _parse_int_text(value, key, shown)
    return found


def _url_auth(parts: SplitResult, shown: str) -> Auth | None:
    """``user:pass@`` of a URL (no user: ``default``); a user alone is an error."""
    if parts.password is not None:
        return _check_auth({"user": unquote(parts.username or "") or "default",
                            "pass": unquote(parts.password)})
    if parts.username:
        raise _invalid("a user in the URL needs a password (user:pass@)", shown)
    return None


def _check_port(port: object) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise _invalid("port must be an integer in 1..65535", port)
    return port


#: Redis numbers its databases with a C int.
MAX_DB: Final = 2**31 - 1


def _check_db(db: object) -> int:
    if db is None:
        return 0
    if isinstance(db, bool) or not isinstance(db, int) or not 0 <= db <= MAX_DB:
        raise _invalid(f"db must be an integer in 0..{MAX_DB}", db)
    return db


def _check_timeout(timeout: object, what: str = "timeout") -> float | None:
    """None, or a finite number of seconds > 0 (``what`` names it in the error)."""
    if timeout is None:
        return None
    try:
        seconds = float(timeout)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):  # 10**400 is no float
        seconds = math.nan
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not (
            math.isfinite(seconds) and seconds > 0):
        raise _invalid(f"{what} must be a finite number of seconds > 0", timeout)
    return seconds


def _check_ssl(value: object) -> bool | ssl.SSLContext | TLSOptions:
    if value is None:
        return False
    if isinstance(value, (bool, ssl.SSLContext, TLSOptions)):
        return value
    if isinstance(value, Mapping):
        try:
            return parse_tls(value)
        except TLSSettingError as exc:
            raise _invalid(exc.what, exc.shown) from None
    raise _invalid("ssl must be a bool, an ssl.SSLContext or a mapping of certificate files",
                   _TypeName(value))


def _check_max_connections(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1_000_000:
        raise _invalid("max_connections must be an integer in 1..1000000", value)
    return value


def _check_limit(value: object, name: str, default: int, low: int, high: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _invalid(f"{name} must be an integer in {low}..{high}", value)
    return value


def _check_protocol(value: object) -> int:
    if value is None:
        return 2
    if type(value) is not int or value not in (2, 3):  # (True == 1, 3.0 == 3: neither)
        raise _invalid("protocol must be 2 (RESP2) or 3 (RESP3)", value)
    return value


_CACHE_KEYS: Final = ("max_entries", "max_bytes", "max_age", "prefixes")


def _check_cache(value: object, protocol: int) -> CacheSettings | None:
    """``cache``: None/False (off), True (defaults) or a mapping of its settings."""
    if value is None or value is False:
        return None
    if value is True:
        value = {}
    if not isinstance(value, Mapping):
        raise _invalid("cache must be True or a mapping (max_entries, max_bytes, max_age, "
                       "prefixes)", _TypeName(value))
    for key in value:
        if key not in _CACHE_KEYS:
            raise _invalid(f"unknown cache setting {key!r} (known: {', '.join(_CACHE_KEYS)})",
                           key)
    if protocol != 3:
        raise _invalid("cache needs protocol 3 (RESP3): the server's invalidations arrive "
                       "as RESP3 pushes", protocol)
    defaults = CacheSettings()
    max_age = _check_timeout(value.get("max_age"), "cache max_age")
    prefixes = value.get("prefixes")
    if prefixes is not None:
        if isinstance(prefixes, (str, bytes)) or not isinstance(prefixes, (list, tuple)):
            raise _invalid("cache prefixes must be a list of key prefixes", prefixes)
        if not all(isinstance(prefix, (str, bytes)) and prefix for prefix in prefixes):
            raise _invalid("each cache prefix must be a non-empty str or bytes", prefixes)
        prefixes = tuple(prefix.encode("utf-8", "surrogateescape") if isinstance(prefix, str)
                         else prefix for prefix in prefixes)
        for n, prefix in enumerate(prefixes):
            if any(m != n and other.startswith(prefix) for m, other in enumerate(prefixes)):
                # The server refuses them at connect; say so here, plainly.
                raise _invalid("cache prefixes must not overlap (one starting another, or "
                               "the same twice)", value.get("prefixes"))
    return CacheSettings(
        max_entries=_check_limit(value.get("max_entries"), "cache max_entries",
                                 defaults.max_entries, 1, 10**9),
        max_bytes=_check_limit(value.get("max_bytes"), "cache max_bytes", defaults.max_bytes,
                               1024, 2**40),
        max_age=max_age,
        prefixes=prefixes,
    )


def _cache_view(settings: CacheSettings) -> dict[str, object]:
    return {"max_entries": settings.max_entries, "max_bytes": settings.max_bytes,
            "max_age": settings.max_age,
            "prefixes": None if settings.prefixes is None else list(settings.prefixes)}


def _check_decode(value: object) -> bool:
    if value is None:
        return True
    if not isinstance(value, bool):
        raise _invalid("decode must be a bool", value)
    return value


def _check_auth(auth: object) -> Auth | None:
    if auth is None:
        return None
    if not isinstance(auth, Mapping):
        # The value may well be a password: show its type only.
        raise _invalid("auth must be a mapping with 'user' and 'pass'", _TypeName(auth))
    user = auth.get("user")
    password = auth.get("pass")
    if not isinstance(user, str) or not user:
        raise _invalid("auth user must be a non-empty string", user)
    if not isinstance(password, str) or not password:
        shown = password if password is None or password == "" else _TypeName(password)
        raise _invalid("auth pass must be a non-empty string", shown)
    for what, text in (("user", user), ("pass", password)):
        try:
            text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            # Neither value is shown: a password's characters are its secret.
            raise _invalid(f"auth {what} cannot be sent as UTF-8 (a lone surrogate)",
                           _TypeName(text)) from None
    return Auth(user, password)


class _TypeName:
    """Shows a value as ``<str>`` in an error, for values that may be secret."""

    def __init__(self, value: object) -> None:
        self._name = type(value).__name__

    def __repr__(self) -> str:
        return f"<{self._name}>"


def _split_host_port(text: str, original: str) -> tuple[str, str | None]:
    """``host:port`` or ``[v6]:port`` → (host, port text or None)."""
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise _invalid("unclosed '[' in IPv6 host", original)
        host, rest = text[1:close], text[close + 1 :]
        if rest and not rest.startswith(":"):
            raise _invalid("expected ':' after ']'", original)
        return host, rest[1:] if rest else None
    if text.count(":") > 1:
        raise _invalid("write an IPv6 host in brackets, e.g. '[::1]:6379'", original)
    host, sep, port = text.partition(":")
    return host, port if sep else None


def _parse_int_text(text: str, what: str, original: str) -> int:
    if not text.isdigit() or not text.isascii() or len(text) > 20:
        raise _invalid(f"{what} must be a whole number", original)
    return int(text)


def _parse_address_string(text: str) -> Config:
    hostport, slash, db_text = text.partition("/")
    host, port_text = _split_host_port(hostport, text)
    if port_text is None or port_text == "":
        raise _invalid("a port is required, as in 'host:6379'", text)
    if not host:
        raise _invalid("host must be a non-empty string", text)
    port = _parse_int_text(port_text, "port", text)
    if not 1 <= port <= 65535:
        raise _invalid("port must be an integer in 1..65535", text)
    db = _parse_int_text(db_text, "db", text) if slash else 0
    return Config(host=host, port=port, db=_check_db(db))


def invalid_config(what: str, got: object) -> ConfigError:
    """A config error for the cluster and sentinel forms: what is wrong, never a password.

    A URL shows as ``redis://user:***@host``; in a list or tuple, each one does.
    """
    return ConfigError(f"invalid redis config: {what} (got {_shown(got)})")


def _shown(value: object) -> str:
    if isinstance(value, str):
        try:
            return repr(_masked_url(value))
        except ValueError:
            return "<str>"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_shown(item) for item in value) + "]"
    if isinstance(value, Mapping):
        return "<mapping>"
    return safe_repr(value)


def _masked_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{user}:{_MASK}@{host}").geturl()


def _parse_url(url: str) -> Config:
    try:
        shown = _masked_url(url)
    except ValueError:  # not even splittable: show nothing that may hold a password
        raise _invalid("malformed URL", _TypeName(url)) from None
    try:
        parts = urlsplit(url)
        port = parts.port if parts.port is not None else DEFAULT_PORT
        hostname = parts.hostname or ""
    except ValueError:
        raise _invalid("malformed URL or port", shown) from None
    if parts.scheme not in ("redis", "rediss"):
        raise _invalid("URL scheme must be redis:// or rediss://", shown)
    if parts.fragment or url.endswith("#"):
        raise _invalid("a URL fragment (#...) means nothing here", shown)
    if "[" in parts.netloc:
        try:
            ipaddress.IPv6Address(hostname.partition("%")[0])
        except ValueError:
            raise _invalid("only an IPv6 address goes in brackets", shown) from None
    host = _check_host(hostname)
    db = 0
    path = parts.path.strip("/")
    if path:
        db = _parse_int_text(path, "db in the URL path", shown)
    options = _url_options(parts.query, shown,
                           ("db", "timeout", "max_connections", "protocol"))
    return Config(
        host=host,
        port=_check_port(port),
        db=_check_db(options.get("db", db)),
        timeout=options.get("timeout"),
        ssl=parts.scheme == "rediss",
        auth=_url_auth(parts, shown),
        max_connections=options.get("max_connections"),
        protocol=options.get("protocol", 2),
    )


def _parse_mapping(config: Mapping[Any, Any]) -> Config:
    for key in config:
        if isinstance(key, str) and (key in _FOREIGN_KEYS or key.startswith("ssl_")):
            ours = _FOREIGN_KEYS.get(key, 'ssl (True, an ssl.SSLContext, or {"ca": ..., '
                                          '"cert": ..., "key": ...})')
            raise _invalid(f"{key!r} is not a levredis key: use {ours}", _TypeName(config[key]))
    protocol = _check_protocol(config.get("protocol"))
    path = config.get("path")
    if path is not None:
        if config.get("host") is not None or config.get("port") is not None:
            raise _invalid("give host and port, or path (a Unix socket), not both", path)
        _check_path(path)
        if config.get("ssl"):
            raise _invalid("TLS over a Unix socket is not supported", config.get("ssl"))
    elif "host" not in config:
        raise _invalid("host is required", None)
    extras = {key: value for key, value in config.items() if key not in _KNOWN_KEYS}
    port = config.get("port")
    return Config(
        host=DEFAULT_HOST if path is not None else _check_host(config["host"]),
        port=DEFAULT_PORT if port is None else _check_port(port),
        path=path,
        db=_check_db(config.get("db")),
        timeout=_check_timeout(config.get("timeout")),
        ssl=_check_ssl(config.get("ssl")),
        auth=_check_auth(config.get("auth")),
        decode=_check_decode(config.get("decode")),
        max_connections=_check_max_connections(config.get("max_connections")),
        max_pushes=_check_limit(config.get("max_pushes"), "max_pushes", 10_000, 1, 10**9),
        max_push_bytes=_check_limit(config.get("max_push_bytes"), "max_push_bytes",
                                    64 * 1024 * 1024, 1024, 2**40),
        protocol=protocol,
        cache=_check_cache(config.get("cache"), protocol),
        extras=extras,
    )


def parse_config(config: object) -> Config | ConfigError:
    """Validate ``config``: a ``Config``, or the ``ConfigError`` saying what is wrong.

    >>> parse_config("[::1]:6380/2").describe()
    '[::1]:6380/2'
    >>> parse_config({"host": "h", "port": 0})
    'invalid redis config: port must be an integer in 1..65535 (got 0)'
    """
    # Services pass the same config on every connect(): remember the answer
    # for configs whose content is hashable (strings; mappings of plain values).
    key: object = config
    if isinstance(config, Mapping):
        # Types are part of the key: True == 1 and 6379.0 == 6379 hash alike,
        # yet one of each pair is invalid.
        key = tuple((name, type(value), value) for name, value in config.items())
    try:
        cached = _parsed.get(key)
    except TypeError:  # an unhashable value: parse every time
        key = None
        cached = None
    if cached is not None:
        return cached
    try:
        parsed = _parse(config)
    except InvalidConfig as invalid:
        return invalid.error
    if key is not None:
        if len(_parsed) >= 256:
            _parsed.clear()
        _parsed[key] = parsed
    return parsed


_parsed: dict[object, Config] = {}


def _parse(config: object) -> Config:
    if config is None:
        return Config()
    if isinstance(config, str):
        if config.startswith(("unix://", "redis+unix://")):
            return _parse_unix_url(config)
        if "://" in config:
            return _parse_url(config)
        if config.startswith("/"):
            return Config(path=_check_path(config))  # a bare socket path
        return _parse_address_string(config)
    if isinstance(config, Mapping):
        return _parse_mapping(config)
    raise _invalid(
        "expected None, 'host:port[/db]', a redis:// URL or a mapping",
        _TypeName(config),
    )
