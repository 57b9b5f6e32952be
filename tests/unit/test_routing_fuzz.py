"""Differential routing fuzz: every reply to its caller, every push to read(), in order.

A small model of a RESP2 server (subscriptions, MULTI, RESET, the subscribed
mode's refusals, published messages arriving at any moment) answers random
command scripts: plain commands with hostile reply shapes (arrays that start
with "message" or "subscribe", deep nesting, long status lines), SUBSCRIBE /
PSUBSCRIBE / SSUBSCRIBE / UNSUBSCRIBE with and without channels, RESET,
MULTI ... EXEC, and shard channels the server drops on its own. The connection layer's real pieces — session state machine,
dispatcher and parser — are fed the model's bytes cut into random chunks,
with read() calls at random moments. Each caller's result and each push
(value and type tag) must equal what the plain reference parser reads from
the same bytes for that owner. `make test` runs 3,000 scripts, `make stress`
100,000.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

from levredis._dispatch import NOTHING_TO_READ, Batch, Dispatcher
from levredis._errors import UsageError
from levredis._resp import AcceleratedParser, Parser, Reply
from levredis._state import SessionState
from tests.reference_parser import ReferenceParser
from tests.stressing import FIGURES, size
from tests.unit.test_fuzz import same


def bulk(text: str) -> bytes:
    data = text.encode()
    return b"$%d\r\n%s\r\n" % (len(data), data)


def array(*items: bytes) -> bytes:
    return b"*%d\r\n" % len(items) + b"".join(items)


def hostile_value(rng: random.Random, depth: int = 0) -> bytes:
    """A reply a plain command might get, shaped to fool a careless router."""
    roll = rng.random()
    if roll < 0.15:
        word = rng.choice(["message", "pmessage", "smessage", "subscribe", "unsubscribe",
                           "pong", "RESET"])
        return array(bulk(word), bulk("ch"), rng.choice([b":1\r\n", bulk("payload")]))
    if roll < 0.2 and depth == 0:
        return b"*1\r\n" * rng.choice([2, 50, 3000]) + b":7\r\n"  # deep nesting
    if roll < 0.22:
        return b"+" + b"s" * rng.choice([10, 70_000, 1_200_000]) + b"\r\n"  # long status
    if roll < 0.4:
        return rng.choice([b"+OK\r\n", b"+RESET\r\n", b":42\r\n", b"$-1\r\n", b"*-1\r\n",
                           b"-ERR no\r\n", b"*0\r\n"])
    if roll < 0.6 and depth < 3:
        return array(*(hostile_value(rng, depth + 1) for _ in range(rng.randint(1, 4))))
    return bulk(rng.choice(["v", "", "x" * 300, "caf\u00e9"]))


@dataclass
class Model:
    """What a RESP2 server sends back, and for whom (an index, or "push")."""

    channels: dict[str, set[str]] = field(
        default_factory=lambda: {"subscribe": set(), "psubscribe": set(), "ssubscribe": set()})
    in_multi: bool = False
    queued: list[bytes] = field(default_factory=list)
    out: list[tuple[object, bytes]] = field(default_factory=list)

    def subscribed(self) -> bool:
        return any(self.channels.values())

    def answer(self, owner: int, args: list[str], reply: bytes) -> None:
        name = args[0]
        targets = {"SUBSCRIBE": "subscribe", "PSUBSCRIBE": "psubscribe",
                   "SSUBSCRIBE": "ssubscribe", "UNSUBSCRIBE": "subscribe",
                   "PUNSUBSCRIBE": "psubscribe", "SUNSUBSCRIBE": "ssubscribe"}
        if name == "RESET":
            for channels in self.channels.values():
                channels.clear()
            self.in_multi, self.queued = False, []
            self.out.append((owner, b"+RESET\r\n"))
        elif name in targets:
            self._subscription(owner, name, targets[name], args[1:])
        elif name == "PING" and self.subscribed():
            self.out.append((owner, array(bulk("pong"), bulk(""))))
        elif self.subscribed():
            self.out.append((owner, b"-ERR Can't execute '%s' in this context\r\n"
                             % name.lower().encode()))
        elif name == "MULTI":
            self.in_multi = True
            self.out.append((owner, b"+OK\r\n"))
        elif name == "EXEC":
            self.out.append((owner, array(*self.queued) if self.in_multi else
                             b"-ERR EXEC without MULTI\r\n"))
            self.in_multi, self.queued = False, []
        elif self.in_multi:
            self.queued.append(reply)
            self.out.append((owner, b"+QUEUED\r\n"))
        else:
            self.out.append((owner, reply))

    def _subscription(self, owner: int, name: str, target: str, names: list[str]) -> None:
        channels = self.channels[target]
        word = name.lower()
        adds = not name.endswith("UNSUBSCRIBE") and "UNSUB" not in name
        if adds and not names:
            self.out.append((owner, b"-ERR wrong number of arguments\r\n"))
            return
        if not adds and not names:
            names = sorted(channels) or [""]
        for position, channel in enumerate(names):
            if adds:
                channels.add(channel)
            else:
                channels.discard(channel)
            count = len(channels) if target == "ssubscribe" else (
                len(self.channels["subscribe"]) + len(self.channels["psubscribe"]))
            channel_bytes = bulk(channel) if channel else b"$-1\r\n"
            confirmation = array(bulk(word), channel_bytes, b":%d\r\n" % count)
            self.out.append((owner if position == 0 else "push", confirmation))

    def publish(self, rng: random.Random, may_drop: bool) -> None:
        kinds = [kind for kind, names in self.channels.items() if names]
        if not kinds:
            return
        kind = rng.choice(kinds)
        channel = rng.choice(sorted(self.channels[kind]))
        if kind == "ssubscribe" and may_drop and rng.random() < 0.2:
            # The server drops a shard channel on its own (its slot moved).
            self.channels[kind].discard(channel)
            self.out.append(("push", array(bulk("sunsubscribe"), bulk(channel),
                                           b":%d\r\n" % len(self.channels[kind]))))
            return
        payload = bulk(rng.choice(["hi", "", "message", "x" * 500]))
        if kind == "psubscribe":
            message = array(bulk("pmessage"), bulk(channel), bulk("c1"), payload)
        else:
            message = array(bulk("message" if kind == "subscribe" else "smessage"),
                            bulk(channel), payload)
        self.out.append(("push", message))


COMMANDS = ["GET", "GET", "GET", "PING", "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE",
            "UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE", "RESET", "MULTI", "EXEC"]


def random_args(rng: random.Random) -> list[str]:
    name = rng.choice(COMMANDS)
    if "SUBSCRIBE" in name:
        count = rng.choice([0, 1, 1, 2, 3]) if "UNSUB" in name else rng.choice([1, 1, 2, 3])
        return [name, *rng.sample(["a", "b", "c", "d"], count)]
    return [name, "k"] if name == "GET" else [name]


def run_script(rng: random.Random, loop: asyncio.AbstractEventLoop) -> tuple[int, int]:
    """One random script; returns (replies checked, pushes checked)."""
    state = SessionState(0)
    dispatch = Dispatcher(state)
    parser = rng.choice([Parser, AcceleratedParser])()  # pure, or the compiled fast path
    model = Model()
    futures: list[asyncio.Future[Reply]] = []
    reads: list[object] = []
    stream = bytearray()
    delivered = emitted = 0
    batched: set[int] = set()  # commands with a plan: their result is [first reply]
    pipelines: dict[int, list[int]] = {}  # plain pipelines: their commands' owner numbers
    owners = 0  # the model's owner number of the next command

    def feed(upto: int) -> None:
        nonlocal delivered
        while delivered < upto:
            step = min(upto - delivered, rng.choice([1, 7, 64, 1000, 70_000]))
            parser.feed(bytes(stream[delivered : delivered + step]))
            delivered += step
            dispatch.deliver(parser)  # as the connection does
            if rng.random() < 0.2:
                read_now()

    def read_now() -> None:
        # In the order read() calls were made: a push taken at once, or a
        # waiting reader's future (it is served before any later read()).
        push = dispatch.take_push()
        if push is not None:
            reads.append(push)
            return
        reader: asyncio.Future[object] = loop.create_future()
        dispatch.wait_push(reader)  # type: ignore[arg-type]
        if reader.done():
            assert reader.result() is NOTHING_TO_READ and not state.pushes_possible
        else:
            reads.append(reader)

    script = [random_args(rng) for _ in range(rng.randint(1, 25))]
    for step, args in enumerate(script):
        # A drop racing the client's own SUNSUBSCRIBE gives two identical
        # confirmations, which RESP2 cannot attribute (see the unit test of
        # the stray one): the model drops a channel only when none follows.
        may_drop = all(later[0] != "SUNSUBSCRIBE" for later in script[step:])
        plan = state.plan_command(args)
        if isinstance(plan, UsageError):
            assert args[0] in {"SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "UNSUBSCRIBE",
                               "PUNSUBSCRIBE", "SUNSUBSCRIBE"} and "MULTI" in plan
            continue
        future: asyncio.Future[Reply] = loop.create_future()
        members = [args]
        if plan is None and rng.random() < 0.3:
            # A pipeline of plain commands: one waiter for all their replies.
            members += [["GET", "k"]] * rng.randint(1, 6)
            for extra in members[1:]:
                assert state.plan_command(extra) is None
            dispatch.waiters.append(Batch(future, len(members), None))  # type: ignore[arg-type]
            pipelines[len(futures)] = list(range(owners, owners + len(members)))
        elif plan is None:
            dispatch.waiters.append(future)
        else:
            dispatch.waiters.append(Batch(future, 1, [plan]))  # type: ignore[arg-type]
            batched.add(len(futures))
        futures.append(future)
        for member in members:
            model.answer(owners, member, hostile_value(rng))
            owners += 1
        while rng.random() < 0.3:
            model.publish(rng, may_drop)
        for _, data in model.out[emitted:]:
            stream += data
        emitted = len(model.out)
        feed(rng.randint(delivered, len(stream)))
    feed(len(stream))
    while dispatch.pushes:
        read_now()
    consumed: list[tuple[int, Reply]] = []
    waiting = False
    for read in reads:
        if isinstance(read, asyncio.Future):
            if not read.done():
                waiting = True  # nothing more came: no later read() got anything
                continue
            if read.result() is NOTHING_TO_READ:
                continue
            read = read.result()
        assert not waiting, "a later read() was served before an earlier one"
        consumed.append(read)  # type: ignore[arg-type]

    # What the reference parser reads from each owner's bytes.
    expected_replies: dict[int, Reply] = {}
    expected_pushes: list[tuple[int, Reply]] = []
    for owner, data in model.out:
        reference = ReferenceParser()
        reference.feed(data)
        value = reference.next_reply()
        if owner == "push":
            expected_pushes.append((reference.kind, value))  # type: ignore[arg-type]
        else:
            expected_replies[owner] = value  # type: ignore[index, assignment]
    number = 0  # the owner number of each future's (first) command
    for index, future in enumerate(futures):
        assert future.done(), f"command {index} got no reply"
        got = future.result()
        if index in pipelines:
            assert isinstance(got, list) and len(got) == len(pipelines[index])
            for value, owned in zip(got, pipelines[index], strict=True):
                assert same(value, expected_replies[owned]), (index, value)
            number += len(got)
            continue
        if index in batched:
            got = got[0]  # type: ignore[index]
        assert same(got, expected_replies[number]), (index, got, expected_replies[number])
        number += 1
    assert len(consumed) == len(expected_pushes)
    for (kind, value), (want_kind, want) in zip(consumed, expected_pushes, strict=True):
        assert kind == want_kind and same(value, want), ((kind, value), (want_kind, want))
    assert not dispatch.waiters and not parser.has_partial()
    return len(futures), len(expected_pushes)


def test_every_reply_reaches_its_caller_and_every_push_reaches_read() -> None:
    rng = random.Random(20261127)
    loop = asyncio.new_event_loop()
    started = time.perf_counter()
    scripts = size(3_000, 100_000)
    replies = pushes = 0
    try:
        for _ in range(scripts):
            checked_replies, checked_pushes = run_script(rng, loop)
            replies += checked_replies
            pushes += checked_pushes
    finally:
        loop.close()
    FIGURES["routing fuzz"] = {
        "scripts": scripts, "replies checked": replies, "pushes checked": pushes,
        "wrong": 0, "seconds": round(time.perf_counter() - started, 1)}
