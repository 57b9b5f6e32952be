"""Blocking commands: a connection of their own, and nothing lost when their caller leaves.

A ``BLPOP`` waits on the server for as long as it takes; on a shared
connection it would hold up every other caller's reply behind it. So it runs
on a connection of its own from the same pool. When its caller gives up
(cancelled, or the call's timeout), the server is told to stop waiting
(``CLIENT UNBLOCK`` from another connection) and the command's answer is
still read: if the server had already popped an element for the caller
that left, it is put back where it came from, and a WARNING says so.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Final

from ._errors import Error
from ._protocol import RedisProtocol
from ._resp import ArgumentError, Reply, argument_bytes, command_name, encode_command

log: Final = logging.getLogger("levredis")

#: Commands that may block on the server (XREAD/XREADGROUP only with BLOCK).
BLOCKING: Final = frozenset(
    {"BLPOP", "BRPOP", "BLMOVE", "BRPOPLPUSH", "BLMPOP", "BZPOPMIN", "BZPOPMAX",
     "BZMPOP", "XREAD", "XREADGROUP"}
)
# Not WAIT or WAITAOF: they count the writes of the connection they run on,
# so they must run on the one that carried the writes, after them.
#: How long recovering after a caller that left may take before the
#: connection is closed instead.
RECOVERY_LIMIT: Final = 5.0


def is_blocking(name: str, args: Sequence[object]) -> bool:
    """Whether the command ``name`` with ``args`` may block on the server."""
    if name in ("XREAD", "XREADGROUP"):
        return any(command_name(arg) == "BLOCK" for arg in args[1:])
    return True


def put_back(name: str, args: Sequence[object], value: Reply) -> list[object] | None:
    """The command that returns what ``name`` popped (its reply ``value``), or None.

    BLMOVE and BRPOPLPUSH moved the element (it is in the destination);
    XREAD only reads, and XREADGROUP's entries wait in the group's pending
    list; WAIT and WAITAOF take nothing: none of them loses anything.
    """
    if not isinstance(value, list) or not value:
        return None
    if name in ("BLPOP", "BRPOP") and len(value) == 2:
        return ["LPUSH" if name == "BLPOP" else "RPUSH", value[0], value[1]]
    if name in ("BZPOPMIN", "BZPOPMAX") and len(value) == 3:
        return ["ZADD", value[0], value[2], value[1]]
    if name == "BLMPOP" and len(value) == 2 and isinstance(value[1], list):
        direction = _direction(args, ("LEFT", "RIGHT"))
        # Popped e1, e2 from the left: LPUSH e2 e1 restores e1, e2 at the head.
        return ["LPUSH" if direction == "LEFT" else "RPUSH", value[0], *reversed(value[1])]
    if name == "BZMPOP" and len(value) == 2 and isinstance(value[1], list):
        pairs: list[object] = []
        for pair in value[1]:
            if isinstance(pair, list) and len(pair) == 2:
                pairs += [pair[1], pair[0]]
        return ["ZADD", value[0], *pairs] if pairs else None
    return None


def _direction(args: Sequence[object], words: tuple[str, str]) -> str:
    """BLMPOP's LEFT/RIGHT: the argument after ``timeout numkeys key...``."""
    try:
        numkeys = int(argument_bytes(args[2]))
        word = command_name(args[3 + numkeys])
    except (ArgumentError, IndexError, ValueError):
        return words[0]
    return word if word in words else words[0]


#: Recoveries under way, so a loop's shutdown can let them finish.
RECOVERING: set[Recovery] = set()
# Put-backs running on another connection (kept from the GC).
_PUTTING_BACK: set[asyncio.Task[Reply]] = set()


class Recovery:
    """Finishes a blocking command whose caller left, so nothing it popped is lost.

    Driven by callbacks on the reply's future, not by a task: asyncio.run()
    cancels every task when it ends, but lets futures complete while it
    shuts down (and the pool's shutdown hook waits for ``finished``).
    """

    __slots__ = ("args", "connection", "done", "elsewhere", "finished", "future", "kick",
                 "name", "_timer")

    def __init__(
        self, connection: RedisProtocol, future: asyncio.Future[Reply], name: str,
        args: Sequence[object], done: Callable[[bool], None],
        elsewhere: Callable[[list[object]], Coroutine[Any, Any, Reply]] | None = None,
    ) -> None:
        self.connection = connection
        self.future = future
        self.name = name
        self.args = args
        #: Called once with whether the connection is clean again.
        self.done = done
        self.finished: asyncio.Future[bool] = connection.loop.create_future()
        self._timer: asyncio.TimerHandle | None = None
        #: Runs the put-back on another connection (the command's own may have
        #: other blocking commands queued, which the put-back would wait behind).
        self.elsewhere = elsewhere
        #: Asks again whether the server may be told to stop waiting now.
        self.kick: Callable[[], None] | None = None

    def start(self, via: RedisProtocol | None) -> None:
        """Tell the server to stop waiting (``CLIENT UNBLOCK`` on ``via``), read the answer."""
        RECOVERING.add(self)
        if self.future.done():
            self._answered(self.future)
            return
        client_id = self.connection.client_id
        if via is not None and via.error is None and client_id is not None:
            via.request(encode_command(["CLIENT", "UNBLOCK", client_id]))  # its answer: 0 or 1
            self.arm()
        self.future.add_done_callback(self._answered)

    def arm(self) -> None:
        """CLIENT UNBLOCK was sent: the answer is due now, or the connection goes."""
        if self._timer is None and not self.finished.done():
            self._timer = self.connection.loop.call_later(RECOVERY_LIMIT, self._give_up)

    def _answered(self, future: asyncio.Future[Reply]) -> None:
        if self.finished.done():
            return
        value = future.result()
        if isinstance(value, Error):
            self._finish(False)
            return
        if self.name == "XREADGROUP" and value is not None and _has_noack(self.args):
            log.warning("a XREADGROUP ... NOACK whose caller left had read entries; "
                        "with NOACK the server keeps no record of them: they are gone")
        restore = put_back(self.name, self.args, value)
        if restore is None:
            self._finish(True)
            return
        if self.elsewhere is not None:
            task: asyncio.Task[Reply] = self.connection.loop.create_task(
                self.elsewhere(restore))
            _PUTTING_BACK.add(task)
            task.add_done_callback(_PUTTING_BACK.discard)
            task.add_done_callback(lambda done: self._restored(restore, done))
            return
        answer = self.connection.request(encode_command(restore))
        answer.add_done_callback(lambda done: self._restored(restore, done))

    def _restored(self, restore: list[object], answer: asyncio.Future[Reply]) -> None:
        result: Reply | Error = (
            answer.result() if not answer.cancelled() else Error("cancelled at shutdown"))
        if isinstance(result, Error):
            log.error("a %s whose caller left had popped from %r; putting it back "
                      "failed: %s", self.name, restore[1], result)
            self._finish(False)
            return
        log.warning("a %s whose caller left had popped from %r; put back with %s",
                    self.name, restore[1], restore[0])
        self._finish(True)

    def _give_up(self) -> None:
        log.error("a %s whose caller left was not answered within %gs; its "
                  "connection is closed", self.name, RECOVERY_LIMIT)
        self._finish(False)

    def _finish(self, clean: bool) -> None:
        if self.finished.done():
            return
        if self._timer is not None:
            self._timer.cancel()
        RECOVERING.discard(self)
        self.finished.set_result(clean)
        self.done(clean)


def _has_noack(args: Sequence[object]) -> bool:
    return any(command_name(arg) == "NOACK" for arg in args[1:])


async def wait_for_recoveries(loop: asyncio.AbstractEventLoop) -> None:
    """Let the recoveries of ``loop`` finish (each is bounded by RECOVERY_LIMIT)."""
    pending = [r.finished for r in RECOVERING if r.connection.loop is loop]
    if pending:
        await asyncio.wait(pending, timeout=RECOVERY_LIMIT + 1)


__all__ = ["BLOCKING", "RECOVERING", "Recovery", "is_blocking", "put_back", "wait_for_recoveries"]
