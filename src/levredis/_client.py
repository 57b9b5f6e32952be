"""The client: ``connect()``, and ``cmd``/``pipeline``/``read``/``close`` as ``(value, err)``.

This is the only layer callers see. It turns every outcome into a 2-tuple:
the value and ``None``, or ``None`` and an error value (a ``str``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import traceback
import warnings
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Final, Literal, TypedDict

from . import _pool, _resp
from ._blocking import BLOCKING, RECOVERING, RECOVERY_LIMIT, Recovery, is_blocking
from ._cache import READ, Cache, Keys, Marker, expiry_probe, key_for
from ._config import Config, ConfigView, parse_config
from ._connection import open_connection
from ._errors import (
    CLOSED,
    NOT_FOUND,
    TIMEOUT,
    ConfigError,
    Error,
    NetworkError,
    ServerError,
    UsageError,
)
from ._protocol import FORKED, RedisProtocol
from ._resp import (
    ARRAY,
    BULK,
    ERROR,
    INTEGER,
    SIMPLE,
    ArgumentError,
    Reply,
    command_name,
    encode_command,
    encode_command_pure,
    frozen,
)
from ._resp3 import BIG_NUMBER, BLOB_ERROR, BOOLEAN, DOUBLE, MAP, NULL, PUSH, SET, VERBATIM

ReplyType = Literal["simple", "error", "integer", "bulk", "array", "null", "boolean", "double",
                    "bignum", "verbatim", "map", "set", "push"]


class ReadResult(TypedDict):
    """What ``read()`` returns: the RESP type tag and the decoded value."""

    type: ReplyType
    value: Reply


_TAGS: Final[dict[int, ReplyType]] = {
    SIMPLE: "simple",
    ERROR: "error",
    INTEGER: "integer",
    BULK: "bulk",
    ARRAY: "array",
    # RESP3 only (protocol 3):
    NULL: "null",
    BOOLEAN: "boolean",
    DOUBLE: "double",
    BIG_NUMBER: "bignum",
    BLOB_ERROR: "error",
    VERBATIM: "verbatim",
    MAP: "map",
    SET: "set",
    PUSH: "push",
}
#: The running loop of the calling thread, or None (never raises).
_running_loop: Final = asyncio._get_running_loop
_NO_LOOP: Final = UsageError(
    "no running event loop: call levredis inside a coroutine run by asyncio.run()"
)


class Client:
    """One Redis connection, checked out of the pool by ``connect()``.

    Many tasks may share a client: commands go out in call order and each
    caller gets its own reply. Every method returns ``(value, None)`` or
    ``(None, err)`` and never raises for Redis, network or protocol problems::

        client, err = await levredis.connect("127.0.0.1:6379")
        value, err = await client.cmd("GET", "greeting")
        await client.close()
    """

    __slots__ = (
        "_cfg",
        "_closed",
        "_closing",
        "_created_at",
        "_own_blocking",
        "_config",
        "_connection",
        "_key",
        "_loop",
        "_lost",
        "_reconnecting",
        "_timeout",
    )

    def __init__(
        self,
        config: Config,
        key: _pool.PoolKey,
        loop: asyncio.AbstractEventLoop,
        connection: RedisProtocol,
    ) -> None:
        self._config = config
        self._cfg: ConfigView | None = None  # made on first use
        self._key = key
        self._loop = loop
        self._connection = connection
        self._closed = False
        # Where it was made, for the unclosed-client warning (asyncio debug mode).
        self._created_at = traceback.extract_stack()[:-2] if loop.get_debug() else None
        # Blocking commands in flight on this client's own connection.
        self._own_blocking: dict[asyncio.Future[Reply], tuple[str, Sequence[object]]] = {}
        #: Set by close(), for blocking commands waiting on their own connections.
        self._closing: asyncio.Future[None] | None = None
        self._timeout = config.timeout
        self._reconnecting: asyncio.Task[RedisProtocol | Error] | None = None
        # Set when the connection died holding session state a new one would
        # not have: every call returns it until close().
        self._lost: Error | None = None

    @property
    def cfg(self) -> Mapping[str, Any]:
        """The normalized config, read-only; its repr hides the password."""
        if self._cfg is None:
            self._cfg = self._config.view()
        return self._cfg

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<levredis.Client {self._config.describe()} {state}>"

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def _broken(self) -> bool:
        """Its connection failed (a call would have to reconnect first, or cannot)."""
        return self._lost is not None or self._connection.error is not None

    # -- commands ------------------------------------------------------------

    async def cmd(self, *args: object) -> tuple[Reply, Error | None]:
        """Run one command: ``(value, None)`` or ``(None, err)``.

        ``err`` is ``"not found"`` for a NULL reply, the error line for a
        Redis error, or the reason for a network, protocol or timeout error
        (the connection is then closed; the next call opens a new one)::

            value, err = await client.cmd("INCR", "counter")   # (1, None)
        """
        if self._closed:
            return None, CLOSED
        connection = self._connection
        here = _running_loop() is self._loop
        cache = connection.cache
        if cache is not None and here:
            answer = cache.hit(args)
            if answer is not None:  # answered here (a miss goes on below)
                return answer
        encode = _resp.compiled_encode
        data = None if encode is None else encode(args)
        if data is None:  # declined: arguments only the pure encoder takes, or refuses
            try:
                args = frozen(args)  # planned below, after any await, as encoded here
                data = encode_command_pure(args)
            except ArgumentError as exc:
                return None, UsageError(str(exc))
        limit = self._timeout
        if connection.error is not None or not here:
            ready = await self._reconnected()
            if isinstance(ready, Error):
                return None, ready
            connection, limit = ready
        first = args[0]
        name = first.upper() if type(first) is str else command_name(first)
        cache = connection.cache
        written: Keys | None = None
        if cache is not None:
            use = cache.classify(name, args)
            if use is not None:
                if use[0] == READ:
                    if connection.state.serves_from_cache():
                        return await self._through_cache(connection, cache, use[1], args, data,
                                                         limit)
                else:
                    written = use[1]
        try:
            if name in BLOCKING and is_blocking(name, args):
                if connection.state.is_plain():
                    return await self._run_blocking(name, args, data)
                if not connection.state.in_transaction():
                    # Session state it depends on (a SELECTed db ...): it runs here.
                    return await self._block(connection, name, args, data,
                                             None if limit is None else self._loop.time() + limit,
                                             own=True)
            if connection.write_paused:
                stopped = await self._writable(connection, limit)
                if stopped is not None:
                    return None, stopped
            plan = connection.state.plan_named(name, args)
            if plan is None:
                future: asyncio.Future[Any] = connection.request(data)
            elif plan.__class__ is UsageError:
                return None, plan
            else:
                future = connection.request_batch(data, 1, [plan])  # type: ignore[list-item]
            if limit is None:
                value = await future
            else:
                handle = self._loop.call_later(limit, connection.time_out, future)
                try:
                    value = await future
                finally:
                    handle.cancel()
            if plan is not None and not isinstance(value, Error):
                value = value[0]  # the first reply is the command's own
            if value is None:
                return None, NOT_FOUND
            if isinstance(value, Error):
                return None, value
            return value, None
        finally:
            if written is not None:
                self._wrote(cache, written)  # type: ignore[arg-type]  # (set with cache)

    async def _answered(
        self, connection: RedisProtocol, future: asyncio.Future[list[Reply] | Error],
        limit: float | None,
    ) -> list[Reply] | Error:
        """A batch's replies, within ``limit`` (past it the connection is closed).

        (``cmd()`` has the same steps inline: its hot path saves the frame.)
        """
        if limit is None:
            return await future
        handle = self._loop.call_later(limit, connection.time_out, future)
        try:
            return await future
        finally:
            handle.cancel()

    def _wrote(self, cache: Cache, written: Keys) -> None:
        """Forget what an own write changed: in the cache of the connection it was
        sent on, and in this client's current one (a reconnect may have come between)."""
        cache.wrote(written)
        current = self._connection.cache
        if current is not None and current is not cache:
            current.wrote(written)

    async def _through_cache(
        self, connection: RedisProtocol, cache: Cache, keys: Keys, args: tuple[object, ...],
        data: bytes, limit: float | None,
    ) -> tuple[Reply, Error | None]:
        """A cacheable read: from the cache, or from the server and then kept."""
        where = key_for(args, data)
        value = cache.lookup(where)
        if isinstance(value, Marker):  # a miss
            if connection.write_paused:
                stopped = await self._writable(connection, limit)
                if stopped is not None:
                    return None, stopped
            fill = cache.begin(keys)  # type: ignore[arg-type]  # (a read's keys: a list)
            sent = time.monotonic()
            try:
                replies = await self._answered(connection, connection.request_batch(
                    data + expiry_probe(fill.keys), 1 + len(fill.keys), None), limit)
            except BaseException:
                cache.abandon(fill)  # the caller left: nothing is kept
                raise
            if isinstance(replies, Error):
                cache.abandon(fill)
                return None, replies
            # Kept only if no invalidation of its keys arrived before it was taken.
            value = cache.finish(fill, where, replies, sent)
        if value is None:
            return None, NOT_FOUND
        if isinstance(value, Error):
            return None, value
        return value, None

    async def pipeline(
        self, commands: Sequence[Sequence[object]] | None
    ) -> tuple[list[list[Reply]] | None, Error | None]:
        """Send many commands in one write and read all their replies.

        Each result is ``[value]``, ``[None]`` for a NULL reply, or
        ``[None, err]`` for a Redis error. A network error part-way returns
        ``(None, err)``. The commands are contiguous on the wire, so a
        ``MULTI ... EXEC`` pipeline is a real transaction even on a shared
        client.
        """
        if self._closed:
            return None, CLOSED
        if commands is None:
            return [], None
        encoded = encode_pipeline(commands)
        if isinstance(encoded, UsageError):
            return None, encoded
        data, commands = encoded  # (the commands as encoded: copies)
        if not commands:
            return [], None
        connection = self._connection
        limit = self._timeout
        if connection.error is not None or self._loop is not _running_loop():
            ready = await self._reconnected()
            if isinstance(ready, Error):
                return None, ready
            connection, limit = ready
        if connection.write_paused:
            stopped = await self._writable(connection, limit)
            if stopped is not None:
                return None, stopped
        plans = connection.state.plan_batch(commands)
        if isinstance(plans, UsageError):
            return None, plans
        count = len(plans)
        cache = connection.cache
        written = None if cache is None else cache.written_by(commands)
        future = connection.request_batch(
            data, count, None if plans.count(None) == count else plans
        )
        try:
            replies = await self._answered(connection, future, limit)
        finally:
            if written is not None:
                self._wrote(cache, written)  # type: ignore[arg-type]  # (set with cache)
        if isinstance(replies, Error):
            return None, replies
        return [
            [None] if value is None
            else [None, value] if value.__class__ is ServerError
            else [value]
            for value in replies
        ], None

    async def read(self) -> tuple[ReadResult | None, Error | None]:
        """Read one reply nobody else waits for, with its RESP type tag.

        Typical use is pub/sub: ``cmd("SUBSCRIBE", "ch")``, then ``read()`` in a
        loop for ``["message", "ch", payload]``. A ``read()`` that times out
        before any byte of a value arrived returns ``(None, "timeout")`` and
        the connection stays usable. On a connection that is neither
        subscribed nor monitoring, with nothing kept, nothing can arrive:
        ``read()`` returns a ``UsageError`` at once.
        """
        if self._closed:
            return None, CLOSED
        if self._lost is not None:
            return None, self._lost
        connection = self._connection
        foreign = self._foreign_loop()
        if foreign is not None:
            return None, foreign
        push = connection.take_push()
        if push is None:
            if connection.error is not None:
                return None, connection.error
            future = connection.wait_push()
            handle = None
            if self._timeout is not None:
                handle = self._loop.call_later(
                    self._timeout, connection.read_timed_out, future
                )
            try:
                item = await future
            except asyncio.CancelledError:
                connection.dispatch.forget_reader(future)
                if future.done() and not future.cancelled():
                    delivered = future.result()
                    if not isinstance(delivered, Error):
                        connection.dispatch.return_push(delivered)  # nothing is lost
                raise
            finally:
                if handle is not None:
                    handle.cancel()
            if isinstance(item, Error):
                return None, item
            push = item
        kind, value = push
        return ReadResult(type=_TAGS[kind], value=value), None

    async def close(self, no_keepalive: bool = False) -> bool:
        """Return the connection to the pool (or close it); always ``True``.

        It is closed instead when ``no_keepalive`` is true, the pool is full,
        or the connection is not clean (a reply owed, subscribed, inside
        MULTI, after SELECT of another db ...). Later calls return
        ``(None, "closed")``. Called from another thread while the client's
        loop runs there, the close is done on that loop.
        """
        if self._closed:
            return True
        home = self._loop
        if home.is_running() and _running_loop() is not home:
            # Its loop runs in another thread: the close is done there, where
            # its socket lives (awaited when this thread has a loop of its own).
            done = asyncio.run_coroutine_threadsafe(self.close(no_keepalive), home)
            if _running_loop() is not None:
                await asyncio.wrap_future(done)
            return True
        self._closed = True
        if self._closing is not None and not self._closing.done():
            self._closing.set_result(None)  # blocking commands still waiting end now
        connection = self._connection
        if self._own_blocking:
            # Blocking commands on this very connection: recover them (a pop
            # put back) before the connection is released or closed.
            for future, (name, args) in list(self._own_blocking.items()):
                if not future.done():
                    self._recover(connection, future, name, args, own=True)
        recovering = [r for r in RECOVERING if r.connection is connection]
        if recovering:
            # All of them are leaving now: each may be unblocked in its turn.
            for recovery in recovering:
                if recovery.kick is not None:
                    recovery.kick()
            pending = [r.finished for r in recovering]
            if pending:
                await asyncio.wait(pending, timeout=RECOVERY_LIMIT + 1)
        _pool.release(connection, self._key, self._loop, keepalive=not no_keepalive)
        if (connection.error is not None and connection.transport is not None
                and asyncio._get_running_loop() is self._loop):
            # Closed, not pooled: return once the socket is closed (bounded:
            # a transport that never reports back must not hang close()).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_CLOSE_WAIT):
                    await asyncio.shield(connection.closed)
        return True

    def __del__(self) -> None:
        # A client dropped without close(): say so, and free its connection
        # (on its own loop: this may run in any thread, or after the loop).
        if getattr(self, "_closed", True):
            return
        kwargs: dict[str, Any] = {"source": self}
        warnings.warn(f"unclosed {self!r}: call await client.close()", ResourceWarning,
                      **kwargs)
        self._closed = True
        if self._created_at is not None:
            _log.warning("unclosed %r, created at:\n%s", self, "".join(
                traceback.format_list(self._created_at)))
        loop = self._loop
        if not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(
                    _pool.release, self._connection, self._key, loop, False)

    async def _writable(self, connection: RedisProtocol, limit: float | None) -> Error | None:
        """Wait (within ``limit``) while the write buffer is full; why not to send, or None."""
        try:
            async with asyncio.timeout(limit):
                await connection.writable()
        except TimeoutError:
            return TIMEOUT
        if self._closed:
            return CLOSED
        return connection.error

    # -- blocking commands -------------------------------------------------------

    async def _run_blocking(
        self, name: str, args: Sequence[object], data: bytes
    ) -> tuple[Reply, Error | None]:
        """Run a blocking command on a connection of its own, if one is free.

        At the cap (no idle connection, none may be opened) it runs on the
        client's own connection rather than wait for one: a blocking
        command must never wait for a connection that another blocking
        command holds.
        """
        loop = self._loop
        deadline = None if self._timeout is None else loop.time() + self._timeout
        connection = await _pool.acquire(self._config, self._key, loop, deadline, wait=False)
        if isinstance(connection, Error):
            return None, connection
        if self._closed:
            if connection is not None:
                _pool.release(connection, self._key, loop, keepalive=True)
            return None, CLOSED
        if connection is None:  # at the cap
            return await self._block(self._connection, name, args, data, deadline, own=True)
        return await self._block(connection, name, args, data, deadline, own=False)

    async def _block(
        self, connection: RedisProtocol, name: str, args: Sequence[object], data: bytes,
        deadline: float | None, own: bool,
    ) -> tuple[Reply, Error | None]:
        """Send a blocking command on ``connection``; if its caller leaves, recover."""
        loop = self._loop
        asked_id = connection.request(_CLIENT_ID) if connection.client_id is None else None
        future = connection.request(data)
        if own:
            self._own_blocking[future] = (name, args)
        if asked_id is not None:
            asked_id.add_done_callback(lambda answer: _note_client_id(connection, answer))
        try:
            remaining = None if deadline is None else deadline - loop.time()
            if self._closing is None:
                self._closing = loop.create_future()
            # asyncio.wait cancels neither: the reply is still read if we leave.
            await asyncio.wait((future, self._closing), timeout=remaining,
                               return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            # The caller left: the server may still pop for it. Recover in
            # the background, so nothing is lost and the caller goes now.
            self._recover(connection, future, name, args, own)
            raise
        if own and future not in self._own_blocking:
            # close() handed this one to a recovery: its answer is put back,
            # so the caller must not have it too.
            return None, CLOSED
        if not future.done():  # the timeout, or close() while it waited
            self._recover(connection, future, name, args, own)
            return None, CLOSED if self._closed else TIMEOUT
        value = future.result()
        if own:
            self._own_blocking.pop(future, None)
        else:
            _pool.release(connection, self._key, loop, keepalive=True)
        if value is None:
            return None, NOT_FOUND
        if isinstance(value, Error):
            return None, value
        return value, None

    def _recover(
        self, connection: RedisProtocol, future: asyncio.Future[Reply], name: str,
        args: Sequence[object], own: bool,
    ) -> None:
        if own and self._own_blocking.pop(future, None) is None:
            return  # close() started this one's recovery already
        key, loop = self._key, self._loop

        def done(clean: bool) -> None:
            if not clean:
                connection.abort(CLOSED)
            if not own:
                _pool.release(connection, key, loop, keepalive=clean)

        elsewhere = None
        if own:
            config_here = dataclasses.replace(self._config, db=connection.state.current_db)

            async def put_back_elsewhere(command: list[object]) -> Reply:
                # A short-lived connection, on the db the command ran in.
                extra = await open_connection(config_here, loop, RECOVERY_LIMIT)
                if isinstance(extra, Error):
                    return extra
                try:
                    return await extra.request(encode_command(command))
                finally:
                    extra.close(CLOSED)

            elsewhere = put_back_elsewhere
        recovery = Recovery(connection, future, name, args, done, elsewhere)
        if not own:
            # The client's own connection carries the CLIENT UNBLOCK.
            recovery.start(self._connection)
            return
        recovery.start(None)
        config = self._config

        def alone() -> bool:
            # CLIENT UNBLOCK names a connection, not a command: with another
            # blocking command queued on it, it could cut that one short.
            # Then the server is left to answer (the pop is put back).
            # Once the client is closing, every one of them is leaving.
            return self._closed or not any(not other.done() for other in self._own_blocking)

        async def unblock(client_id: int) -> None:
            command = encode_command(["CLIENT", "UNBLOCK", client_id])
            other = await _pool.acquire(config, key, loop, loop.time() + RECOVERY_LIMIT,
                                        wait=False)
            if other is None:
                # At the cap, possibly with this very connection the only
                # one: a short-lived connection beyond the cap says it.
                extra = await open_connection(config, loop, RECOVERY_LIMIT)
                if not isinstance(extra, Error):
                    try:
                        if still_its_turn():
                            await extra.request(command)
                            recovery.arm()  # answered by now, or the connection goes
                    finally:
                        extra.close(CLOSED)
            elif not isinstance(other, Error):
                try:
                    if still_its_turn():
                        await other.request(command)
                        recovery.arm()
                finally:
                    _pool.release(other, key, loop, keepalive=True)

        def still_its_turn() -> bool:
            waiters = connection.dispatch.waiters
            return (not future.done() and connection.error is None and alone()
                    and bool(waiters) and waiters[0] is future)

        def when_its_turn() -> None:
            # CLIENT UNBLOCK names a connection, not a command: only the
            # command the server is running now (the head of the queue) may
            # be unblocked, or another caller's BLPOP would be cut short.
            if future.done() or recovery.finished.done() or connection.error is not None:
                return
            if not alone():
                return  # the server answers in its time; the pop is put back then
            waiters = connection.dispatch.waiters
            if not (waiters and waiters[0] is future) or connection.client_id is None:
                loop.call_later(0.05, when_its_turn)
                return
            task = loop.create_task(unblock(connection.client_id))
            _UNBLOCKING.add(task)
            task.add_done_callback(_UNBLOCKING.discard)

        recovery.kick = when_its_turn
        when_its_turn()

    # -- reconnecting ----------------------------------------------------------

    async def _reconnected(self) -> tuple[RedisProtocol, float | None] | Error:
        """A usable connection for a call whose own failed, and the time the call has left.

        One deadline: what the reconnect took comes off the call's timeout.
        """
        foreign = self._foreign_loop()
        if foreign is not None:
            return foreign
        clock = self._loop
        started = clock.time()
        usable = await self._usable_connection()
        if isinstance(usable, Error):
            return usable
        if self._closed:  # closed while this call awaited the reconnect
            return CLOSED
        limit = self._timeout
        if limit is not None:
            limit -= clock.time() - started
            if limit <= 0:
                return TIMEOUT
        return usable, limit

    def _foreign_loop(self) -> UsageError | None:
        """Why this call cannot run here (no loop, or another loop than the client's)."""
        running = _running_loop()
        if running is self._loop:
            return None
        return _NO_LOOP if running is None else _WRONG_LOOP

    async def _usable_connection(self) -> RedisProtocol | Error:
        """Replace a failed connection, unless it held state a new one lacks."""
        foreign = self._foreign_loop()
        if foreign is not None:
            return foreign
        if self._lost is not None:
            return self._lost
        dead = self._connection
        if dead.error is None:
            return dead
        if dead.error is FORKED:
            return FORKED  # never reconnect on an event loop inherited through fork()
        held = dead.state.unpoolable_reason()
        _pool.release(dead, self._key, self._loop, keepalive=False)
        if held is not None:
            self._lost = NetworkError(
                f"connection lost ({dead.error}) while it held session state "
                f"({held}); close this client and connect again"
            )
            return self._lost
        task = self._reconnecting
        if task is None:
            task = self._reconnecting = self._loop.create_task(self._replace())
        # Shielded: a cancelled caller must not cancel the others' reconnect;
        # bounded by this caller's own timeout (the reconnect may be older).
        try:
            async with asyncio.timeout(self._timeout):
                return await asyncio.shield(task)
        except TimeoutError:
            return TIMEOUT

    async def _replace(self) -> RedisProtocol | Error:
        try:
            connection = await _pool.acquire(self._config, self._key, self._loop)
        finally:
            self._reconnecting = None
        if isinstance(connection, Error):
            return connection
        if self._closed:
            _pool.release(connection, self._key, self._loop, keepalive=True)
            return CLOSED
        self._connection = connection
        return connection


def encode_pipeline(
    commands: object,
) -> tuple[bytes, Sequence[Sequence[object]]] | UsageError:
    """A pipeline's commands encoded back to back, and the commands as encoded; or
    why the pipeline is malformed.

    Each command is copied once into a tuple (mutable buffers into ``bytes``),
    and the copies are what is both encoded and planned: neither a change the
    caller makes while the pipeline waits nor a subclass's ``__len__`` or
    ``__iter__`` can make the bytes sent and the replies expected disagree.
    """
    if _resp.compiled_encode_many is not None:
        encoded = _resp.compiled_encode_many(commands)  # type: ignore[arg-type]
        if encoded is not None:  # exact lists and tuples of plain arguments, copied
            return encoded
    if not issubclass(type(commands), (list, tuple)):
        return UsageError(
            f"pipeline() takes a list of commands (got {_resp.type_name(type(commands))})")
    parts = []
    taken: list[Sequence[object]] = []
    try:
        entries: Sequence[Any] = (commands if type(commands) in (list, tuple)  # type: ignore[assignment]
                                  else list(commands))  # type: ignore[call-overload]
        for position, args in enumerate(entries, 1):
            if not issubclass(type(args), (list, tuple)):
                return UsageError(f"pipeline entry {position} is not a list of arguments "
                                  f"(got {_resp.type_name(type(args))})")
            try:
                args = frozen(args)
                parts.append(encode_command(args))
            except ArgumentError as exc:
                return UsageError(f"pipeline entry {position}: {exc}")
            taken.append(args)
    except Exception as exc:  # a subclass whose iteration raises
        return UsageError(f"pipeline() could not read its commands ({type(exc).__name__})")
    return b"".join(parts), taken


_CLIENT_ID: Final = encode_command(["CLIENT", "ID"])


def _note_client_id(connection: RedisProtocol, answer: asyncio.Future[Reply]) -> None:
    value = answer.result()
    if isinstance(value, int):
        connection.client_id = value
#: How long close() waits for a closed socket's last word.
_CLOSE_WAIT: Final = 1.0
_log: Final = logging.getLogger("levredis")
# CLIENT UNBLOCKs sent from another connection (kept from the GC).
_UNBLOCKING: set[asyncio.Task[None]] = set()

_WRONG_LOOP: Final = UsageError(
    "this client belongs to another event loop: connect() again on this one"
)


async def connect(
    config: str | Mapping[str, Any] | None = None,
) -> tuple[Client, None] | tuple[None, Error]:
    """Open (or take from the pool) a connection: ``(client, None)`` or ``(None, err)``.

    ``config`` is ``None`` (``127.0.0.1:6379``), ``"host:port[/db]"``, a
    ``redis://`` or ``rediss://`` URL, or a mapping with ``host``, ``port``,
    ``db``, ``timeout``, ``ssl``, ``auth={"user": ..., "pass": ...}`` and
    ``decode``::

        client, err = await levredis.connect({"host": "127.0.0.1", "db": 2})
        if client is None:
            raise SystemExit(f"redis: {err}")
    """
    parsed = parse_config(config)
    if isinstance(parsed, ConfigError):
        return None, parsed
    return await connect_with(parsed)


async def connect_with(config: Config) -> tuple[Client, None] | tuple[None, Error]:
    """``connect()`` for a config validated already (the cluster's node configs)."""
    loop = asyncio._get_running_loop()
    if loop is None:
        return None, _NO_LOOP
    key = _pool.pool_key(config)
    connection = await _pool.acquire(config, key, loop)
    if isinstance(connection, Error):
        return None, connection
    return Client(config, key, loop, connection), None


def pool_stats() -> list[_pool.PoolStats]:
    """Per pool key of the running loop: idle, in-use, created, reused, discarded.

    Keys read ``host:port/db[+ssl][ user=NAME]``; they never hold a password.
    """
    loop = asyncio._get_running_loop()
    return _pool.stats(loop) if loop is not None else []


async def close_pool() -> int:
    """Close every idle pooled connection of the running loop (e.g. at shutdown).

    Returns how many were closed.
    """
    loop = asyncio._get_running_loop()
    return _pool.close_idle(loop) if loop is not None else 0
