"""One connection's I/O: an ``asyncio.Protocol`` around the sans-I/O layers.

Bytes in go to the parser (``_resp``), each parsed reply to the dispatcher
(``_dispatch``), which asks the session state machine (``_state``) whether it
is a push or the reply the head of the FIFO waits for. Commands out go
through the state machine first (refused, or planned), then to the socket;
writes made while replies are in flight are coalesced into one per loop
iteration. This file owns the transport, the timeouts' effect on it, and
the connection's end.
"""

from __future__ import annotations

import asyncio
import os
import weakref
from typing import Final, NamedTuple

from ._cache import Cache
from ._dispatch import Batch, Dispatcher, Push, UnsolicitedReply
from ._errors import TIMEOUT, Error, NetworkError, ProtocolError, ServerError, error_from_exception
from ._resp import Parser, Reply, RespError, new_parser
from ._resp3 import Resp3Parser
from ._state import Plan, SessionState

_PING: Final = b"*1\r\n$4\r\nPING\r\n"


class PushLimits(NamedTuple):
    """How much ``read()`` may fall behind before the socket is not read any more."""

    max_pushes: int = 10_000
    max_push_bytes: int = 64 * 1024 * 1024


DEFAULT_PUSH_LIMITS: Final = PushLimits()


#: What an inherited connection says in a forked child.
FORKED: Final = NetworkError(
    "this connection belongs to the parent process (inherited through fork()): "
    "connect() again in the child, on an event loop of its own"
)
# Every open connection of this process, to abandon them in a forked child.
_live: weakref.WeakSet[RedisProtocol] = weakref.WeakSet()


def _abandon_after_fork() -> None:
    """In a forked child: fail inherited connections without touching their sockets.

    Their transports and the event loop's selector are the parent's (an
    epoll instance is shared across fork()): closing them here would
    unregister the parent's sockets.
    """
    for connection in list(_live):
        connection.transport = None
        connection._fail(FORKED)
    _live.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_abandon_after_fork)


class RedisProtocol(asyncio.Protocol):
    """The I/O of one Redis connection."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, db: int, decode: bool, authenticated: bool = False,
        limits: PushLimits = DEFAULT_PUSH_LIMITS, resp3: bool = False,
    ) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        # One parser for the connection's life: strict, with exact type tags.
        self.parser: Parser | Resp3Parser = Resp3Parser(decode) if resp3 else new_parser(decode)
        self.state = SessionState(db, authenticated, resp3)
        self.dispatch = Dispatcher(self.state)
        #: Set once the connection is unusable; every later call returns it.
        self.error: Error | None = None
        #: Pool bookkeeping: when it was last returned, and whether a client holds it.
        self.idle_since = 0.0
        self.checked_out = False
        #: A read() timed out on it: usable, but not clean enough to pool.
        self.had_read_timeout = False
        #: The server's CLIENT ID for it, once a blocking command needed it.
        self.client_id: int | None = None
        #: Bounds on unread pushes, and whether reading stopped at them.
        self.limits = limits
        self.reading_paused = False
        # Set while the transport asks writers to pause.
        self._writable: asyncio.Future[None] | None = None
        #: Done once the socket is closed (connection_lost).
        self.closed: asyncio.Future[None] = loop.create_future()
        self._pending_writes: list[bytes] | None = None
        #: The client-side cache its tracking keeps fresh (a caching config only).
        self.cache: Cache | None = None

    def cache_to_sync(self) -> bool:
        """Its cache holds entries: before a new user reads them, one round trip must
        bring in the invalidations already on their way."""
        return self.cache is not None and len(self.cache) > 0

    def attach_cache(self, cache: Cache) -> None:
        """Give the connection a cache: invalidation pushes go to it, not to ``read()``."""
        self.cache = self.dispatch.cache = cache
        self.state.caching = True

    # -- asyncio callbacks -------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        _live.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(error_from_exception(exc))
        _live.discard(self)
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        parser = self.parser
        parser.feed(data)
        dispatch = self.dispatch
        try:
            dispatch.deliver(parser)
            if dispatch.pushes and not self.reading_paused and (
                    len(dispatch.pushes) > self.limits.max_pushes
                    or dispatch.push_bytes > self.limits.max_push_bytes):
                # Nobody reads fast enough: stop reading the socket, so the
                # server's own output-buffer limit protects both sides.
                self.reading_paused = True
                if self.transport is not None:
                    self.transport.pause_reading()
        except UnsolicitedReply as exc:
            if isinstance(exc.reply, ServerError):
                self.abort(exc.reply)  # the server's own words, e.g. maxclients
            else:
                self.abort(ProtocolError(f"protocol error: {exc}"))
        except RespError as exc:
            self.abort(ProtocolError(f"protocol error: {exc}"))
        except Exception as exc:  # a last guard: never let one bad reply escape
            self.abort(ProtocolError(f"protocol error: {type(exc).__name__}: {exc}"))

    def set_decode(self, decode: bool) -> None:
        if self.parser.decode != decode and self.cache is not None:
            self.cache.clear()  # its replies were decoded the other way
        self.parser.decode = decode

    # -- sending -------------------------------------------------------------

    def request(self, data: bytes) -> asyncio.Future[Reply]:
        """Send one plain command (one reply); the future gets the reply."""
        future: asyncio.Future[Reply] = self.loop.create_future()
        if self.error is not None:
            # Failed since the caller last looked (its await let the loss in):
            # nothing is sent, and the caller learns why at once.
            future.set_result(self.error)
            return future
        self._write(data)
        self.dispatch.waiters.append(future)
        return future

    def request_batch(
        self, data: bytes, count: int, plans: list[Plan | None] | None
    ) -> asyncio.Future[list[Reply] | Error]:
        """Send ``count`` commands in one write; the future gets their first replies.

        ``plans`` are the session state's plans for them (None: all plain).
        """
        future: asyncio.Future[list[Reply] | Error] = self.loop.create_future()
        if self.error is not None:
            future.set_result(self.error)
            return future
        self._write(data)
        self.dispatch.waiters.append(Batch(future, count, plans))
        return future

    def ping(self) -> asyncio.Future[Reply]:
        return self.request(_PING)

    def _write(self, data: bytes) -> None:
        # With replies in flight, writes of this loop iteration are coalesced
        # into one transport.write; an idle connection writes at once.
        if self._pending_writes is not None:
            self._pending_writes.append(data)
        elif self.dispatch.waiters:
            self._pending_writes = [data]
            self.loop.call_soon(self._flush)
        else:
            assert self.transport is not None
            self.transport.write(data)

    def _flush(self) -> None:
        pending = self._pending_writes
        self._pending_writes = None
        if pending and self.error is None and self.transport is not None:
            self.transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    # -- read() ----------------------------------------------------------------

    def take_push(self) -> Push | None:
        dispatch = self.dispatch
        push = dispatch.take_push()
        if self.reading_paused and (
                len(dispatch.pushes) <= self.limits.max_pushes // 2
                and dispatch.push_bytes <= self.limits.max_push_bytes // 2):
            self.reading_paused = False  # drained below the low-water mark
            if self.transport is not None and self.error is None:
                self.transport.resume_reading()
        return push

    # -- write flow control ------------------------------------------------------

    def pause_writing(self) -> None:
        if self._writable is None:
            self._writable = self.loop.create_future()

    def resume_writing(self) -> None:
        writable, self._writable = self._writable, None
        if writable is not None and not writable.done():
            writable.set_result(None)

    @property
    def write_paused(self) -> bool:
        return self._writable is not None

    async def writable(self) -> None:
        """Wait while the socket's write buffer is over its high-water mark."""
        while self._writable is not None and self.error is None:
            await asyncio.shield(self._writable)

    def wait_push(self) -> asyncio.Future[Push | Error]:
        future: asyncio.Future[Push | Error] = self.loop.create_future()
        if self.error is not None:
            future.set_result(self.error)
        else:
            self.dispatch.wait_push(future)
        return future

    def read_timed_out(self, future: asyncio.Future[Push | Error]) -> None:
        """A ``read()`` timed out.

        Mid-way through a value that can only be a push (no caller waits for
        a reply), the connection is closed: the rest of that value would be
        unframed. Otherwise it stays usable — a partial reply then belongs to,
        or may belong to, another caller — but is not clean enough to pool.
        """
        if future.done():
            return
        if self.parser.has_partial() and not self.dispatch.waiters:
            self.abort(TIMEOUT)
            return
        self.dispatch.forget_reader(future)
        future.set_result(TIMEOUT)
        self.had_read_timeout = True

    # -- state ----------------------------------------------------------------

    def time_out(self, future: asyncio.Future[Reply] | asyncio.Future[list[Reply] | Error]) -> None:
        """A command's timeout fired: the connection is stalled, close it."""
        if not future.done():
            self.abort(TIMEOUT)
        if not future.done():  # not a waiter of this connection: still never hang
            future.set_result(TIMEOUT)

    def unpoolable_reason(self) -> str | None:
        """Why this connection must be closed rather than pooled, or None."""
        if self.error is not None:
            return f"connection failed: {self.error}"
        dispatch = self.dispatch
        if dispatch.waiters:
            return "replies still owed"
        if dispatch.readers:
            return "a read() still waits on it"
        if dispatch.pushes or self.parser.has_partial():
            return "unread replies"
        if self.had_read_timeout:
            return "a read() timed out"
        return self.state.unpoolable_reason()

    def abort(self, error: Error) -> None:
        """Close at once; every pending caller gets ``error``."""
        self._fail(error)
        if self.transport is not None and not self.loop.is_closed():
            self.transport.abort()

    def close(self, error: Error) -> None:
        """Close politely (pending writes are flushed); callers get ``error``."""
        self._fail(error)
        if self.transport is not None and not self.loop.is_closed():
            self.transport.close()

    def _fail(self, error: Error) -> None:
        if self.error is not None:
            return
        self.error = error
        self.parser.clear()  # nothing more is read: what is half-read is let go
        if self.cache is not None:
            self.cache.drop()  # the server tracks nothing for us any more
        self.dispatch.fail(error)
        self.resume_writing()  # writers waiting for the buffer to drain learn it now


__all__ = ["RedisProtocol"]
