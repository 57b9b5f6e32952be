"""Idle connections per pool key: LIFO, idle-age check, capacity, loop and fork safety.

A pool key is ``host:port/db``, plus TLS, plus the identity of the
credentials, inside a registry per event loop: a connection is only ever
handed to a caller whose config promises exactly the session it has, on the
loop that owns its socket.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import ssl
from dataclasses import dataclass, field
from typing import Final, TypedDict

from ._config import Config
from ._connection import open_connection, ping
from ._errors import CLOSED, Error
from ._protocol import RedisProtocol

log: Final = logging.getLogger("levredis")

#: A connection idle for less than this is reused without a PING.
FRESH_FOR: Final = 5.0
DEFAULT_POOL_SIZE: Final = 20
#: The PING check's limit when the config sets no timeout.
PING_TIMEOUT: Final = 5.0

PoolKey = tuple[str, int, int, object, str | None, str | None]


def pool_key(config: Config) -> PoolKey:
    """The key under which ``config``'s connections are pooled.

    The password enters only as a digest, so two users, or one user with two
    passwords, never share a connection, and no key holds a secret.
    """
    tls: object = None
    if isinstance(config.ssl, ssl.SSLContext):
        tls = config.ssl  # a caller's own CA or client certificate
    elif config.ssl:
        tls = "default"
    user = digest = None
    if config.auth is not None:
        user = config.auth["user"]
        secret = f"{user}\0{config.auth['pass']}".encode("utf-8", "surrogateescape")
        digest = hashlib.sha256(secret).hexdigest()
    return (config.host, config.port, config.db, tls, user, digest)


def describe_key(key: PoolKey) -> str:
    host, port, db, tls, user, _ = key
    text = f"[{host}]:{port}/{db}" if ":" in host else f"{host}:{port}/{db}"
    if tls is not None:
        text += "+ssl"
    if user is not None:
        text += f" user={user}"
    return text


class PoolStats(TypedDict):
    """One pool key's figures, as ``levredis.pool_stats()`` reports them."""

    key: str
    idle: int
    in_use: int
    created: int
    reused: int
    discarded: int


@dataclass(slots=True)
class _Pool:
    #: The key as logs and stats show it (no password).
    name: str
    idle: list[RedisProtocol] = field(default_factory=list)
    in_use: int = 0
    created: int = 0
    reused: int = 0
    discarded: int = 0


_registry: dict[asyncio.AbstractEventLoop, dict[PoolKey, _Pool]] = {}
# Pools inherited through fork() stay untouched (their sockets are the parent's).
_inherited: list[object] = []
_warned_sizes: set[str] = set()


def _forget_after_fork() -> None:
    global _registry
    _inherited.append(_registry)
    _registry = {}


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


_parsed_size: tuple[str | None, int] = (None, DEFAULT_POOL_SIZE)


def pool_size() -> int:
    """``REDIS_CLIENT_POOL_SIZE``: idle connections kept per key (0 disables)."""
    global _parsed_size
    raw = os.environ.get("REDIS_CLIENT_POOL_SIZE")
    if raw == _parsed_size[0]:
        return _parsed_size[1]
    size = _parse_pool_size(raw)
    _parsed_size = (raw, size)
    return size


def _parse_pool_size(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_POOL_SIZE
    try:
        size = int(raw.strip())
    except ValueError:
        size = -1
    if size < 0:
        if raw not in _warned_sizes:
            _warned_sizes.add(raw)
            log.warning(
                "REDIS_CLIENT_POOL_SIZE=%r is not a whole number >= 0; using %d",
                raw, DEFAULT_POOL_SIZE,
            )
        return DEFAULT_POOL_SIZE
    return size


def _pools_of(loop: asyncio.AbstractEventLoop) -> dict[PoolKey, _Pool]:
    pools = _registry.get(loop)
    if pools is None:
        # A new loop: drop the pools of loops that were closed meanwhile.
        for old in [old for old in _registry if old.is_closed()]:
            del _registry[old]
        pools = _registry[loop] = {}
    return pools


def _discard(pool: _Pool, reason: str) -> None:
    pool.discarded += 1
    log.debug("pool %s: connection closed, not pooled (%s)", pool.name, reason)


async def acquire(
    config: Config, key: PoolKey, loop: asyncio.AbstractEventLoop
) -> RedisProtocol | Error:
    """A connection for ``config``: the most recently pooled one, a new one, or why not."""
    pools = _pools_of(loop)
    pool = pools.get(key)
    if pool is None:
        pool = pools[key] = _Pool(describe_key(key))
    idle = pool.idle
    while idle:
        connection = idle.pop()
        if connection.error is not None:
            _discard(pool, f"closed while idle: {connection.error}")
            continue
        if loop.time() - connection.idle_since >= FRESH_FOR:
            try:
                alive = await ping(connection, config.timeout or PING_TIMEOUT)
            except BaseException:
                # Cancelled: the connection is out of the pool, so close it
                # here or it would stay open, reachable by nothing.
                connection.abort(CLOSED)
                _discard(pool, "cancelled during the PING check")
                raise
            if not alive:
                connection.abort(connection.error or Error("PING check failed"))
                _discard(pool, f"PING check failed: {connection.error}")
                continue
            log.debug("pool %s: PING check passed", pool.name)
        pool.reused += 1
        pool.in_use += 1
        connection.checked_out = True
        connection.set_decode(config.decode)
        log.debug("pool %s: hit", pool.name)
        return connection
    log.debug("pool %s: miss, connecting", pool.name)
    opened = await open_connection(config, loop)
    if isinstance(opened, Error):
        return opened
    pool.created += 1
    pool.in_use += 1
    opened.checked_out = True
    return opened


def release(
    connection: RedisProtocol, key: PoolKey, loop: asyncio.AbstractEventLoop, keepalive: bool
) -> None:
    """Pool ``connection`` if it is clean and there is room; close it otherwise."""
    if not connection.checked_out:
        return  # released already
    connection.checked_out = False
    pools = _pools_of(loop)
    pool = pools.get(key)
    if pool is None:
        pool = pools[key] = _Pool(describe_key(key))
    pool.in_use -= 1
    reason = None if keepalive else "close(no_keepalive=True)"
    reason = reason or connection.unpoolable_reason()
    if reason is None:
        size = pool_size()
        if size == 0:
            reason = "pooling disabled"
        elif len(pool.idle) >= size:
            reason = "pool full"
    if reason is None:
        connection.idle_since = loop.time()
        pool.idle.append(connection)
        log.debug("pool %s: connection returned (%d idle)", pool.name, len(pool.idle))
        return
    _discard(pool, reason)
    # Callers still waiting on this connection are told it was closed.
    connection.close(CLOSED)


def stats(loop: asyncio.AbstractEventLoop) -> list[PoolStats]:
    return [
        PoolStats(
            key=pool.name,
            idle=len(pool.idle),
            in_use=pool.in_use,
            created=pool.created,
            reused=pool.reused,
            discarded=pool.discarded,
        )
        for pool in _pools_of(loop).values()
    ]


def close_idle(loop: asyncio.AbstractEventLoop) -> int:
    """Close every idle pooled connection of ``loop``; how many were closed."""
    closed = 0
    for pool in _pools_of(loop).values():
        while pool.idle:
            connection = pool.idle.pop()
            _discard(pool, "close_pool()")
            connection.close(CLOSED)
            closed += 1
    return closed
