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
import logging
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Final

from ._client import Client, ReadResult, connect, encode_pipeline
from ._config import Config, parse_config
from ._dispatch import NOTHING_TO_READ
from ._errors import CLOSED, NOT_FOUND, ConfigError, Error, NetworkError, ServerError, UsageError
from ._resp import ArgumentError, Reply, argument_bytes, encode_command
from ._slots import CommandTable, SlotMap, key_slot, name_of
from ._state import SUBSCRIBE_COMMANDS

log: Final = logging.getLogger("levredis")

#: Redirects and retries one command may take before its last error is returned.
MAX_ATTEMPTS: Final = 6
#: The slot map is fetched at most this often (seconds).
REFRESH_INTERVAL: Final = 0.1


def _invalid(what: str, got: object) -> ConfigError:
    return ConfigError(f"invalid redis config: {what} (got {got!r})")


def parse_cluster_config(config: object) -> tuple[list[Config], bool] | ConfigError:
    """Seed node configs and the read-from-replicas switch, or what is wrong."""
    options: Mapping[str, Any] = {}
    if isinstance(config, (list, tuple)):
        seeds: object = config
    elif isinstance(config, Mapping):
        options = config
        seeds = config.get("nodes")
    else:
        return _invalid("a cluster config is a list of nodes or a mapping with 'nodes'",
                        type(config).__name__)
    if not isinstance(seeds, (list, tuple)) or not seeds:
        return _invalid("nodes must be a non-empty list of 'host:port' or redis:// URLs",
                        seeds)
    replicas = options.get("read_from_replicas", False)
    if not isinstance(replicas, bool):
        return _invalid("read_from_replicas must be a bool", replicas)
    common = {k: v for k, v in options.items() if k in ("timeout", "ssl", "auth", "decode")}
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
            return _invalid("a cluster has only db 0", merged.db)
        configs.append(merged)
    if "db" in options and options["db"] not in (None, 0):
        return _invalid("a cluster has only db 0", options["db"])
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
        self._nodes: dict[str, Client] = {}
        self._readonly_nodes: dict[str, Client] = {}
        self._slots = SlotMap()
        self._commands = CommandTable(None)
        self._refreshing: asyncio.Task[Error | None] | None = None
        self._last_refresh = 0.0
        self._subscriber: Client | None = None
        self._closed = False
        self._redirects: Counter[str] = Counter()

    @property
    def cfg(self) -> Mapping[str, Any]:
        view = dict(self._template.view())
        view.pop("host", None)
        view.pop("port", None)
        view["nodes"] = [seed.address for seed in self._seeds]
        view["read_from_replicas"] = self._replicas_wanted
        return view

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

    # -- nodes and the slot map ------------------------------------------------

    def _node_config(self, address: str) -> dict[str, Any]:
        """``connect()`` config for one node: its address, the cluster's options."""
        host, _, port = address.rpartition(":")
        template = self._template
        return {"host": host.strip("[]"), "port": int(port), "timeout": template.timeout,
                "ssl": template.ssl, "decode": template.decode,
                "auth": dict(template.auth) if template.auth else None}

    async def _node(self, address: str, readonly: bool = False) -> Client | Error:
        nodes = self._readonly_nodes if readonly else self._nodes
        client = nodes.get(address)
        if client is not None:
            return client
        client, err = await connect(self._node_config(address))
        if client is None:
            return err or NetworkError(f"cannot connect to {address}")
        if readonly:
            _, err = await client.cmd("READONLY")
            if err is not None:
                await client.close()
                return err
        if self._closed:  # closed (or connect_cluster cancelled) meanwhile
            await client.close()
            return CLOSED
        existing = nodes.setdefault(address, client)
        if existing is not client:
            await client.close()
        return existing

    async def refresh(self) -> Error | None:
        """Fetch the slot map (and, once, the command table) from any node."""
        task = self._refreshing
        if task is None:
            task = self._refreshing = asyncio.ensure_future(self._fetch_map())
        return await asyncio.shield(task)

    async def _fetch_map(self) -> Error | None:
        try:
            return await self._fetch_map_once()
        finally:
            self._refreshing = None  # the next failure may refresh again

    async def _fetch_map_once(self) -> Error | None:
        loop = asyncio.get_running_loop()
        wait = self._last_refresh + REFRESH_INTERVAL - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        self._last_refresh = loop.time()
        candidates = self._slots.nodes() + [seed.address for seed in self._seeds]
        last: Error = NetworkError("no cluster node answered")
        for address in dict.fromkeys(candidates):
            node = await self._node(address)
            if isinstance(node, Error):
                last = node
                continue
            reply, err = await node.cmd("CLUSTER", "SHARDS")
            slot_map = SlotMap.from_shards(reply) if err is None else None
            if slot_map is None or not slot_map.covered():
                reply, err = await node.cmd("CLUSTER", "SLOTS")
                if err is not None:
                    last = err
                    continue
                slot_map = SlotMap.from_slots(reply)
            if not slot_map.nodes():
                last = ServerError("CLUSTERDOWN the cluster serves no slot")
                continue
            self._slots = slot_map
            if not self._commands:
                table, err = await node.cmd("COMMAND")
                if err is not None:
                    return err
                self._commands = CommandTable(table)
            log.debug("cluster: slot map from %s, %d primaries", address, len(slot_map.nodes()))
            return None
        return last

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
        if keys is not None:
            return keys
        nodes = self._slots.nodes()  # movable keys: the server tells which
        node = await self._node(random.choice(nodes)) if nodes else NetworkError("no node")
        if isinstance(node, Error):
            return node
        found, err = await node.cmd("COMMAND", "GETKEYS", *args)
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
        name = name_of(args[0])
        if name.upper() in SUBSCRIBE_COMMANDS:
            return await self._subscribe(name, args)
        keys = await self._keys_of(args)
        if isinstance(keys, Error):
            return None, keys
        address, err = self._route(args, keys)
        if err is not None:
            return None, err
        readonly = self._replicas_wanted and self._commands.readonly(args)
        return await self._run(address, args, readonly)

    async def _run(self, address: str | None, args: Sequence[object],
                   readonly: bool = False) -> tuple[Reply, Error | None]:
        delay = 0.05
        last: Error = NetworkError("no node serves this slot")
        asking = False
        for _ in range(MAX_ATTEMPTS):
            if address is None:
                refresh_err = await self.refresh()
                keys = await self._keys_of(args)
                if refresh_err is not None or isinstance(keys, Error):
                    return None, refresh_err or keys  # type: ignore[return-value]
                address, _ = self._route(args, keys)
                if address is None:
                    return None, last
            target = address
            if readonly and not asking:
                replicas = self._slots.replicas.get(address) or []
                if replicas:
                    target = random.choice(replicas)
            node = await self._node(target, readonly=target != address)
            if isinstance(node, Error):
                self._schedule_refresh()
                return None, node
            if asking:
                results, err = await node.pipeline([["ASKING"], list(args)])
                if results is None:
                    return None, err
                reply = results[1]
                value = reply[0]
                err = reply[1] if len(reply) == 2 else NOT_FOUND if value is None else None  # type: ignore[assignment]
            else:
                value, err = await node.cmd(*args)
            if err is None or not isinstance(err, ServerError):
                if isinstance(err, NetworkError):
                    self._schedule_refresh()  # a node may have failed over
                return value, err
            code = err.code
            if code in ("MOVED", "ASK", "TRYAGAIN", "CLUSTERDOWN"):
                self._redirects[code] += 1
            if code == "MOVED":
                address = err.split(" ")[2]
                asking = False
                self._schedule_refresh()
            elif code == "ASK":
                address = err.split(" ")[2]
                asking = True
            elif code in ("TRYAGAIN", "CLUSTERDOWN"):
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
                if code == "CLUSTERDOWN":
                    await self.refresh()
                asking = False
            else:
                return value, err
            last = err
        return None, last

    def _schedule_refresh(self) -> None:
        if self._refreshing is None and not self._closed:
            self._refreshing = asyncio.ensure_future(self._fetch_map())

    async def pipeline(
        self, commands: Sequence[Sequence[object]] | None
    ) -> tuple[list[list[Reply]] | None, Error | None]:
        """Many commands: split by node, sent concurrently, results in your order.

        A ``MULTI ... EXEC`` pipeline must touch one slot only; it then runs
        on that slot's node as one transaction.
        """
        if self._closed:
            return None, CLOSED
        if commands is None or (isinstance(commands, (list, tuple)) and not commands):
            return [], None
        malformed = encode_pipeline(commands)
        if isinstance(malformed, UsageError):
            return None, malformed
        routes: list[str | None] = []
        all_keys: list[bytes] = []
        for position, args in enumerate(commands, 1):
            keys = await self._keys_of(args)
            if isinstance(keys, Error):
                return None, keys
            all_keys += keys
            address, err = self._route(args, keys)
            if err is not None:
                return None, UsageError(f"pipeline entry {position}: {err}")
            routes.append(address if keys else None)
        if any(name_of(args[0]) == "multi" for args in commands):
            address, err = self._route(commands[0], all_keys)
            if err is not None:
                return None, UsageError(f"a MULTI ... EXEC pipeline must use one slot: {err}")
            node = await self._node(address) if address else NetworkError("no node")
            if isinstance(node, Error):
                return None, node
            return await node.pipeline(commands)
        default = next((r for r in routes if r), None) or next(iter(self._slots.nodes()), None)
        groups: dict[str, list[int]] = {}
        for index, address in enumerate(routes):
            groups.setdefault(address or default or "", []).append(index)
        results: list[list[Reply] | None] = [None] * len(commands)

        async def send(address: str, indexes: list[int]) -> Error | None:
            node = await self._node(address) if address else NetworkError("no node")
            if isinstance(node, Error):
                return node
            replies, err = await node.pipeline([commands[i] for i in indexes])
            if replies is None:
                self._schedule_refresh()
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
                value, err = await self.cmd(*commands[index])
                results[index] = [value] if err is None else [None] if err == "not found" \
                    else [None, err]
        return [r if r is not None else [None] for r in results], None

    # -- pub/sub ----------------------------------------------------------------

    async def _subscribe(self, name: str, args: Sequence[object]) -> tuple[Reply, Error | None]:
        if self._subscriber is None:
            if name.startswith("s") and len(args) > 1:
                address = self._slots.primaries[key_slot(argument_bytes(args[1]))]
            else:
                nodes = self._slots.nodes()
                address = nodes[0] if nodes else None
            if address is None:
                return None, NetworkError("no node serves this channel")
            # Its own connection: subscribed state must not reach the node's pool.
            client, err = await connect(self._node_config(address))
            if client is None:
                return None, err
            self._subscriber = client
        return await self._subscriber.cmd(*args)

    async def read(self) -> tuple[ReadResult | None, Error | None]:
        """Read a pub/sub message from the connection the subscriptions are on."""
        if self._closed:
            return None, CLOSED
        if self._subscriber is None:
            return None, NOTHING_TO_READ
        return await self._subscriber.read()

    async def close(self, no_keepalive: bool = False) -> bool:
        """Close every node's client (back to their pools); always ``True``."""
        if self._closed:
            return True
        self._closed = True
        refreshing = self._refreshing
        if refreshing is not None:
            # Stop it first: it may be connecting to nodes right now.
            refreshing.cancel()
            await asyncio.wait({refreshing})  # its outcome is not ours to raise
        clients = [*self._nodes.values(), *self._readonly_nodes.values()]
        if self._subscriber is not None:
            clients.append(self._subscriber)
        for client in clients:
            await client.close(no_keepalive)
        return True


async def connect_cluster(config: object) -> tuple[ClusterClient, None] | tuple[None, Error]:
    """Connect to a Redis Cluster: ``(cluster_client, None)`` or ``(None, err)``.

    ``config`` is a list of seed nodes (``"host:port"`` or ``redis://`` URLs),
    or a mapping with ``nodes`` plus ``timeout``, ``ssl``, ``auth``, ``decode``
    and ``read_from_replicas`` (off by default).
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
    return cluster, None
