"""Redis Cluster: one client over many nodes, with the single-node contract.

``connect_cluster()`` learns the slot map (``CLUSTER SHARDS``, or ``CLUSTER
SLOTS`` on older servers) and each command's key positions (``COMMAND``, once
per cluster), then sends every command to the primary owning its slot, through
the ordinary per-node clients and pools. ``MOVED`` refreshes the map and
retries; ``ASK`` retries once on the importing node after ``ASKING``;
``TRYAGAIN`` and ``CLUSTERDOWN`` retry with backoff, a bounded number of
times. A command is only ever retried on a reply saying it did not run.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Final

from ._blocking import is_blocking
from ._client import Client, ReadResult, connect_with, encode_pipeline
from ._cluster_pubsub import ClusterPubSub
from ._config import Config, ConfigView, invalid_config, parse_config
from ._errors import (
    CLOSED,
    NOT_FOUND,
    TIMEOUT,
    ConfigError,
    Error,
    NetworkError,
    ServerError,
    UsageError,
)
from ._resp import ArgumentError, Reply, argument_bytes, command_name, encode_command
from ._slots import CommandTable, SlotMap, key_slot, name_of
from ._state import SUBSCRIBE_COMMANDS, changes_session

log: Final = logging.getLogger("levredis")

#: Connections per node a cluster client needs at least: the shared one, and one
#: per kind of subscription (transactions and blocking commands wait for a free one).
MIN_CONNECTIONS: Final = 3
#: Redirects and retries one command may take before its last error is returned.
MAX_ATTEMPTS: Final = 6
#: Tries to reach a node for a command not sent yet (within the call's deadline) ...
MAX_UNSENT: Final = 40
#: ... at most this far apart: a promoted replica is used soon after the promotion.
UNSENT_BACKOFF: Final = 0.25
#: The slot map is fetched at most this often (seconds) ...
REFRESH_INTERVAL: Final = 0.1
#: ... and, while no node answers, at most this often (doubling up to it).
MAX_REFRESH_GAP: Final = 2.0
#: While the client is in use, the map is read again this often.
REFRESH_PERIOD: Final = 5.0
#: With replica reads on, a shard without a known replica is looked at again this often.
REPLICA_RECHECK: Final = 1.0
#: How long one node may take to give the map before the next is asked.
NODE_ANSWER_LIMIT: Final = 2.0


def parse_cluster_config(config: object) -> tuple[list[Config], bool] | ConfigError:
    """Seed node configs and the read-from-replicas switch, or what is wrong."""
    options: Mapping[str, Any] = {}
    if isinstance(config, (list, tuple)):
        seeds: object = config
    elif isinstance(config, Mapping):
        options = config
        seeds = config.get("nodes")
    else:
        return invalid_config("a cluster config is a list of nodes or a mapping with 'nodes'",
                        type(config).__name__)
    if not isinstance(seeds, (list, tuple)) or not seeds:
        return invalid_config("nodes must be a non-empty list of 'host:port' or redis:// URLs",
                        seeds)
    replicas = options.get("read_from_replicas", False)
    if not isinstance(replicas, bool):
        return invalid_config("read_from_replicas must be a bool", replicas)
    for key in ("host", "port", "path"):
        if key in options:
            return invalid_config(f"a cluster config names its nodes in 'nodes', not {key!r}",
                            options[key])
    if options.get("cache") not in (None, False):
        return invalid_config("the client-side cache is not supported by connect_cluster "
                              "(use it with connect() or connect_sentinel())", "cache")
    # Every other key applies to each node's connections, as connect() reads it.
    common = {k: v for k, v in options.items() if k not in ("nodes", "read_from_replicas", "db")}
    configs = []
    for seed in seeds:
        parsed = parse_config(seed)
        if isinstance(parsed, ConfigError):
            return parsed
        merged = parse_config({"host": parsed.host, "port": parsed.port, "db": parsed.db,
                               "timeout": parsed.timeout, "ssl": parsed.ssl,
                               "auth": dict(parsed.auth) if parsed.auth else None,
                               **{k: v for k, v in common.items() if v is not None}})
        if isinstance(merged, ConfigError):
            return merged
        if merged.db != 0:
            return invalid_config("a cluster has only db 0", merged.db)
        if merged.max_connections is not None and merged.max_connections < MIN_CONNECTIONS:
            return invalid_config(
                f"max_connections must be at least {MIN_CONNECTIONS} for a cluster client: "
                "per node, one connection is shared by commands and one carries each kind "
                "of subscription (SUBSCRIBE, SSUBSCRIBE)", merged.max_connections)
        configs.append(merged)
    if "db" in options and options["db"] not in (None, 0):
        return invalid_config("a cluster has only db 0", options["db"])
    return configs, replicas


class ClusterClient:
    """A client over every node of a Redis Cluster, with ``Client``'s shapes.

    ``cmd``, ``pipeline``, ``read`` and ``close`` return ``(value, err)`` as on
    a single node::

        cluster, err = await levredis.connect_cluster(["10.0.0.1:7000", "10.0.0.2:7000"])
        value, err = await cluster.cmd("GET", "user:{42}:name")
    """

    def __init__(self, seeds: list[Config], read_from_replicas: bool) -> None:
        self._seeds = seeds
        self._template = seeds[0]
        self._replicas_wanted = read_from_replicas
        #: (address, replica connection?) -> that node's client; disposable.
        self._nodes: dict[tuple[str, bool], Client] = {}
        self._slots = SlotMap()
        self._commands = CommandTable(None)
        self._refreshing: asyncio.Task[Error | None] | None = None
        self._last_refresh = -REFRESH_PERIOD
        self._gap = REFRESH_INTERVAL
        self._used = False
        self._ticker: asyncio.TimerHandle | None = None
        self._closers: set[asyncio.Task[None]] = set()
        #: Calls in flight per node client, and who waits for a dropped one to be idle.
        self._busy: dict[Client, int] = {}
        self._idle: dict[Client, asyncio.Future[None]] = {}
        self._pubsub = ClusterPubSub(self._node_config, lambda: self._slots, self.refresh,
                                     self._shared_cmd, self._template.max_pushes,
                                     self._template.max_push_bytes, self._template.timeout)
        self._closed = False
        self._redirects: Counter[str] = Counter()

    @property
    def cfg(self) -> Mapping[str, Any]:
        view = dict(self._template.view())
        view.pop("host", None)
        view.pop("port", None)
        view["nodes"] = [seed.address for seed in self._seeds]
        view["read_from_replicas"] = self._replicas_wanted
        return ConfigView(view)  # read-only, secrets masked in its repr

    def redirects(self) -> dict[str, int]:
        """How many MOVED, ASK, TRYAGAIN and CLUSTERDOWN replies were followed."""
        return {code: self._redirects[code]
                for code in ("MOVED", "ASK", "TRYAGAIN", "CLUSTERDOWN")}

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<levredis.ClusterClient {len(self._slots.nodes())} primaries {state}>"

    async def __aenter__(self) -> ClusterClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        traceback: TracebackType | None) -> None:
        await self.close()

    # -- nodes ------------------------------------------------------------------

    def _node_config(self, address: str, readonly: bool = False) -> Config:
        """One node's config: its address, the cluster's options."""
        host, _, port = address.rpartition(":")
        return dataclasses.replace(self._template, host=host.strip("[]"), port=int(port),
                                   path=None, readonly=readonly)

    async def _node(self, address: str, readonly: bool = False) -> Client | Error:
        """The node's client; a failed one is dropped and a new one made."""
        key = (address, readonly)
        client = self._nodes.get(key)
        if client is not None:
            if not client._broken():
                return client
            self._drop(key, client)
        if self._closed:
            return CLOSED
        client, err = await connect_with(self._node_config(address, readonly))
        if client is None:
            return err or NetworkError(f"cannot connect to {address}")
        if self._closed:  # closed (or connect_cluster cancelled) meanwhile
            await client.close()
            return CLOSED
        existing = self._nodes.setdefault(key, client)
        if existing is not client:
            await client.close()
        return existing

    def _drop(self, key: tuple[str, bool], client: Client) -> None:
        """Forget a failed node client; close it once no call is in flight on it.

        A blocking command may be waiting on another (healthy) connection of
        that client: closing under it would cut it short while the server
        still runs it.
        """
        if self._nodes.get(key) is client:
            del self._nodes[key]

        async def close_when_idle() -> None:
            idle = self._idle.get(client)
            if client in self._busy and idle is None:
                idle = self._idle[client] = asyncio.get_running_loop().create_future()
            if idle is not None:
                await idle
            await client.close()

        task = asyncio.ensure_future(close_when_idle())  # never cancelled: no socket left open
        self._closers.add(task)
        task.add_done_callback(self._closers.discard)

    async def _call(self, node: Client, *args: object) -> tuple[Reply, Error | None]:
        """``node.cmd``, counted as in flight on that node's client."""
        self._busy[node] = self._busy.get(node, 0) + 1
        try:
            return await node.cmd(*args)
        finally:
            self._done_with(node)

    async def _call_pipeline(
        self, node: Client, commands: Sequence[Sequence[object]]
    ) -> tuple[list[list[Reply]] | None, Error | None]:
        self._busy[node] = self._busy.get(node, 0) + 1
        try:
            return await node.pipeline(commands)
        finally:
            self._done_with(node)

    def _done_with(self, node: Client) -> None:
        left = self._busy[node] - 1
        if left:
            self._busy[node] = left
            return
        del self._busy[node]
        idle = self._idle.pop(node, None)
        if idle is not None and not idle.done():
            idle.set_result(None)

    def _after_failure(self, address: str, readonly: bool, client: Client) -> None:
        """A call on ``client`` failed on the network: drop it if broken, re-read the map."""
        if client._broken():
            self._drop((address, readonly), client)
        self._schedule_refresh()

    # -- the slot map ---------------------------------------------------------------

    async def refresh(self) -> Error | None:
        """Fetch the slot map (and, once, the command table) from any node."""
        task = self._refreshing
        if task is None:
            task = self._refreshing = asyncio.ensure_future(self._fetch_map())
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if task.cancelled() and current is not None and not current.cancelling():
                return CLOSED  # close() stopped the refresh, not our caller
            raise

    async def _refresh_until(self, deadline: float | None) -> Error | None:
        """``refresh()``, waited for no longer than a call's deadline."""
        if deadline is None:
            return await self.refresh()
        remaining = deadline - asyncio.get_running_loop().time()
        try:
            async with asyncio.timeout(max(remaining, 0)):
                return await self.refresh()  # shielded: the refresh goes on for others
        except TimeoutError:
            return TIMEOUT

    def _schedule_refresh(self) -> None:
        if self._refreshing is None and not self._closed:
            self._refreshing = asyncio.ensure_future(self._fetch_map())

    def _tick(self) -> None:
        """Every REFRESH_PERIOD: re-read the map if the client was used meanwhile."""
        if self._closed:
            return
        if self._used:
            self._used = False
            self._schedule_refresh()
        self._ticker = asyncio.get_running_loop().call_later(REFRESH_PERIOD, self._tick)

    async def _fetch_map(self) -> Error | None:
        try:
            return await self._fetch_map_once()
        finally:
            self._refreshing = None  # the next failure may refresh again

    async def _fetch_map_once(self) -> Error | None:
        loop = asyncio.get_running_loop()
        wait = self._last_refresh + self._gap - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        self._last_refresh = loop.time()
        primaries = self._slots.nodes()
        replicas = [r for rs in self._slots.replicas.values() for r in rs]
        random.shuffle(primaries)
        random.shuffle(replicas)
        candidates = primaries + replicas + [seed.address for seed in self._seeds]
        last: Error = NetworkError("no cluster node answered")
        for address in dict.fromkeys(candidates):
            try:
                # A frozen node must not hold the whole refresh for a full timeout.
                async with asyncio.timeout(NODE_ANSWER_LIMIT):
                    found = await self._map_from(address)
            except TimeoutError:
                found = NetworkError(f"{address} did not answer CLUSTER SHARDS in time")
            if isinstance(found, Error):
                last = found
                continue
            if not self._commands:
                node = await self._node(address)
                table, err = (None, node) if isinstance(node, Error) else await self._call(node,
                    "COMMAND")
                if err is not None:
                    last = err
                    continue
                self._commands = CommandTable(table)
            self._slots = found
            self._gap = REFRESH_INTERVAL
            self._pubsub.check_map(found)
            log.debug("cluster: slot map from %s, %d primaries", address, len(found.nodes()))
            return None
        self._gap = min(self._gap * 2, MAX_REFRESH_GAP)  # back off while nothing answers
        return last

    async def _map_from(self, address: str) -> SlotMap | Error:
        node = await self._node(address)
        if isinstance(node, Error):
            return node
        reply, err = await self._call(node, "CLUSTER", "SHARDS")
        slot_map = SlotMap.from_shards(reply) if err is None else None
        if slot_map is None or not slot_map.covered():
            reply, err = await self._call(node, "CLUSTER", "SLOTS")
            if err is not None:
                if isinstance(err, NetworkError):
                    self._after_failure(address, False, node)
                return err
            slot_map = SlotMap.from_slots(reply)
        if not slot_map.nodes():
            return ServerError("CLUSTERDOWN the cluster serves no slot")
        return slot_map

    def _route(self, args: Sequence[object], keys: list[bytes]) -> tuple[str | None, Error | None]:
        slots = {key_slot(key) for key in keys}
        if len(slots) > 1:
            return None, UsageError("CROSSSLOT Keys in request don't hash to the same slot")
        if slots:
            return self._slots.primaries[slots.pop()], None
        nodes = self._slots.nodes()
        return (random.choice(nodes) if nodes else None), None

    async def _keys_of(self, args: Sequence[object]) -> list[bytes] | Error:
        keys = self._commands.keys(args)
        if keys == [] and len(args) > 1 and name_of(args[0]) == "publish":
            # Keyless, but one node per channel keeps a publisher's messages
            # in order (the cluster bus links between nodes race).
            return [argument_bytes(args[1])]
        if keys is not None:
            return keys
        nodes = self._slots.nodes()  # movable keys: the server tells which
        node = await self._node(random.choice(nodes)) if nodes else NetworkError("no node")
        if isinstance(node, Error):
            return node
        found, err = await self._call(node, "COMMAND", "GETKEYS", *args)
        if err is not None:
            return [] if "no key arguments" in err else err
        return [argument_bytes(k) for k in found] if isinstance(found, list) else []

    # -- commands -------------------------------------------------------------

    async def cmd(self, *args: object) -> tuple[Reply, Error | None]:
        """Run one command on the node that owns its keys; ``Client.cmd``'s shapes."""
        if self._closed:
            return None, CLOSED
        try:
            encode_command(args)
        except ArgumentError as exc:
            return None, UsageError(str(exc))
        self._used = True
        name = name_of(args[0]).upper()
        if name in SUBSCRIBE_COMMANDS:
            return await self._pubsub.command(name, args)
        if changes_session(args):
            return None, _refused(args)
        keys = await self._keys_of(args)
        if isinstance(keys, Error):
            return None, keys
        if not keys:
            request, response = self._commands.policy(args)
            if request == "special":
                return None, _whole_cluster(args)
            if request in ("all_shards", "all_nodes") and response != "special":
                return await self._fan_out(args, request, response)
        address, err = self._route(args, keys)
        if err is not None:
            return None, err
        readonly = self._replicas_wanted and self._commands.readonly(args)
        return await self._run(address, args, readonly)

    async def _fan_out(self, args: Sequence[object], request: str,
                       response: str) -> tuple[Reply, Error | None]:
        """A command every primary (or node) must run; replies combined as its tips say."""
        primaries = self._slots.nodes()
        if not primaries:
            return None, NetworkError("no cluster node known")
        calls = [self._run(address, args) for address in primaries]
        if request == "all_nodes":
            calls += [self._run_on_replica(replica, args)
                      for address in primaries for replica in self._slots.replicas.get(address, [])]
        results = await asyncio.gather(*calls)
        values = [value for value, err in results if err is None]
        errors = [err for _, err in results if err is not None and err != NOT_FOUND]
        if response == "one_succeeded" and values:
            return values[0], None
        if errors:
            return None, errors[0]
        if response in ("agg_sum", "agg_min", "agg_max"):
            numbers = [v for v in values if isinstance(v, (int, float))]
            combine = {"agg_sum": sum, "agg_min": min, "agg_max": max}[response]
            return combine(numbers), None  # type: ignore[operator]
        if response in ("agg_logical_and", "agg_logical_or"):
            truth = all(values) if response == "agg_logical_and" else any(values)
            return int(truth), None
        if response in ("all_succeeded", "one_succeeded"):
            return values[0] if values else None, None if values else NOT_FOUND
        # No tip: arrays are joined (KEYS); otherwise the first answer there is.
        if values and all(isinstance(v, list) for v in values):
            return [item for v in values for item in v], None  # type: ignore[union-attr]
        found = next((v for v in values if v is not None), None)
        return found, None if found is not None else NOT_FOUND

    async def _run_on_replica(self, address: str, args: Sequence[object]
                              ) -> tuple[Reply, Error | None]:
        node = await self._node(address, readonly=True)
        if isinstance(node, Error):
            return None, node
        value, err = await self._call(node, *args)
        if isinstance(err, NetworkError):
            self._after_failure(address, True, node)
        return value, err

    def primaries(self) -> list[str]:
        """The primaries' addresses, as the slot map has them now."""
        return self._slots.nodes()

    async def _shared_cmd(self, args: Sequence[object]) -> tuple[Reply, Error | None]:
        """A keyless command that leaves no state, on any primary's shared connection."""
        nodes = self._slots.nodes()
        return await self._run(random.choice(nodes) if nodes else None, args)

    async def _run(self, address: str | None, args: Sequence[object],
                   readonly: bool = False) -> tuple[Reply, Error | None]:
        """Send to ``address``; follow redirects; retry what certainly did not run."""
        loop = asyncio.get_running_loop()
        limit = self._template.timeout
        deadline = None if limit is None else loop.time() + limit
        delay = 0.05
        last: Error = NetworkError("no node serves this slot")
        asking = False
        attempts = unsent = 0
        while attempts < MAX_ATTEMPTS and unsent < MAX_UNSENT:
            if address is None:
                refresh_err = await self._refresh_until(deadline)
                if refresh_err is TIMEOUT:
                    return None, last  # the deadline passed waiting for the map
                keys = await self._keys_of(args)
                if isinstance(keys, Error):
                    return None, keys
                address, _ = self._route(args, keys)
                if address is None:
                    return None, refresh_err or last
            target = address
            if readonly and not asking:
                replicas = self._slots.replicas.get(address) or []
                if replicas:
                    target = random.choice(replicas)
                else:
                    self._missing_replica()
            node = await self._node(target, readonly=target != address)
            if isinstance(node, Error):
                # Not connected: the command was not sent, so it may go again
                # (bounded by the call's deadline, as during a failover).
                self._schedule_refresh()
                unsent += 1
                last = node
                if node is CLOSED:
                    return None, node
                if target != address:
                    readonly = False  # the replica is out of reach: its primary serves
                    continue
                if not await _backoff(delay, deadline):
                    return None, node
                delay = min(delay * 2, UNSENT_BACKOFF)
                address = None  # routed again on the refreshed map
                continue
            if asking:
                results, err = await self._call_pipeline(node, [["ASKING"], list(args)])
                if results is None:
                    self._after_failure(target, target != address, node)
                    return None, err
                reply = results[1]
                value = reply[0]
                err = reply[1] if len(reply) == 2 else NOT_FOUND if value is None else None  # type: ignore[assignment]
            else:
                value, err = await self._call(node, *args)
            if err is None or not isinstance(err, ServerError):
                if err is CLOSED and not self._closed and not is_blocking(
                        command_name(args[0]), args):
                    # A client dropped under a call is closed only once idle:
                    # "closed" means this call found it closed, before sending.
                    unsent += 1
                    last = err
                    continue
                if isinstance(err, NetworkError):
                    self._after_failure(target, target != address, node)
                return value, err
            attempts += 1
            code = err.code
            if code in ("MOVED", "ASK", "TRYAGAIN", "CLUSTERDOWN"):
                self._redirects[code] += 1
            if code in ("MOVED", "ASK"):
                address = _redirect_address(err, target)
                asking = code == "ASK"
                if code == "MOVED":
                    self._schedule_refresh()
            elif code in ("TRYAGAIN", "CLUSTERDOWN"):
                if not await _backoff(delay, deadline):
                    return None, err
                delay = min(delay * 2, 1.0)
                if code == "CLUSTERDOWN":
                    await self._refresh_until(deadline)
                asking = False
            else:
                return value, err
            last = err
        return None, last

    def _missing_replica(self) -> None:
        """Replica reads are on and a shard has none known: look again, now and then."""
        loop = asyncio.get_running_loop()
        if loop.time() - self._last_refresh > REPLICA_RECHECK:
            self._schedule_refresh()

    async def pipeline(
        self, commands: Sequence[Sequence[object]] | None
    ) -> tuple[list[list[Reply]] | None, Error | None]:
        """Many commands: split by node, sent concurrently, results in your order.

        A transaction (``[WATCH ...] MULTI ... EXEC``) must touch one slot
        only; it then runs on that slot's node, whole.
        """
        if self._closed:
            return None, CLOSED
        if commands is None:
            return [], None
        encoded = encode_pipeline(commands)
        if isinstance(encoded, UsageError):
            return None, encoded
        commands = encoded[1]  # as encoded (subclasses copied once)
        if not commands:
            return [], None
        self._used = True
        transaction = _transaction_shape(commands)
        if isinstance(transaction, UsageError):
            return None, transaction
        routes: list[str | None] = []
        all_keys: list[bytes] = []
        for position, args in enumerate(commands, 1):
            if name_of(args[0]).upper() in SUBSCRIBE_COMMANDS:
                return None, UsageError(f"pipeline entry {position}: subscribe-family "
                                        "commands go through cmd() on a cluster")
            keys = await self._keys_of(args)
            if isinstance(keys, Error):
                return None, keys
            if not keys and self._commands.policy(args)[0] in (
                    "all_shards", "all_nodes", "special") and command_name(
                    args[0]) not in _ANY_NODE_IN_A_PIPELINE:
                name = command_name(args[0])
                return None, UsageError(f"pipeline entry {position}: {name} runs on every "
                                        "node of a cluster: send it with cmd()")
            all_keys += keys
            address, err = self._route(args, keys)
            if err is not None:
                return None, UsageError(f"pipeline entry {position}: {err}")
            routes.append(address if keys else None)
        if transaction:
            slots = {key_slot(key) for key in all_keys}
            if len(slots) > 1:
                return None, UsageError("a MULTI ... EXEC pipeline must use one slot: CROSSSLOT "
                                        "Keys in request don't hash to the same slot")
            return await self._transaction(commands, slots.pop() if slots else None)
        default = next((r for r in routes if r), None) or next(iter(self._slots.nodes()), None)
        groups: dict[str, list[int]] = {}
        for index, address in enumerate(routes):
            groups.setdefault(address or default or "", []).append(index)
        results: list[list[Reply] | None] = [None] * len(commands)
        unsent: list[int] = []

        async def send(address: str, indexes: list[int]) -> Error | None:
            node = await self._node(address) if address else NetworkError("no node")
            if isinstance(node, Error):
                if node is CLOSED:
                    return node
                self._schedule_refresh()
                unsent.extend(indexes)  # not sent: each goes again on its own
                return None
            replies, err = await self._call_pipeline(node, [commands[i] for i in indexes])
            if replies is None:
                if err is CLOSED and not self._closed:
                    unsent.extend(indexes)
                    return None
                self._after_failure(address, False, node)
                return err
            for index, reply in zip(indexes, replies, strict=True):
                results[index] = reply
            return None

        errors = await asyncio.gather(*(send(a, ix) for a, ix in groups.items()))
        failure = next((e for e in errors if e is not None), None)
        if failure is not None:
            return None, failure
        for index, reply in enumerate(results):  # redirected entries did not run: retry
            if reply is not None and len(reply) == 2 and str(reply[1]).split(" ")[0] in (
                    "MOVED", "ASK", "TRYAGAIN", "CLUSTERDOWN"):
                unsent.append(index)
        for index in sorted(unsent):
            value, err = await self.cmd(*commands[index])
            if isinstance(err, NetworkError) or err is CLOSED:
                return None, err
            results[index] = [value] if err is None else [None] if err == "not found" \
                else [None, err]
        return [r if r is not None else [None] for r in results], None

    async def _transaction(self, commands: Sequence[Sequence[object]],
                           slot: int | None) -> tuple[list[list[Reply]] | None, Error | None]:
        """A one-slot transaction; again after a redirect (nothing of it ran then)."""
        loop = asyncio.get_running_loop()
        limit = self._template.timeout
        deadline = None if limit is None else loop.time() + limit
        delay = 0.05
        last: Error = NetworkError("no node serves this slot")
        for _ in range(MAX_ATTEMPTS):
            nodes = self._slots.nodes()
            address = self._slots.primaries[slot] if slot is not None else (
                random.choice(nodes) if nodes else None)
            if self._closed:
                return None, CLOSED
            # A connection of its own, not the node's shared one: if the server
            # refused its EXEC or DISCARD (an ACL, a typo), MULTI would stay
            # open and other callers' commands would be queued in it.
            node, err = await connect_with(self._node_config(address)) if address \
                else (None, last)
            if node is None:
                last = err or last
                self._schedule_refresh()
                if not await _backoff(delay, deadline):
                    return None, last
                delay = min(delay * 2, UNSENT_BACKOFF)
                await self._refresh_until(deadline)
                continue
            try:
                results, err = await node.pipeline(commands)
            finally:
                await node.close()  # pooled again only if the transaction is over
            if results is None:
                if isinstance(err, NetworkError):
                    self._schedule_refresh()
                return None, err
            codes = [ServerError(str(r[1])).code for r in results if len(r) == 2]
            redirected = [c for c in codes if c in ("MOVED", "ASK", "TRYAGAIN", "CLUSTERDOWN")]
            aborted = len(results[-1]) == 2
            if not (redirected and aborted):
                return results, None
            for code in redirected[:1]:
                self._redirects[code] += 1
            last = NetworkError(f"transaction redirected ({redirected[0]})")
            if not await _backoff(delay, deadline):
                return results, None
            delay = min(delay * 2, 1.0)
            await self._refresh_until(deadline)
        return None, last

    # -- pub/sub ----------------------------------------------------------------

    async def read(self) -> tuple[ReadResult | None, Error | None]:
        """The next pub/sub message (or gap notice) from any subscriber connection."""
        if self._closed:
            return None, CLOSED
        return await self._pubsub.read()

    def pubsub_restored(self) -> int:
        """How many subscriptions were made again after a connection loss or a move."""
        return self._pubsub.restored

    async def close(self, no_keepalive: bool = False) -> bool:
        """Close every node's client (back to their pools); always ``True``."""
        if self._closed:
            return True
        self._closed = True
        if self._ticker is not None:
            self._ticker.cancel()
        refreshing = self._refreshing
        if refreshing is not None:
            # Stop it first: it may be connecting to nodes right now.
            refreshing.cancel()
            await asyncio.wait({refreshing})  # its outcome is not ours to raise
        await self._pubsub.close()
        for client in list(self._nodes.values()):
            await client.close(no_keepalive)
        self._nodes.clear()
        for idle in self._idle.values():  # dropped clients close now, calls or not
            if not idle.done():
                idle.set_result(None)
        if self._closers:
            await asyncio.wait(list(self._closers))
        return True

    def _start(self) -> None:
        self._ticker = asyncio.get_running_loop().call_later(REFRESH_PERIOD, self._tick)


#: Keyless commands a pipeline may carry to its node although cmd() sends them
#: to every node: PING's answer is any node's; WAIT after the pipeline's
#: writes counts those writes (it goes with them, to the pipeline's node).
_ANY_NODE_IN_A_PIPELINE: Final = frozenset({"PING", "WAIT", "WAITAOF"})


def _whole_cluster(args: Sequence[object]) -> UsageError:
    name = command_name(args[0])
    return UsageError(
        f"{name} cannot run as one command on a cluster: each node has its own part "
        "(and cursor). Run it on each primary: connect() to each of cluster.primaries()")


def _refused(args: Sequence[object]) -> UsageError:
    name = command_name(args[0])
    if name == "CLIENT" and len(args) > 1:
        name += " " + command_name(args[1])
    return UsageError(
        f"{name} is refused on a cluster client: it would change the session of a node "
        "connection every caller shares. A transaction is a pipeline "
        "[WATCH ...] MULTI ... EXEC on one slot; for anything else, connect() to the node")


def _transaction_shape(commands: Sequence[Sequence[object]]) -> bool | UsageError:
    """True for ``[WATCH ...] MULTI ... EXEC|DISCARD``, False for a plain pipeline.

    Any other place for a session-changing command is refused: it would
    stay on a connection other callers share.
    """
    changing = [i for i, args in enumerate(commands) if changes_session(args)]
    if not changing:
        return False
    names = [command_name(args[0]) for args in commands]
    multi = names.index("MULTI") if "MULTI" in names else -1
    shaped = (multi >= 0 and all(name == "WATCH" for name in names[:multi])
              and names[-1] in ("EXEC", "DISCARD") and len(names) > multi + 1
              and changing == [*range(multi + 1), len(names) - 1])
    if shaped:
        return True
    return UsageError(
        f"pipeline entry {changing[0] + 1}: {_refused(commands[changing[0]])}")


def _redirect_address(err: ServerError, answered_by: str) -> str:
    """The node a MOVED/ASK names (an empty host means the one that answered)."""
    address = err.split(" ")[2]
    host, _, port = address.rpartition(":")
    return address if host else f"{answered_by.rpartition(':')[0]}:{port}"


async def _backoff(delay: float, deadline: float | None) -> bool:
    """Sleep ``delay`` unless that passes the deadline: whether to try again."""
    if deadline is not None and asyncio.get_running_loop().time() + delay >= deadline:
        return False
    await asyncio.sleep(delay)
    return True


async def connect_cluster(config: object) -> tuple[ClusterClient, None] | tuple[None, Error]:
    """Connect to a Redis Cluster: ``(cluster_client, None)`` or ``(None, err)``.

    ``config`` is a list of seed nodes (``"host:port"`` or ``redis://`` URLs),
    or a mapping with ``nodes``, ``read_from_replicas`` (off by default) and
    any key ``connect()`` takes for each node's connections (``timeout``,
    ``ssl``, ``auth``, ``decode``, ``max_connections``, ``max_pushes`` ...).
    """
    parsed = parse_cluster_config(config)
    if isinstance(parsed, ConfigError):
        return None, parsed
    seeds, replicas = parsed
    cluster = ClusterClient(seeds, replicas)
    try:
        err = await cluster.refresh()
    except BaseException:
        # Cancelled: every node connection checked out so far goes back.
        await asyncio.shield(cluster.close())
        raise
    if err is not None:
        await cluster.close()
        return None, err
    cluster._start()
    return cluster, None
