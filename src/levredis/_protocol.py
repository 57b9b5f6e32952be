"""One connection's I/O: an ``asyncio.Protocol`` with a FIFO of pending replies.

Replies are parsed straight from ``data_received`` and resolve the waiting
callers' futures in the order the commands were written, so a reply can only
ever reach the caller that sent its command. A caller that gives up
(cancellation) leaves its slot in the FIFO: its reply is read and dropped.

Replies nobody waits for (pub/sub messages, MONITOR lines, the extra
confirmations of a multi-channel SUBSCRIBE) are kept, in order, for ``read()``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Final

from ._errors import TIMEOUT, Error, ProtocolError, error_from_exception
from ._hiredis import HiredisParser, hiredis_wanted
from ._resp import ARRAY, ERROR, Parser, Reply, RespError, _Incomplete
from ._session import ONE_PER_SUBSCRIPTION, Session

#: Bytes kept for an exact re-parse while hiredis is in the middle of replies.
REPLAY_LIMIT: Final = 1024 * 1024

#: A reply kept for ``read()``: its type byte and its value.
Push = tuple[int, Reply]

_MESSAGE_KINDS: Final = frozenset(
    {"message", "pmessage", "smessage", b"message", b"pmessage", b"smessage"}
)
# Confirmation kind → the subscription set it changes, and whether it adds.
_CONFIRMATIONS: Final = {
    "subscribe": ("subscribe", True),
    "psubscribe": ("psubscribe", True),
    "ssubscribe": ("ssubscribe", True),
    "unsubscribe": ("subscribe", False),
    "punsubscribe": ("psubscribe", False),
    "sunsubscribe": ("ssubscribe", False),
}


class Batch:
    """The waiter of a pipeline, or of a command that owes several replies.

    ``expects[i]`` is how many replies command ``i`` owes; the first one is
    its result, the others (SUBSCRIBE a b c confirms each channel) go to
    ``read()``. ``expects`` is None when every command owes exactly one.
    """

    __slots__ = ("_index", "_seen", "count", "expects", "future", "kinds", "results")

    def __init__(
        self,
        future: asyncio.Future[list[Reply] | Error],
        count: int,
        expects: list[int] | None = None,
        kinds: list[str | None] | None = None,
    ) -> None:
        self.future = future
        self.results: list[Reply] = []
        self.count = count
        self.expects = expects
        self.kinds = kinds
        self._index = 0
        self._seen = 0

    def add(self, value: Reply, kind: int, connection: RedisProtocol) -> bool:
        """Take one reply; True when the batch is complete."""
        if self.expects is None:
            self.results.append(value)
        elif not self._add_counted(value, kind, connection):
            return False
        if len(self.results) < self.count:
            return False
        if not self.future.done():
            self.future.set_result(self.results)
        return True

    def _add_counted(self, value: Reply, kind: int, connection: RedisProtocol) -> bool:
        assert self.expects is not None and self.kinds is not None
        index = self._index
        confirms = self.kinds[index]
        need = self.expects[index]
        if need == ONE_PER_SUBSCRIPTION:
            need = self.expects[index] = max(1, connection.subscription_count(confirms))
        if self._seen == 0:
            self.results.append(value)
        else:
            connection.push(kind, value)
        if confirms is not None and kind == ARRAY:
            connection.track_confirmation(value)
        self._seen += 1
        # An error (bad arity, NOPERM, CROSSSLOT) is the only reply owed.
        if kind == ERROR or self._seen >= need:
            self._index += 1
            self._seen = 0
            return True
        return False


class RedisProtocol(asyncio.Protocol):
    """The I/O of one Redis connection."""

    def __init__(self, loop: asyncio.AbstractEventLoop, db: int, decode: bool) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        # The pure parser has exact type tags; hiredis, when installed, is
        # faster and takes over while every reply has a caller waiting for it.
        self.parser = Parser(decode)
        self._fast = HiredisParser(decode) if hiredis_wanted() else None
        self._fast_active = False
        self._read_used = False
        # What hiredis was fed since its last reply boundary, to parse again
        # exactly if a reply nobody waits for turns up (see data_received).
        self._replay: list[bytes] | None = None
        self._replay_size = 0
        self._replay_count = 0
        self.session = Session(db)
        #: Set once the connection is unusable; every later call returns it.
        self.error: Error | None = None
        #: Pool bookkeeping: when it was last returned, and whether a client holds it.
        self.idle_since = 0.0
        self.checked_out = False
        #: A read() timed out on it: usable, but not clean enough to pool.
        self.had_read_timeout = False
        self._waiters: deque[asyncio.Future[Reply] | Batch] = deque()
        self._pushes: deque[Push] = deque()
        self._readers: deque[asyncio.Future[Push | Error]] = deque()
        self._pending_writes: list[bytes] | None = None
        self._subscriptions: dict[str, set[Reply]] = {
            "subscribe": set(),
            "psubscribe": set(),
            "ssubscribe": set(),
        }

    # -- asyncio callbacks -------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(error_from_exception(exc))

    def data_received(self, data: bytes) -> None:
        parser = self._active_parser()
        if parser is self._fast:
            self._remember(data, parser)
        parser.feed(data)
        try:
            while True:
                value = parser.next_reply()
                if isinstance(value, _Incomplete):
                    return
                if parser is self._fast:
                    if not self._waiters and self._replay is not None:
                        # Nobody waits for this reply: it may reach read(),
                        # whose type tags only the pure parser knows. Parse
                        # again, exactly, from the last reply boundary.
                        parser = self._replay_with_pure_parser()
                        continue
                    self._replay_count += 1
                if self.session.pubsub and self._is_message(value):
                    self.push(parser.kind, value)
                else:
                    self._deliver(value, parser.kind)
        except RespError as exc:
            self.abort(ProtocolError(f"protocol error: {exc}"))
        except Exception as exc:  # a last guard: never let one bad reply escape
            self.abort(ProtocolError(f"protocol error: {type(exc).__name__}: {exc}"))

    def _remember(self, data: bytes, fast: HiredisParser) -> None:
        """Keep the bytes hiredis parses since its last reply boundary (up to a bound)."""
        if not fast.has_partial():
            self._replay = [data]
            self._replay_size = len(data)
            self._replay_count = 0
        elif self._replay is not None:
            self._replay.append(data)
            self._replay_size += len(data)
            if self._replay_size > REPLAY_LIMIT:
                self._replay = None  # too much to keep: tags of strings are inferred

    def _replay_with_pure_parser(self) -> Parser:
        assert self._replay is not None and self._fast is not None
        pure = Parser(self.parser.decode)
        pure.feed(b"".join(self._replay))
        for _ in range(self._replay_count):  # delivered already, by hiredis
            pure.next_reply()
        self.parser = pure
        self._fast = HiredisParser(pure.decode)  # drops what hiredis had buffered
        self._fast_active = False
        self._replay = None
        return pure

    def _active_parser(self) -> Parser | HiredisParser:
        """hiredis while callers wait for every reply; the exact parser otherwise.

        The switch only happens between replies (the parser in use holds no
        partial one), so no byte is ever parsed twice or lost.
        """
        fast = self._fast
        if fast is None:
            return self.parser
        session = self.session
        suits = bool(self._waiters) and not (
            session.pubsub or session.monitor or self._read_used
        )
        if self._fast_active:
            if suits or fast.has_partial():
                return fast
            self._fast_active = False
            return self.parser
        if suits and not self.parser.has_partial():
            self._fast_active = True
            return fast
        return self.parser

    def set_decode(self, decode: bool) -> None:
        self.parser.decode = decode
        if self._fast is not None:
            self._fast.decode = decode

    def has_partial(self) -> bool:
        """Some bytes of a reply arrived, but not all of it."""
        if self._fast_active and self._fast is not None:
            return self._fast.has_partial()
        return self.parser.has_partial()

    def _deliver(self, value: Reply, kind: int) -> None:
        """Hand a reply to the caller at the head of the FIFO (or to read())."""
        waiters = self._waiters
        if not waiters:
            self.push(kind, value)
            return
        waiter = waiters[0]
        if isinstance(waiter, Batch):
            if waiter.add(value, kind, self):
                waiters.popleft()
        else:
            waiters.popleft()
            if not waiter.done():  # a cancelled caller's reply is dropped
                waiter.set_result(value)

    # -- sending -------------------------------------------------------------

    def request(self, data: bytes) -> asyncio.Future[Reply]:
        """Send one command owing one reply; the future gets the reply."""
        future: asyncio.Future[Reply] = self.loop.create_future()
        if self.error is not None:
            # Failed since the caller last looked (its await let the loss in):
            # nothing is sent, and the caller learns why at once.
            future.set_result(self.error)
            return future
        self._write(data)
        self._waiters.append(future)
        return future

    def request_batch(
        self, data: bytes, expects: list[int], kinds: list[str | None] | None
    ) -> asyncio.Future[list[Reply] | Error]:
        """Send several commands in one write; the future gets their results.

        ``kinds`` names the subscribe-family confirmation each command owes
        (None for other commands), or is None when there is no pub/sub.
        """
        future: asyncio.Future[list[Reply] | Error] = self.loop.create_future()
        if self.error is not None:
            future.set_result(self.error)
            return future
        plain = kinds is None and all(need == 1 for need in expects)
        if plain:
            batch = Batch(future, len(expects))
        else:
            batch = Batch(future, len(expects), expects, kinds or [None] * len(expects))
        self._write(data)
        self._waiters.append(batch)
        return future

    def _write(self, data: bytes) -> None:
        # With replies in flight, writes of this loop iteration are coalesced
        # into one transport.write; an idle connection writes at once.
        if self._pending_writes is not None:
            self._pending_writes.append(data)
        elif self._waiters:
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

    # -- pushes and read() ---------------------------------------------------

    def push(self, kind: int, value: Reply) -> None:
        """Keep a reply nobody waits for, or give it to a waiting ``read()``."""
        readers = self._readers
        while readers:
            reader = readers.popleft()
            if not reader.done():
                reader.set_result((kind, value))
                return
        self._pushes.append((kind, value))

    def take_push(self) -> Push | None:
        self._read_used = True  # read() wants exact type tags from now on
        return self._pushes.popleft() if self._pushes else None

    def return_push(self, push: Push) -> None:
        """Put back a push whose reader was cancelled after receiving it."""
        self._pushes.appendleft(push)

    def wait_push(self) -> asyncio.Future[Push | Error]:
        future: asyncio.Future[Push | Error] = self.loop.create_future()
        if self.error is not None:
            future.set_result(self.error)
            return future
        self._readers.append(future)
        return future

    def forget_reader(self, future: asyncio.Future[Push | Error]) -> None:
        with contextlib.suppress(ValueError):
            self._readers.remove(future)

    def read_timed_out(self, future: asyncio.Future[Push | Error]) -> None:
        """A ``read()`` timed out: harmless before any byte of a value arrived."""
        if future.done():
            return
        if self.has_partial():
            self.abort(TIMEOUT)
            return
        self.forget_reader(future)
        future.set_result(TIMEOUT)
        self.had_read_timeout = True

    # -- pub/sub routing -------------------------------------------------------

    def _is_message(self, value: Reply) -> bool:
        """A pub/sub message (only while subscribed: before, it is a reply)."""
        if not isinstance(value, list) or not value or not self._subscribed():
            return False
        first = value[0]
        return isinstance(first, (str, bytes)) and first in _MESSAGE_KINDS

    def _subscribed(self) -> bool:
        return any(self._subscriptions.values())

    def subscription_count(self, confirmation: str | None) -> int:
        target = _CONFIRMATIONS.get(confirmation or "")
        return len(self._subscriptions[target[0]]) if target else 0

    def track_confirmation(self, value: Reply) -> None:
        """Follow the server's subscription sets from its confirmations."""
        if not isinstance(value, list) or len(value) != 3:
            return
        kind = value[0]
        if isinstance(kind, bytes):
            kind = kind.decode("ascii", "replace")
        target = _CONFIRMATIONS.get(kind) if isinstance(kind, str) else None
        if target is None:
            return
        channel = value[1]
        if channel is not None and not isinstance(channel, (str, bytes)):
            return
        channels = self._subscriptions[target[0]]
        if target[1]:
            channels.add(channel)
        else:
            channels.discard(channel)

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
        if self._waiters:
            return "replies still owed"
        if self._pushes or self.has_partial():
            return "unread replies"
        if self.had_read_timeout:
            return "a read() timed out"
        return self.session.unpoolable_reason()

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
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            future = waiter.future if isinstance(waiter, Batch) else waiter
            if not future.done():
                future.set_result(error)
        readers = self._readers
        while readers:
            reader = readers.popleft()
            if not reader.done():
                reader.set_result(error)


__all__ = ["Batch", "Push", "RedisProtocol"]
