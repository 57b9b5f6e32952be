"""What a connection's commands do to its server-side session.

Sans-I/O, like the codec: it sees each command before it is sent and answers
two questions. How many replies will the server send for it (so every reply
reaches the caller that owns it)? And is the connection still in the state its
pool key promises (so it may be pooled)? Commands that would make replies
impossible to match to callers are refused before anything is sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from ._errors import UsageError

#: Expected replies for an UNSUBSCRIBE-family command without arguments: one
#: per current subscription of that kind, known only when it is its turn.
ONE_PER_SUBSCRIPTION: Final = -1

#: Confirmation kind of each subscribe-family command.
SUBSCRIBE_KINDS: Final = {
    "SUBSCRIBE": "subscribe",
    "UNSUBSCRIBE": "unsubscribe",
    "PSUBSCRIBE": "psubscribe",
    "PUNSUBSCRIBE": "punsubscribe",
    "SSUBSCRIBE": "ssubscribe",
    "SUNSUBSCRIBE": "sunsubscribe",
}

# Commands whose effect outlives the command itself. Anything else is plain:
# one command, one reply, no session state.
_STATEFUL: Final = frozenset(
    {"SELECT", "AUTH", "HELLO", "CLIENT", "MULTI", "EXEC", "DISCARD", "WATCH",
     "UNWATCH", "MONITOR", "RESET", "QUIT", "READONLY", "READWRITE"}
    | set(SUBSCRIBE_KINDS)
)
# CLIENT subcommands that leave the session as it was.
_CLIENT_HARMLESS: Final = frozenset(
    {"ID", "INFO", "LIST", "GETNAME", "KILL", "PAUSE", "UNPAUSE", "UNBLOCK",
     "GETREDIR", "TRACKINGINFO", "HELP"}
)


_MONITOR_MODE: Final = UsageError("the connection is in MONITOR mode: use read()")


def command_name(arg: object) -> str:
    if isinstance(arg, str):
        return arg.upper()
    if isinstance(arg, (bytes, bytearray, memoryview)):
        return bytes(arg).decode("utf-8", "replace").upper()
    return ""


def _refusal(name: str, args: Sequence[object]) -> UsageError | None:
    """Why a command must not be sent at all, or None."""
    if name == "CLIENT" and len(args) >= 3 and command_name(args[1]) == "REPLY":
        mode = command_name(args[2])
        if mode in ("OFF", "SKIP"):
            return UsageError(
                f"CLIENT REPLY {mode} is not supported: without replies, "
                "levredis could not match replies to callers"
            )
    if name == "HELLO" and len(args) >= 2 and command_name(args[1]) != "2":
        return UsageError("levredis speaks RESP2: only HELLO 2 is supported")
    return None


class Session:
    """Tracks one connection's session state from the commands sent on it."""

    __slots__ = ("db", "dirty", "in_multi", "monitor", "pubsub", "watching")

    def __init__(self, db: int) -> None:
        #: The db the pool key promises.
        self.db = db
        #: Why the connection may no longer be pooled, or None.
        self.dirty: str | None = None
        self.in_multi = False
        self.watching = False
        #: A subscribe-family command was sent: replies may include pushes.
        self.pubsub = False
        self.monitor = False

    def plan_command(self, args: Sequence[object]) -> int | UsageError:
        """Record one command as about to be sent: replies owed, or a refusal.

        A refused command changes nothing here and must not be sent.
        """
        if self.monitor:
            return _MONITOR_MODE
        name = command_name(args[0])
        if name not in _STATEFUL:
            return 1
        refusal = _refusal(name, args)
        if refusal is not None:
            return refusal
        return self._apply(name, args)

    def plan_batch(self, commands: Sequence[Sequence[object]]) -> list[int] | UsageError:
        """``plan_command`` for a pipeline: all are accepted, or none."""
        if self.monitor:
            return _MONITOR_MODE
        names = [command_name(args[0]) for args in commands]
        last = len(commands) - 1
        for index, (name, args) in enumerate(zip(names, commands, strict=True)):
            if name in _STATEFUL:
                refusal = _refusal(name, args)
                if refusal is not None:
                    return refusal
                if name == "MONITOR" and index != last:
                    return UsageError("MONITOR must be the last command of a pipeline")
        return [
            self._apply(name, args) if name in _STATEFUL else 1
            for name, args in zip(names, commands, strict=True)
        ]

    def _apply(self, name: str, args: Sequence[object]) -> int:
        if name in SUBSCRIBE_KINDS:
            self.pubsub = True
            self.dirty = f"{name} (subscribed state)"
        if self.in_multi and name not in ("EXEC", "DISCARD"):
            # Inside MULTI each command is answered once (QUEUED) and takes
            # effect at EXEC: whatever it does then, the session is changed.
            self.dirty = self.dirty or f"{name} inside MULTI"
            return 1
        if name in SUBSCRIBE_KINDS:
            if len(args) > 1:
                return len(args) - 1
            if name in ("SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE"):
                return 1  # an arity error
            return ONE_PER_SUBSCRIPTION
        if name == "MULTI":
            self.in_multi = True
        elif name in ("EXEC", "DISCARD"):
            self.in_multi = False
            self.watching = False
        elif name == "WATCH":
            self.watching = True
        elif name == "UNWATCH":
            self.watching = False
        elif name == "SELECT":
            if len(args) != 2 or command_name(args[1]) != str(self.db):
                self.dirty = "SELECT changed the db"
        elif name == "CLIENT":
            sub = command_name(args[1]) if len(args) > 1 else ""
            mode = command_name(args[2]) if len(args) > 2 else ""
            if sub not in _CLIENT_HARMLESS and (sub, mode) != ("REPLY", "ON"):
                self.dirty = f"CLIENT {sub} changed the session"
        elif name == "MONITOR":
            self.monitor = True
            self.dirty = "MONITOR"
        else:  # AUTH, HELLO, RESET, QUIT, READONLY, READWRITE
            self.dirty = f"{name} changed the session"
        return 1

    def unpoolable_reason(self) -> str | None:
        """Why this session may not go back to the pool, or None."""
        if self.dirty is not None:
            return self.dirty
        if self.in_multi:
            return "inside MULTI"
        if self.watching:
            return "WATCH not ended"
        return None
