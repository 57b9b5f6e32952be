"""One connection's session state: a state machine fed by both directions.

Sans-I/O, like the codec. Commands are shown to it as they are about to be
written (``plan_command``/``plan_batch``): it refuses the ones that would make
replies impossible to match, and says what each one expects back. Replies are
shown to it as they are parsed (``is_push``, ``take_reply``): the server's
answers, and nothing else, move the session's state — subscriptions, MULTI,
WATCH, MONITOR, the selected db, RESET, and whether the connection still is
what its pool key promises.

States, as the server sees them::

    request ── SUBSCRIBE confirmed ──> subscribed ── last UNSUBSCRIBE confirmed ──> request
       │  └── MULTI +OK ──> in MULTI ── EXEC/DISCARD reply ──> request
       └── MONITOR +OK ──> monitor (for the connection's life)
    any ── +RESET ──> request, no subscription, db 0, not authenticated

Only ``plan_*`` keeps predictions (MULTI or MONITOR sent but not answered):
they decide refusals, never where a reply goes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from ._errors import ServerError, UsageError
from ._resp import Reply, argument_bytes, command_name

# -- the pub/sub vocabulary (the one place it lives) ---------------------------

#: Subscribe-family command → (the subscription set it changes, whether it adds).
SUBSCRIBE_COMMANDS: Final = {
    "SUBSCRIBE": ("subscribe", True),
    "PSUBSCRIBE": ("psubscribe", True),
    "SSUBSCRIBE": ("ssubscribe", True),
    "UNSUBSCRIBE": ("subscribe", False),
    "PUNSUBSCRIBE": ("psubscribe", False),
    "SUNSUBSCRIBE": ("ssubscribe", False),
}
#: Confirmation word → (the subscription set it changes, whether it adds).
CONFIRMATIONS: Final = {name.lower(): target for name, target in SUBSCRIBE_COMMANDS.items()}
#: First element of a published message, per subscription kind.
MESSAGE_KINDS: Final = frozenset(
    {"message", "pmessage", "smessage", b"message", b"pmessage", b"smessage"}
)

#: Expected replies of an UNSUBSCRIBE-family command without arguments: one
#: per current subscription of that kind, known only when its turn comes.
ONE_PER_SUBSCRIPTION: Final = -1

# Commands whose effect outlives the command itself. Anything else is plain:
# one command, one reply, no session state.
_STATEFUL: Final = frozenset(
    {"SELECT", "AUTH", "HELLO", "CLIENT", "MULTI", "EXEC", "DISCARD", "WATCH",
     "UNWATCH", "MONITOR", "RESET", "QUIT", "READONLY", "READWRITE"}
    | set(SUBSCRIBE_COMMANDS)
)
# CLIENT subcommands that leave the session as it was.
_CLIENT_HARMLESS: Final = frozenset(
    {"ID", "INFO", "LIST", "GETNAME", "KILL", "PAUSE", "UNPAUSE", "UNBLOCK",
     "GETREDIR", "TRACKINGINFO", "HELP"}
)

# Refused on a caching client: the entries were read on this db, as this user,
# with tracking on; MONITOR would take the connection's replies away from it.
_CACHE_REFUSED: Final = frozenset({"SELECT", "HELLO", "AUTH", "MONITOR"})

_MONITOR_MODE: Final = UsageError("the connection is in MONITOR mode: use read()")


class Plan:
    """What one stateful command expects back, and what its replies do."""

    __slots__ = ("argument", "channels", "kind", "name", "owed", "queued", "seen")

    def __init__(
        self, name: str, owed: int, queued: bool, argument: int | None = None,
        channels: frozenset[bytes] | None = None,
    ) -> None:
        #: The command's upper-case name.
        self.name = name
        #: Replies the server sends for it (``ONE_PER_SUBSCRIPTION``: decided on its turn).
        self.owed = owed
        #: Sent inside MULTI: answered QUEUED now, takes effect at EXEC.
        self.queued = queued
        #: SELECT's db.
        self.argument = argument
        #: Its confirmation word, for a subscribe-family command.
        self.kind = name.lower() if name in SUBSCRIBE_COMMANDS and not queued else None
        #: The channels a subscribe-family command names (None: all of its kind).
        self.channels = channels
        #: Replies taken so far.
        self.seen = 0

    def owns(self, word: object, channel: object) -> bool:
        """Whether a confirmation (``word``, ``channel``) answers this command."""
        if self.kind != word:
            return False
        if self.channels is None:
            return True
        if isinstance(channel, str):
            channel = channel.encode("utf-8", "surrogateescape")
        return channel in self.channels


class SessionState:
    """The session of one connection, moved by what is sent and what comes back."""

    __slots__ = (
        "_monitor_sent",
        "multi_sent",
        "_push_plans",
        "authenticated",
        "caching",
        "resp3",
        "tracking",
        "current_db",
        "db",
        "dirty",
        "in_multi",
        "listening",
        "monitor",
        "shard_history",
        "subscriptions",
        "watching",
    )

    def __init__(self, db: int, authenticated: bool = False, resp3: bool = False) -> None:
        #: RESP3: pushes come typed as such (``>``), and HELLO may only say 3.
        self.resp3 = resp3
        #: CLIENT TRACKING is on (RESP3): invalidation pushes may arrive.
        self.tracking = False
        #: A client-side cache relies on this session: its db and its tracking stay.
        self.caching = False
        #: The db the pool key promises, and the one the server has selected.
        self.db = db
        self.current_db = db
        #: The pool key's connections log in (RESET logs out).
        self.authenticated = authenticated
        #: Why the session differs from what its pool key promises, or None.
        self.dirty: str | None = None
        self.in_multi = False
        self.watching = False
        self.monitor = False
        #: The server's subscription sets, from its confirmations.
        self.subscriptions: dict[str, set[Reply]] = {
            "subscribe": set(), "psubscribe": set(), "ssubscribe": set(),
        }
        #: Subscribed or monitoring: replies may be pushes (kept for read()).
        self.listening = False
        #: Shard channels were subscribed since the last RESET (see is_stray_unsubscribe).
        self.shard_history = False
        #: MULTI sent, its transaction not yet answered over (a prediction from
        #: what was sent: it decides refusals, and that nothing may be answered
        #: from a cache meanwhile).
        self.multi_sent = False
        # Predictions from what was sent, for refusals only.
        self._monitor_sent = False
        self._push_plans = 0

    # -- what is sent -----------------------------------------------------------

    def plan_command(self, args: Sequence[object]) -> Plan | UsageError | None:
        """Record one command as about to be sent.

        None for a plain command (one reply, no state), a ``Plan`` for a
        stateful one, or the ``UsageError`` that refuses it: a refused command
        changes nothing and must not be sent.
        """
        first = args[0]
        return self.plan_named(first.upper() if type(first) is str else command_name(first), args)

    def plan_named(self, name: str, args: Sequence[object]) -> Plan | UsageError | None:
        """``plan_command`` for a caller that has the upper-case name already."""
        if self._monitor_sent:
            return _MONITOR_MODE
        if name not in _STATEFUL:
            return None
        return self._plan(name, args)

    def plan_batch(self, commands: Sequence[Sequence[object]]) -> list[Plan | None] | UsageError:
        """``plan_command`` for a pipeline: all are accepted, or none."""
        saved = (self.multi_sent, self._monitor_sent, self._push_plans)
        plans: list[Plan | None] = []
        plan_named = self.plan_named
        for args in commands:
            first = args[0]  # (plan_command's steps inline: one call per command, not two)
            plan = plan_named(first.upper() if type(first) is str else command_name(first), args)
            if plan.__class__ is UsageError:
                self.multi_sent, self._monitor_sent, self._push_plans = saved
                if plan is _MONITOR_MODE and not saved[1]:
                    return UsageError("MONITOR must be the last command of a pipeline")
                return plan
            plans.append(plan)  # type: ignore[arg-type]
        return plans

    def _plan(self, name: str, args: Sequence[object]) -> Plan | UsageError | None:
        refusal = self._refusal(name, args)
        if refusal is not None:
            return refusal
        if name == "CLIENT" and _client_harmless(args):
            return None
        if self.multi_sent and name not in ("EXEC", "DISCARD", "RESET", "MULTI", "WATCH",
                                              "QUIT"):
            return Plan(name, 1, queued=True)
        if name in SUBSCRIBE_COMMANDS:
            self._push_plans += 1
            if len(args) > 1:
                names = frozenset(argument_bytes(arg) for arg in args[1:])
                return Plan(name, len(args) - 1, queued=False, channels=names)
            if SUBSCRIBE_COMMANDS[name][1]:
                return Plan(name, 1, queued=False)  # an arity error
            return Plan(name, ONE_PER_SUBSCRIPTION, queued=False)
        # "Inside MULTI" is predicted from MULTI being sent until the server
        # confirms the transaction is over (EXEC/DISCARD/RESET answered): an
        # EXEC or DISCARD can be refused and leave it open.
        if name == "MULTI":
            self.multi_sent = True
        elif name == "MONITOR":
            self._monitor_sent = True
            self._push_plans += 1
        elif name == "SELECT" and len(args) == 2:
            return Plan(name, 1, queued=False, argument=_db_number(args[1]))
        elif name == "CLIENT" and len(args) >= 3 and command_name(args[1]) == "TRACKING":
            mode = command_name(args[2])
            return Plan(name, 1, queued=False,
                        argument=1 if mode == "ON" else 0 if mode == "OFF" else None)
        return Plan(name, 1, queued=False)

    def _refusal(self, name: str, args: Sequence[object]) -> UsageError | None:
        """Why a command must not be sent at all, or None."""
        if self.caching and (name in _CACHE_REFUSED or (
                name == "CLIENT" and len(args) >= 2
                and command_name(args[1]) in ("TRACKING", "CACHING"))):
            shown = name if name != "CLIENT" else f"CLIENT {command_name(args[1])}"
            return UsageError(
                f"{shown} is refused on a caching client: its cache relies on the "
                "connection's db, user and tracking as connect() set them up (choose them "
                "in the config, or use a client without the cache)")
        if name in SUBSCRIBE_COMMANDS or name == "MONITOR":
            if self.multi_sent:
                return UsageError(
                    f"{name} inside MULTI (or before its EXEC is answered) is refused: "
                    "its answer would come inside "
                    "EXEC's reply and the connection would start receiving pushes "
                    "nobody asked for; send it outside the transaction"
                )
        elif name == "CLIENT" and len(args) >= 3 and command_name(args[1]) == "REPLY":
            mode = command_name(args[2])
            if mode in ("OFF", "SKIP"):
                return UsageError(
                    f"CLIENT REPLY {mode} is not supported: without replies, "
                    "levredis could not match replies to callers"
                )
        elif name == "RESET" and self.resp3:
            return UsageError(
                "RESET is refused on a RESP3 connection: the server would switch it back "
                "to RESP2 while levredis still reads RESP3; close the client instead")
        elif name == "HELLO" and len(args) >= 2:
            spoken = "3" if self.resp3 else "2"
            if command_name(args[1]) != spoken:
                return UsageError(
                    f"this connection speaks RESP{spoken}: HELLO may not switch it to "
                    f"another protocol (choose one with the config's protocol key)")
        return None

    # -- what comes back -----------------------------------------------------------

    def is_push(self, value: Reply, plan: Plan | None) -> bool:
        """Whether a reply, received while ``listening``, is a push, not ``plan``'s reply.

        Published messages always are; a subscription confirmation is unless
        the command at the head of the queue owes that very confirmation (the
        server also unsubscribes on its own, as when a shard channel's slot
        moves). A push confirmation still moves the subscription sets.
        """
        if self.monitor:
            return True
        if value.__class__ is not list or not value:
            return False
        word = value[0]
        if word in MESSAGE_KINDS:
            return True
        if isinstance(word, bytes):
            word = word.decode("ascii", "replace")
        if word not in CONFIRMATIONS:
            return False
        if plan is not None and plan.owns(word, value[1] if len(value) > 1 else None):
            return False
        self._confirm(value)
        return True

    def owes(self, plan: Plan, value: Reply) -> bool:
        """Whether a RESP3 push is a confirmation ``plan``'s command owes (its reply)."""
        if value.__class__ is not list or not value:
            return False
        word = value[0]
        if isinstance(word, bytes):
            word = word.decode("ascii", "replace")
        return plan.owns(word, value[1] if len(value) > 1 else None)

    def follow(self, value: Reply) -> None:
        """A RESP3 push nobody owes: a confirmation still moves the subscription sets."""
        self._confirm(value)

    def is_stray_unsubscribe(self, value: Reply, plan: Plan | None) -> bool:
        """A shard channel's unsubscribe the server sent on its own, arriving late.

        When the server drops a shard channel (its slot moved) just as the
        client unsubscribes from it, RESP2 carries two identical
        confirmations; once subscriptions are over, the second belongs to no
        command and must not reach the next caller.
        """
        if value.__class__ is not list or len(value) != 3:
            return False
        word, channel, count = value
        if word not in ("sunsubscribe", b"sunsubscribe") or count.__class__ is not int:
            return False
        return plan is None or not plan.owns("sunsubscribe", channel)

    def take_reply(self, plan: Plan, value: Reply) -> bool:
        """Apply one reply of ``plan``'s command; True once it owes no more."""
        plan.seen += 1
        is_error = value.__class__ is ServerError
        if plan.kind is not None:
            if plan.owed == ONE_PER_SUBSCRIPTION:
                target = SUBSCRIBE_COMMANDS[plan.name][0]
                plan.owed = max(1, len(self.subscriptions[target]))
            if not is_error:
                self._confirm(value)
            if is_error or plan.seen >= plan.owed:
                self._push_plans -= 1
                return True
            return False
        if plan.queued:
            if not is_error and value is not None:
                self.dirty = self.dirty or f"{plan.name} inside MULTI"
            return True
        self._apply(plan, value, is_error)
        return True

    def _apply(self, plan: Plan, value: Reply, is_error: bool) -> None:
        name = plan.name
        if name in ("EXEC", "DISCARD"):
            if not is_error:  # results or NULL (a WATCH fired): MULTI and WATCH are over
                self.in_multi = self.watching = self.multi_sent = False
            elif not self.in_multi:
                self.multi_sent = False  # "without MULTI": none is open
            else:
                # EXECABORT ends MULTI, an arity or ACL error does not: not
                # knowing which, never hand the connection to anyone else.
                self.dirty = self.dirty or f"{name} refused inside MULTI"
            # Outside MULTI ("EXEC without MULTI") a WATCH stays as it was.
        elif name == "MONITOR":
            self._push_plans -= 1
            if is_error:
                self._monitor_sent = False
            else:
                self.monitor = self.listening = True
        elif is_error:
            if name == "MULTI" and not self.in_multi:
                self.multi_sent = False  # refused: no transaction was opened
            return
        elif name == "MULTI":
            self.in_multi = True
        elif name == "WATCH":
            self.watching = True
        elif name == "UNWATCH":
            self.watching = False
        elif name == "SELECT":
            if plan.argument is None:
                self.dirty = "SELECT changed the db"
            else:
                self.current_db = plan.argument
        elif name == "RESET":
            self._reset()
        elif name == "CLIENT":
            self.dirty = self.dirty or "CLIENT changed the session"
            if self.resp3 and plan.argument is not None:
                # CLIENT TRACKING ON|OFF: invalidations may arrive as pushes.
                self.tracking = plan.argument == 1
        else:  # AUTH, HELLO, QUIT, READONLY, READWRITE
            self.dirty = self.dirty or f"{name} changed the session"

    def _reset(self) -> None:
        """+RESET: the server's state of a new, unauthenticated connection on db 0."""
        for channels in self.subscriptions.values():
            channels.clear()
        self.in_multi = self.watching = self.multi_sent = False
        self.listening = self.monitor
        self.current_db = 0
        self.shard_history = False
        self.dirty = "RESET logged the connection out" if self.authenticated else None

    def _confirm(self, value: Reply) -> None:
        """Follow the server's subscription sets from one of its confirmations."""
        if value.__class__ is not list or len(value) != 3:
            return
        word, channel, _ = value
        if isinstance(word, bytes):
            word = word.decode("ascii", "replace")
        target = CONFIRMATIONS.get(word) if isinstance(word, str) else None
        if target is None or not (channel is None or isinstance(channel, (str, bytes))):
            return
        channels = self.subscriptions[target[0]]
        if target[1]:
            channels.add(channel)
            if target[0] == "ssubscribe":
                self.shard_history = True
        else:
            channels.discard(channel)
        self.listening = self.monitor or any(self.subscriptions.values())

    # -- questions -------------------------------------------------------------------

    @property
    def pushes_possible(self) -> bool:
        """Whether anything may still arrive that no command asked for."""
        return self.listening or self._push_plans > 0 or self.tracking

    def serves_from_cache(self) -> bool:
        """No MULTI sent or open: a cached read may be answered locally.

        (``in_multi`` implies ``multi_sent``; MONITOR is refused on a caching client.)
        """
        return not self.multi_sent

    def in_transaction(self) -> bool:
        """MULTI sent or open: a blocking command is queued, not blocking."""
        return self.multi_sent or self.in_multi

    def is_plain(self) -> bool:
        """No session state at all, none predicted: any pooled connection would do."""
        return (not self.multi_sent and not self.pushes_possible
                and self.unpoolable_reason() is None)

    def unpoolable_reason(self) -> str | None:
        """Why this session may not go back to the pool, or None."""
        if self.dirty is not None:
            return self.dirty
        if self.monitor:
            return "MONITOR"
        if self.listening:
            return "subscribed"
        if self.in_multi:
            return "inside MULTI"
        if self.watching:
            return "WATCH not ended"
        if self.current_db != self.db:
            return "SELECT changed the db"
        return None


def changes_session(args: Sequence[object]) -> bool:
    """Whether a command (not of the subscribe family) outlives itself on its connection.

    SELECT, AUTH, HELLO, CLIENT SETNAME/TRACKING/REPLY ..., MULTI, EXEC,
    DISCARD, WATCH, UNWATCH, MONITOR, RESET, QUIT, READONLY, READWRITE.
    """
    name = command_name(args[0])
    if name not in _STATEFUL or name in SUBSCRIBE_COMMANDS:
        return False
    return not (name == "CLIENT" and _client_harmless(args))


def _client_harmless(args: Sequence[object]) -> bool:
    """A CLIENT subcommand that leaves the session as it was."""
    sub = command_name(args[1]) if len(args) > 1 else ""
    mode = command_name(args[2]) if len(args) > 2 else ""
    return sub in _CLIENT_HARMLESS or (sub, mode) == ("REPLY", "ON")


def _db_number(arg: object) -> int | None:
    """SELECT's argument as the server will read it, or None if it is no number."""
    try:
        text = argument_bytes(arg)
    except Exception:  # the encoder refuses it before anything is sent
        return None
    digits = text[1:] if text[:1] == b"-" else text
    return int(text) if digits.isdigit() and len(digits) < 20 else None


__all__ = [
    "CONFIRMATIONS",
    "MESSAGE_KINDS",
    "ONE_PER_SUBSCRIPTION",
    "SUBSCRIBE_COMMANDS",
    "Plan",
    "SessionState",
    "changes_session",
]
