"""Pub/sub over a cluster: subscriber connections that heal themselves.

What the caller asked to be subscribed to is kept here (``wanted``); the
connections only carry it. ``SUBSCRIBE``/``PSUBSCRIBE`` use one connection
(any node hears every classic message); ``SSUBSCRIBE`` uses one connection per
shard, routed by the channel's slot. Each connection has a pump task that
moves what it receives into one bounded queue for ``read()``.

When a subscriber connection is lost, or the server drops a shard channel
(its slot moved), the pump puts one error value in the queue, in order with
the messages, and the subscriptions are made again — on the node that serves
them now — in the background, with backoff, until they hold or the caller
unsubscribes. Messages published in between are not received: pub/sub is
at-most-once, and the error says where the gap is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Final

from ._client import Client, ReadResult, connect_with
from ._config import Config
from ._dispatch import NOTHING_TO_READ, push_size
from ._errors import CLOSED, TIMEOUT, Error, NetworkError, ServerError, UsageError
from ._resp import Reply, argument_bytes
from ._slots import key_slot
from ._state import SUBSCRIBE_COMMANDS

if TYPE_CHECKING:
    from ._slots import SlotMap

log: Final = logging.getLogger("levredis")

Item = tuple[ReadResult | None, Error | None]
#: Longest wait between two attempts to subscribe again.
MAX_BACKOFF: Final = 1.0
_CLUSTER_WIDE: Final = None  # the feed key of the SUBSCRIBE/PSUBSCRIBE connection
_UNDO: Final = {"subscribe": "UNSUBSCRIBE", "psubscribe": "PUNSUBSCRIBE",
                "ssubscribe": "SUNSUBSCRIBE"}


class Feed:
    """One subscriber connection and the task pumping what it receives."""

    __slots__ = ("address", "client", "inflight", "key", "pump", "settled")

    def __init__(self, key: str | None, address: str, client: Client) -> None:
        #: None for the cluster-wide connection, else the shard primary's address.
        self.key = key
        self.address = address
        self.client = client
        #: Caller commands in flight on it (it is not retired meanwhile).
        self.inflight = 0
        self.settled: asyncio.Future[None] | None = None
        self.pump: asyncio.Task[None] | None = None


class ClusterPubSub:
    """The subscriptions of one cluster client, and the connections carrying them."""

    def __init__(
        self,
        node_config: Callable[[str], Config],
        slot_map: Callable[[], SlotMap],
        refresh: Callable[[], Awaitable[Error | None]],
        shared_cmd: Callable[[Sequence[object]], Awaitable[tuple[Reply, Error | None]]],
        limit: int,
        byte_limit: int,
        timeout: float | None,
    ) -> None:
        self._node_config = node_config
        self._slot_map = slot_map
        self._refresh = refresh
        self._shared_cmd = shared_cmd
        #: The queue's bounds (max_pushes, max_push_bytes); past them the
        #: pumps stop and each connection's own bounds stop its socket.
        self._limit = max(1, limit)
        self._byte_limit = max(1, byte_limit)
        self._queue_bytes = 0
        #: Shard channels the server dropped (their slot moved), per node, to restore.
        self._moved: dict[str, list[bytes]] = {}
        self._timeout = timeout
        #: What the caller subscribed to, per kind (channel names as bytes).
        self.wanted: dict[str, set[bytes]] = {
            "subscribe": set(), "psubscribe": set(), "ssubscribe": set()}
        #: Shard channel -> the key of the feed carrying it.
        self._shard_of: dict[bytes, str] = {}
        self._feeds: dict[str | None, Feed] = {}
        self._opening: dict[str | None, asyncio.Task[Feed | Error]] = {}
        #: Callers waiting for a feed to open, per key (it is not tidied meanwhile).
        self._waiting: dict[str | None, int] = {}
        self._queue: deque[Item] = deque()
        self._readers: list[asyncio.Future[None]] = []
        self._space: asyncio.Future[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closers: set[asyncio.Task[bool]] = set()
        self._closed = False
        #: Subscriptions made again after a gap (connection lost, channel moved).
        self.restored = 0
        #: The node the SUBSCRIBE/PSUBSCRIBE connection was last opened on.
        self._cluster_wide_at: str | None = None

    # -- commands ---------------------------------------------------------------

    async def command(self, name: str, args: Sequence[object]) -> tuple[Reply, Error | None]:
        """One subscribe-family command from the caller."""
        kind, adds = SUBSCRIBE_COMMANDS[name]
        names = [argument_bytes(arg) for arg in args[1:]]
        if kind == "ssubscribe":
            if len({key_slot(channel) for channel in names}) > 1:
                return None, UsageError(
                    "CROSSSLOT Keys in request don't hash to the same slot "
                    "(the shard channels of one command must share a slot)")
            if adds:
                return await self._subscribe(kind, args, names)
            try:
                return await self._shard_unsubscribe(args, names)
            finally:
                self._wake_readers()
        if not adds:
            wanted = self.wanted[kind]
            if names:
                wanted.difference_update(names)
            else:
                wanted.clear()
            feed = self._feeds.get(_CLUSTER_WIDE)
            try:
                if feed is None:  # subscribed to nothing here: any node answers alike
                    return await self._shared_cmd(args)
                return await self._on(feed, args)
            finally:
                self._wake_readers()  # a read() waiting may have nothing left to wait for
        return await self._subscribe(kind, args, names)

    async def _subscribe(self, kind: str, args: Sequence[object],
                         names: list[bytes]) -> tuple[Reply, Error | None]:
        """SUBSCRIBE, PSUBSCRIBE or SSUBSCRIBE on the connection that carries them.

        The names are wanted from before the command is sent (a gap right
        after its reply must restore them) and forgotten again unless it was
        sent and not refused: kept after a lost reply, they are restored.
        """
        if not names:
            return await self._shared_cmd(args)  # the server's arity error
        wanted = self.wanted[kind]
        added = [name for name in names if name not in wanted]
        wanted.update(names)
        value: Reply = None
        err: Error | None = None
        sent = False
        try:
            for _ in range(4):
                key: str | None = None
                if kind == "ssubscribe":
                    key = self._slot_map().primaries[key_slot(names[0])]
                    if key is None:
                        await self._refresh()
                        err = NetworkError("no node serves this shard channel's slot")
                        continue
                feed = await self._feed(key, key)
                if isinstance(feed, Error):
                    value, err = None, feed
                    break
                if key is not None:
                    for name in names:
                        self._shard_of[name] = key
                sent = True
                value, err = await self._on(feed, args)
                if isinstance(err, ServerError) and err.code in ("MOVED", "ASK", "TRYAGAIN"):
                    sent = False  # refused: subscribed to nothing there
                    await self._refresh()
                    continue
                break
        finally:
            if not sent or isinstance(err, ServerError):
                self._forget(kind, added)
        return value, err

    def _forget(self, kind: str, names: list[bytes]) -> None:
        """Names a subscribe did not make: no longer wanted, nor carried anywhere."""
        self.wanted[kind].difference_update(names)
        if kind == "ssubscribe":
            for name in names:
                self._shard_of.pop(name, None)
        for feed in list(self._feeds.values()):
            self._tidy(feed)
        self._wake_readers()

    def _tidy(self, feed: Feed) -> None:
        """Close a feed that never carried anything (its pump starts with the first command)."""
        if (feed.pump is None and feed.inflight == 0 and feed.key not in self._waiting
                and not self._carries(feed) and self._feeds.get(feed.key) is feed):
            self._retire(feed, None)

    async def _shard_unsubscribe(self, args: Sequence[object],
                                 names: list[bytes]) -> tuple[Reply, Error | None]:
        wanted = self.wanted["ssubscribe"]
        targets: dict[str, list[bytes]] = {}
        chosen = names or list(wanted)
        for channel in chosen:
            wanted.discard(channel)
            key = self._shard_of.pop(channel, None)
            if key is not None:
                targets.setdefault(key, []).append(channel)
        feeds = {key: self._feeds[key] for key in targets if key in self._feeds}
        if not feeds:
            return await self._shared_cmd(args)
        first: tuple[Reply, Error | None] | None = None
        for key, feed in feeds.items():
            # Without names, each connection unsubscribes from all of its own.
            sent = args if not names else [args[0], *targets[key]]
            reply = await self._on(feed, sent)
            if first is None:
                first = reply
            elif reply[1] is None:
                self._put((ReadResult(type="array", value=reply[0]), None))
        assert first is not None
        return first

    async def _on(self, feed: Feed, args: Sequence[object]) -> tuple[Reply, Error | None]:
        """A caller's command on a feed's connection (never retired meanwhile)."""
        feed.inflight += 1
        try:
            return await feed.client.cmd(*args)
        finally:
            self._settle(feed)

    def _settle(self, feed: Feed) -> None:
        """A command on ``feed`` is over: its pump runs from the first one on."""
        if feed.pump is None and not self._closed and self._feeds.get(feed.key) is feed:
            feed.pump = asyncio.ensure_future(self._pump(feed))
        feed.inflight -= 1
        if feed.inflight == 0 and feed.settled is not None and not feed.settled.done():
            feed.settled.set_result(None)

    # -- the connections ----------------------------------------------------------

    async def _feed(self, key: str | None, address: str | None) -> Feed | Error:
        """The feed for ``key``, opened (on ``address``, or any node) if needed."""
        if self._closed:
            return CLOSED
        feed = self._feeds.get(key)
        if feed is not None and not feed.client._broken():
            return feed
        if feed is not None:  # lost, and its pump has not said so yet
            self._retire(feed, NetworkError("connection lost"))
        task = self._opening.get(key)
        if task is None:
            task = asyncio.ensure_future(self._open(key, address))
            self._opening[key] = task
            task.add_done_callback(lambda _: self._opening.pop(key, None))
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if task.cancelled() and current is not None and not current.cancelling():
                return CLOSED  # close() stopped the opening, not our caller
            # Our caller left: once open, the connection may carry nothing.
            task.add_done_callback(self._opened_for_nobody)
            raise
        finally:
            self._waiting[key] -= 1
            if not self._waiting[key]:
                del self._waiting[key]

    def _opened_for_nobody(self, task: asyncio.Task[Feed | Error]) -> None:
        if not task.cancelled() and isinstance(task.result(), Feed):
            self._tidy(task.result())  # type: ignore[arg-type]

    async def _open(self, key: str | None, address: str | None) -> Feed | Error:
        if address is None:
            nodes = self._slot_map().nodes()
            # After a gap, the node the subscriptions were on, if it still serves:
            # another one could deliver again messages still travelling between
            # nodes that the first had delivered already.
            address = self._cluster_wide_at if self._cluster_wide_at in nodes else (
                random.choice(nodes) if nodes else None)
            if address is None:
                return NetworkError("no cluster node to subscribe on")
        # A connection of its own: subscribed state never reaches a node's pool.
        client, err = await connect_with(self._node_config(address))
        if client is None:
            return err or NetworkError(f"cannot connect to {address}")
        if self._closed:
            await client.close()
            return CLOSED
        feed = Feed(key, address, client)
        self._feeds[key] = feed
        if key is None:
            self._cluster_wide_at = address
        return feed

    async def _pump(self, feed: Feed) -> None:
        """Move what one connection receives into the queue; notice gaps."""
        client = feed.client
        while not self._closed and self._feeds.get(feed.key) is feed:
            item, err = await client.read()
            if err is None:
                assert item is not None
                if self._stray_shard_unsubscribe(feed, item):
                    continue
                await self._room()
                self._put((item, None))
                continue
            if self._feeds.get(feed.key) is not feed:
                return  # retired meanwhile (and its subscriptions taken care of)
            if err == TIMEOUT and not client._broken():
                continue  # quiet for a while: the connection stays
            if err == NOTHING_TO_READ:
                if feed.inflight:
                    feed.settled = asyncio.get_running_loop().create_future()
                    await feed.settled
                    continue
                if not self._carries(feed):
                    self._retire(feed, None)  # unsubscribed from everything
                    return
                err = NetworkError("the server ended the subscriptions")
            if self._closed:
                return
            self._retire(feed, err)
            return

    def _stray_shard_unsubscribe(self, feed: Feed, item: ReadResult) -> bool:
        """A shard channel the server dropped on its own (its slot moved): move it."""
        value = item["value"]
        if feed.key is None or not isinstance(value, list) or len(value) != 3:
            return False
        word, channel = value[0], value[1]
        if word not in ("sunsubscribe", b"sunsubscribe") or not isinstance(
                channel, (str, bytes)):
            return False
        name = argument_bytes(channel)
        if self._shard_of.get(name) != feed.key or name not in self.wanted["ssubscribe"]:
            return False  # the caller's own unsubscribe (its extra confirmations)
        del self._shard_of[name]
        # A slot carries many channels: the server drops them one by one, in a
        # burst; they make one notice and one restore.
        if not self._moved:
            asyncio.get_running_loop().call_soon(self._moved_away)
        self._moved.setdefault(feed.address, []).append(name)
        return True

    def _moved_away(self) -> None:
        moved, self._moved = self._moved, {}
        for address, names in moved.items():
            if not names or self._closed:
                continue
            self._put((None, NetworkError(
                f"{len(names)} shard channel(s) left {address} (their slot moved): "
                "subscribing again where they are served now; messages published in "
                "between were not received")))
            self._restore({"ssubscribe": names})

    def _carries(self, feed: Feed) -> bool:
        if feed.key is None:
            return bool(self.wanted["subscribe"] or self.wanted["psubscribe"])
        return any(key == feed.key for key in self._shard_of.values())

    def _retire(self, feed: Feed, gap: Error | None) -> None:
        """Drop a feed's connection; after a gap, subscribe again elsewhere."""
        if self._feeds.get(feed.key) is feed:
            del self._feeds[feed.key]
        self._close_later(feed.client)
        if gap is None or self._closed:
            self._wake_readers()
            return
        if feed.key is None:
            lost = {"subscribe": list(self.wanted["subscribe"]),
                    "psubscribe": list(self.wanted["psubscribe"])}
        else:
            lost = {"ssubscribe": [name for name, key in self._shard_of.items()
                                   if key == feed.key]}
            for name in lost["ssubscribe"]:
                del self._shard_of[name]
        count = sum(len(names) for names in lost.values())
        if not count:
            self._wake_readers()
            return
        log.debug("cluster pub/sub: connection to %s lost (%s), %d subscriptions to restore",
                  feed.address, gap, count)
        self._put((None, NetworkError(
            f"pub/sub connection to {feed.address} lost ({gap}): subscribing again to "
            f"{count} channel(s); messages published in between were not received")))
        self._restore(lost)

    def _restore(self, lost: dict[str, list[bytes]]) -> None:
        self._spawn(self._restore_until_done(lost))

    async def _restore_until_done(self, lost: dict[str, list[bytes]]) -> None:
        delay = 0.05
        while not self._closed:
            pending = {kind: [n for n in names if n in self.wanted[kind]]
                       for kind, names in lost.items()}
            if not any(pending.values()):
                self._wake_readers()
                return
            err = await self._subscribe_again(pending)
            if err is None:
                self.restored += sum(len(names) for names in pending.values())
                return
            log.debug("cluster pub/sub: subscribing again failed (%s); retrying", err)
            self._cluster_wide_at = None  # that node did not do: any other next
            await self._refresh()
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF)

    async def _subscribe_again(self, pending: dict[str, list[bytes]]) -> Error | None:
        groups: dict[str | None, list[list[object]]] = {}
        for kind in ("subscribe", "psubscribe"):
            for name in pending.get(kind, ()):
                groups.setdefault(_CLUSTER_WIDE, []).append([kind.upper(), name])
        primaries = self._slot_map().primaries
        for name in pending.get("ssubscribe", ()):
            address = primaries[key_slot(name)]
            if address is None:
                return NetworkError("no node serves a shard channel's slot")
            groups.setdefault(address, []).append(["SSUBSCRIBE", name])
        for key, listed in groups.items():
            feed = await self._feed(key, key)
            if isinstance(feed, Error):
                return feed
            # Unsubscribed while the connection opened: not to be made again.
            commands = [c for c in listed if c[1] in self.wanted[str(c[0]).lower()]]
            if not commands:
                self._tidy(feed)
                continue
            feed.inflight += 1
            try:
                # One command per name: each confirmation is its command's reply.
                results, err = await feed.client.pipeline(commands)
                if results is None:
                    return err
                refused = next((r[1] for r in results if len(r) == 2), None)
                if refused is not None:
                    return refused  # type: ignore[return-value]
                if key is not None:  # carried there from now on
                    for command in commands:
                        self._shard_of[command[1]] = key  # type: ignore[index]
                await self._drop_unwanted(feed, commands)
            finally:
                self._settle(feed)
        return None

    async def _drop_unwanted(self, feed: Feed, commands: list[list[object]]) -> None:
        """Unsubscribe what the caller gave up while it was being restored."""
        for command in commands:
            kind, name = str(command[0]).lower(), command[1]
            assert isinstance(name, bytes)
            if name in self.wanted[kind]:
                continue
            if kind == "ssubscribe" and self._shard_of.get(name) == feed.key:
                del self._shard_of[name]
            await feed.client.cmd(_UNDO[kind], name)

    def check_map(self, slot_map: SlotMap) -> None:
        """After a map refresh: move what a node no longer serves."""
        if self._closed:
            return
        known = set(slot_map.nodes())
        for replicas in slot_map.replicas.values():
            known.update(replicas)
        for feed in list(self._feeds.values()):
            if feed.key is None and feed.address not in known:
                self._retire(feed, NetworkError(f"{feed.address} left the cluster"))
        moved = [name for name, key in self._shard_of.items()
                 if slot_map.primaries[key_slot(name)] != key]
        if not moved:
            return
        for name in moved:
            del self._shard_of[name]
        self._put((None, NetworkError(
            f"{len(moved)} shard channel(s) changed node: subscribing again where they "
            "are served now; messages published in between were not received")))
        self._restore({"ssubscribe": moved})
        for feed in list(self._feeds.values()):
            if feed.key is not None and not self._carries(feed):
                self._retire(feed, None)

    # -- read() -------------------------------------------------------------------

    def _put(self, item: Item) -> None:
        self._queue.append(item)
        if item[0] is not None:
            self._queue_bytes += push_size(item[0]["value"])
        self._wake_readers()

    def _wake_readers(self) -> None:
        for reader in self._readers:
            if not reader.done():
                reader.set_result(None)
        self._readers.clear()

    async def _room(self) -> None:
        """Wait while the queue is full: the connection's own bound then applies."""
        while (len(self._queue) >= self._limit
               or self._queue_bytes >= self._byte_limit) and not self._closed:
            if self._space is None or self._space.done():
                self._space = asyncio.get_running_loop().create_future()
            await self._space

    def _subscribed(self) -> bool:
        return any(self.wanted.values()) or bool(self._feeds) or bool(self._opening)

    async def read(self) -> tuple[ReadResult | None, Error | None]:
        loop = asyncio.get_running_loop()
        deadline = None if self._timeout is None else loop.time() + self._timeout
        while True:
            if self._closed:
                return None, CLOSED
            if self._queue:
                item = self._queue.popleft()
                if item[0] is not None:
                    self._queue_bytes -= push_size(item[0]["value"])
                if (len(self._queue) < self._limit and self._queue_bytes < self._byte_limit
                        and self._space is not None and not self._space.done()):
                    self._space.set_result(None)
                return item
            if not self._subscribed():
                return None, NOTHING_TO_READ
            reader = loop.create_future()
            self._readers.append(reader)
            remaining = None if deadline is None else deadline - loop.time()
            try:
                async with asyncio.timeout(remaining):
                    await reader  # a signal only: the item stays queued if we leave
            except TimeoutError:
                return None, TIMEOUT
            finally:
                with contextlib.suppress(ValueError):
                    self._readers.remove(reader)

    # -- lifetime ----------------------------------------------------------------

    def _spawn(self, work: Awaitable[object]) -> None:
        async def run() -> None:
            await work

        task = asyncio.ensure_future(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _close_later(self, client: Client) -> None:
        # Never cancelled: a close cut short could leave its socket open.
        task = asyncio.ensure_future(client.close())
        self._closers.add(task)
        task.add_done_callback(self._closers.discard)

    async def close(self) -> None:
        self._closed = True
        self._wake_readers()
        if self._space is not None and not self._space.done():
            self._space.set_result(None)
        for opening in list(self._opening.values()):
            opening.cancel()
        pumps = [feed.pump for feed in self._feeds.values() if feed.pump is not None]
        for pump in pumps:
            pump.cancel()
        restoring = list(self._tasks)
        for task in restoring:
            task.cancel()
        waiting: list[asyncio.Future[Any]] = [*pumps, *restoring, *self._opening.values()]
        if waiting:
            await asyncio.wait(waiting)
        for feed in list(self._feeds.values()):
            self._close_later(feed.client)
        self._feeds.clear()
        if self._closers:
            await asyncio.wait(list(self._closers))
