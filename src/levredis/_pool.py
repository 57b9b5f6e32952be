"""Connections per pool key: two limits, FIFO waiting, one deadline, loop and fork safety.

A pool key is ``host:port/db``, plus TLS, plus the identity of the
credentials, inside a registry per event loop: a connection is only ever
handed to a caller whose config promises exactly the session it has, on the
loop that owns its socket.

Each key's ``Pool`` has two limits (as httpcore's pool does): at most
``max_connections`` connections open at once, idle or in use, and at most
``REDIS_CLIENT_POOL_SIZE`` of them kept idle. At the cap, ``acquire`` waits
in FIFO order for a connection to be released, within the caller's
deadline. Every await in here may be cancelled: whatever was taken before it
is given back or closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import ssl
import threading
from collections import deque
from collections.abc import AsyncGenerator
from typing import Final, NotRequired, TypedDict, overload

from ._blocking import wait_for_recoveries
from ._cache import CacheSettings, CacheStats
from ._config import Config
from ._connection import open_connection, ping
from ._errors import CLOSED, TIMEOUT, Error, Timeout
from ._protocol import FORKED, PushLimits, RedisProtocol
from ._tls import TLSOptions

log: Final = logging.getLogger("levredis")

#: A connection idle for less than this is reused without a PING.
FRESH_FOR: Final = 5.0
DEFAULT_POOL_SIZE: Final = 20
DEFAULT_MAX_CONNECTIONS: Final = 1000
#: The PING check's limit when the config sets no timeout.
PING_TIMEOUT: Final = 5.0
#: Below this, a PING check could not tell a slow server from a dead one.
MIN_PING_CHECK: Final = 0.005

PoolKey = tuple[str, int, int, object, str | None, str | None, int, bool, int,
                CacheSettings | None]


def pool_key(config: Config) -> PoolKey:
    """The key under which ``config``'s connections are pooled.

    The password enters only as a digest, so two users, or one user with two
    passwords, never share a connection, and no key holds a secret.
    """
    tls: object = None
    if isinstance(config.ssl, ssl.SSLContext):
        tls = config.ssl  # a caller's own CA or client certificate
    elif isinstance(config.ssl, TLSOptions):
        tls = (config.ssl.context, config.ssl.server_hostname)  # shared by equal settings
    elif config.ssl:
        tls = "default"
    user = digest = None
    if config.auth is not None:
        user = config.auth["user"]
        secret = f"{user}\0{config.auth['pass']}".encode("utf-8", "surrogateescape")
        digest = hashlib.sha256(secret).hexdigest()
    where = config.host if config.path is None else f"unix:{config.path}"
    port = config.port if config.path is None else 0
    return (where, port, config.db, tls, user, digest, max_connections(config), config.readonly,
            config.protocol, config.cache)


def describe_key(key: PoolKey) -> str:
    host, port, db, tls, user, _, _, readonly, protocol, cache = key
    if host.startswith("unix:"):
        text = f"{host}/{db}"
    else:
        text = f"[{host}]:{port}/{db}" if ":" in host else f"{host}:{port}/{db}"
    if tls is not None:
        text += "+ssl"
    if user is not None:
        text += f" user={user}"
    if readonly:
        text += " readonly"
    if protocol == 3:
        text += " resp3"
    if cache is not None:
        text += " cache"
    return text


class PoolStats(TypedDict):
    """One pool key's figures, as ``levredis.pool_stats()`` reports them."""

    key: str
    idle: int
    in_use: int
    opening: int
    waiting: int
    max_connections: int
    created: int
    reused: int
    discarded: int
    #: A caching key's figures, summed over its connections: hits, misses,
    #: evictions, invalidations, entries, bytes.
    cache: NotRequired[dict[str, int]]


# -- limits from the environment ---------------------------------------------------

_env_cache: dict[str, tuple[str | None, int]] = {}
_warned: set[tuple[str, str]] = set()


# os.environ's own dict (bytes keys on POSIX): read on every connect and
# close, and os.environ.get() costs microseconds there.
_environ_data: dict[bytes, bytes] | None = (
    getattr(os.environ, "_data", None) if os.name == "posix" else None)


def _env_raw(name: str) -> str | None:
    if _environ_data is None:
        return os.environ.get(name)
    raw = _environ_data.get(name.encode())
    return None if raw is None else os.fsdecode(raw)


def _env_limit(name: str, default: int, minimum: int) -> int:
    """An environment variable's whole number >= ``minimum``; the default otherwise."""
    raw = _env_raw(name)
    cached = _env_cache.get(name)
    if cached is not None and cached[0] == raw:
        return cached[1]
    value = default
    if raw is not None:
        text = raw.strip()
        if text.isdigit() and len(text) < 10 and int(text) >= minimum:
            value = int(text)
        elif (name, raw) not in _warned:
            _warned.add((name, raw))
            log.warning("%s=%r is not a whole number >= %d; using %d",
                        name, raw, minimum, default)
    _env_cache[name] = (raw, value)
    return value


def pool_size() -> int:
    """``REDIS_CLIENT_POOL_SIZE``: idle connections kept per key (0 disables pooling)."""
    return _env_limit("REDIS_CLIENT_POOL_SIZE", DEFAULT_POOL_SIZE, 0)


def max_connections(config: Config) -> int:
    """Open connections allowed per key: the config's, or ``REDIS_CLIENT_MAX_CONNECTIONS``."""
    if config.max_connections is not None:
        return config.max_connections
    return _env_limit("REDIS_CLIENT_MAX_CONNECTIONS", DEFAULT_MAX_CONNECTIONS, 1)


# -- one key's pool ------------------------------------------------------------------

#: What a waiter is handed: a released connection, or None (a slot to open one in).
_Handoff = RedisProtocol | None


class Pool:
    """The connections of one pool key on one loop."""

    __slots__ = ("cache_stats", "cap", "created", "discarded", "idle", "in_use", "name",
                 "opening", "reused", "waiters")

    def __init__(self, name: str) -> None:
        #: The key as logs and stats show it (no password).
        self.name = name
        self.idle: list[RedisProtocol] = []
        self.in_use = 0
        self.opening = 0
        self.waiters: deque[asyncio.Future[_Handoff]] = deque()
        self.cap = DEFAULT_MAX_CONNECTIONS
        self.created = self.reused = self.discarded = 0
        #: The cache figures its connections share (a caching key only).
        self.cache_stats: CacheStats | None = None

    def is_empty(self) -> bool:
        return not self.open_count() and not self.waiters

    def open_count(self) -> int:
        return len(self.idle) + self.in_use + self.opening

    async def acquire(
        self, config: Config, loop: asyncio.AbstractEventLoop, deadline: float | None,
        wait: bool = True,
    ) -> RedisProtocol | Error | None:
        """A connection for ``config`` by ``deadline``: pooled, new, or released to us.

        None, with ``wait`` false, where it would have to wait at the cap.
        """
        self.cap = cap = max_connections(config)  # part of the key: the same for all
        idle = self.idle
        if idle:
            # The common case, without a coroutine: the newest idle connection is fresh.
            newest = idle[-1]
            if (newest.error is None and loop.time() - newest.idle_since < FRESH_FOR
                    and not newest.cache_to_sync()):
                idle.pop()
                return self._check_out(newest, config, reused=True)
        while True:
            connection = await self._take_idle(config, loop, deadline)
            if connection is not None:
                return connection
            if self.open_count() < cap and not self.waiters:
                return await self._open(config, loop, deadline)
            if not wait:
                return None
            handed = await self._wait(config, loop, deadline)
            if isinstance(handed, Error):
                return handed
            if handed is not None:
                if handed.cache is not None:
                    handed.cache.clear()  # handed over without a round trip: start empty
                return self._check_out(handed, config, reused=True)
            # A slot was freed for us (its count is already ours): open one.
            self.opening -= 1
            if self.open_count() < cap:
                return await self._open(config, loop, deadline)

    async def _take_idle(
        self, config: Config, loop: asyncio.AbstractEventLoop, deadline: float | None
    ) -> RedisProtocol | None:
        idle = self.idle
        while idle:
            connection = idle.pop()
            if connection.error is not None:
                self._discard(f"closed while idle: {connection.error}")
                continue
            if loop.time() - connection.idle_since >= FRESH_FOR or connection.cache_to_sync():
                # (A caching connection's entries are brought up to date by the
                # PING's round trip: invalidations sent before it arrive first.)
                # Half of what is left: a stalled connection must leave time
                # to open a new one, and checks one after another stay
                # within the deadline however many there are.
                limit = PING_TIMEOUT if deadline is None else (deadline - loop.time()) / 2
                if limit < MIN_PING_CHECK:
                    # No time left to tell: keep it (it may be fine) and give up.
                    idle.append(connection)
                    return None
                self.opening += 1  # counted while out of the idle list
                try:
                    alive = limit > 0 and await ping(connection, limit)
                except BaseException:
                    # Cancelled: the connection is out of the pool, so close it
                    # here or it would stay open, reachable by nothing; its
                    # slot goes to the next in line.
                    self.opening -= 1
                    connection.abort(CLOSED)
                    self._discard("cancelled during the PING check")
                    self._wake_one()
                    raise
                self.opening -= 1
                if not alive:
                    connection.abort(connection.error or Error("PING check failed"))
                    self._discard(f"PING check failed: {connection.error}")
                    self._wake_one()
                    continue
                log.debug("pool %s: PING check passed", self.name)
            log.debug("pool %s: hit", self.name)
            return self._check_out(connection, config, reused=True)
        return None

    async def _open(
        self, config: Config, loop: asyncio.AbstractEventLoop, deadline: float | None
    ) -> RedisProtocol | Error:
        log.debug("pool %s: miss, connecting", self.name)
        limit = _remaining(loop, deadline, None)
        if limit is not None and limit <= 0:
            self._wake_one()  # the slot this caller held goes to the next
            return TIMEOUT
        self.opening += 1
        if config.cache is not None and self.cache_stats is None:
            self.cache_stats = CacheStats()
        try:
            opened = await open_connection(config, loop, limit, self.cache_stats)
        except BaseException:
            self.opening -= 1
            self._wake_one()  # cancelled: the slot goes to the next in line
            raise
        self.opening -= 1
        if isinstance(opened, Error):
            self._wake_one()  # the slot it held is free again
            return opened
        self.created += 1
        return self._check_out(opened, config, reused=False)

    async def _wait(
        self, config: Config, loop: asyncio.AbstractEventLoop, deadline: float | None
    ) -> _Handoff | Error:
        """Wait, first come first served, for a released connection or a free slot."""
        future: asyncio.Future[_Handoff] = loop.create_future()
        self.waiters.append(future)
        log.debug("pool %s: at max_connections=%d, waiting", self.name, self.cap)
        limit = _remaining(loop, deadline, None)
        try:
            async with asyncio.timeout(limit):
                return await future
        except TimeoutError:
            if future.done() and not future.cancelled():
                return future.result()  # handed over just as the time ran out
            return Timeout(
                f"timeout: no free connection within {max(limit or 0.0, 0.0):.3g}s "
                f"(max_connections={self.cap} for {self.name}, all in use)"
            )
        except BaseException:
            if future.done() and not future.cancelled():
                # Cancelled after something was handed over: pass it on, so
                # it is neither lost nor leaked.
                self._pass_on(future.result(), loop)
            raise
        finally:
            if future in self.waiters:
                self.waiters.remove(future)

    def _pass_on(self, handed: _Handoff, loop: asyncio.AbstractEventLoop) -> None:
        if handed is None:
            self.opening -= 1
            self._wake_one()
        else:
            self.in_use += 1
            handed.checked_out = True
            self.release(handed, loop, keepalive=True)

    def _check_out(self, connection: RedisProtocol, config: Config, reused: bool
                   ) -> RedisProtocol:
        if reused:
            self.reused += 1
            connection.set_decode(config.decode)
            limits = connection.limits
            if (limits.max_pushes != config.max_pushes
                    or limits.max_push_bytes != config.max_push_bytes):
                connection.limits = PushLimits(config.max_pushes, config.max_push_bytes)
        self.in_use += 1
        connection.checked_out = True
        return connection

    def _wake_one(self) -> None:
        """A slot became free: the first waiter may open a connection in it."""
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                self.opening += 1  # the slot is the waiter's until it opens
                waiter.set_result(None)
                return

    def release(
        self, connection: RedisProtocol, loop: asyncio.AbstractEventLoop, keepalive: bool
    ) -> None:
        """Hand ``connection`` to a waiter, pool it, or close it."""
        if not connection.checked_out:
            return  # released already
        if connection.error is FORKED:
            return  # the parent's: nothing here may touch it
        connection.checked_out = False
        self.in_use -= 1
        reason = None if keepalive else "close(no_keepalive=True)"
        reason = reason or connection.unpoolable_reason()
        if reason is None:
            while self.waiters:
                waiter = self.waiters.popleft()
                if not waiter.done():
                    # Straight to the caller that waited longest, still clean.
                    log.debug("pool %s: connection handed to a waiting caller", self.name)
                    waiter.set_result(connection)
                    return
            size = pool_size()
            if size == 0:
                reason = "pooling disabled"
            elif len(self.idle) >= size:
                reason = "pool full"
        if reason is None:
            connection.idle_since = loop.time()
            self.idle.append(connection)
            log.debug("pool %s: connection returned (%d idle)", self.name, len(self.idle))
            return
        self._discard(reason)
        # Callers still waiting on this connection are told it was closed.
        connection.close(CLOSED)
        self._wake_one()

    def _discard(self, reason: str) -> None:
        self.discarded += 1
        log.debug("pool %s: connection closed, not pooled (%s)", self.name, reason)

    def close_idle(self) -> int:
        closed = 0
        while self.idle:
            connection = self.idle.pop()
            self._discard("close_pool()")
            connection.close(CLOSED)
            closed += 1
            self._wake_one()
        return closed

    def stats(self) -> PoolStats:
        figures = PoolStats(
            key=self.name, idle=len(self.idle), in_use=self.in_use, opening=self.opening,
            waiting=sum(not waiter.done() for waiter in self.waiters),
            max_connections=self.cap, created=self.created, reused=self.reused,
            discarded=self.discarded,
        )
        if self.cache_stats is not None:
            figures["cache"] = self.cache_stats.figures()
        return figures


def _remaining(
    loop: asyncio.AbstractEventLoop, deadline: float | None, default: float | None
) -> float | None:
    """Seconds left until ``deadline`` (``default`` when there is none)."""
    if deadline is None:
        return default
    return deadline - loop.time()


# -- the registry: pools per loop --------------------------------------------------

_registry: dict[asyncio.AbstractEventLoop, dict[PoolKey, Pool]] = {}
_registry_lock = threading.Lock()  # each thread may run a loop of its own
# Pools inherited through fork() stay untouched (their sockets are the parent's).
_inherited: list[object] = []


def _forget_after_fork() -> None:
    global _registry, _registry_lock
    _inherited.append(_registry)
    _registry = {}
    _registry_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


def _pool(loop: asyncio.AbstractEventLoop, key: PoolKey) -> Pool:
    with _registry_lock:
        pools = _registry.get(loop)
        if pools is None:
            # A new loop: drop the pools of loops that were closed meanwhile.
            for old in [old for old in _registry if old.is_closed()]:
                del _registry[old]
                _closers.pop(old, None)
            pools = _registry[loop] = {}
            _closers[loop] = _close_at_shutdown(loop)
        pool = pools.get(key)
        if pool is None:
            pool = pools[key] = Pool(describe_key(key))
        return pool


# One asynchronous generator per loop, started and left suspended: the loop's
# shutdown (asyncio.run and uvloop call shutdown_asyncgens() before closing)
# closes it, and its ``finally`` closes the loop's idle connections. Without
# it, the pools of a finished asyncio.run() would be dropped, not closed.
_closers: dict[asyncio.AbstractEventLoop, AsyncGenerator[None, None]] = {}


def _close_at_shutdown(loop: asyncio.AbstractEventLoop) -> AsyncGenerator[None, None]:
    async def closer() -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            # Blocking commands whose callers left may still be putting back
            # what they popped: let them, then close.
            await wait_for_recoveries(loop)
            close_idle(loop)

    generator = closer()
    step = generator.__anext__()  # registers it with the running loop's hooks
    with contextlib.suppress(StopIteration):
        step.send(None)  # runs to the yield
    return generator


def _pools_of(loop: asyncio.AbstractEventLoop) -> list[Pool]:
    with _registry_lock:
        return list(_registry.get(loop, {}).values())


@overload
async def acquire(
    config: Config, key: PoolKey, loop: asyncio.AbstractEventLoop,
    deadline: float | None = None,
) -> RedisProtocol | Error: ...


@overload
async def acquire(
    config: Config, key: PoolKey, loop: asyncio.AbstractEventLoop,
    deadline: float | None, wait: bool,
) -> RedisProtocol | Error | None: ...


async def acquire(
    config: Config, key: PoolKey, loop: asyncio.AbstractEventLoop,
    deadline: float | None = None, wait: bool = True,
) -> RedisProtocol | Error | None:
    """A connection for ``config`` within ``deadline`` (a ``loop.time()``), or why not.

    With ``wait=False``, None instead of waiting at the cap.
    """
    if deadline is None and config.timeout is not None:
        deadline = loop.time() + config.timeout
    pool = _pool(loop, key)
    connection = await pool.acquire(config, loop, deadline, wait)
    if isinstance(connection, Error) and pool.is_empty() and not pool.created:
        _forget(loop, key, pool)  # a key that never worked (a wrong password) leaves nothing
    return connection


def _forget(loop: asyncio.AbstractEventLoop, key: PoolKey, pool: Pool) -> None:
    with _registry_lock:
        pools = _registry.get(loop)
        if pools is not None and pools.get(key) is pool:
            del pools[key]


def release(
    connection: RedisProtocol, key: PoolKey, loop: asyncio.AbstractEventLoop, keepalive: bool
) -> None:
    """Give ``connection`` back: to a waiting caller, the idle list, or closed."""
    _pool(loop, key).release(connection, loop, keepalive)


def stats(loop: asyncio.AbstractEventLoop) -> list[PoolStats]:
    return [pool.stats() for pool in _pools_of(loop)]


def close_idle(loop: asyncio.AbstractEventLoop) -> int:
    """Close every idle pooled connection of ``loop``; how many were closed."""
    return sum(pool.close_idle() for pool in _pools_of(loop))
