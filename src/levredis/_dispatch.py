"""Where each parsed reply goes: the caller at the head of the FIFO, or ``read()``.

No socket here: replies are handed in one at a time (``route``), in the order
the server sent them, and resolve the callers' futures in the order their
commands were written — so a reply can only ever reach the caller that sent
its command. A caller that gives up (cancellation) keeps its place in the
FIFO: its reply is read and dropped. Replies no command owes (published
messages, MONITOR lines, the extra confirmations of ``SUBSCRIBE a b c``) are
kept, in order, for ``read()``; which is which, the session state decides.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Final

from ._cache import Cache, is_invalidation
from ._errors import Error, UsageError
from ._resp import INCOMPLETE, Parser, Reply, RespError
from ._resp3 import PUSH, Resp3Parser
from ._state import Plan, SessionState

#: A reply kept for ``read()``: its type byte and its value.
Push = tuple[int, Reply]

#: What ``read()`` gets when nothing can arrive that no command asked for.
NOTHING_TO_READ: Final = UsageError(
    "nothing to read: read() returns what no command asked for (pub/sub messages "
    "after SUBSCRIBE, MONITOR output), and this connection is neither subscribed "
    "nor monitoring"
)


def push_size(value: Reply) -> int:
    """The bytes a push holds, for flow control: its strings, at any depth."""
    if isinstance(value, list):
        total = 16 * len(value)
        for item in value:
            if isinstance(item, (str, bytes)):
                total += len(item)
            elif isinstance(item, (list, dict, set)):
                total += push_size(item)
        return total
    if isinstance(value, dict):
        return push_size([*value.keys(), *value.values()])
    if isinstance(value, set):
        return push_size(list(value))
    return len(value) if isinstance(value, (str, bytes)) else 16


class UnsolicitedReply(RespError):
    """A reply arrived that no command asked for, outside pub/sub and MONITOR."""

    def __init__(self, reply: Reply) -> None:
        super().__init__("a reply arrived that no command asked for")
        #: The reply itself: an error here is the server speaking of the
        #: connection (say, refusing it at maxclients) before it closes.
        self.reply = reply


class Batch:
    """The waiter of a pipeline, or of a command with a ``Plan``.

    ``plans[i]`` is None for a plain command (one reply), or the ``Plan`` of a
    stateful one; ``plans`` is None when every command is plain. The first
    reply of each command is its result; the others a plan owes (SUBSCRIBE a b
    c confirms each channel) go to ``read()``.
    """

    __slots__ = ("_index", "count", "future", "plans", "results")

    def __init__(
        self, future: asyncio.Future[list[Reply] | Error], count: int,
        plans: list[Plan | None] | None,
    ) -> None:
        self.future = future
        self.count = count
        self.plans = plans
        self.results: list[Reply] = []
        self._index = 0

    def plan(self) -> Plan | None:
        """The plan of the command whose replies come next."""
        return self.plans[self._index] if self.plans is not None else None

    def add(self, value: Reply, kind: int, dispatcher: Dispatcher) -> bool:
        """Take one reply; True when the batch is complete."""
        plans = self.plans
        if plans is None:
            self.results.append(value)
            if len(self.results) < self.count:
                return False
        else:
            plan = plans[self._index]
            if plan is None:
                self.results.append(value)
                self._index += 1
            else:
                if plan.seen == 0:
                    self.results.append(value)
                else:
                    dispatcher.push(kind, value)
                if dispatcher.state.take_reply(plan, value):
                    self._index += 1
                dispatcher.check_listening()
            if self._index < self.count:
                return False
        if not self.future.done():
            self.future.set_result(self.results)
        return True


class Dispatcher:
    """The FIFO of callers waiting for replies, and the replies kept for ``read()``."""

    __slots__ = ("cache", "push_bytes", "pushes", "readers", "state", "waiters")

    def __init__(self, state: SessionState) -> None:
        self.state = state
        #: The connection's client-side cache: tracking invalidations go there.
        self.cache: Cache | None = None
        self.waiters: deque[asyncio.Future[Reply] | Batch] = deque()
        self.pushes: deque[Push] = deque()
        #: Roughly how many bytes the kept pushes hold (their strings).
        self.push_bytes = 0
        self.readers: deque[asyncio.Future[Push | Error]] = deque()

    def route(self, value: Reply, kind: int) -> None:
        """Hand one parsed reply to its owner; raises ``UnsolicitedReply``."""
        waiters = self.waiters
        state = self.state
        if state.resp3:
            # Out-of-band data says so itself (type ">"): no guessing by shape.
            if kind == PUSH and not state.monitor:
                head = waiters[0] if waiters else None
                plan = head.plan() if isinstance(head, Batch) else None
                if plan is None or not state.owes(plan, value):
                    cache = self.cache
                    if cache is not None and is_invalidation(value):
                        # Applied now, in wire order: before any reply read after it.
                        cache.invalidate(value[1])  # type: ignore[index]
                        return
                    # A message, a confirmation nobody owes, an invalidation ...
                    state.follow(value)
                    self.push(kind, value)
                    if not state.listening:
                        self.check_listening()
                    return
            elif state.monitor and not waiters:
                self.push(kind, value)
                return
            if not waiters:
                raise UnsolicitedReply(value)
        elif state.listening:
            head = waiters[0] if waiters else None
            plan = head.plan() if isinstance(head, Batch) else None
            if state.is_push(value, plan) or head is None:
                self.push(kind, value)
                if not state.listening:  # the server unsubscribed us on its own
                    self.check_listening()
                return
        else:
            head = waiters[0] if waiters else None
            if state.shard_history and state.is_stray_unsubscribe(
                    value, head.plan() if isinstance(head, Batch) else None):
                self.push(kind, value)
                return
            if head is None:
                raise UnsolicitedReply(value)
        waiter = waiters[0]
        if type(waiter) is Batch:
            if waiter.add(value, kind, self):
                waiters.popleft()
        else:
            waiters.popleft()
            if not waiter.done():  # type: ignore[union-attr]  # a cancelled caller's is dropped
                waiter.set_result(value)  # type: ignore[union-attr]

    def deliver(self, parser: Parser | Resp3Parser) -> None:
        """Every complete reply ``parser`` holds, to its owner, in wire order."""
        route = self.route
        ready = parser.take_ready()
        if ready is not None:  # read ahead by the compiled parser
            values, kinds = ready
            if len(values) == 1:  # one reply (a sequential caller's): no slicing
                route(values[0], kinds[0])
            else:
                self.route_all(values, kinds)
        while True:
            value = parser.next_reply()
            if value is INCOMPLETE:
                return
            route(value, parser.kind)  # type: ignore[arg-type]

    def route_all(self, values: list[Reply], kinds: bytes) -> None:
        """``route`` for many replies in wire order (``kinds[i]`` is ``values[i]``'s type).

        A pipeline of plain commands at the head of the FIFO, on a RESP2
        connection with nothing that could be a push, takes its share in one
        slice; anything else goes through ``route`` one by one.
        """
        waiters = self.waiters
        state = self.state
        route = self.route
        at = 0
        count = len(values)
        while at < count:
            head = waiters[0] if waiters else None
            if (type(head) is Batch and head.plans is None
                    and not (state.resp3 or state.listening or state.shard_history)):
                results = head.results
                taken = values[at:at + head.count - len(results)]
                results += taken
                at += len(taken)
                if len(results) == head.count:
                    waiters.popleft()
                    if not head.future.done():
                        head.future.set_result(results)
                continue
            route(values[at], kinds[at])
            at += 1

    # -- pushes and read() ---------------------------------------------------

    def push(self, kind: int, value: Reply) -> None:
        """Keep a reply nobody waits for, or give it to a waiting ``read()``."""
        readers = self.readers
        while readers:
            reader = readers.popleft()
            if not reader.done():
                reader.set_result((kind, value))
                return
        self.pushes.append((kind, value))
        self.push_bytes += push_size(value)

    def check_listening(self) -> None:
        """Tell waiting readers when nothing more can arrive for them."""
        if self.readers and not self.state.pushes_possible:
            self._fail_readers(NOTHING_TO_READ)

    def take_push(self) -> Push | None:
        if not self.pushes:
            return None
        push = self.pushes.popleft()
        self.push_bytes -= push_size(push[1])
        return push

    def return_push(self, push: Push) -> None:
        """Put back a push whose reader was cancelled after receiving it."""
        self.pushes.appendleft(push)
        self.push_bytes += push_size(push[1])

    def wait_push(self, future: asyncio.Future[Push | Error]) -> None:
        """Make ``future`` get the next push (or why none can come)."""
        if not self.state.pushes_possible:
            future.set_result(NOTHING_TO_READ)
        else:
            self.readers.append(future)

    def forget_reader(self, future: asyncio.Future[Push | Error]) -> None:
        with contextlib.suppress(ValueError):
            self.readers.remove(future)

    # -- failure -----------------------------------------------------------------

    def fail(self, error: Error) -> None:
        """Every waiting caller and reader gets ``error``."""
        waiters = self.waiters
        while waiters:
            waiter = waiters.popleft()
            future = waiter.future if isinstance(waiter, Batch) else waiter
            if not future.done():
                future.set_result(error)
        self._fail_readers(error)

    def _fail_readers(self, error: Error) -> None:
        readers = self.readers
        while readers:
            reader = readers.popleft()
            if not reader.done():
                reader.set_result(error)


__all__ = ["NOTHING_TO_READ", "Batch", "Dispatcher", "Push", "UnsolicitedReply"]
