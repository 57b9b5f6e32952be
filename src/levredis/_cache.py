"""The client-side cache: which commands it may answer, and one connection's entries.

Sans-I/O, like the codec and the session state. Two parts:

- ``CommandRules``, read from the server's own ``COMMAND`` reply: a command
  is *cacheable* when the server flags it ``readonly``, gives it no
  ``nondeterministic_output`` tip, is neither blocking, pub/sub nor a
  script, and every key it names is read-only (``RO`` key specs that can be
  followed from the arguments alone). A command *writes* when it is flagged
  ``write``/``may_replicate`` or a key spec changes a key; where its keys
  cannot be told (FLUSHALL, SWAPDB, scripts, MIGRATE ...) it writes ``ALL``.
- ``Cache``: one connection's entries, keyed by the command (``key_for``), with
  an index from each key name to the entries that read it, LRU bounds, and
  *fills*: a read that missed registers before it is sent, and its reply is
  kept only if no invalidation of its keys arrived meanwhile.

The connection's ``CLIENT TRACKING`` makes the server send an invalidation
for every key the connection read once that key changes; the dispatcher
hands those to ``Cache.invalidate`` as they are parsed, in wire order.
"""

from __future__ import annotations

import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

from ._errors import NOT_FOUND, Error
from ._resp import (
    ArgumentError,
    Reply,
    argument_bytes,
    command_name,
    encode_command,
    speedups_turned_off,
)
from ._state import SessionState


@dataclass(frozen=True, slots=True)
class CacheSettings:
    """The config's ``cache`` mapping, validated (hashable: part of the pool key)."""

    #: Entries one connection's cache holds at most.
    max_entries: int = 10_000
    #: Approximate bytes one connection's cache holds at most (keys, values, overhead).
    max_bytes: int = 64 * 1024 * 1024
    #: Seconds an entry may be served after it was filled (None: until invalidated).
    max_age: float | None = None
    #: Broadcast mode: only keys with one of these prefixes are cached (None: default mode).
    prefixes: tuple[bytes, ...] | None = None

    def tracking_command(self) -> list[object]:
        """The ``CLIENT TRACKING ON`` of the handshake."""
        command: list[object] = ["CLIENT", "TRACKING", "ON"]
        if self.prefixes is not None:
            command.append("BCAST")
            for prefix in self.prefixes:
                command += ["PREFIX", prefix]
        return command


class Marker:
    """A stand-in for a command's keys (``ALL``), or for no entry (``MISS``)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: ``Cache.wrote`` marker: the command may have changed any key.
ALL: Final = Marker("ALL")
#: What a command reads or writes: its keys, or a marker.
Keys = list[bytes] | set[bytes] | Marker

_T = TypeVar("_T", bound=Hashable)

#: What ``CommandRules.classify`` says of one command.
READ: Final = 1
WRITE: Final = 2

#: Bytes counted per entry beyond its command, keys and value (the entry, its
#: slot in the LRU dict, the answer tuple).
ENTRY_OVERHEAD: Final = 400
#: Bytes counted per key of an entry: its set in the key index (a one-member
#: set is 216 bytes) and that set's slot in the index dict.
INDEX_COST: Final = 300


# -- the server's command table ----------------------------------------------------------


class _KeySpec:
    """One key spec of COMMAND: where its keys start, and how many follow."""

    __slots__ = ("begin", "find", "first", "keyword", "last", "limit", "numidx", "start", "step")

    def __init__(self, spec: Mapping[str, object]) -> None:
        begin = _map(spec.get("begin_search"))
        find = _map(spec.get("find_keys"))
        begin_how = _map(begin.get("spec"))
        find_how = _map(find.get("spec"))
        self.begin = _text(begin.get("type"))
        self.start: int = _int(begin_how.get("index"), begin_how.get("startfrom"))
        self.keyword = begin_how.get("keyword")
        self.find = _text(find.get("type"))
        self.last = _int(find_how.get("lastkey"))
        self.step = _int(find_how.get("keystep"), default=1) or 1
        self.limit = _int(find_how.get("limit"))
        self.numidx = _int(find_how.get("keynumidx"))
        self.first = _int(find_how.get("firstkey"), default=1)

    def known(self) -> bool:
        """Whether its keys can be found from the arguments alone."""
        return self.begin in ("index", "keyword") and self.find in ("range", "keynum")

    def keys(self, argv: Sequence[object]) -> list[object] | None:
        """Its keys in ``argv`` (the whole command), or None where that cannot be told."""
        count = len(argv)
        if self.begin == "index":
            begin = self.start
        else:  # "keyword": the argument after the keyword, searched from startfrom
            found = self._after_keyword(argv)
            if found is None:
                return []  # an optional part that is not there
            begin = found
        if not 0 < begin <= count:
            return [] if begin == count else None
        if self.find == "range":
            last = begin + self.last if self.last >= 0 else count + self.last
            if self.last == -1 and self.limit > 1:  # 2: half the arguments left are keys
                last = begin + (count - begin) // self.limit - 1
            if last < begin - 1 or last >= count:
                return None
            return list(argv[begin:last + 1:self.step])
        # keynum: the number of keys is an argument
        try:
            numkeys = int(argument_bytes(argv[begin + self.numidx]))
        except (IndexError, ValueError, ArgumentError):
            return None
        first = begin + self.first
        end = first + numkeys * self.step
        if numkeys < 0 or end > count:
            return None
        return list(argv[first:end:self.step])

    def _after_keyword(self, argv: Sequence[object]) -> int | None:
        try:
            keyword = _text(self.keyword).upper()
            words = [argument_bytes(arg).decode("utf-8", "replace").upper() for arg in argv]
        except ArgumentError:
            return None
        start = self.start
        positions = (range(start, len(argv)) if start > 0
                     else range(len(argv) + start, 0, -1))
        for position in positions:
            if 0 < position < len(argv) and words[position] == keyword:
                return position + 1
        return None


class _Command:
    """What the cache needs of one command: may it be cached, what does it change."""

    __slots__ = ("cacheable", "read_specs", "write_all", "write_specs", "writes")

    def __init__(self, info: Sequence[object]) -> None:
        flags = _words(info[2]) if len(info) > 2 else set()
        tips = _words(info[7]) if len(info) > 7 else set()
        raw = [_map(spec) for spec in _items(info[8])] if len(info) > 8 else []
        # Key spec flags as the server spells them vary in case (RW, delete ...).
        pairs = [(_KeySpec(spec), {flag.upper() for flag in _words(spec.get("flags"))})
                 for spec in raw]
        changing = [(spec, spec_flags) for spec, spec_flags in pairs
                    if spec_flags & _CHANGING_SPEC]
        script = "noscript" in flags and "movablekeys" in flags
        self.cacheable = (
            "readonly" in flags and not flags & _NOT_CACHEABLE
            and "nondeterministic_output" not in tips
            and bool(pairs) and not changing and not script
            and all("RO" in spec_flags and _followable(spec, spec_flags)
                    for spec, spec_flags in pairs)
        )
        self.read_specs = [spec for spec, _ in pairs]
        #: Only the specs of keys it changes count for what a write forgets
        #: (SORT's BY/GET patterns are read, not written).
        self.write_specs = [spec for spec, _ in changing]
        self.writes = "write" in flags or bool(changing) or (script and "readonly" not in flags)
        # Keys it changes that cannot be told (FLUSHALL, SWAPDB: no key specs;
        # scripts; MIGRATE, SORT ... STORE: specs the server marks incomplete or
        # unknown): every entry must go. A write whose key specs are all
        # read-only (XREADGROUP: consumer-group state) changes no cached reply.
        self.write_all = self.writes and (
            script or not pairs
            or not all(_followable(spec, spec_flags) for spec, spec_flags in changing))

    @staticmethod
    def keys(specs: list[_KeySpec], argv: Sequence[object]) -> list[object] | None:
        found: list[object] = []
        for spec in specs:
            keys = spec.keys(argv)
            if keys is None:
                return None
            found += keys
        return found


def _followable(spec: _KeySpec, flags: set[str]) -> bool:
    return spec.known() and "INCOMPLETE" not in flags


_NOT_CACHEABLE: Final = frozenset({"blocking", "pubsub", "write", "may_replicate", "admin"})
# Read-only by their flags, but run for what they do to the key (its access
# time): answering them here would undo their purpose.
_SIDE_EFFECT_READS: Final = frozenset({"TOUCH"})
_CHANGING_SPEC: Final = frozenset({"RW", "OW", "RM", "INSERT", "DELETE", "UPDATE"})


class CommandRules:
    """Which commands a cache may answer and which change keys, from ``COMMAND``."""

    __slots__ = ("commands", "containers")

    def __init__(self, reply: object) -> None:
        self.commands: dict[str, _Command] = {}
        #: Commands with subcommands (``OBJECT``, ``XGROUP`` ...): looked up as ``NAME|SUB``.
        self.containers: set[str] = set()
        for info in _items(reply):
            if not isinstance(info, list) or not info:
                continue
            name = _text(info[0]).upper()
            subcommands = _items(info[9]) if len(info) > 9 else []
            if subcommands:
                self.containers.add(name)
                for sub in subcommands:
                    if isinstance(sub, list) and sub:
                        command = _Command(sub)
                        # XINFO, OBJECT, MEMORY ... report the server's own view
                        # of a key (groups, encoding, memory), which changes
                        # with no change tracking reports: never cached.
                        command.cacheable = False
                        self.commands[_text(sub[0]).upper()] = command
            else:
                command = _Command(info)
                if name in _SIDE_EFFECT_READS:
                    command.cacheable = False
                self.commands[name] = command

    def classify(self, name: str, args: Sequence[object]) -> tuple[int, Keys] | None:
        """``(READ, keys)``, ``(WRITE, keys | ALL)``, or None (neither)."""
        if name in self.containers:
            if len(args) < 2:
                return None
            try:
                name = f"{name}|{argument_bytes(args[1]).decode('ascii').upper()}"
            except (ArgumentError, UnicodeDecodeError):
                return None
        command = self.commands.get(name)
        if command is None:
            # Unknown to the server's table (a module loaded since?): assume the worst.
            return WRITE, ALL
        if command.cacheable:
            keys = command.keys(command.read_specs, args)
            if keys:
                try:
                    return READ, [argument_bytes(key) for key in keys]
                except ArgumentError:
                    return None
            return None
        if not command.writes:
            return None
        if command.write_all:
            return WRITE, ALL
        keys = command.keys(command.write_specs, args)
        if keys is None:
            return WRITE, ALL
        try:
            return WRITE, [argument_bytes(key) for key in keys]
        except ArgumentError:
            return WRITE, ALL


# Rules per (server address, version): COMMAND is asked once per server.
_rules: dict[tuple[str, str], CommandRules] = {}


def known_rules(address: str, version: str) -> CommandRules | None:
    return _rules.get((address, version))


def remember_rules(address: str, version: str, rules: CommandRules) -> None:
    if len(_rules) >= 64:
        _rules.clear()
    _rules[(address, version)] = rules


# -- one connection's cache ------------------------------------------------------------------


class CacheStats:
    """Figures shared by the caches of one pool key (``pool_stats()["cache"]``)."""

    __slots__ = ("bytes", "entries", "evictions", "hits", "invalidations", "misses")

    def __init__(self) -> None:
        self.hits = self.misses = self.evictions = self.invalidations = 0
        self.entries = self.bytes = 0

    def figures(self) -> dict[str, int]:
        return {"hits": self.hits, "misses": self.misses, "evictions": self.evictions,
                "invalidations": self.invalidations, "entries": self.entries,
                "bytes": self.bytes}


class Fill:
    """A read that missed, in flight: its reply is kept only if nothing spoiled it."""

    __slots__ = ("generation", "keys", "spoiled")

    def __init__(self, keys: list[bytes], generation: int) -> None:
        self.keys = keys
        self.generation = generation
        self.spoiled = False


class _Entry:
    __slots__ = ("answer", "deadline", "keys", "size", "used", "value")

    def __init__(self, value: Reply, keys: list[bytes], size: int,
                 deadline: float | None) -> None:
        self.value = value
        #: ``cmd()``'s answer, made once (None for containers: copied per caller).
        self.answer: tuple[Reply, Error | None] | None = (
            None if value.__class__ in _MUTABLE
            else (None, NOT_FOUND) if value is None else (value, None))
        self.keys = keys
        self.size = size
        #: When it may no longer be served (``time.monotonic()``): a key's
        #: expiry or ``max_age``, whichever comes first; None: until invalidated.
        self.deadline = deadline
        #: Served since eviction last passed it (a second chance: see ``_bound``).
        self.used = False


#: What ``Cache.lookup`` returns when it holds nothing for a command.
MISS: Final = Marker("MISS")


class Cache:
    """One tracking connection's entries: LRU-bounded, emptied by what the server says."""

    __slots__ = ("_bytes", "_entries", "_generation", "_index", "_max_age", "_pending", "alive",
                 "rules", "settings", "state", "stats")

    def __init__(self, settings: CacheSettings, state: SessionState,
                 stats: CacheStats | None = None) -> None:
        self.settings = settings
        self._max_age = settings.max_age
        #: The connection's session: inside MULTI nothing is answered from here.
        self.state = state
        self.stats = stats if stats is not None else CacheStats()
        #: The server's command table, set once the handshake read it.
        self.rules: CommandRules | None = None
        #: False once the connection failed: nothing is kept or served any more.
        self.alive = True
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._index: dict[bytes, set[Hashable]] = {}
        self._pending: dict[bytes, set[Fill]] = {}
        self._generation = 0
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def classify(self, name: str, args: Sequence[object]) -> tuple[int, Keys] | None:
        """``CommandRules.classify``; before the table is known, every command may write."""
        rules = self.rules
        return (WRITE, ALL) if rules is None else rules.classify(name, args)

    # -- reads ------------------------------------------------------------------

    def hit(self, args: tuple[object, ...]) -> tuple[Reply, Error | None] | None:
        """``cmd()``'s answer from the cache for a command given as its arguments, or None.

        The fast path, before anything is encoded: commands whose arguments
        are all ``str``/``bytes`` are kept under the arguments themselves
        (others under their encoded bytes, see ``key_for``).
        """
        # Exactly str or bytes, as entries are kept: a subclass's == and hash
        # need not follow the bytes Redis would get.
        if not plain_args(args):
            return None
        entry = self._entries.get(args)
        if entry is None:
            return None
        if self.state.multi_sent:  # inside MULTI: the server must queue it
            return None
        deadline = entry.deadline
        if deadline is not None and time.monotonic() >= deadline:
            self._remove(args)
            return None
        entry.used = True
        self.stats.hits += 1
        answer = entry.answer
        if answer is None:  # a list, dict or set: each caller gets its own copy
            return copy_reply(entry.value), None
        return answer

    def lookup(self, command: Hashable) -> Reply | Marker:
        """The cached reply for a cacheable read's key, or ``MISS`` (counted as one)."""
        entry = self._entries.get(command)
        if entry is None:
            self.stats.misses += 1
            return MISS
        return self._served(command, entry)

    def _served(self, command: Hashable, entry: _Entry) -> Reply | Marker:
        # (``hit`` repeats these steps inline: it is the hot path.)
        deadline = entry.deadline
        if deadline is not None and time.monotonic() >= deadline:
            self._remove(command)
            self.stats.misses += 1
            return MISS
        entry.used = True
        self.stats.hits += 1
        value = entry.value
        return copy_reply(value) if value.__class__ in _MUTABLE else value

    def begin(self, keys: list[bytes]) -> Fill:
        """A read of ``keys`` is about to be sent."""
        fill = Fill(keys, self._generation)
        _link(self._pending, keys, fill)
        return fill

    def finish(self, fill: Fill, command: Hashable, replies: list[Reply], sent: float) -> Reply:
        """The read's replies arrived: keep its value if nothing spoiled it; what the caller gets.

        ``replies`` are the command's own, then one ``PTTL`` per key (sent in
        the same write, ``sent`` being when): an entry is never served past
        its keys' expiry, whether or not the server has deleted them yet.
        """
        self.abandon(fill)
        value = replies[0]
        if (fill.spoiled or fill.generation != self._generation or not self.alive
                or isinstance(value, Error)):
            return value
        if self.settings.prefixes is not None and not _all_prefixed(
                fill.keys, self.settings.prefixes):
            return value
        now = time.monotonic()
        deadline = None if self._max_age is None else now + self._max_age
        for ttl in replies[1:]:
            if ttl.__class__ is not int:  # PTTL refused (ACL ...): the expiry is unknown
                return value
            if ttl >= 0:
                expiry = sent + ttl / 1000
                deadline = expiry if deadline is None else min(deadline, expiry)
        if deadline is not None and deadline <= now:
            return value
        size = entry_size(command, fill.keys, value)
        if size > self.settings.max_bytes:
            return value
        if command in self._entries:
            self._remove(command)
        self._entries[command] = _Entry(value, fill.keys, size, deadline)
        _link(self._index, fill.keys, command)
        self._bytes += size
        self.stats.entries += 1
        self.stats.bytes += size
        self._bound()
        # The caller may change what it gets: the cache keeps its own copy.
        return copy_reply(value) if value.__class__ in _MUTABLE else value

    def abandon(self, fill: Fill) -> None:
        """A fill is over (answered, failed or its caller left)."""
        _unlink(self._pending, fill.keys, fill)

    # -- what changes keys -------------------------------------------------------------------

    def invalidate(self, keys: object) -> None:
        """The server's invalidation: ``keys`` changed (None: every key, as FLUSHALL)."""
        if keys is None or not isinstance(keys, list):
            self.stats.invalidations += 1
            self.clear()
            return
        names = [key.encode("utf-8", "surrogateescape") if isinstance(key, str) else key
                 for key in keys if isinstance(key, (str, bytes))]
        self.stats.invalidations += len(names)
        self.forget(names)

    def wrote(self, keys: Keys) -> None:
        """This client's own write was answered (or failed): what it changed goes.

        The server tells a connection of its own writes only after their
        reply, so a read right after an acknowledged write must not find the
        old value here first. (Inside MULTI the write is only queued; reads
        bypass the cache until EXEC is answered, so nothing refills it.)
        """
        if isinstance(keys, Marker):
            self.clear()
        else:
            self.forget(keys)

    def written_by(self, commands: Sequence[Sequence[object]]) -> Keys | None:
        """What a pipeline may change: its writes' keys, ``ALL``, or None (it reads only).

        Its reads bypass the cache (a pipeline is answered by the server alone).
        """
        keys: set[bytes] = set()
        for args in commands:
            use = self.classify(command_name(args[0]), args)
            if use is None or use[0] == READ:
                continue
            if isinstance(use[1], Marker):
                return ALL
            keys.update(use[1])
        return keys or None

    def forget(self, keys: Iterable[bytes]) -> None:
        """Drop every entry that read one of ``keys``; spoil fills in flight on them."""
        index = self._index
        pending = self._pending
        for key in keys:
            commands = index.get(key)
            if commands is not None:
                for command in list(commands):
                    self._remove(command)
            waiting = pending.get(key)
            if waiting is not None:
                for fill in waiting:
                    fill.spoiled = True

    def clear(self) -> None:
        """Drop every entry; no fill in flight may be kept."""
        self._generation += 1
        self.stats.entries -= len(self._entries)
        self.stats.bytes -= self._bytes
        self._entries.clear()
        self._index.clear()
        self._bytes = 0

    def drop(self) -> None:
        """The connection failed: its tracking is gone, and so is everything here."""
        self.alive = False
        self.clear()

    # -- bounds -----------------------------------------------------------------------------

    def _bound(self) -> None:
        """Evict until within bounds: the oldest entry not served since it was last passed.

        Least recently used, approximately ("second chance", as CLOCK): a hit
        only sets a flag, so it costs no reordering; eviction moves a flagged
        entry to the young end once, clearing its flag.
        """
        settings = self.settings
        entries = self._entries
        while entries and (len(entries) > settings.max_entries
                           or self._bytes > settings.max_bytes):
            command, entry = next(iter(entries.items()))
            if entry.used:
                entry.used = False
                entries.move_to_end(command)
                continue
            self._remove(command)
            self.stats.evictions += 1

    def _remove(self, command: Hashable) -> None:
        entry = self._entries.pop(command)
        _unlink(self._index, entry.keys, command)
        self._bytes -= entry.size
        self.stats.entries -= 1
        self.stats.bytes -= entry.size


def _link(table: dict[bytes, set[_T]], keys: list[bytes], member: _T) -> None:
    """Add ``member`` to each key's set in ``table``."""
    for key in keys:
        members = table.get(key)
        if members is None:
            table[key] = {member}
        else:
            members.add(member)


def _unlink(table: dict[bytes, set[_T]], keys: list[bytes], member: _T) -> None:
    """Take ``member`` out of each key's set in ``table``; drop sets left empty."""
    for key in keys:
        members = table.get(key)
        if members is not None:
            members.discard(member)
            if not members:
                del table[key]


def key_for(args: tuple[object, ...], data: bytes) -> Hashable:
    """Where a read is kept: its arguments when all are exactly str/bytes (found
    before encoding, by ``Cache.hit``), else its encoded bytes (``1`` and ``1.0``
    are equal in Python, yet different arguments to Redis)."""
    return args if plain_args(args) else data


def plain_args_pure(args: tuple[object, ...]) -> bool:
    """Whether every argument is exactly ``str`` or ``bytes`` (no subclass)."""
    for arg in args:
        kind = type(arg)  # (not arg.__class__, which an object may fake)
        if kind is not str and kind is not bytes:
            return False
    return True


#: The compiled check (``_speedups.c``) when the package was built with it.
compiled_plain_args: Callable[[tuple[object, ...]], bool] | None
try:
    from ._speedups import plain_args as compiled_plain_args
except ImportError:
    compiled_plain_args = None

if speedups_turned_off():  # pure Python alone, as the encoder
    compiled_plain_args = None
plain_args: Callable[[tuple[object, ...]], bool] = (
    plain_args_pure if compiled_plain_args is None else compiled_plain_args)


def is_invalidation(value: Reply) -> bool:
    """Whether a RESP3 push is a tracking invalidation (``["invalidate", keys]``)."""
    return (isinstance(value, list) and len(value) == 2
            and value[0] in ("invalidate", b"invalidate"))


_MUTABLE: Final = frozenset({list, dict, set})


def copy_reply(value: Reply) -> Reply:
    """A copy of a reply's containers, at any depth (strings and numbers are shared)."""
    if isinstance(value, list):
        return [copy_reply(item) if item.__class__ in _MUTABLE else item for item in value]
    if isinstance(value, dict):
        return {key: copy_reply(item) if item.__class__ in _MUTABLE else item
                for key, item in value.items()}
    if isinstance(value, set):
        return set(value)  # members are hashable, hence not containers
    return value


def reply_size(value: Reply) -> int:
    """About the memory a reply holds in Python, its objects at any depth included."""
    size = sys.getsizeof(value) if value is not None else 0
    if isinstance(value, (list, set)):
        return size + sum([reply_size(item) for item in value])
    if isinstance(value, dict):
        return size + sum([reply_size(k) + reply_size(v) for k, v in value.items()])
    return size


def entry_size(command: Hashable, keys: list[bytes], value: Reply) -> int:
    """About what keeping one entry costs: its reply, its command (the caller's
    arguments, kept alive), its keys, their index sets, and the bookkeeping."""
    if isinstance(command, tuple):
        held = sys.getsizeof(command) + sum([sys.getsizeof(arg) for arg in command])
    else:
        held = sys.getsizeof(command)
    held += sys.getsizeof(keys) + sum([sys.getsizeof(key) + INDEX_COST for key in keys])
    return reply_size(value) + held + ENTRY_OVERHEAD


def expiry_probe(keys: list[bytes]) -> bytes:
    """One ``PTTL`` per key, sent right behind a read that missed."""
    return b"".join([encode_command((b"PTTL", key)) for key in keys])


def _all_prefixed(keys: list[bytes], prefixes: tuple[bytes, ...]) -> bool:
    return not prefixes or all(key.startswith(prefixes) for key in keys)


# -- reading COMMAND's reply (RESP3: maps, sets; str or bytes) -----------------------------


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else ""


def _int(*values: object, default: int = 0) -> int:
    for value in values:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return default


def _items(value: object) -> list[object]:
    if isinstance(value, (list, set, tuple)):
        return list(value)
    return []


def _words(value: object) -> set[str]:
    return {_text(item) for item in _items(value)}


def _map(value: object) -> dict[str, object]:
    if isinstance(value, dict):
        return {_text(key): item for key, item in value.items()}
    if isinstance(value, list):  # a RESP2 map: key, value, key, value ...
        return {_text(value[i]): value[i + 1] for i in range(0, len(value) - 1, 2)}
    return {}


__all__ = [
    "ALL",
    "MISS",
    "READ",
    "WRITE",
    "Cache",
    "CacheSettings",
    "CacheStats",
    "CommandRules",
    "copy_reply",
    "is_invalidation",
    "known_rules",
    "remember_rules",
]
