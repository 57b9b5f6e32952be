"""A chaos run for a Redis Cluster client: traffic, faults at random moments, checks.

``run_chaos(cluster, "levredis" | "redis-py", ChaosConfig(...))`` runs, against
a ``LocalCluster`` (3 primaries, 3 replicas, ``--cluster-node-timeout 1000``):

* ``tasks`` worker tasks (50 by default). Worker ``w`` owns ``keys_per_task``
  string keys and one counter; their hash tags are chosen so that all the
  run's keys spread evenly over the 16384 slots (so over every primary, and
  over every range a reshard moves). Each loop a worker picks, at random
  (seeded): ``SET`` of one of its keys to a fresh value (30 %), ``GET`` of one
  of its keys (30 %), ``INCR`` of its counter (20 %), or a pipeline
  ``SET k1 v; GET k2`` of two of its keys (20 %). After an error it sleeps
  ``error_pause`` (so a dead node is not hammered in a tight loop), otherwise
  a random ``0..op_pause``.
* one publisher task publishing ``1, 2, 3 ...`` on one channel every
  ``publish_every`` seconds, and one subscriber task reading it.
* a fault driver (seeded RNG) injecting, in random order (each round is a
  shuffle of the kinds) at random moments (a pause of 0.5-2 s after the
  previous fault settled):

  ``client-kill``
      ``CLIENT KILL TYPE normal`` on a random primary (only primaries: the
      clients send commands to nothing else): every command connection of
      the client to it is dropped; and ``CLIENT KILL TYPE pubsub`` on every
      node, so that the subscriber loses its connection each time too.
  ``sigstop``
      ``SIGSTOP`` a random primary for ``stop_seconds`` (0.5 s, half the node
      timeout, so no failover should follow), then ``SIGCONT``.
  ``primary-kill``
      pick a random primary, wait (5 s at most) until its replica's link is
      ``state=online`` with ``lag`` <= 1 s, ``SIGKILL`` it, wait until that
      replica is ``role:master`` and every survivor says ``cluster_state:ok``
      (the failover completed), restart the killed node (its ``nodes.conf``
      makes it rejoin as a replica of the promoted one) and wait until it is a
      replica with its link up and the cluster is ok.
  ``replica-restart``
      stop a random replica (``SIGTERM`` or ``SIGKILL``, at random), start it
      again after 0.2-1 s, wait until it is synced and the cluster is ok.
  ``reshard``
      ``redis-cli --cluster reshard`` of ``reshard_slots`` (200) slots, with
      their keys, from the primary owning most slots to another random
      primary, in a subprocess (traffic keeps running meanwhile).

  Every node gets ``CONFIG SET repl-diskless-sync-delay 0`` (at the start
  and after each restart), so a replica's full sync does not wait Redis'
  default 5 s for other replicas to join it: the faults heal faster, more
  of them fit in a run; clients see no difference.

  After each fault the driver waits until every node says
  ``cluster_state:ok``, every replica's link is up and every node gives the
  same slot map with no slot migrating, so that faults do not pile up. (Not
  waiting for the last one let a primary be killed while its replica did
  not know yet of the last slot a reshard had given it: the promoted replica
  then never served that slot, and the cluster never healed by itself.)

  Blocking driver steps (raw sockets, process waits) run in threads, the
  reshard in an asyncio subprocess: the traffic's event loop never blocks.
  Faults keep coming until ``seconds`` have passed; with ``ensure_each_kind``
  (the default) the run goes on until each kind was injected at least once.
  Then the cluster is let heal, traffic goes on ``tail`` seconds, stops, and
  every key is read back.

What is checked (an oracle of the harness's own: raw sockets, its own CRC16):

wrong answers
    ``GET k`` must return the last acknowledged ``SET k`` value (absent if
    none), or the value of an unacknowledged (errored) ``SET k`` attempted
    after it. The one exception is Redis' own asynchronous replication: a
    value older than the last acknowledged one is accepted when every
    acknowledged ``SET`` after it was acknowledged inside a *failover window*
    (below) of a primary that owned the key's slot; it is counted as
    ``acked_writes_lost_seen`` instead. ``SET`` must answer ``OK``. ``INCR``
    of the worker's counter must answer an integer greater than every earlier
    acknowledged reply that cannot have been lost in a failover window (so,
    without failovers, greater than the previous reply), and at most the
    number of ``INCR`` sent so far (acknowledged or not): more means one
    ``INCR`` ran twice. A pipeline's ``SET`` and ``GET`` are checked the
    same way, in order. Every such failure is a wrong answer (one per reply;
    a wrong ``INCR`` reply re-bases its counter's model on the reply, so an
    ``INCR`` run twice counts once, not once for every later ``INCR``). A
    wrong answer also counts as a failed operation for recovery.
pub/sub
    each message must be on the channel, parse as an integer the publisher
    did send, and be greater than every earlier one: a repeat is
    ``duplicate``, a smaller one ``out_of_order``, anything else ``foreign``;
    all three are wrong. Acknowledged publishes never received (in any
    order) are ``missed`` (pub/sub is at-most-once: counted, not wrong).
    Note that Redis Cluster itself only keeps the order of messages
    published through one node: a client that sends one publisher's
    ``PUBLISH`` commands to different nodes lets them overtake each other
    on the cluster bus, and that shows here as ``out_of_order``. A read error
    opens a *gap*, the next message closes it (healed). ``healed_at_end``:
    a message published after the last fault was received.
acknowledged writes missing (final read-back)
    each key's final value must be its last acknowledged value, or that of an
    unacknowledged ``SET`` attempted after it; each counter must be at least
    its last acknowledged value (and at most the INCRs sent:
    ``final_counters_over_attempts`` otherwise). A key or counter that fails
    this is missing *inside* a failover window when the last acknowledged
    write was acknowledged inside one (of its slot's primary) and what is
    found is a state accepted by the rule above, else *outside* (must be 0).

failover window
    from 2 s before the ``SIGKILL`` of a primary until that failover
    completed (the replica is ``role:master`` and all survivors say
    ``cluster_state:ok``); it covers the slots the killed primary owned.

time to recover (per fault)
    ``t0`` is the moment the fault is injected (the signal or ``CLIENT KILL``
    sent, the reshard started) and ``t1`` the moment the next fault is
    injected (or the traffic stops). Each operation belongs to the interval
    ``[t0, t1)`` in which it *completed*. For each worker ``w``: ``s_w`` is
    the completion time of its first successful operation (no error, right
    answer) that started at or after ``t0`` and after ``w``'s last failed
    operation in the interval. Recovery is ``max_w s_w - t0``: the first
    moment from which every worker has been served again after its last
    failure. ``None`` (not recovered) if some worker has no such operation in
    the interval. An operation in flight at ``t0`` never counts. The driver
    waits (``recover_limit`` at most) for recovery before the next fault.
    A fault that caused no error still gets a (small) figure: the time until
    every worker completed a fresh operation.

Clients: ``levredis.connect_cluster({"nodes": seeds, "timeout": 5})``, and a
second such client for the subscriber (``SUBSCRIBE`` then ``read()`` in a
loop; ``read()``'s ``(None, "timeout")`` means nothing arrived). redis-py:
``redis.asyncio.cluster.RedisCluster`` with its default retry policy,
``decode_responses=True`` and 5 s socket timeouts; pipelines are
``RedisCluster.pipeline()`` executed with ``raise_on_error=False``; the
subscriber is ``pubsub()`` (``ClusterPubSub``) of a second ``RedisCluster``
(like levredis' second client: its connections never share the commands'
pools) with ``get_message(ignore_subscribe_messages=True, timeout=1)``;
``ClusterPubSub`` reconnects and subscribes again by itself on the next
``get_message`` after a connection error. Exceptions become
error kinds (class name, plus the first word for a plain ``ResponseError``;
``unexpected`` before anything that is not a ``RedisError``, ``OSError`` or
timeout). levredis error kinds are the class name and the error's first word.
An exception escaping the levredis adapter breaks levredis' contract: it is
counted in ``raised``.

Timing is nondeterministic, so a seed reproduces the fault order, targets and
pauses and the workers' choices, not the interleaving.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import math
import os
import random
import secrets
import shutil
import signal
import socket
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from tests.cluster.conftest import LocalCluster
from tests.servers import RedisServer

REDIS_CLI = shutil.which("redis-cli") or "redis-cli"
SLOTS = 16384
FAULT_KINDS: tuple[str, ...] = (
    "client-kill", "sigstop", "primary-kill", "replica-restart", "reshard")
#: How long the cluster may take to say cluster_state:ok everywhere after a fault.
HEAL_LIMIT = 60.0
#: How far before a primary's SIGKILL an acknowledged write may still be lost.
WINDOW_BEFORE_KILL = 2.0


# -- slots (the harness' own, not the client's) ------------------------------

def key_slot(key: str) -> int:
    """Redis Cluster's slot of ``key`` (CRC16/XMODEM of the hash tag or key)."""
    data = key.encode()
    start = data.find(b"{")
    if start != -1:
        end = data.find(b"}", start + 1)
        if end > start + 1:
            data = data[start + 1:end]
    return binascii.crc_hqx(data, 0) % SLOTS


def spread_tags(prefix: str, count: int) -> list[str]:
    """``count`` hash tags whose slots fall one in each of ``count`` equal slot ranges."""
    tags = []
    for bucket in range(count):
        low, high = bucket * SLOTS // count, (bucket + 1) * SLOTS // count
        n = 0
        while not low <= key_slot(f"{{{prefix}.{bucket}.{n}}}") < high:
            n += 1
        tags.append(f"{prefix}.{bucket}.{n}")
    return tags


# -- raw RESP over a socket: the driver's and the read-back's own path -------

class RespError(Exception):
    """An error reply, kept as a value in ``raw_commands`` results."""


def _read_reply(stream: Any) -> Any:
    line: bytes = stream.readline()
    if not line:
        raise ConnectionError("connection closed")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        return RespError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        size = int(rest)
        if size < 0:
            return None
        data: bytes = stream.read(size + 2)
        return data[:-2].decode(errors="replace")
    if kind == b"*":
        size = int(rest)
        return None if size < 0 else [_read_reply(stream) for _ in range(size)]
    raise ConnectionError(f"unexpected RESP line {line!r}")


def raw_commands(port: int, commands: Sequence[Sequence[str]], timeout: float = 5.0) -> list[Any]:
    """Send ``commands`` on one fresh connection; replies in order (errors as RespError)."""
    with socket.create_connection(("127.0.0.1", port), timeout) as sock:
        payload = []
        for args in commands:
            payload.append(b"*%d\r\n" % len(args))
            for arg in args:
                data = arg.encode()
                payload.append(b"$%d\r\n%s\r\n" % (len(data), data))
        sock.sendall(b"".join(payload))
        with sock.makefile("rb") as stream:
            return [_read_reply(stream) for _ in commands]


def raw_command(port: int, *args: str, timeout: float = 5.0) -> Any:
    reply = raw_commands(port, [args], timeout)[0]
    if isinstance(reply, RespError):
        raise reply
    return reply


def raw_key_command(ports: Sequence[int], *args: str) -> Any:
    """A one-key command through the cluster by hand (``args[1]`` is the key),
    following MOVED/ASK, retrying while the cluster heals."""
    port = ports[0]
    last: Exception | None = None
    for attempt in range(40):
        try:
            reply = raw_commands(port, [args])[0]
        except OSError as exc:
            last, port = exc, ports[(attempt + 1) % len(ports)]
            time.sleep(0.1)
            continue
        if not isinstance(reply, RespError):
            return reply
        words = str(reply).split()
        if words[0] == "MOVED":
            port = int(words[2].rsplit(":", 1)[1])
        elif words[0] == "ASK":
            asked = raw_commands(int(words[2].rsplit(":", 1)[1]), [["ASKING"], args])
            if not isinstance(asked[1], RespError):
                return asked[1]
            last = asked[1]
        else:  # CLUSTERDOWN, TRYAGAIN, LOADING ...
            last = reply
            time.sleep(0.1)
    raise RuntimeError(f"{args[0]} {args[1]!r} by hand failed: {last}")


def raw_get(ports: Sequence[int], key: str) -> str | None:
    reply = raw_key_command(ports, "GET", key)
    return None if reply is None else str(reply)


@dataclass
class NodeInfo:
    id: str
    port: int
    primary: bool
    primary_id: str
    failed: bool
    slots: list[tuple[int, int]]

    def slot_count(self) -> int:
        return sum(high - low + 1 for low, high in self.slots)


def tune(server: RedisServer) -> None:
    """A replica's full sync starts at once (Redis waits 5 s for more replicas by default)."""
    raw_command(server.port, "CONFIG", "SET", "repl-diskless-sync-delay", "0")


def live_servers(cluster: LocalCluster) -> list[RedisServer]:
    return [s for s in cluster.servers if s.process is not None]


def cluster_nodes(cluster: LocalCluster) -> list[NodeInfo]:
    """The topology, from ``CLUSTER NODES`` of the first live node that answers."""
    last: Exception | None = None
    for server in live_servers(cluster):
        try:
            text = raw_command(server.port, "CLUSTER", "NODES")
        except (OSError, RespError) as exc:
            last = exc
            continue
        nodes = []
        for line in str(text).splitlines():
            fields = line.split()
            if len(fields) < 8:
                continue
            slots = []
            for part in fields[8:]:
                if part.startswith("["):
                    continue  # a migrating/importing marker
                low, _, high = part.partition("-")
                slots.append((int(low), int(high or low)))
            flags = fields[2].split(",")
            nodes.append(NodeInfo(
                id=fields[0], port=int(fields[1].split("@")[0].rsplit(":", 1)[1]),
                primary="master" in flags, primary_id=fields[3],
                failed="fail" in flags or "fail?" in flags, slots=slots))
        return nodes
    raise RuntimeError(f"no node answered CLUSTER NODES: {last}")


def slot_view(text: str) -> tuple[tuple[int, int, str], ...] | None:
    """(low, high, owner id) of every slot range in one node's CLUSTER NODES;
    None while a slot is migrating or importing."""
    ranges = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 8 or "master" not in fields[2]:
            continue
        for part in fields[8:]:
            if part.startswith("["):
                return None
            low, _, high = part.partition("-")
            ranges.append((int(low), int(high or low), fields[0]))
    return tuple(sorted(ranges))


def wait_agreed(cluster: LocalCluster, limit: float) -> None:
    """Until every live node gives the same slot map, with no slot migrating."""
    deadline = time.monotonic() + limit
    while True:
        views = set()
        for server in live_servers(cluster):
            try:
                views.add(slot_view(str(raw_command(server.port, "CLUSTER", "NODES"))))
            except (OSError, RespError):
                views.add(None)
        if len(views) == 1 and None not in views:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the nodes do not agree on the slot map after {limit} s")
        time.sleep(0.05)


def cluster_report(cluster: LocalCluster) -> str:
    """Each live node's view: cluster_state, role, link, and its CLUSTER NODES."""
    lines = []
    for server in live_servers(cluster):
        try:
            info = str(raw_command(server.port, "CLUSTER", "INFO"))
            replication = str(raw_command(server.port, "INFO", "replication"))
            nodes = str(raw_command(server.port, "CLUSTER", "NODES"))
        except (OSError, RespError) as exc:
            lines.append(f"{server.port}: {exc!r}")
            continue
        lines.append(f"{server.port}: cluster_state {info_field(info, 'cluster_state')}, role "
                     f"{info_field(replication, 'role')}, link "
                     f"{info_field(replication, 'master_link_status')}")
        lines += ["    " + line for line in nodes.splitlines()]
    return "\n".join(lines)


def info_field(text: str, name: str) -> str | None:
    for line in text.splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    return None


# -- adapters -------------------------------------------------------------------

@dataclass(frozen=True)
class Failure:
    """An operation's error: a short kind to count, and the message."""

    kind: str
    message: str


@dataclass(frozen=True)
class Message:
    channel: str
    payload: str


Outcome = tuple[Any, Failure | None]


class Adapter(Protocol):
    """One cluster client under test. Methods never raise: errors come back as Failure.

    ``get`` answers ``(None, None)`` for an absent key. ``read_message``
    answers a Message, ``None`` when nothing arrived in time (or something
    other than a message, e.g. a subscribe confirmation), or a Failure.
    """

    name: str

    async def set(self, key: str, value: str) -> Outcome: ...
    async def get(self, key: str) -> Outcome: ...
    async def incr(self, key: str) -> Outcome: ...
    async def set_get(self, set_key: str, value: str, get_key: str) -> tuple[Outcome, Outcome]: ...
    async def publish(self, channel: str, payload: str) -> Outcome: ...
    async def subscribe(self, channel: str) -> Failure | None: ...
    async def read_message(self) -> Message | Failure | None: ...
    async def close(self) -> None: ...


def _first_word(text: str) -> str:
    word = text.split(" ", 1)[0][:24]
    return "<addr>" if any(c.isdigit() for c in word) or ":" in word else word


class LevredisAdapter:
    """levredis' ``ClusterClient``: one for commands, one for the subscriber."""

    name = "levredis"

    def __init__(self, client: Any, subscriber: Any) -> None:
        self.client = client
        self.subscriber = subscriber

    @classmethod
    async def open(cls, seeds: list[str]) -> LevredisAdapter:
        import levredis

        config = {"nodes": seeds, "timeout": 5}
        client, err = await levredis.connect_cluster(config)
        if client is None:
            raise RuntimeError(f"levredis.connect_cluster failed: {err}")
        subscriber, err = await levredis.connect_cluster(config)
        if subscriber is None:
            await client.close()
            raise RuntimeError(f"levredis.connect_cluster failed: {err}")
        return cls(client, subscriber)

    @staticmethod
    def failure(err: str) -> Failure:
        return Failure(f"{type(err).__name__} {_first_word(str(err))}", str(err))

    def _outcome(self, value: Any, err: str | None, absent_ok: bool = False) -> Outcome:
        import levredis

        if err is None:
            return value, None
        if absent_ok and isinstance(err, levredis.NotFound):
            return None, None
        return None, self.failure(err)

    async def set(self, key: str, value: str) -> Outcome:
        return self._outcome(*await self.client.cmd("SET", key, value))

    async def get(self, key: str) -> Outcome:
        value, err = await self.client.cmd("GET", key)
        return self._outcome(value, err, absent_ok=True)

    async def incr(self, key: str) -> Outcome:
        return self._outcome(*await self.client.cmd("INCR", key))

    async def set_get(self, set_key: str, value: str, get_key: str) -> tuple[Outcome, Outcome]:
        results, err = await self.client.pipeline([["SET", set_key, value], ["GET", get_key]])
        if results is None:
            failure = self.failure(err)
            return (None, failure), (None, failure)

        def entry(reply: list[Any]) -> Outcome:
            return (None, self.failure(reply[1])) if len(reply) == 2 else (reply[0], None)

        return entry(results[0]), entry(results[1])

    async def publish(self, channel: str, payload: str) -> Outcome:
        return self._outcome(*await self.client.cmd("PUBLISH", channel, payload))

    async def subscribe(self, channel: str) -> Failure | None:
        _, err = await self.subscriber.cmd("SUBSCRIBE", channel)
        return None if err is None else self.failure(err)

    async def read_message(self) -> Message | Failure | None:
        item, err = await self.subscriber.read()
        if err is not None:
            return None if err == "timeout" else self.failure(err)
        value = item["value"] if item else None
        if isinstance(value, list) and len(value) == 3 and value[0] == "message":
            return Message(str(value[1]), str(value[2]))
        return None

    async def close(self) -> None:
        await self.subscriber.close()
        await self.client.close()


class RedisPyAdapter:
    """redis-py's ``redis.asyncio.cluster.RedisCluster`` with its default retries; the
    subscriber is ``pubsub()`` of a second RedisCluster (as levredis' has a client of
    its own), so that its connections never share a pool with the commands'."""

    name = "redis-py"

    def __init__(self, client: Any, subscriber_client: Any) -> None:
        self.client = client
        self.subscriber_client = subscriber_client
        self.pubsub: Any = None

    @classmethod
    async def open(cls, seeds: list[str]) -> RedisPyAdapter:
        from redis.asyncio.cluster import ClusterNode, RedisCluster

        def connect() -> Any:
            nodes = [ClusterNode(seed.rsplit(":", 1)[0], int(seed.rsplit(":", 1)[1]))
                     for seed in seeds]
            return RedisCluster(startup_nodes=nodes, decode_responses=True,
                                socket_timeout=5.0, socket_connect_timeout=5.0)

        client, subscriber_client = connect(), connect()
        await client.initialize()
        await subscriber_client.initialize()
        return cls(client, subscriber_client)

    @staticmethod
    def failure(exc: BaseException) -> Failure:
        import redis.exceptions

        name = type(exc).__name__
        if type(exc) is redis.exceptions.ResponseError:
            name += " " + _first_word(str(exc))
        elif not isinstance(exc, (redis.exceptions.RedisError, OSError, asyncio.TimeoutError)):
            name = "unexpected " + name
        return Failure(name, f"{type(exc).__name__}: {exc}")

    async def _call(self, call: Callable[[], Awaitable[Any]]) -> Outcome:
        try:
            return await call(), None
        except Exception as exc:
            return None, self.failure(exc)

    async def set(self, key: str, value: str) -> Outcome:
        reply, failure = await self._call(lambda: self.client.set(key, value))
        return ("OK" if reply is True else reply), failure

    async def get(self, key: str) -> Outcome:
        return await self._call(lambda: self.client.get(key))

    async def incr(self, key: str) -> Outcome:
        return await self._call(lambda: self.client.incr(key))

    async def set_get(self, set_key: str, value: str, get_key: str) -> tuple[Outcome, Outcome]:
        async def run() -> list[Any]:
            pipe = self.client.pipeline()
            pipe.set(set_key, value)
            pipe.get(get_key)
            results: list[Any] = await pipe.execute(raise_on_error=False)
            return results

        results, failure = await self._call(run)
        if failure is not None:
            return (None, failure), (None, failure)

        def entry(reply: Any) -> Outcome:
            return (None, self.failure(reply)) if isinstance(reply, BaseException) else (
                reply, None)

        set_reply, set_failure = entry(results[0])
        return ("OK" if set_reply is True else set_reply, set_failure), entry(results[1])

    async def publish(self, channel: str, payload: str) -> Outcome:
        return await self._call(lambda: self.client.publish(channel, payload))

    async def subscribe(self, channel: str) -> Failure | None:
        if self.pubsub is None:
            self.pubsub = self.subscriber_client.pubsub()
        _, failure = await self._call(lambda: self.pubsub.subscribe(channel))
        return failure

    async def read_message(self) -> Message | Failure | None:
        message, failure = await self._call(
            lambda: self.pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0))
        if failure is not None:
            return failure
        if isinstance(message, dict) and message.get("type") == "message":
            return Message(str(message["channel"]), str(message["data"]))
        return None

    async def close(self) -> None:
        if self.pubsub is not None:
            with contextlib.suppress(Exception):  # a broken subscriber: nothing to learn
                await self.pubsub.aclose()
        await self.subscriber_client.aclose()
        await self.client.aclose()


ADAPTERS: dict[str, Callable[[list[str]], Awaitable[Adapter]]] = {
    "levredis": LevredisAdapter.open,
    "redis-py": RedisPyAdapter.open,
}


# -- what may be lost: failover windows -----------------------------------------

@dataclass
class Window:
    """From WINDOW_BEFORE_KILL before a primary's SIGKILL until the failover completed."""

    start: float
    killed_at: float
    slots: list[tuple[int, int]]
    victim: str
    end: float | None = None  # None: still open

    def covers(self, slot: int, moment: float) -> bool:
        end = math.inf if self.end is None else self.end
        return self.start <= moment <= end and any(
            low <= slot <= high for low, high in self.slots)


class Windows:
    def __init__(self) -> None:
        self.items: list[Window] = []

    def loseable(self, slot: int, acked_at: float) -> bool:
        """May a write to ``slot`` acknowledged at ``acked_at`` be lost by a failover?"""
        return any(window.covers(slot, acked_at) for window in self.items)


#: An acknowledged write older than this can no longer fall in a future window.
SETTLED = WINDOW_BEFORE_KILL + 1.0


# -- the oracles ----------------------------------------------------------------

@dataclass
class Entry:
    value: str | None
    acked_at: float | None = None  # None: not acknowledged (it failed)


class KeyModel:
    """Every SET attempted on one key, in order, and which were acknowledged."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.slot = key_slot(key)
        self.entries: list[Entry] = [Entry(None, -math.inf)]  # the key starts absent
        self.lost: set[str | None] = set()

    def attempt(self, value: str) -> Entry:
        entry = Entry(value)
        self.entries.append(entry)
        return entry

    def _last_acked(self) -> int:
        return next(i for i in range(len(self.entries) - 1, -1, -1)
                    if self.entries[i].acked_at is not None)

    def _base(self, windows: Windows) -> int:
        """The last acknowledged SET no failover window may have lost."""
        return next(i for i in range(len(self.entries) - 1, -1, -1)
                    if (acked := self.entries[i].acked_at) is not None
                    and not windows.loseable(self.slot, acked))

    def check(self, got: str | None, windows: Windows) -> tuple[str, int]:
        """("ok" | "rollback" | "wrong", acknowledged writes newly seen lost)."""
        last = self._last_acked()
        if any(e.value == got for e in self.entries[last:]):
            return "ok", 0
        base = self._base(windows)
        found = [i for i in range(base, last) if self.entries[i].value == got]
        if not found:
            return "wrong", 0
        lost = {e.value for e in self.entries[found[-1] + 1:] if e.acked_at is not None
                and e.value != got} - self.lost
        self.lost |= lost
        return "rollback", len(lost)

    def final(self, got: str | None, windows: Windows) -> str:
        """"ok", or the last acknowledged write is missing: "inside"/"outside" a window."""
        last = self._last_acked()
        if any(e.value == got for e in self.entries[last:]):
            return "ok"
        base = self._base(windows)
        return "inside" if any(self.entries[i].value == got for i in range(base, last)) \
            else "outside"

    def trim(self, now: float, windows: Windows) -> None:
        if len(self.entries) < 64:
            return
        keep = next((i for i in range(len(self.entries) - 1, 0, -1)
                     if (acked := self.entries[i].acked_at) is not None
                     and acked < now - SETTLED and not windows.loseable(self.slot, acked)),
                    0)
        if keep:
            del self.entries[:keep]


class CounterModel:
    """One worker's INCR counter: INCRs sent, and the acknowledged replies."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.slot = key_slot(key)
        self.sent = 0
        self.floor = 0  # an acknowledged value that can no longer be lost
        self.acks: list[tuple[int, float]] = []
        self.lost: set[int] = set()

    def _safe(self, windows: Windows) -> int:
        return max([self.floor] + [v for v, t in self.acks if not windows.loseable(self.slot, t)])

    def check(self, got: object, now: float, windows: Windows) -> tuple[str, int, str]:
        """The reply to the latest INCR (already counted in ``sent``): verdict, lost, why.

        A wrong reply re-bases the model on it (an INCR that ran twice counts
        as one more sent; a counter gone back restarts from the reply), so
        one fault is one wrong answer, not a wrong answer for every INCR after.
        """
        if not isinstance(got, int) or isinstance(got, bool):
            return "wrong", 0, f"{got!r} is not an integer"
        why = (f"{got}, {self.sent} INCR sent, acknowledged {[v for v, _ in self.acks[-3:]]}, "
               f"floor {self.floor}")
        if got > self.sent:
            self.sent = got
            self.acks.append((got, now))
            return "wrong", 0, "more than the INCRs sent: " + why
        if got <= self._safe(windows):
            self.floor, self.acks = got, []
            return "wrong", 0, "not above an acknowledged reply: " + why
        verdict, lost = "ok", 0
        if self.acks and got <= self.acks[-1][0]:
            gone = {v for v, _ in self.acks if v >= got} - self.lost
            self.lost |= gone
            verdict, lost = "rollback", len(gone)
        self.acks.append((got, now))
        if len(self.acks) > 64:
            settled = [(v, t) for v, t in self.acks
                       if t < now - SETTLED and not windows.loseable(self.slot, t)]
            if settled:
                self.floor = max([self.floor] + [v for v, _ in settled])
                self.acks = [a for a in self.acks if a not in settled]
        return verdict, lost, why

    def final(self, got: int, windows: Windows) -> str:
        """"ok", "over" (more than INCRs sent), or missing "inside"/"outside" a window."""
        if got > self.sent:
            return "over"
        last = self.acks[-1][0] if self.acks else self.floor
        if got >= last:
            return "ok"
        return "inside" if got >= self._safe(windows) else "outside"


class PubSubChecker:
    """What the subscriber received against what the publisher sent."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.sent = 0  # payloads 1..sent were attempted
        self.acked: set[int] = set()
        self.received: set[int] = set()
        self.highest = 0
        self.wrong: Counter[str] = Counter()
        self.examples: list[str] = []
        self.started = time.monotonic()

    def receive(self, message: Message) -> bool:
        """Record one message; False if it is wrong."""
        problem = None
        try:
            seq = int(message.payload)
        except ValueError:
            seq = -1
        if message.channel != self.channel or not 1 <= seq <= self.sent:
            problem = "foreign"
        elif seq in self.received:
            problem = "duplicate"
        elif seq < self.highest:
            problem = "out_of_order"
            self.received.add(seq)  # delivered, late: wrong but not missed
        if problem is not None:
            self.wrong[problem] += 1
            if self.wrong[problem] <= 5:
                self.examples.append(f"{problem} at {time.monotonic() - self.started:.2f}s: "
                                     f"{message.payload!r} on {message.channel!r} after "
                                     f"{self.highest}")
            return False
        self.received.add(seq)
        self.highest = seq
        return True

    def missed(self) -> int:
        return len(self.acked - self.received)


# -- faults and recovery ----------------------------------------------------------

@dataclass
class FaultRecord:
    kind: str
    injected: float = 0.0
    target: str = ""
    detail: str = ""
    failed: str | None = None
    action_seconds: float = 0.0
    ok_after: list[float | None] = field(default_factory=list)
    errors: int = 0
    last_error: float | None = None
    recovery: float | None = None
    failover: float | None = None  # primary-kill: from the SIGKILL to the failover completed
    closed: bool = False

    def recovered(self) -> bool:
        return bool(self.ok_after) and all(t is not None for t in self.ok_after)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            done = [t for t in self.ok_after if t is not None]
            self.recovery = max(done) - self.injected if self.recovered() else None

    def figures(self, started: float) -> dict[str, Any]:
        return {
            "kind": self.kind, "at_s": round(self.injected - started, 2),
            "target": self.target, "detail": self.detail, "failed": self.failed,
            "action_s": round(self.action_seconds, 2), "errors": self.errors,
            "last_error_s": None if self.last_error is None
            else round(self.last_error - self.injected, 3),
            "recovery_s": None if self.recovery is None else round(self.recovery, 3),
            "failover_s": None if self.failover is None else round(self.failover, 3),
        }


class Recorder:
    """Attributes each completed operation to the fault interval it completed in."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.faults: list[FaultRecord] = []

    def begin(self, fault: FaultRecord) -> None:
        if self.faults:
            self.faults[-1].close()
        fault.injected = time.monotonic()
        fault.ok_after = [None] * self.workers
        self.faults.append(fault)

    def op_done(self, worker: int, started: float, ended: float, ok: bool) -> None:
        if not self.faults:
            return
        fault = self.faults[-1]
        if fault.closed:
            return
        if ok:
            if fault.ok_after[worker] is None and started >= fault.injected:
                fault.ok_after[worker] = ended
        else:
            fault.ok_after[worker] = None
            fault.errors += 1
            fault.last_error = ended

    def finish(self) -> None:
        if self.faults:
            self.faults[-1].close()


# -- the run ------------------------------------------------------------------------

@dataclass
class ChaosConfig:
    seconds: float = 20.0
    tasks: int = 50
    keys_per_task: int = 8
    seed: int = 1
    faults: Sequence[str] = FAULT_KINDS
    ensure_each_kind: bool = True
    op_pause: float = 0.004
    error_pause: float = 0.05
    publish_every: float = 0.005
    stop_seconds: float = 0.5
    reshard_slots: int = 200
    warmup: float = 1.0
    pause: tuple[float, float] = (0.5, 2.0)
    recover_limit: float = 10.0
    tail: float = 1.5
    stop_limit: float = 15.0


class ChaosRun:
    def __init__(self, cluster: LocalCluster, adapter: Adapter, config: ChaosConfig) -> None:
        self.cluster = cluster
        self.adapter = adapter
        self.config = config
        self.rng = random.Random(config.seed)
        prefix = f"chaos{secrets.token_hex(3)}"
        tags = spread_tags(prefix, config.tasks * (config.keys_per_task + 1))
        per = config.keys_per_task + 1
        self.keys = [[KeyModel(f"{{{tag}}}:k") for tag in tags[w * per:w * per + per - 1]]
                     for w in range(config.tasks)]
        self.counters = [CounterModel(f"{{{tags[w * per + per - 1]}}}:n")
                         for w in range(config.tasks)]
        self.pubsub = PubSubChecker(f"{prefix}:news")
        self.windows = Windows()
        self.recorder = Recorder(config.tasks)
        self.ops: dict[str, Counter[str]] = {
            kind: Counter() for kind in ("set", "get", "incr", "pipeline", "publish")}
        self.errors: Counter[str] = Counter()
        self.error_examples: dict[str, str] = {}
        self.wrong: Counter[str] = Counter()
        self.wrong_examples: list[str] = []
        self.lost_seen = 0
        self.raised = 0
        self.stopping = False
        self.publishing = True
        self.subscribed = asyncio.Event()
        self.sub_errors: Counter[str] = Counter()
        self.gaps: list[float] = []  # healed gaps, seconds
        self.gap_open: float | None = None
        self.tail_from = math.inf  # first payload published after the faults
        self.unexpected_failovers = 0
        self.started = 0.0

    # -- bookkeeping
    def _error(self, op: str, failure: Failure) -> None:
        self.ops[op]["error"] += 1
        self.errors[failure.kind] += 1
        self.error_examples.setdefault(failure.kind, failure.message[:200])

    def _wrong(self, op: str, what: str) -> None:
        self.ops[op]["wrong"] += 1
        self.wrong[op] += 1
        if len(self.wrong_examples) < 20:
            self.wrong_examples.append(
                f"{op} at {time.monotonic() - self.started:.2f}s: {what}")

    def _check_get(self, op: str, model: KeyModel, got: Any) -> bool:
        if got is not None and not isinstance(got, str):
            self._wrong(op, f"GET {model.key} -> {got!r}: not a string")
            return False
        verdict, lost = model.check(got, self.windows)
        self.lost_seen += lost
        if verdict == "wrong":
            last = model.entries[model._last_acked()].value
            pending = [e.value for e in model.entries[model._last_acked() + 1:]]
            self._wrong(op, f"GET {model.key} -> {got!r}, last acknowledged {last!r}, "
                            f"unacknowledged after it {pending[-3:]}")
            return False
        return True

    def _resolve_set(self, op: str, model: KeyModel, entry: Entry, outcome: Outcome) -> bool:
        reply, failure = outcome
        if failure is not None:
            return False
        if reply != "OK":
            self._wrong(op, f"SET {model.key} -> {reply!r}")
            return False
        entry.acked_at = time.monotonic()
        return True

    # -- operations
    async def _op_set(self, model: KeyModel, value: str) -> bool:
        entry = model.attempt(value)
        outcome = await self.adapter.set(model.key, value)
        if outcome[1] is not None:
            self._error("set", outcome[1])
        ok = self._resolve_set("set", model, entry, outcome)
        self.ops["set"]["ok"] += ok
        model.trim(time.monotonic(), self.windows)
        return ok

    async def _op_get(self, model: KeyModel) -> bool:
        got, failure = await self.adapter.get(model.key)
        if failure is not None:
            self._error("get", failure)
            return False
        ok = self._check_get("get", model, got)
        self.ops["get"]["ok"] += ok
        return ok

    async def _op_incr(self, model: CounterModel) -> bool:
        model.sent += 1
        got, failure = await self.adapter.incr(model.key)
        if failure is not None:
            self._error("incr", failure)
            return False
        verdict, lost, why = model.check(got, time.monotonic(), self.windows)
        self.lost_seen += lost
        if verdict == "wrong":
            self._wrong("incr", f"INCR {model.key} -> {why}")
            return False
        self.ops["incr"]["ok"] += 1
        return True

    async def _op_pipeline(self, set_model: KeyModel, value: str, get_model: KeyModel) -> bool:
        entry = set_model.attempt(value)
        set_outcome, get_outcome = await self.adapter.set_get(set_model.key, value, get_model.key)
        failure = set_outcome[1] or get_outcome[1]
        if failure is not None:
            self._error("pipeline", failure)
        ok = self._resolve_set("pipeline", set_model, entry, set_outcome)
        if get_outcome[1] is None:
            ok = self._check_get("pipeline", get_model, get_outcome[0]) and ok
        else:
            ok = False
        self.ops["pipeline"]["ok"] += ok
        set_model.trim(time.monotonic(), self.windows)
        return ok

    # -- tasks
    async def worker(self, w: int) -> None:
        rng = random.Random(f"{self.config.seed}-{w}")
        keys, counter = self.keys[w], self.counters[w]
        seq = 0
        while not self.stopping:
            seq += 1
            value = f"{w}:{seq}"
            choice = rng.random()
            op = "set" if choice < 0.3 else "get" if choice < 0.6 else "incr" \
                if choice < 0.8 else "pipeline"
            started = time.monotonic()
            try:
                if op == "set":
                    ok = await self._op_set(rng.choice(keys), value)
                elif op == "get":
                    ok = await self._op_get(rng.choice(keys))
                elif op == "incr":
                    ok = await self._op_incr(counter)
                else:
                    ok = await self._op_pipeline(rng.choice(keys), value, rng.choice(keys))
            except Exception as exc:  # an adapter must not raise: count it loudly
                self.raised += 1
                self._error(op, Failure(f"raised {type(exc).__name__}", repr(exc)))
                ok = False
            self.recorder.op_done(w, started, time.monotonic(), ok)
            await asyncio.sleep(self.config.error_pause if not ok
                                else rng.uniform(0, self.config.op_pause))

    async def publisher(self) -> None:
        while self.publishing:
            self.pubsub.sent += 1
            seq = self.pubsub.sent
            try:
                _, failure = await self.adapter.publish(self.pubsub.channel, str(seq))
            except Exception as exc:
                self.raised += 1
                failure = Failure(f"raised {type(exc).__name__}", repr(exc))
            if failure is None:
                self.pubsub.acked.add(seq)
                self.ops["publish"]["ok"] += 1
            else:
                self._error("publish", failure)
            await asyncio.sleep(self.config.publish_every if failure is None
                                else self.config.error_pause)

    async def subscriber(self) -> None:
        while True:
            failure = await self.adapter.subscribe(self.pubsub.channel)
            if failure is None:
                break
            self.sub_errors["subscribe: " + failure.kind] += 1
            await asyncio.sleep(0.2)
        self.subscribed.set()
        while True:
            try:
                item = await self.adapter.read_message()
            except Exception as exc:
                self.raised += 1
                item = Failure(f"raised {type(exc).__name__}", repr(exc))
            if isinstance(item, Failure):
                self.sub_errors[item.kind] += 1
                if self.gap_open is None:
                    self.gap_open = time.monotonic()
                await asyncio.sleep(self.config.error_pause)
            elif isinstance(item, Message):
                if self.gap_open is not None:
                    self.gaps.append(time.monotonic() - self.gap_open)
                    self.gap_open = None
                self.pubsub.receive(item)

    # -- faults
    async def _servers_by_role(self) -> tuple[list[NodeInfo], list[NodeInfo]]:
        nodes = await asyncio.to_thread(cluster_nodes, self.cluster)
        live = {s.port for s in live_servers(self.cluster)}
        nodes = [n for n in nodes if n.port in live and not n.failed]
        return [n for n in nodes if n.primary and n.slots], [n for n in nodes if not n.primary]

    async def fault_client_kill(self, fault: FaultRecord) -> None:
        primaries, _ = await self._servers_by_role()
        node = self.rng.choice(primaries)
        fault.target = f"127.0.0.1:{node.port}"
        self.recorder.begin(fault)
        normal = await asyncio.to_thread(raw_command, node.port, "CLIENT", "KILL", "TYPE",
                                         "normal")
        pubsub = 0
        for server in live_servers(self.cluster):
            pubsub += await asyncio.to_thread(raw_command, server.port, "CLIENT", "KILL",
                                              "TYPE", "pubsub")
        fault.detail = f"killed {normal} normal and {pubsub} pubsub connections"

    async def fault_sigstop(self, fault: FaultRecord) -> None:
        primaries, _ = await self._servers_by_role()
        node = self.rng.choice(primaries)
        server = self.cluster.node_for(node.port)
        assert server.process is not None
        pid = server.process.pid
        fault.target = server.address
        self.recorder.begin(fault)
        os.kill(pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(self.config.stop_seconds)
        finally:
            os.kill(pid, signal.SIGCONT)
        fault.detail = f"stopped {self.config.stop_seconds} s"

    def _wait_in_sync(self, primary: RedisServer, replica_port: int) -> str:
        deadline = time.monotonic() + 5
        while True:
            info = str(raw_command(primary.port, "INFO", "replication"))
            offset = int(info_field(info, "master_repl_offset") or 0)
            for line in info.splitlines():
                if f"port={replica_port}," in line:
                    fields = dict(part.split("=", 1) for part in line.split(":", 1)[1].split(","))
                    if fields.get("state") == "online" and int(fields.get("lag", 99)) <= 1:
                        return f"replica {replica_port} online, {offset - int(fields['offset'])} bytes behind"
            if time.monotonic() > deadline:
                return f"replica {replica_port} not in sync after 5 s (killed anyway)"
            time.sleep(0.05)

    def _wait_promoted(self, replica: RedisServer, limit: float = 30.0) -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            try:
                if info_field(str(raw_command(replica.port, "INFO", "replication")),
                              "role") == "master" and all(
                        info_field(str(raw_command(s.port, "CLUSTER", "INFO")),
                                   "cluster_state") == "ok"
                        for s in live_servers(self.cluster)):
                    return
            except (OSError, RespError):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"replica {replica.port} was not promoted within {limit} s")

    def _wait_replica_synced(self, server: RedisServer, limit: float = 30.0) -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            try:
                info = str(raw_command(server.port, "INFO", "replication"))
                if info_field(info, "role") == "slave" and \
                        info_field(info, "master_link_status") == "up":
                    return
            except (OSError, RespError):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"node {server.port} is not a synced replica after {limit} s")

    async def fault_primary_kill(self, fault: FaultRecord) -> None:
        primaries, replicas = await self._servers_by_role()
        candidates = [p for p in primaries if any(r.primary_id == p.id for r in replicas)]
        node = self.rng.choice(candidates)
        replica_node = next(r for r in replicas if r.primary_id == node.id)
        victim = self.cluster.node_for(node.port)
        replica = self.cluster.node_for(replica_node.port)
        fault.target = victim.address
        sync = await asyncio.to_thread(self._wait_in_sync, victim, replica.port)
        now = time.monotonic()
        window = Window(start=now - WINDOW_BEFORE_KILL, killed_at=now, slots=node.slots,
                        victim=victim.address)
        self.windows.items.append(window)
        self.recorder.begin(fault)
        window.killed_at = fault.injected
        try:
            victim.kill()
            await asyncio.to_thread(self._wait_promoted, replica)
            window.end = time.monotonic()
            fault.failover = window.end - window.killed_at
        finally:
            if victim.process is None:
                await asyncio.to_thread(victim.start)
                await asyncio.to_thread(tune, victim)
        await asyncio.to_thread(self._wait_replica_synced, victim)
        if window.end is None:  # the promotion failed: close the window at the rejoin
            window.end = time.monotonic()
        fault.detail = (f"{sync}; failover completed after "
                        f"{window.end - window.killed_at:.2f} s, {replica.address} promoted")

    async def fault_replica_restart(self, fault: FaultRecord) -> None:
        _, replicas = await self._servers_by_role()
        node = self.rng.choice(replicas)
        server = self.cluster.node_for(node.port)
        how = self.rng.choice(["SIGTERM", "SIGKILL"])
        down = self.rng.uniform(0.2, 1.0)
        fault.target = server.address
        self.recorder.begin(fault)
        try:
            await asyncio.to_thread(server.stop if how == "SIGTERM" else server.kill)
            await asyncio.sleep(down)
        finally:
            if server.process is None:
                await asyncio.to_thread(server.start)
                await asyncio.to_thread(tune, server)
        await asyncio.to_thread(self._wait_replica_synced, server)
        fault.detail = f"{how}, down {down:.2f} s"

    async def fault_reshard(self, fault: FaultRecord) -> None:
        primaries, _ = await self._servers_by_role()
        source = max(primaries, key=NodeInfo.slot_count)
        target = self.rng.choice([p for p in primaries if p is not source])
        fault.target = f"127.0.0.1:{source.port} -> 127.0.0.1:{target.port}"
        self.recorder.begin(fault)
        process = await asyncio.create_subprocess_exec(
            REDIS_CLI, "--cluster", "reshard", f"127.0.0.1:{source.port}",
            "--cluster-from", source.id, "--cluster-to", target.id,
            "--cluster-slots", str(self.config.reshard_slots), "--cluster-yes",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        output, _ = await process.communicate()
        if process.returncode != 0:
            tail = output.decode(errors="replace").strip().splitlines()[-3:]
            fix = await asyncio.create_subprocess_exec(
                REDIS_CLI, "--cluster", "fix", f"127.0.0.1:{source.port}", "--cluster-yes",
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
            await fix.wait()
            raise RuntimeError(f"reshard exited {process.returncode}: {' | '.join(tail)}")
        fault.detail = f"{self.config.reshard_slots} slots moved"

    async def drive(self, deadline: float) -> None:
        actions: dict[str, Callable[[FaultRecord], Awaitable[None]]] = {
            "client-kill": self.fault_client_kill, "sigstop": self.fault_sigstop,
            "primary-kill": self.fault_primary_kill,
            "replica-restart": self.fault_replica_restart, "reshard": self.fault_reshard,
        }
        kinds = list(self.config.faults)
        if not kinds:
            await asyncio.sleep(max(0.0, deadline - time.monotonic()))
            return
        done: set[str] = set()
        bag: list[str] = []
        await asyncio.sleep(self.config.warmup)
        while time.monotonic() < deadline or (
                self.config.ensure_each_kind and done != set(kinds)):
            if not bag:
                bag = kinds[:]
                self.rng.shuffle(bag)
            kind = bag.pop(0)
            fault = FaultRecord(kind)
            before = {n.port for n in (await self._servers_by_role())[0]}
            began = time.monotonic()
            try:
                await actions[kind](fault)
            except Exception as exc:
                fault.failed = f"{type(exc).__name__}: {exc}"
                if not fault.injected:
                    self.recorder.begin(fault)
            fault.action_seconds = time.monotonic() - began
            done.add(kind)
            try:
                await asyncio.to_thread(self.cluster.wait_ok, HEAL_LIMIT)
                await asyncio.to_thread(wait_agreed, self.cluster, HEAL_LIMIT)
            except RuntimeError:
                report = await asyncio.to_thread(cluster_report, self.cluster)
                raise RuntimeError(f"the cluster did not heal after {fault.figures(self.started)}"
                                   f":\n{report}") from None
            after = {n.port for n in (await self._servers_by_role())[0]}
            if kind != "primary-kill" and after != before:
                self.unexpected_failovers += 1
                fault.detail += f"; UNEXPECTED failover: primaries {sorted(before)} -> {sorted(after)}"
            limit = time.monotonic() + self.config.recover_limit
            while not fault.recovered() and time.monotonic() < limit:
                await asyncio.sleep(0.02)
            await asyncio.sleep(self.rng.uniform(*self.config.pause))

    # -- the whole run
    async def run(self) -> dict[str, Any]:
        config = self.config
        probe = self.keys[0][0].key
        port = live_servers(self.cluster)[0].port
        server_slot = await asyncio.to_thread(raw_command, port, "CLUSTER", "KEYSLOT", probe)
        assert server_slot == key_slot(probe), (probe, server_slot, key_slot(probe))
        for server in live_servers(self.cluster):
            await asyncio.to_thread(tune, server)

        subscriber = asyncio.ensure_future(self.subscriber())
        tasks: list[asyncio.Future[None]] = [subscriber]
        try:
            await asyncio.wait_for(self.subscribed.wait(), 15)
            self.started = self.pubsub.started = time.monotonic()
            publisher = asyncio.ensure_future(self.publisher())
            workers = [asyncio.ensure_future(self.worker(w)) for w in range(config.tasks)]
            tasks += [publisher, *workers]
            await self.drive(self.started + config.seconds)

            await asyncio.to_thread(self.cluster.wait_ok, HEAL_LIMIT)
            await asyncio.to_thread(wait_agreed, self.cluster, HEAL_LIMIT)
            self.tail_from = self.pubsub.sent + 1
            await asyncio.sleep(config.tail)
            self.recorder.finish()
            self.stopping = True
            traffic = time.monotonic() - self.started
            _, hung = await asyncio.wait(workers, timeout=config.stop_limit)
            for task in hung:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            self.publishing = False
            await publisher
            drain = time.monotonic() + 3
            while time.monotonic() < drain and not self.pubsub.acked <= self.pubsub.received \
                    and max(self.pubsub.received, default=0) < self.pubsub.sent:
                await asyncio.sleep(0.05)
            if subscriber.done():
                subscriber.result()  # the harness failed: say how
        finally:
            self.stopping, self.publishing = True, False
            for pending in tasks:
                pending.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for worker in workers:
            if not worker.cancelled() and worker.exception() is not None:
                raise worker.exception()  # type: ignore[misc]
        figures = {**await asyncio.to_thread(self.read_back), **self.figures(traffic, len(hung))}
        await asyncio.to_thread(self.delete_keys)
        return figures

    def delete_keys(self) -> None:
        """Leave the cluster as found (it may be shared with other tests)."""
        ports = [s.port for s in live_servers(self.cluster)]
        names = [model.key for keys in self.keys for model in keys]
        for name in names + [counter.key for counter in self.counters]:
            raw_key_command(ports, "DEL", name)

    def read_back(self) -> dict[str, Any]:
        ports = [s.port for s in live_servers(self.cluster)]
        missing: Counter[str] = Counter()
        over = 0
        examples: list[str] = []
        for keys in self.keys:
            for model in keys:
                got = raw_get(ports, model.key)
                verdict = model.final(got, self.windows)
                if verdict != "ok":
                    missing[verdict] += 1
                    if len(examples) < 10:
                        last = model.entries[model._last_acked()]
                        when = last.acked_at - self.started if last.acked_at else math.nan
                        examples.append(f"{verdict}: {model.key} = {got!r}, last acknowledged "
                                        f"{last.value!r} at {when:.2f}s")
        for counter in self.counters:
            got = raw_get(ports, counter.key)
            verdict = counter.final(int(got or 0), self.windows)
            if verdict == "over":
                over += 1
                examples.append(f"over: {counter.key} = {got}, {counter.sent} INCR sent")
            elif verdict != "ok":
                missing[verdict] += 1
                if len(examples) < 10:
                    examples.append(f"{verdict}: {counter.key} = {got}, last acknowledged "
                                    f"{counter.acks[-1] if counter.acks else counter.floor}")
        return {"acked_writes_missing": {"inside_failover_window": missing["inside"],
                                         "outside_failover_window": missing["outside"],
                                         "examples": examples},
                "final_counters_over_attempts": over}

    def figures(self, traffic: float, hung: int) -> dict[str, Any]:
        faults = self.recorder.faults
        by_kind: dict[str, dict[str, Any]] = {}
        for kind in dict.fromkeys(f.kind for f in faults):
            times = [f.recovery for f in faults if f.kind == kind and f.recovery is not None]
            count = sum(f.kind == kind for f in faults)
            by_kind[kind] = {
                "count": count, "recovered": len(times),
                "max_s": round(max(times), 3) if times else None,
                "median_s": round(statistics.median(times), 3) if times else None,
            }
        tail_received = any(seq >= self.tail_from for seq in self.pubsub.received)
        gaps = self.gaps + ([time.monotonic() - self.gap_open] if self.gap_open else [])
        return {
            "client": self.adapter.name,
            "seed": self.config.seed,
            "tasks": self.config.tasks,
            "traffic_s": round(traffic, 1),
            "operations": {op: dict(counts) for op, counts in self.ops.items()},
            "operations_total": sum(sum(c.values()) for c in self.ops.values()),
            "wrong_answers": sum(self.wrong.values()),
            "wrong_by_op": dict(self.wrong),
            "wrong_examples": self.wrong_examples,
            "acked_writes_lost_seen": self.lost_seen,
            "errors_by_kind": dict(self.errors.most_common()),
            "error_examples": self.error_examples,
            "raised": self.raised,
            "hung_workers": hung,
            "unexpected_failovers": self.unexpected_failovers,
            "pubsub": {
                "published": self.pubsub.sent, "published_acked": len(self.pubsub.acked),
                "received": len(self.pubsub.received), "missed": self.pubsub.missed(),
                "wrong": sum(self.pubsub.wrong.values()), "wrong_by_kind": dict(self.pubsub.wrong),
                "wrong_examples": self.pubsub.examples,
                "read_errors": dict(self.sub_errors),
                "gaps": len(gaps), "gaps_healed": len(self.gaps),
                "longest_gap_s": round(max(gaps), 2) if gaps else 0.0,
                "healed_at_end": tail_received,
            },
            "faults": [f.figures(self.started) for f in faults],
            "recovery_by_kind": by_kind,
        }


async def run_chaos(cluster: LocalCluster, client: str,
                    config: ChaosConfig | None = None) -> dict[str, Any]:
    """One chaos run of ``client`` ("levredis" or "redis-py") on ``cluster``; its figures."""
    adapter = await ADAPTERS[client](cluster.seeds)
    try:
        return await ChaosRun(cluster, adapter, config or ChaosConfig()).run()
    finally:
        await adapter.close()


def summary(figures: dict[str, Any]) -> dict[str, Any]:
    """The headline figures, short enough for one line of the test session's summary."""
    return {
        "client": figures["client"], "traffic s": figures["traffic_s"],
        "ops": figures["operations_total"], "wrong": figures["wrong_answers"],
        "missing outside window": figures["acked_writes_missing"]["outside_failover_window"],
        "missing inside window": figures["acked_writes_missing"]["inside_failover_window"],
        "errors": sum(figures["errors_by_kind"].values()),
        "pubsub missed": figures["pubsub"]["missed"], "pubsub wrong": figures["pubsub"]["wrong"],
        "recovery max s": {kind: v["max_s"] for kind, v in figures["recovery_by_kind"].items()},
    }
