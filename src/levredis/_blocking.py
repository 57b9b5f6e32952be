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
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

from ._errors import Error
from ._protocol import RedisProtocol
from ._resp import Reply, command_name, encode_command

log: Final = logging.getLogger("levredis")

#: Commands that may block on the server (XREAD/XREADGROUP only with BLOCK).
BLOCKING: Final = frozenset(
    {"BLPOP", "BRPOP", "BLMOVE", "BRPOPLPUSH", "BLMPOP", "BZPOPMIN", "BZPOPMAX",
     "BZMPOP", "XREAD", "XREADGROUP", "WAIT", "WAITAOF"}
)
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
    """BLMPOP's LEFT/RIGHT (after ``timeout numkeys key...``)."""
    for arg in args[3:]:
        word = command_name(arg)
        if word in words:
            return word
    return words[0]


async def recover(
    connection: RedisProtocol, future: asyncio.Future[Reply], name: str,
    args: Sequence[object], unblock: Callable[[int], Awaitable[object]],
) -> bool:
    """After the caller left: stop the server waiting, read the answer, put back a pop.

    ``connection`` is the command's own connection, ``future`` its reply;
    ``unblock`` sends ``CLIENT UNBLOCK <id>`` on another connection. Returns
    True when the connection is clean again (it may be pooled).
    """
    try:
        if not future.done():
            if connection.client_id is not None:
                await unblock(connection.client_id)
            async with asyncio.timeout(RECOVERY_LIMIT):
                await asyncio.shield(future)
        value = future.result()
        if isinstance(value, Error):
            return False
        restore = put_back(name, args, value)
        if restore is None:
            return True
        answer = await asyncio.wait_for(
            connection.request(encode_command(restore)), RECOVERY_LIMIT)
        if isinstance(answer, Error):
            log.error("a %s whose caller left had popped from %r; putting it back "
                      "failed: %s", name, restore[1], answer)
            return False
        log.warning("a %s whose caller left had popped from %r; put back with %s",
                    name, restore[1], restore[0])
        return True
    except Exception as exc:  # the recovery timed out, the connection was lost
        log.error("recovering after a %s whose caller left failed (%s: %s); "
                  "its connection is closed", name, type(exc).__name__, exc)
        return False


__all__ = ["BLOCKING", "is_blocking", "put_back", "recover"]
